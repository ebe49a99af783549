#!/usr/bin/python3
"""Write the PyTorch reference values that tests/parity/ compares libcnnlite against.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 tests/parity/gen_fixtures.py [arch]
(with "arch", only fixtures/arch.bin is written)
CI does not run this; the fixture files it writes are committed.

File format (little-endian), read by tests/parity/fixture.c:
    8 bytes  magic "CNNLFIX1"
    u32      number of tensors
    per tensor:
        u32      name length, then the name (UTF-8, no terminator)
        u32      ndim (0 for a scalar)
        i64[ndim] shape
        f32[numel] values, row-major
Integers (labels, counters, layer settings) are stored as exactly representable floats.
Names are "<case>.<field>"; "<case>.cfg" holds a case's settings (see each writer).
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fixtures")


class Fixture:
    def __init__(self):
        self.items = []

    def add(self, name, value):
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        # A copy: numpy views share memory with live tensors that later steps modify.
        arr = np.array(value, dtype="<f4", copy=True, order="C")
        assert all(n != name for n, _ in self.items), name
        self.items.append((name, arr))

    def write(self, filename):
        path = os.path.join(OUT, filename)
        with open(path, "wb") as f:
            f.write(b"CNNLFIX1")
            f.write(struct.pack("<I", len(self.items)))
            for name, arr in self.items:
                raw = name.encode()
                f.write(struct.pack("<I", len(raw)))
                f.write(raw)
                f.write(struct.pack("<I", arr.ndim))
                f.write(struct.pack("<%dq" % arr.ndim, *arr.shape))
                f.write(arr.tobytes())
        print("%s: %d tensors, %d bytes" % (filename, len(self.items), os.path.getsize(path)))


def run_module(fx, case, module, x, cfg, training=True, buffers_before=None):
    """Forward x, backward a random upstream gradient; store inputs, parameters, outputs,
    input and parameter gradients, and buffers before and after."""
    fx.add(case + ".cfg", cfg)
    module.train(training)
    for name, buf in module.named_buffers():
        if buffers_before and name in buffers_before:
            buf.copy_(buffers_before[name])
        fx.add(case + "." + name, buf.float())
    for name, p in module.named_parameters():
        fx.add(case + "." + name, p)
    x = x.clone().requires_grad_(True)
    y = module(x)
    gy = torch.randn_like(y)
    y.backward(gy)
    fx.add(case + ".x", x)
    fx.add(case + ".y", y)
    fx.add(case + ".gy", gy)
    fx.add(case + ".gx", x.grad)
    for name, p in module.named_parameters():
        fx.add(case + ".grad." + name, p.grad)
    for name, buf in module.named_buffers():
        fx.add(case + ".after." + name, buf.float())


def layers():
    fx = Fixture()
    # Conv2d cfg: in, out, kernel, stride, padding, bias
    for case, (n, cin, cout, k, s, p, bias, hw) in {
        "conv_k3s1p1": (2, 3, 4, 3, 1, 1, True, 7),
        "conv_k3s2p1_nobias": (2, 3, 5, 3, 2, 1, False, 8),
        "conv_k3s2p1_odd": (1, 2, 3, 3, 2, 1, True, 9),
        "conv_k2s2p0": (2, 2, 3, 2, 2, 0, True, 7),
        "conv_k1": (2, 5, 3, 1, 1, 0, True, 4),
        "conv_k5s1p2_nobias": (1, 2, 2, 5, 1, 2, False, 6),
    }.items():
        m = nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=bias)
        run_module(fx, case, m, torch.randn(n, cin, hw, hw), [cin, cout, k, s, p, int(bias)])
    # Pools cfg: kernel, stride
    for kind, cls in (("maxpool", nn.MaxPool2d), ("avgpool", nn.AvgPool2d)):
        for suffix, (k, s, shape) in {
            "k2s2": (2, 2, (2, 3, 6, 6)),
            "k3s2": (3, 2, (2, 2, 7, 7)),
            "k2s2_odd": (2, 2, (1, 2, 7, 5)),
            "k2s1": (2, 1, (1, 2, 5, 5)),
        }.items():
            run_module(fx, kind + "_" + suffix, cls(k, s), torch.randn(*shape), [k, s])
    # BatchNorm2d cfg: channels, training. Non-default affine parameters and running
    # statistics, so that every term of the update shows.
    for case, (training, offset) in {
        "bn_train": (True, 0.0),
        # Mean 10, spread 0.1: E[x^2] - E[x]^2 in float32 would lose ~6e-4 of the variance,
        # while rounding the inputs themselves costs only ~1e-5 of the output.
        "bn_train_offset": (True, 10.0),
        "bn_eval": (False, 0.0),
    }.items():
        c = 3
        m = nn.BatchNorm2d(c)
        with torch.no_grad():
            m.weight.copy_(torch.rand(c) + 0.5)
            m.bias.copy_(torch.randn(c))
        before = {"running_mean": torch.randn(c), "running_var": torch.rand(c) + 0.5,
                  "num_batches_tracked": torch.tensor(3)}
        x = torch.randn(4, c, 5, 5) * (0.1 if offset else 1.0) + offset
        run_module(fx, case, m, x, [c, int(training)], training=training, buffers_before=before)
    # Linear cfg: in, out, bias
    run_module(fx, "linear", nn.Linear(7, 5), torch.randn(3, 7), [7, 5, 1])
    run_module(fx, "linear_nobias", nn.Linear(4, 3, bias=False), torch.randn(2, 4), [4, 3, 0])
    run_module(fx, "flatten", nn.Flatten(), torch.randn(2, 3, 2, 2), [])
    # Activations cfg: cnnl_activation kind, parameter
    acts = {
        "relu": (0, 0.0, nn.ReLU()),
        "leaky_relu": (1, 0.2, nn.LeakyReLU(0.2)),
        "elu": (2, 1.3, nn.ELU(1.3)),
        "tanh": (3, 0.0, nn.Tanh()),
        "sigmoid": (4, 0.0, nn.Sigmoid()),
        "softmax": (5, 0.0, nn.Softmax(dim=1)),
    }
    for name, (kind, param, m) in acts.items():
        run_module(fx, "act_" + name, m, 2.0 * torch.randn(2, 3, 4, 4), [kind, param])
    run_module(fx, "act_softmax_2d", nn.Softmax(dim=1), 3.0 * torch.randn(3, 5), [5, 0.0])
    # Dropout: the masks come from different generators, so store torch's scaled input
    # x * (1 / (1 - p)); the C test infers its own mask and checks the kept values against it.
    p = 0.3
    x = torch.randn(2, 3, 8, 8)
    y = F.dropout(x, p, training=True)
    scaled = x * (1.0 / (1.0 - p))
    kept = y != 0
    assert torch.equal(y[kept], scaled[kept])
    fx.add("dropout.cfg", [p])
    fx.add("dropout.x", x)
    fx.add("dropout.scaled", scaled)
    fx.add("dropout.gy", torch.randn_like(x))
    fx.write("layers.bin")


def losses():
    fx = Fixture()
    n, c = 5, 4
    logits = 2.0 * torch.randn(n, c)
    labels = torch.tensor([0, 3, 1, 1, 2])
    dense_x = torch.randn(n, 6)
    dense_t = torch.randn(n, 6)
    kl_x = F.log_softmax(torch.randn(n, 6), dim=1)
    kl_t = F.softmax(2.0 * torch.randn(n, 6), dim=1)
    kl_t[0, 2] = 0.0  # 0 * log 0 = 0
    kl_t[3, :2] = 0.0
    cos_x = torch.randn(n, 6)
    cos_t = torch.randn(n, 6)
    cos_x[4] *= 1e-6  # tiny row: PyTorch's eps on the squared norms shows
    mse_x = torch.randn(2, 3, 2, 2)  # MSE takes any shape
    mse_t = torch.randn(2, 3, 2, 2)
    for red in ("mean", "sum"):
        cases = {
            "ce": (nn.CrossEntropyLoss(reduction=red), logits, labels),
            "hinge": (nn.MultiMarginLoss(reduction=red), logits, labels),
            "mse": (nn.MSELoss(reduction=red), mse_x, mse_t),
            "kl": (nn.KLDivLoss(reduction="batchmean" if red == "mean" else "sum"), kl_x, kl_t),
            "cosine": (None, cos_x, cos_t),
        }
        for name, (fn, x, t) in cases.items():
            case = "%s_%s" % (name, red)
            xg = x.clone().requires_grad_(True)
            if name == "cosine":
                loss = nn.CosineEmbeddingLoss(reduction=red)(xg, t, torch.ones(n))
            else:
                loss = fn(xg, t)
            loss.backward()
            fx.add(case + ".x", x)
            fx.add(case + ".target", t)
            fx.add(case + ".loss", loss.reshape(1))
            fx.add(case + ".gx", xg.grad)
    fx.write("losses.bin")


def optimizers():
    """Two steps of each optimizer on a Linear(5, 3), with a new gradient per step and a
    learning-rate change before the second."""
    fx = Fixture()
    cases = {
        # cfg: lr, lr of step 2, then the optimizer's own settings (stored as float32;
        # test_parity.c repeats them as doubles, which is what torch.optim is given)
        "adam": (lambda ps, lr: torch.optim.Adam(ps, lr=lr, weight_decay=0.01), [1e-2, 5e-3, 0.9, 0.999, 1e-8, 0.01, 0]),
        "adam_betas": (lambda ps, lr: torch.optim.Adam(ps, lr=lr, betas=(0.8, 0.95), eps=1e-4),
                       [1e-2, 2e-2, 0.8, 0.95, 1e-4, 0.0, 0]),
        "adamw": (lambda ps, lr: torch.optim.AdamW(ps, lr=lr, weight_decay=0.1), [1e-2, 5e-3, 0.9, 0.999, 1e-8, 0.1, 1]),
        "sgd_momentum": (lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9, dampening=0.1, weight_decay=1e-3),
                         [5e-2, 2e-2, 0.9, 0.1, 1e-3, 0]),
        "sgd_nesterov": (lambda ps, lr: torch.optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-3),
                         [5e-2, 2e-2, 0.9, 0.0, 1e-3, 1]),
    }
    for case, (make, cfg) in cases.items():
        lin = nn.Linear(5, 3)
        opt = make(lin.parameters(), cfg[0])
        fx.add(case + ".cfg", cfg)
        for name, p in lin.named_parameters():
            fx.add("%s.%s" % (case, name), p)
        for step in (1, 2):
            if step == 2:
                for g in opt.param_groups:
                    g["lr"] = cfg[1]
            for name, p in lin.named_parameters():
                p.grad = torch.randn_like(p)
                fx.add("%s.step%d.grad.%s" % (case, step, name), p.grad)
            opt.step()
            for name, p in lin.named_parameters():
                fx.add("%s.step%d.%s" % (case, step, name), p)
                for key, val in opt.state[p].items():
                    if key != "step":
                        fx.add("%s.step%d.%s.%s" % (case, step, name, key), val)
    fx.write("optim.bin")


class ReportNet(nn.Module):
    """The report's network (REPORT.md)."""

    def __init__(self, bn, size, classes=4, p=0.0):
        super().__init__()
        layers = [nn.AvgPool2d(2)]
        cin = 3
        for w in (16, 32, 64, 128):
            layers.append(nn.Conv2d(cin, w, 3, padding=1))
            if bn:
                layers.append(nn.BatchNorm2d(w))
            layers += [nn.ReLU(), nn.MaxPool2d(2, 2)]
            cin = w
        self.features = nn.Sequential(*layers)
        side = size // 32
        self.classifier = nn.Sequential(nn.Dropout(p), nn.Linear(128 * side * side, 128), nn.ReLU(),
                                        nn.Dropout(p), nn.Linear(128, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def report():
    """The whole network at 64x64, train mode, dropout 0, cross-entropy; without and with
    batch norm. The batch-norm network reuses the same convolution and linear weights (its
    conv layers sit at features.1/5/9/13 instead of 1/4/7/10), so they are stored once."""
    fx = Fixture()
    size = 64
    x = torch.rand(2, 3, size, size)  # images in [0, 1]
    labels = torch.tensor([2, 0])
    fx.add("input", x)
    fx.add("labels", labels)
    plain = ReportNet(False, size)
    for name, p in plain.named_parameters():
        fx.add("init." + name, p)
    with_bn = ReportNet(True, size)
    conv_map = {1: 1, 4: 5, 7: 9, 10: 13}
    with torch.no_grad():
        for src, dst in conv_map.items():
            with_bn.features[dst].weight.copy_(plain.features[src].weight)
            with_bn.features[dst].bias.copy_(plain.features[src].bias)
        for i in (1, 4):
            with_bn.classifier[i].weight.copy_(plain.classifier[i].weight)
            with_bn.classifier[i].bias.copy_(plain.classifier[i].bias)
    for tag, net in (("plain", plain), ("bn", with_bn)):
        net.train()
        logits = net(x)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        fx.add(tag + ".logits", logits)
        fx.add(tag + ".loss", loss.reshape(1))
        for name, p in net.named_parameters():
            fx.add("%s.grad.%s" % (tag, name), p.grad)
        for name, b in net.named_buffers():
            fx.add("%s.after.%s" % (tag, name), b.float())
    fx.write("report.bin")


# Networks from architecture descriptions, built by scripts/cnnlite_torch.py (the same
# builder the torch-arch test uses): "<case>.json" holds the description's UTF-8 bytes (one
# float per byte), "<case>.<state name>" the state_dict before the pass, then x, y, gy, gx,
# "<case>.grad.<name>" and "<case>.after.<buffer>" as run_module writes them. Training mode.
ARCH_CASES = {
    "conv_strided": ([2, 7, 7], 2, [{"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "stride": 2,
                                     "padding": 1}]),
    "conv_dilated": ([2, 7, 8], 2, [{"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "padding": 2,
                                     "dilation": 2}]),
    "conv_dilated_strided": ([2, 9, 8], 1, [{"type": "Conv2d", "out_channels": 2, "kernel_size": 2, "stride": 2,
                                             "padding": 1, "dilation": 3, "bias": False}]),
    "conv_depthwise": ([3, 6, 6], 2, [{"type": "Conv2d", "out_channels": 3, "kernel_size": 3, "padding": 1,
                                       "groups": 3}]),
    "conv_depthwise_mult": ([2, 7, 7], 2, [{"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "stride": 2,
                                            "padding": 2, "dilation": 2, "groups": 2}]),
    "conv_grouped": ([4, 5, 6], 2, [{"type": "Conv2d", "out_channels": 6, "kernel_size": 3, "padding": 1,
                                     "groups": 2}]),
    "maxpool_pad": ([2, 7, 6], 2, [{"type": "MaxPool2d", "kernel_size": 3, "stride": 2, "padding": 1}]),
    "maxpool_pad_k2": ([2, 5, 5], 1, [{"type": "MaxPool2d", "kernel_size": 2, "stride": 1, "padding": 1}]),
    "avgpool_pad": ([2, 7, 6], 2, [{"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": 1}]),
    "avgpool_pad_s1": ([2, 5, 5], 1, [{"type": "AvgPool2d", "kernel_size": 3, "stride": 1, "padding": 1}]),
    "global_pool": ([3, 5, 4], 2, [{"type": "AdaptiveAvgPool2d", "output_size": 1}, {"type": "Flatten"}]),
    "residual": ([3, 6, 6], 2, [
        # No bias before a training-mode BatchNorm: its gradient is zero up to rounding.
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1, "bias": False},
        {"type": "BatchNorm2d"}, {"type": "ReLU"},
        {"type": "Residual", "layers": [
            {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1, "groups": 4, "bias": False},
            {"type": "BatchNorm2d"}, {"type": "ReLU"},
            {"type": "Conv2d", "out_channels": 4, "kernel_size": 1}]},
        {"type": "AdaptiveAvgPool2d", "output_size": 1}, {"type": "Flatten"},
        {"type": "Linear", "out_features": 2}]),
}


def arch():
    sys.path.insert(0, os.path.join(HERE, "..", "..", "scripts"))
    import json
    import cnnlite_torch
    fx = Fixture()
    for case, (shape, n, layer_list) in ARCH_CASES.items():
        text = json.dumps({"input": shape, "layers": layer_list})
        net = cnnlite_torch.build(text)
        fx.add(case + ".json", list(text.encode()))
        run_module(fx, case, net, torch.randn(n, *shape), [n])
    fx.write("arch.bin")


def main():
    torch.manual_seed(20261128)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    print("torch", torch.__version__, file=sys.stderr)
    if sys.argv[1:] != ["arch"]:  # "arch": only arch.bin, leaving the other files as they are
        layers()
        losses()
        optimizers()
        report()
    torch.manual_seed(20261202)
    arch()


if __name__ == "__main__":
    main()
