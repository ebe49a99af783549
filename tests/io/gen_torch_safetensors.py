#!/usr/bin/python3
"""Generate the PyTorch interop fixtures of tests/io (run with /usr/bin/python3; needs torch).

Builds the report network at 32x32, 3 channels, 4 classes, with and without batch norm, from
a fixed seed, and writes into tests/io/fixtures/:
  torch_report32.safetensors, torch_report32_bn.safetensors  - state_dicts, no metadata
  torch_report32_io.safetensors - "input" (2, 3, 32, 32) and the eval-mode logits of each
                                  network, "logits" and "logits_bn" (2, 4)
The batch-norm network first runs three training-mode batches so that its running statistics
and num_batches_tracked are not the defaults.
"""
import os
import sys

import torch

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_report_net import ReportNet, save_file  # noqa: E402

SIZE, CLASSES, CHANNELS = 32, 4, 3


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(20240601)
    x = torch.rand(2, CHANNELS, SIZE, SIZE)
    io = {"input": x}
    for bn in (False, True):
        net = ReportNet(CLASSES, CHANNELS, SIZE, batchnorm=bn, dropout=0.2)
        if bn:
            net.train()
            with torch.no_grad():
                for _ in range(3):
                    net(torch.rand(4, CHANNELS, SIZE, SIZE) * 2.0)
        net.eval()
        with torch.no_grad():
            io["logits_bn" if bn else "logits"] = net(x)
        name = "torch_report32_bn.safetensors" if bn else "torch_report32.safetensors"
        save_file(net.state_dict(), os.path.join(out_dir, name))
    save_file(io, os.path.join(out_dir, "torch_report32_io.safetensors"))
    print("wrote fixtures to", out_dir)


if __name__ == "__main__":
    main()
