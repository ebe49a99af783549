"""The report's network in PyTorch and a minimal safetensors reader/writer (struct + json),
shared by gen_torch_safetensors.py and read_with_torch.py. Needs torch (python3-torch)."""
import json
import struct

import numpy as np
import torch
from torch import nn

WIDTHS = (16, 32, 64, 128)


class ReportNet(nn.Module):
    """REPORT.md's network: features, flatten, classifier (PyTorch state_dict names)."""

    def __init__(self, classes=4, channels=3, size=512, batchnorm=False, dropout=0.2):
        super().__init__()
        layers = [nn.AvgPool2d(2)]
        cin = channels
        for cout in WIDTHS:
            layers.append(nn.Conv2d(cin, cout, 3, padding=1))
            if batchnorm:
                layers.append(nn.BatchNorm2d(cout))
            layers += [nn.ReLU(), nn.MaxPool2d(2, 2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        flat = 128 * (size // 32) ** 2
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(flat, 128), nn.ReLU(),
                                        nn.Dropout(dropout), nn.Linear(128, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


_DTYPES = {torch.float32: ("F32", np.float32), torch.int64: ("I64", np.int64)}
_NP = {"F32": np.float32, "I64": np.int64}


def save_file(tensors, path, metadata=None):
    """Write an ordered dict of name -> tensor as safetensors (little-endian host)."""
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs, offset = [], 0
    for name, t in tensors.items():
        code, npt = _DTYPES[t.dtype]
        data = t.detach().contiguous().cpu().numpy().astype(npt).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def load_file(path):
    """Read a safetensors file: (ordered dict of name -> tensor, metadata dict)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype=_NP[e["dtype"]]).reshape(e["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, meta
