#!/usr/bin/python3
"""Check that PyTorch reads a model file libcnnlite wrote (run with /usr/bin/python3).

usage: read_with_torch.py MODEL.safetensors IO.safetensors

Builds the report network from MODEL's metadata, loads its tensors with
load_state_dict(strict=True), runs IO's "input" in eval mode and compares with IO's "logits"
(computed by libcnnlite). Exit status 0 on agreement, 1 on a mismatch, 77 (skip) when torch
is not installed.
"""
import os
import sys

try:
    import torch
except ImportError:
    print("torch is not installed: skipping")
    sys.exit(77)

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_report_net import ReportNet, load_file  # noqa: E402


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tensors, meta = load_file(sys.argv[1])
    io, _ = load_file(sys.argv[2])
    assert meta.get("format") == "cnnlite" and meta.get("arch") == "report_net", meta
    net = ReportNet(int(meta["classes"]), int(meta["channels"]), int(meta["size"]),
                    batchnorm=meta["batchnorm"] == "true", dropout=float(meta["dropout"]))
    net.load_state_dict(tensors, strict=True)
    net.eval()
    with torch.no_grad():
        got = net(io["input"])
    want = io["logits"]
    err = ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()
    print(f"{sys.argv[1]}: {len(tensors)} tensors loaded strictly; classes {meta.get('class_names')}; "
          f"max relative logit difference {err:.3g}")
    return 0 if err < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
