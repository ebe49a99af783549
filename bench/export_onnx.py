#!/usr/bin/python3
"""Export the report's network to ONNX for bench/ort_bench.js, with a reference input/output.

The network is bench/torch_bench.py's ReportNet (the same layers and state names as
libcnnlite's). Its weights are random (seed 0), or read from a libcnnlite model file
(--weights FILE.safetensors, e.g. saved by cnnlite-train --save), so that ONNX Runtime runs
the same weights as libcnnlite. Beside OUT.onnx it writes OUT.input.bin (a batch of float32
inputs) and OUT.ref.bin (PyTorch's float32 logits for it), which ort_bench.js compares with
its own output.

usage: /usr/bin/python3 bench/export_onnx.py OUT.onnx [--batch 32] [--size 512] [--batchnorm]
       [--weights FILE.safetensors]
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import ReportNet  # noqa: E402

DTYPES = {"F32": np.float32, "I64": np.int64}


def read_safetensors(path):
    """{name: numpy array} from a safetensors file (the format is 8 bytes of header length,
    a JSON header, then the raw little-endian tensors)."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in DTYPES:
            sys.exit(f"{path}: tensor {name} has dtype {info['dtype']}; F32 or I64 expected")
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(blob[base + a:base + b], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batchnorm", action="store_true")
    p.add_argument("--weights")
    a = p.parse_args()
    torch.manual_seed(0)
    model = ReportNet(a.size, a.batchnorm)
    if a.weights:
        state = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(a.weights).items()}
        missing = set(model.state_dict()) - set(state)
        if missing:
            sys.exit(f"{a.weights}: no tensor {sorted(missing)[0]} (the file is not this network)")
        model.load_state_dict({k: state[k] for k in model.state_dict()})
    model.eval()
    x = torch.rand(a.batch, 3, a.size, a.size)
    with torch.no_grad():
        ref = model(x)
    torch.onnx.export(model, x, a.out, input_names=["input"], output_names=["logits"], opset_version=13)
    stem = a.out[:-5] if a.out.endswith(".onnx") else a.out
    x.numpy().astype("<f4").tofile(stem + ".input.bin")
    ref.numpy().astype("<f4").tofile(stem + ".ref.bin")
    print(f"exported {a.out}: batch {a.batch}, {a.size}x{a.size}, "
          f"{'batch norm' if a.batchnorm else 'no batch norm'}, "
          f"weights {'from ' + a.weights if a.weights else 'random (seed 0)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
