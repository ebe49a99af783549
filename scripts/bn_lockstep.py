#!/usr/bin/python3
"""PyTorch half of the batch-norm lockstep comparison (docs/bn-gap.md).

usage:
  bn_lockstep.py compare OUT [--threads 2] [--json FILE] [--baseline] [--check]
  bn_lockstep.py pixels OUT
  bn_lockstep.py step1 OUT [--threads 2] [--json FILE]
  bn_lockstep.py seeds HISTORY.csv...
  bn_lockstep.py recalibrate OUT --model MODEL.safetensors

OUT is the folder that `bn_lockstep` (bench/bn_lockstep.c) wrote. `compare` builds the same
network in PyTorch from OUT/init.safetensors (description and initial weights), trains it
with torch.optim.Adam on the very input bytes libcnnlite trained on, in the same order (each
batch's checksum is recomputed from the floats PyTorch receives), and compares:
  - every batch's loss;
  - every tensor of the state (weights, running_mean, running_var, num_batches_tracked)
    after batches 1, 10 and the last but one of the first epoch and after every epoch;
  - the running statistics after the last (partial) batch on their own: the forward of that
    batch in training mode from libcnnlite's state before it;
  - the test split's logits and predictions after every epoch, in evaluation mode and in
    training mode (batch statistics), from PyTorch's own weights and from libcnnlite's.
Differences are max |a - b| and max |a - b| / max |b| per tensor; the worst tensor is named.
With --baseline, a second PyTorch run from initial weights changed by a relative 2^-24 is
compared with the first in the same way: how far rounding alone carries a run. With --check,
the exit status says whether what must agree whatever rounding does did agree: the first
batch's loss (1e-5), the last partial batch's running statistics on their own (1e-5 relative),
num_batches_tracked, and PyTorch's test logits from libcnnlite's weights in both modes (1e-4).
`step1` compares the first step's gradients of both sides with PyTorch's in float64 (see
step1()). `pixels` decodes and resizes every dumped image with Pillow (torchvision's ImageFolder +
Resize: RGB, BILINEAR) and compares the bytes with libcnnlite's. `seeds` summarises
cnnlite-train --history files (see seeds()). `recalibrate` evaluates a saved model with its
running statistics and with statistics recomputed over the training images (see
recalibrate()).
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


def pre_bn_biases(net):
    """Names of the biases of convolutions that a BatchNorm2d follows: their gradient is zero
    up to rounding, so Adam's normalised step moves them by about lr in a direction set by
    rounding noise on either side (and they have no effect on a training-mode output)."""
    leaves = [(n, m) for n, m in net.named_modules() if not list(m.children())]
    return {f"{n}.bias" for (n, m), (_, nxt) in zip(leaves, leaves[1:])
            if isinstance(m, torch.nn.Conv2d) and m.bias is not None and isinstance(nxt, torch.nn.BatchNorm2d)}


def kind_of(name, biases):
    for k in ("num_batches_tracked", "running_mean", "running_var"):
        if name.endswith(k):
            return k
    return "pre_bn_bias" if name in biases else "parameters"


def compare_state(mine, ref, biases):
    """Worst differences of state @mine against state @ref (name -> tensor), by kind."""
    kinds = {}
    for name, t in mine.items():
        a, rel = diff(t, ref[name])
        k = kinds.setdefault(kind_of(name, biases), {"max_abs": 0.0, "max_rel": 0.0, "worst": None, "tensors": 0})
        k["tensors"] += 1
        if k["worst"] is None or rel > k["max_rel"]:
            k["max_rel"], k["worst"] = rel, name
        k["max_abs"] = max(k["max_abs"], a)
    return kinds


def logits_of(net, x_u8, training, batch):
    """Test-split logits in one mode, in batches as libcnnlite ran them (training mode normalises
    with each batch's statistics); the buffers are left untouched."""
    keep = {n: b.clone() for n, b in net.named_buffers()}
    net.train(training)
    out = []
    with torch.no_grad():
        for s in range(0, len(x_u8), batch):
            out.append(net(torch.from_numpy(x_u8[s:s + batch]).float() / 255.0))
        for n, b in net.named_buffers():
            b.copy_(keep[n])
    return torch.cat(out)


def accuracy(logits, labels):
    return 100.0 * (logits.argmax(1) == labels).double().mean().item()


def build_net(desc, tensors):
    net = cnnlite_torch.build(desc)
    net.load_state_dict(tensors, strict=True)
    return net


def state_copy(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


class Data:
    """The dumped batches, each checked against libcnnlite's checksum when first read."""

    def __init__(self, out, man):
        self.out, self.man, self.bs = out, man, man["batch"]
        self.test_x = images(out, man["test"], man)
        self.test_y = torch.tensor(man["test"]["labels"], dtype=torch.int64)
        for b, want in enumerate(man["test"]["checksums"]):
            got = checksum(torch.from_numpy(self.test_x[b * self.bs:(b + 1) * self.bs]).float() / 255.0)
            assert got == int(want, 16), f"test batch {b + 1}: checksum {got:016x}, libcnnlite {want}"
        self.checked = set()

    def epoch(self, e):
        entry = self.man[f"train_e{e}"]
        x_all = images(self.out, entry, self.man)
        y_all = torch.tensor(entry["labels"], dtype=torch.int64)
        for b in range(self.man["batches"]):
            x = torch.from_numpy(x_all[b * self.bs:(b + 1) * self.bs]).float() / 255.0
            if (e, b) not in self.checked:
                got = checksum(x)
                assert got == int(entry["checksums"][b], 16), \
                    f"epoch {e} batch {b + 1}: checksum {got:016x}, libcnnlite {entry['checksums'][b]}"
                self.checked.add((e, b))
            yield b, x, y_all[b * self.bs:(b + 1) * self.bs]


def torch_run(net, data, lr, snap_batches):
    """Train @net in PyTorch on the dumped batches; per epoch its losses, states and logits."""
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    runs = []
    for e in range(1, data.man["epochs"] + 1):
        ep = {"loss": [], "states": {}}
        for b, x, y in data.epoch(e):
            net.train()
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            ep["loss"].append(loss.item())
            if e == 1 and b + 1 in snap_batches:
                ep["states"][f"batch {b + 1}"] = state_copy(net)
        ep["states"]["end"] = state_copy(net)
        ep["eval"] = logits_of(net, data.test_x, False, data.bs)
        ep["train_mode"] = logits_of(net, data.test_x, True, data.bs)
        runs.append(ep)
    return runs


def c_reference(out, man, snap_batches):
    """libcnnlite's side in the layout of torch_run()."""
    runs, nb = [], man["batches"]
    for e in range(1, man["epochs"] + 1):
        ep = {"loss": man["loss"][(e - 1) * nb:e * nb], "states": {}}
        if e == 1:
            for b in snap_batches:
                ep["states"][f"batch {b}"] = cnnlite_torch.load_file(os.path.join(out, f"state_e1_b{b}.safetensors"))[0]
        ep["states"]["end"] = cnnlite_torch.load_file(os.path.join(out, f"state_e{e}.safetensors"))[0]
        for mode, name in (("eval", "eval"), ("train_mode", "train")):
            ep[mode] = torch.from_numpy(np.fromfile(os.path.join(out, f"logits_e{e}_{name}.f32"), dtype=np.float32)
                                        .reshape(man["n_test"], -1))
        runs.append(ep)
    return runs


def compare_runs(a, b, labels, biases):
    """Differences of run @a against reference run @b, per epoch."""
    res = []
    for ea, eb in zip(a, b):
        ld = [abs(x - y) for x, y in zip(ea["loss"], eb["loss"])]
        r = {"loss_abs": ld, "loss_a": ea["loss"], "loss_b": eb["loss"],
             "states": {w: compare_state(ea["states"][w], eb["states"][w], biases) for w in eb["states"]}}
        for mode in ("eval", "train_mode"):
            r[f"logits_{mode}"] = diff(ea[mode], eb[mode])
            r[f"acc_{mode}"] = [accuracy(ea[mode], labels), accuracy(eb[mode], labels)]
            r[f"agree_{mode}"] = int((ea[mode].argmax(1) == eb[mode].argmax(1)).sum())
        res.append(r)
    return res


def perturbed(tensors, rel, seed):
    g = torch.Generator().manual_seed(seed)
    return {k: (v * (1 + rel * torch.randn(v.shape, generator=g)) if v.is_floating_point() else v.clone())
            for k, v in tensors.items()}


def compare(args):
    out = args.out
    man = json.load(open(os.path.join(out, "manifest.json")))
    torch.set_num_threads(args.threads)
    init, meta = cnnlite_torch.load_file(os.path.join(out, "init.safetensors"))
    desc = json.loads(meta["description"])
    net = build_net(desc, init)
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout) and m.p != 0:
            print(f"warning: Dropout p={m.p}: the masks of the two sides differ", file=sys.stderr)
    biases = pre_bn_biases(net)
    nb, bs = man["batches"], man["batch"]
    assert nb >= 2, "the comparison needs at least two batches per epoch"
    snaps = tuple(sorted({b for b in (1, 10, nb - 1) if 1 <= b < nb}))
    data = Data(out, man)
    res = {"size": man["size"], "seed": man["seed"], "n_train": man["n_train"], "n_test": man["n_test"],
           "batches": nb, "last_batch": man["n_train"] - (nb - 1) * bs, "threads_c": man["threads"],
           "threads_torch": args.threads, "pre_bn_biases": sorted(biases)}
    cref = c_reference(out, man, snaps)

    # The last (partial) batch's running-statistics update on its own: PyTorch's forward in
    # training mode from libcnnlite's state before it, against libcnnlite's state after it.
    ref = build_net(desc, cref[0]["states"][f"batch {nb - 1}"])
    ref.train()
    last_x = [x for b, x, _ in data.epoch(1) if b == nb - 1][0]
    with torch.no_grad():
        ref(last_x)
    res["last_batch_update"] = {k: v for k, v in compare_state(ref.state_dict(), cref[0]["states"]["end"], biases).items()
                                if k not in ("parameters", "pre_bn_bias")}
    # Evaluation of libcnnlite's final weights by PyTorch: the forward passes alone.
    same = []
    for e, ep in enumerate(cref, 1):
        cnet = build_net(desc, ep["states"]["end"])
        same.append({mode: diff(ep[mode], logits_of(cnet, data.test_x, mode == "train_mode", data.bs))
                     for mode in ("eval", "train_mode")})
    res["same_weights_logits"] = same

    trun = torch_run(net, data, man["lr"], snaps)
    res["torch_vs_cnnlite"] = compare_runs(trun, cref, data.test_y, biases)
    report("PyTorch against libcnnlite", res["torch_vs_cnnlite"], nb)
    if args.baseline:
        # PyTorch against itself: the same run from initial weights changed by a relative
        # 2^-24 (about half a float32 unit in the last place).
        t2 = torch_run(build_net(desc, perturbed(init, 2.0 ** -24, 1)), data, man["lr"], snaps)
        res["torch_vs_torch_perturbed"] = compare_runs(t2, trun, data.test_y, biases)
        report("PyTorch against PyTorch from initial weights x (1 + 2^-24 N(0,1))", res["torch_vs_torch_perturbed"], nb)
    print(f"last partial batch ({res['last_batch']} images) alone, from libcnnlite's state before it: " +
          ", ".join(f"{k} {fmt(v)}" for k, v in res["last_batch_update"].items()))
    for e, s in enumerate(same, 1):
        print(f"epoch {e}: libcnnlite's weights in PyTorch, test logits: eval mode {s['eval'][0]:.3g} abs / "
              f"{s['eval'][1]:.3g} rel, training mode {s['train_mode'][0]:.3g} / {s['train_mode'][1]:.3g}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return check(res) if args.check else 0


def check(res):
    """--check: what must hold whatever rounding does to the trajectories. Returns 0 or 1."""
    bad = []
    r1 = res["torch_vs_cnnlite"][0]
    lb = r1["loss_b"][0]
    if r1["loss_abs"][0] > 1e-5 * max(1.0, abs(lb)):
        bad.append(f"batch 1 loss differs by {r1['loss_abs'][0]:.3g}")
    for k, v in res["last_batch_update"].items():
        limit = 0 if k == "num_batches_tracked" else 1e-5
        if v["max_rel"] > limit:
            bad.append(f"last partial batch alone: {k} differs by {v['max_rel']:.3g} relative ({v['worst']})")
    for e, r in enumerate(res["torch_vs_cnnlite"], 1):
        for when, kinds in r["states"].items():
            if kinds.get("num_batches_tracked", {"max_abs": 0})["max_abs"] != 0:
                bad.append(f"epoch {e}, after {when}: num_batches_tracked differs")
    for e, s in enumerate(res["same_weights_logits"], 1):
        for mode, (_, rel) in s.items():
            if rel > 1e-4:
                bad.append(f"epoch {e}: libcnnlite's weights in PyTorch give {mode} logits {rel:.3g} relative apart")
    for b in bad:
        print(f"FAIL: {b}")
    return 1 if bad else 0


def fmt(d):
    if d["worst"] and d["worst"].endswith("num_batches_tracked"):
        return f"max abs {d['max_abs']:.0f}"
    return f"{d['max_abs']:.3g} abs / {d['max_rel']:.3g} rel ({d['worst']})"


def report(title, runs, nb):
    print(title)
    for e, r in enumerate(runs, 1):
        ld = r["loss_abs"]
        print(f" epoch {e}: batch loss abs diff: batch 1 {ld[0]:.3g}, batch 10 {ld[min(9, nb - 1)]:.3g}, "
              f"last {ld[-1]:.3g}, max {max(ld):.3g}; mean loss {np.mean(r['loss_a']):.6f} / {np.mean(r['loss_b']):.6f}")
        for when, kinds in r["states"].items():
            print(f"  state after {when}: " + ", ".join(f"{k} {fmt(v)}" for k, v in kinds.items()))
        for mode in ("eval", "train_mode"):
            d = r[f"logits_{mode}"]
            acc = r[f"acc_{mode}"]
            print(f"  test {mode}: accuracy {acc[0]:.2f} / {acc[1]:.2f}, logits {d[0]:.3g} abs / {d[1]:.3g} rel, "
                  f"predictions agree {r[f'agree_{mode}']}")
    sys.stdout.flush()


def step1(args):
    """The first step's gradients against a float64 reference (PyTorch in double precision).

    Adam's first step moves every parameter by -lr * g / (|g| + eps), so libcnnlite's state
    after batch 1 gives the sign of its gradient wherever |g| >> eps. Counts, per tensor, the
    elements whose first step has the sign opposite to the float64 gradient's, for libcnnlite
    and for PyTorch in float32, and the largest float64 gradient among them."""
    out = args.out
    man = json.load(open(os.path.join(out, "manifest.json")))
    torch.set_num_threads(args.threads)
    init, meta = cnnlite_torch.load_file(os.path.join(out, "init.safetensors"))
    desc = json.loads(meta["description"])
    after, _ = cnnlite_torch.load_file(os.path.join(out, "state_e1_b1.safetensors"))
    data = Data(out, man)
    _, x, y = next(iter(data.epoch(1)))
    grads = {}
    for dtype in (torch.float32, torch.float64):
        net = build_net(desc, init).to(dtype)
        net.train()
        F.cross_entropy(net(x.to(dtype)), y).backward()
        grads[dtype] = {n: p.grad.double() for n, p in net.named_parameters()}
    biases = pre_bn_biases(build_net(desc, init))
    lr, eps = man["lr"], 1e-8
    rows = []
    for name, g64 in grads[torch.float64].items():
        g32 = grads[torch.float32][name]
        step_c = (after[name].double() - init[name].double()) / lr
        step_t = -g32 / (g32.abs() + eps)
        want = -torch.sign(g64)
        flip_c = (torch.sign(step_c) != want) & (step_c.abs() > 0.5)
        flip_t = (torch.sign(step_t) != want) & (step_t.abs() > 0.5)
        rows.append({"tensor": name, "pre_bn_bias": name in biases, "max_abs_g64": g64.abs().max().item(),
                     "torch32_max_err": (g32 - g64).abs().max().item(),
                     "cnnlite_flips": int(flip_c.sum()), "torch32_flips": int(flip_t.sum()),
                     "cnnlite_flip_max_g64": g64.abs()[flip_c].max().item() if flip_c.any() else 0.0,
                     "torch32_flip_max_g64": g64.abs()[flip_t].max().item() if flip_t.any() else 0.0,
                     "numel": g64.numel()})
    print(f"first step (batch 1, {man['size']}x{man['size']}): elements whose Adam step has the wrong sign "
          f"against the float64 gradient")
    print(f"{'tensor':22s} {'numel':>8s} {'max|g64|':>9s} {'torch32 err':>11s} | {'cnnlite':>7s} {'max|g64|':>9s} |"
          f" {'torch32':>7s} {'max|g64|':>9s}")
    for r in rows:
        print(f"{r['tensor'] + (' *' if r['pre_bn_bias'] else ''):22s} {r['numel']:8d} {r['max_abs_g64']:9.3g} "
              f"{r['torch32_max_err']:11.3g} | {r['cnnlite_flips']:7d} {r['cnnlite_flip_max_g64']:9.3g} | "
              f"{r['torch32_flips']:7d} {r['torch32_flip_max_g64']:9.3g}")
    print("(* a convolution bias that a BatchNorm2d follows: its exact gradient is 0)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


def seeds(args):
    """Best and final test accuracy of cnnlite-train histories (--history CSV), mean ± sd over
    the files, and the volatility of the per-epoch test accuracy: the mean absolute change from
    one epoch to the next over the second half of the run and the largest drop."""
    import csv
    best, final, rows = [], [], []
    for path in args.out:
        acc = [float(r["test_accuracy"]) for r in csv.DictReader(open(path))]
        half = acc[len(acc) // 2:]
        steps = [b - a for a, b in zip(half, half[1:])]
        best.append(max(acc))
        final.append(acc[-1])
        rows.append((path, acc, sum(abs(d) for d in steps) / max(1, len(steps)), -min(min(steps, default=0), 0)))
    for path, acc, vol, drop in rows:
        print(f"{os.path.basename(path)}: best {max(acc):.2f}, final {acc[-1]:.2f}, mean |change| over the second half "
              f"{vol:.2f}, largest drop {drop:.2f}; per epoch " + " ".join(f"{a:.1f}" for a in acc))

    def ms(v):
        m = sum(v) / len(v)
        sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
        return f"{m:.2f} ± {sd:.2f}"
    print(f"{len(rows)} runs: best {ms(best)}, final {ms(final)} (sample sd); mean |change| per epoch over the "
          f"second half {sum(r[2] for r in rows) / len(rows):.2f}")
    return 0


def recalibrate(args):
    """A model file of cnnlite-train evaluated on the test split of a bn_lockstep folder (same
    size, seed and split) in PyTorch: as saved, and with every BatchNorm2d's running statistics
    recomputed as exact averages over the training images (momentum None) with the weights
    unchanged. A large gain means the saved running statistics, not the weights, failed."""
    out = args.out
    man = json.load(open(os.path.join(out, "manifest.json")))
    torch.set_num_threads(args.threads)
    tensors, meta = cnnlite_torch.load_file(args.model)
    net = build_net(json.loads(meta["description"]), tensors)
    data = Data(out, man)
    saved = accuracy(logits_of(net, data.test_x, False, data.bs), data.test_y)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    net.train()
    with torch.no_grad():
        for _, x, _ in data.epoch(1):
            net(x)
    fresh = accuracy(logits_of(net, data.test_x, False, data.bs), data.test_y)
    print(f"{os.path.basename(args.model)}: test accuracy {saved:.2f} with its running statistics, {fresh:.2f} with "
          f"statistics recomputed over the {man['n_train']} training images")
    return 0


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
    ap.add_argument("command", choices=["compare", "pixels", "step1", "seeds", "recalibrate"])
    ap.add_argument("out", nargs="+", help="the bn_lockstep folder (seeds: cnnlite-train --history CSV files)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--model", help="recalibrate: a cnnlite-train --save file")
    ap.add_argument("--check", action="store_true",
                    help="compare: exit 1 unless batch 1's loss, the last partial batch's running statistics "
                         "and PyTorch's forward passes on libcnnlite's weights agree")
    ap.add_argument("--baseline", action="store_true",
                    help="also train PyTorch from slightly perturbed initial weights and compare it with itself")
    args = ap.parse_args()
    if args.command != "seeds":
        if len(args.out) != 1:
            ap.error(f"{args.command} takes one folder")
        args.out = args.out[0]
    if args.command == "recalibrate" and not args.model:
        ap.error("recalibrate needs --model")
    return {"compare": compare, "pixels": pixels, "step1": step1, "seeds": seeds,
            "recalibrate": recalibrate}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
