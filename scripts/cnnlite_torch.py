#!/usr/bin/python3
"""PyTorch both ways for libcnnlite's architecture descriptions.

usage:
  cnnlite_torch.py predict MODEL.safetensors IMAGE...   class probabilities, one JSON line per
                                                        image, as `cnnlite-predict --json`
  cnnlite_torch.py export DESCRIPTION.json OUT.safetensors [--seed N]
                                                        a freshly initialised PyTorch network
                                                        saved for libcnnlite (metadata included)

`build(description)` returns the torch.nn.Sequential equivalent to a description (the same
JSON libcnnlite reads): layer names are list indices or the layers' "name"s, a Residual holds
its layers as `body`, so a libcnnlite model file loads with load_state_dict(strict=True).
predict reads the network from MODEL's "description" metadata, scales pixels to [0, 1] (the
"unit" normalization; "symmetric" and "mean_std" are applied as recorded) and runs it in
evaluation mode. Images: binary PPM/PGM, or any format Pillow reads when it is installed;
they must already have the network's input size (no resizing here).
"""
import collections
import json
import struct
import sys

import torch
from torch import nn


class Residual(nn.Module):
    """x + body(x)."""

    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def _layer(spec, shape):
    """One module for a description entry and the sample shape it receives; returns (module, shape)."""
    t = spec["type"]
    g = spec.get
    if t in ("Sequential", "Residual"):
        body, out = _sequential(spec["layers"], shape)
        if t == "Residual":
            assert out == shape, f"Residual changes the shape {shape} -> {out}"
            return Residual(body), shape
        return body, out
    if t == "Conv2d":
        m = nn.Conv2d(shape[0], g("out_channels"), g("kernel_size"), stride=g("stride", 1),
                      padding=g("padding", 0), dilation=g("dilation", 1), groups=g("groups", 1),
                      bias=g("bias", True))
    elif t == "BatchNorm2d":
        m = nn.BatchNorm2d(shape[0], eps=g("eps", 1e-5), momentum=g("momentum", 0.1))
    elif t == "MaxPool2d":
        m = nn.MaxPool2d(g("kernel_size"), stride=g("stride"), padding=g("padding", 0))
    elif t == "AvgPool2d":
        m = nn.AvgPool2d(g("kernel_size"), stride=g("stride"), padding=g("padding", 0),
                         count_include_pad=g("count_include_pad", True))
    elif t == "AdaptiveAvgPool2d":
        m = nn.AdaptiveAvgPool2d(g("output_size"))
    elif t == "Flatten":
        m = nn.Flatten()
    elif t == "Dropout":
        m = nn.Dropout(g("p", 0.5))
    elif t == "Linear":
        m = nn.Linear(shape[0], g("out_features"), bias=g("bias", True))
    elif t == "ReLU":
        m = nn.ReLU()
    elif t == "LeakyReLU":
        m = nn.LeakyReLU(g("negative_slope", 0.01))
    elif t == "ELU":
        m = nn.ELU(g("alpha", 1.0))
    elif t == "Tanh":
        m = nn.Tanh()
    elif t == "Sigmoid":
        m = nn.Sigmoid()
    elif t == "Softmax":
        m = nn.Softmax(dim=g("dim", 1))
    else:
        raise ValueError(f"unknown layer type {t!r}")
    with torch.no_grad():
        m.eval()
        out = tuple(m(torch.zeros((1,) + shape)).shape[1:])
        m.train()
    return m, out


def _sequential(specs, shape):
    mods = collections.OrderedDict()
    for i, spec in enumerate(specs):
        m, shape = _layer(spec, shape)
        mods[spec.get("name", str(i))] = m
    return nn.Sequential(mods), shape


def build(description):
    """torch.nn.Sequential for a description (dict or JSON text)."""
    if isinstance(description, str):
        description = json.loads(description)
    net, _ = _sequential(description["layers"], tuple(description["input"]))
    return net


DTYPES = {"F32": (torch.float32, 4), "I64": (torch.int64, 8)}


def load_file(path):
    """A safetensors file: (ordered dict of name -> tensor, metadata dict)."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    out = collections.OrderedDict()
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dtype, _ = DTYPES[info["dtype"]]
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=dtype) if b > a else torch.zeros(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    return out, meta


def save_file(tensors, path, metadata):
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        code = "I64" if t.dtype == torch.int64 else "F32"
        b = t.to(DTYPES[code][0]).numpy().tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_image(path, channels):
    """uint8 tensor (C, H, W) with @channels channels (gray replicated, as libcnnlite does)."""
    raw = open(path, "rb").read()
    if raw[:2] in (b"P5", b"P6"):
        fields, pos = [], 2
        while len(fields) < 3:
            while raw[pos:pos + 1].isspace():
                pos += 1
            if raw[pos:pos + 1] == b"#":
                pos = raw.index(b"\n", pos)
                continue
            end = pos
            while not raw[end:end + 1].isspace():
                end += 1
            fields.append(int(raw[pos:end]))
            pos = end
        w, h, maxval = fields
        assert maxval == 255, f"{path}: only 8-bit PNM"
        c = 3 if raw[:2] == b"P6" else 1
        px = torch.frombuffer(bytearray(raw[pos + 1:pos + 1 + w * h * c]), dtype=torch.uint8)
        img = px.reshape(h, w, c).permute(2, 0, 1)
    else:
        from PIL import Image  # optional
        im = Image.open(path).convert("RGB" if channels == 3 else "L")
        img = torch.tensor(bytearray(im.tobytes()), dtype=torch.uint8).reshape(im.height, im.width, -1).permute(2, 0, 1)
    if img.shape[0] == 1 and channels == 3:
        img = img.expand(3, -1, -1)
    elif img.shape[0] == 3 and channels == 1:
        raise ValueError(f"{path}: a colour image for a one-channel network")
    return img


def normalize(x, norm):
    kind = norm.get("kind", "unit")
    if kind == "symmetric":
        return x * 2.0 - 1.0
    if kind == "mean_std":
        mean = torch.tensor(norm["mean"]).reshape(-1, 1, 1)
        std = torch.tensor(norm["std"]).reshape(-1, 1, 1)
        return (x - mean) / std
    return x


def predict(model_path, images):
    tensors, meta = load_file(model_path)
    desc = json.loads(meta["description"])
    net = build(desc)
    net.load_state_dict(tensors, strict=True)
    net.eval()
    names = json.loads(meta["class_names"]) if "class_names" in meta else None
    norm = json.loads(meta["normalization"]) if "normalization" in meta else {"kind": "unit"}
    c, h, w = desc["input"]
    for path in images:
        img = read_image(path, c)
        assert tuple(img.shape[1:]) == (h, w), f"{path}: {tuple(img.shape[1:])}, the network takes {(h, w)}"
        x = normalize(img.float() / 255.0, norm).unsqueeze(0)
        with torch.no_grad():
            p = torch.softmax(net(x), dim=1)[0]
        k = int(p.argmax())
        print(json.dumps({"file": path, "class": names[k] if names else str(k),
                          "probs": [float(v) for v in p]}))


def export(desc_path, out_path, seed):
    text = open(desc_path).read()
    torch.manual_seed(seed)
    net = build(text)
    # Move batch-norm statistics away from their defaults so that they are exercised.
    net.train()
    desc = json.loads(text)
    with torch.no_grad():
        net(torch.rand((4,) + tuple(desc["input"])))
    save_file(net.state_dict(), out_path, {"format": "cnnlite", "format_version": "1", "description": text})


def main(argv):
    if len(argv) >= 3 and argv[1] == "predict":
        predict(argv[2], argv[3:])
        return 0
    if len(argv) in (4, 6) and argv[1] == "export":
        seed = int(argv[5]) if len(argv) == 6 and argv[4] == "--seed" else 0
        export(argv[2], argv[3], seed)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
