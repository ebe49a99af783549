#!/usr/bin/python3
"""PyTorch half of the batch-norm lockstep comparison (docs/bn-gap.md).

usage:
  bn_lockstep.py compare OUT [--threads 2] [--json FILE]
  bn_lockstep.py pixels OUT

OUT is the folder that `bn_lockstep` (bench/bn_lockstep.c) wrote. `compare` builds the same
network in PyTorch from OUT/init.safetensors (description and initial weights), trains it
with torch.optim.Adam on the very input bytes libcnnlite trained on, in the same order (each
batch's checksum is recomputed from the floats PyTorch receives), and compares:
  - every batch's loss;
  - every tensor of the state (weights, running_mean, running_var, num_batches_tracked)
    after batches 1 and 10 of the first epoch and after every epoch;
  - the running statistics after the last (partial) batch on their own: the forward of that
    batch in training mode from libcnnlite's state before it;
  - the test split's logits and predictions after every epoch, in evaluation mode and in
    training mode (batch statistics), from PyTorch's own weights and from libcnnlite's.
Differences are max |a - b| and max |a - b| / max |b| per tensor; the worst tensor is named.
`pixels` decodes and resizes every dumped image with Pillow (torchvision's ImageFolder +
Resize: RGB, BILINEAR) and compares the bytes with libcnnlite's.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cnnlite_torch  # noqa: E402


def checksum(x):
    """libcnnlite's order-sensitive checksum of a float batch (bench/bn_lockstep.c)."""
    bits = x.contiguous().view(torch.int32).numpy().ravel().view(np.uint32).astype(np.uint64)
    weights = (np.arange(bits.size, dtype=np.uint64) % np.uint64(251)) + np.uint64(1)
    with np.errstate(over="ignore"):
        return int(np.sum(bits * weights, dtype=np.uint64))


def images(out, entry, man):
    c, s = man["channels"], man["size"]
    raw = np.fromfile(os.path.join(out, entry["file"]), dtype=np.uint8)
    return raw.reshape(entry["count"], c, s, s)


def diff(a, b):
    a, b = a.detach().double(), b.detach().double()
    d = (a - b).abs().max().item() if a.numel() else 0.0
    scale = b.abs().max().item() if b.numel() else 0.0
    return d, d / scale if scale > 0 else (0.0 if d == 0 else math.inf)


def compare_state(mine, ref_path):
    """Worst differences of a PyTorch state_dict against a libcnnlite file, by kind."""
    ref, _ = cnnlite_torch.load_file(ref_path)
    kinds = {}
    for name, t in mine.items():
        r = ref[name]
        if name.endswith("num_batches_tracked"):
            kind = "num_batches_tracked"
        elif name.endswith("running_mean"):
            kind = "running_mean"
        elif name.endswith("running_var"):
            kind = "running_var"
        else:
            kind = "parameters"
        a, rel = diff(t, r)
        k = kinds.setdefault(kind, {"max_abs": 0.0, "max_rel": 0.0, "worst": None, "tensors": 0})
        k["tensors"] += 1
        if k["worst"] is None or rel > k["max_rel"]:
            k["max_rel"], k["worst"] = rel, name
        k["max_abs"] = max(k["max_abs"], a)
    return kinds


def logits_of(net, x_u8, training, batch=32):
    """Test-split logits in one mode; training mode leaves the buffers untouched."""
    keep = {n: b.clone() for n, b in net.named_buffers()}
    net.train(training)
    out = []
    with torch.no_grad():
        for s in range(0, len(x_u8), batch):
            out.append(net(torch.from_numpy(x_u8[s:s + batch]).float() / 255.0))
    with torch.no_grad():
        for n, b in net.named_buffers():
            b.copy_(keep[n])
    return torch.cat(out)


def accuracy(logits, labels):
    return 100.0 * (logits.argmax(1) == labels).double().mean().item()


def load_c_net(desc, path):
    net = cnnlite_torch.build(desc)
    t, _ = cnnlite_torch.load_file(path)
    net.load_state_dict(t, strict=True)
    return net


def compare(args):
    out = args.out
    man = json.load(open(os.path.join(out, "manifest.json")))
    torch.set_num_threads(args.threads)
    init, meta = cnnlite_torch.load_file(os.path.join(out, "init.safetensors"))
    desc = json.loads(meta["description"])
    net = cnnlite_torch.build(desc)
    net.load_state_dict(init, strict=True)
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout) and m.p != 0:
            print(f"warning: Dropout p={m.p}: the masks of the two sides differ", file=sys.stderr)
    opt = torch.optim.Adam(net.parameters(), lr=man["lr"])
    nb = man["batches"]
    bs = man["batch"]
    test_x = images(out, man["test"], man)
    test_y = torch.tensor(man["test"]["labels"], dtype=torch.int64)
    assert len(test_x) == man["n_test"]
    for b, want in enumerate(man["test"]["checksums"]):
        got = checksum(torch.from_numpy(test_x[b * bs:(b + 1) * bs]).float() / 255.0)
        assert got == int(want, 16), f"test batch {b + 1}: checksum {got:016x}, libcnnlite {want}"
    res = {"size": man["size"], "seed": man["seed"], "n_train": man["n_train"], "n_test": man["n_test"],
           "batches": nb, "last_batch": man["n_train"] - (nb - 1) * bs, "threads_c": man["threads"],
           "threads_torch": args.threads, "epochs": []}
    loss_c = man["loss"]
    for e in range(1, man["epochs"] + 1):
        entry = man[f"train_e{e}"]
        x_all = images(out, entry, man)
        y_all = torch.tensor(entry["labels"], dtype=torch.int64)
        ep = {"epoch": e, "loss": [], "states": {}}
        for b in range(nb):
            x = torch.from_numpy(x_all[b * bs:(b + 1) * bs]).float() / 255.0
            y = y_all[b * bs:(b + 1) * bs]
            got = checksum(x)
            assert got == int(entry["checksums"][b], 16), \
                f"epoch {e} batch {b + 1}: checksum {got:016x}, libcnnlite {entry['checksums'][b]}"
            if e == 1 and b == nb - 1:
                # The last (partial) batch's running-statistics update on its own, from
                # libcnnlite's state before it, against libcnnlite's state after it.
                ref = load_c_net(desc, os.path.join(out, f"state_e1_b{nb - 1}.safetensors"))
                ref.train()
                with torch.no_grad():
                    ref(x)
                ep["last_batch_update"] = {
                    k: v for k, v in compare_state(ref.state_dict(), os.path.join(out, "state_e1.safetensors")).items()
                    if k != "parameters"}
            net.train()
            logits = net(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            lc = loss_c[(e - 1) * nb + b]
            ep["loss"].append([loss.item(), lc])
            if e == 1 and b + 1 in (1, 10, nb - 1):
                ep["states"][f"batch {b + 1}"] = compare_state(
                    net.state_dict(), os.path.join(out, f"state_e1_b{b + 1}.safetensors"))
        ep["states"]["end"] = compare_state(net.state_dict(), os.path.join(out, f"state_e{e}.safetensors"))
        # Test split: PyTorch's weights and libcnnlite's, each mode.
        c_eval = torch.from_numpy(np.fromfile(os.path.join(out, f"logits_e{e}_eval.f32"), dtype=np.float32)
                                  .reshape(man["n_test"], -1))
        c_train = torch.from_numpy(np.fromfile(os.path.join(out, f"logits_e{e}_train.f32"), dtype=np.float32)
                                   .reshape(man["n_test"], -1))
        t_eval = logits_of(net, test_x, False)
        t_train = logits_of(net, test_x, True)
        cnet = load_c_net(desc, os.path.join(out, f"state_e{e}.safetensors"))
        ct_eval = logits_of(cnet, test_x, False)
        ct_train = logits_of(cnet, test_x, True)
        ep["test"] = {
            "acc_c_eval": accuracy(c_eval, test_y), "acc_torch_eval": accuracy(t_eval, test_y),
            "acc_c_train_mode": accuracy(c_train, test_y), "acc_torch_train_mode": accuracy(t_train, test_y),
            "acc_torch_on_c_weights_eval": accuracy(ct_eval, test_y),
            "loss_c_eval": F.cross_entropy(c_eval, test_y).item(), "loss_torch_eval": F.cross_entropy(t_eval, test_y).item(),
            "logits_eval_vs_torch_run": diff(c_eval, t_eval),
            "logits_train_mode_vs_torch_run": diff(c_train, t_train),
            "logits_eval_same_weights": diff(c_eval, ct_eval),
            "logits_train_mode_same_weights": diff(c_train, ct_train),
            "pred_agree_eval": int((c_eval.argmax(1) == t_eval.argmax(1)).sum()),
            "pred_agree_eval_same_weights": int((c_eval.argmax(1) == ct_eval.argmax(1)).sum()),
            "n": man["n_test"],
        }
        res["epochs"].append(ep)
        report_epoch(ep, nb)
        net.train()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


def fmt(d):
    return f"{d['max_abs']:.3g} abs / {d['max_rel']:.3g} rel ({d['worst']})"


def report_epoch(ep, nb):
    e = ep["epoch"]
    losses = ep["loss"]
    ld = [abs(a - b) for a, b in losses]
    lr = [abs(a - b) / abs(b) for a, b in losses]
    print(f"epoch {e}: batch loss |torch - cnnlite|: batch 1 {ld[0]:.3g}, batch 10 {ld[min(9, nb - 1)]:.3g}, "
          f"last {ld[-1]:.3g}, max {max(ld):.3g} (rel {max(lr):.3g}); "
          f"losses batch 1 {losses[0][0]:.6f} / {losses[0][1]:.6f}, last {losses[-1][0]:.6f} / {losses[-1][1]:.6f}")
    for when, kinds in ep["states"].items():
        line = ", ".join(f"{k} {fmt(v)}" for k, v in kinds.items() if k != "num_batches_tracked")
        nbt = kinds.get("num_batches_tracked")
        if nbt:
            line += f", num_batches_tracked max abs {nbt['max_abs']:.0f}"
        print(f"  state after {when}: {line}")
    if "last_batch_update" in ep:
        u = ep["last_batch_update"]
        print("  last partial batch alone (from libcnnlite's state before it): " +
              ", ".join(f"{k} {fmt(v)}" for k, v in u.items() if k != "num_batches_tracked"))
    t = ep["test"]
    print(f"  test accuracy eval mode: cnnlite {t['acc_c_eval']:.2f}, torch {t['acc_torch_eval']:.2f} "
          f"(torch on cnnlite's weights {t['acc_torch_on_c_weights_eval']:.2f}); training mode: cnnlite "
          f"{t['acc_c_train_mode']:.2f}, torch {t['acc_torch_train_mode']:.2f}")
    print(f"  test logits eval: vs torch run {t['logits_eval_vs_torch_run'][0]:.3g} abs / "
          f"{t['logits_eval_vs_torch_run'][1]:.3g} rel, same weights {t['logits_eval_same_weights'][0]:.3g} / "
          f"{t['logits_eval_same_weights'][1]:.3g}; training mode: vs torch run "
          f"{t['logits_train_mode_vs_torch_run'][0]:.3g} / {t['logits_train_mode_vs_torch_run'][1]:.3g}, same weights "
          f"{t['logits_train_mode_same_weights'][0]:.3g} / {t['logits_train_mode_same_weights'][1]:.3g}; "
          f"predictions agree {t['pred_agree_eval']}/{t['n']} (same weights {t['pred_agree_eval_same_weights']})")
    sys.stdout.flush()


def pixels(args):
    from PIL import Image
    out = args.out
    man = json.load(open(os.path.join(out, "manifest.json")))
    s = man["size"]
    total = same = 0
    worst = 0
    for key in ("test", "train_e1"):
        entry = man[key]
        x = images(out, entry, man)
        for i, name in enumerate(entry["files"]):
            with Image.open(os.path.join(man["root"], name)) as im:
                p = np.asarray(im.convert("RGB").resize((s, s), Image.BILINEAR)).transpose(2, 0, 1)
            mine = x[i] if man["channels"] == 3 else np.repeat(x[i], 3, axis=0)
            d = int(np.abs(p.astype(np.int16) - mine.astype(np.int16)).max())
            total += 1
            same += d == 0
            worst = max(worst, d)
    print(f"pixels at {s}x{s}: {same} of {total} images identical to Pillow's (RGB, BILINEAR); "
          f"max abs difference {worst}")
    return 0 if same == total else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["compare", "pixels"])
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    args = ap.parse_args()
    return compare(args) if args.command == "compare" else pixels(args)


if __name__ == "__main__":
    sys.exit(main())
