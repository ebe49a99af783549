#!/usr/bin/python3
"""PyTorch counterpart of cnnlite-bench: the report's network, same shapes, same JSON keys.

Training steps are forward, cross-entropy, backward and an Adam step; inference is a forward
pass in eval mode under no_grad. One warm-up step of each comes first.
Run with Debian's python3-torch: /usr/bin/python3 bench/torch_bench.py --threads 2 --json
"""
import argparse
import json
import resource
import sys
import time

import torch
import torch.nn as nn


class ReportNet(nn.Module):
    def __init__(self, size, batchnorm, dropout=0.2, classes=4):
        super().__init__()
        layers = [nn.AvgPool2d(2)]
        c = 3
        for w in (16, 32, 64, 128):
            layers.append(nn.Conv2d(c, w, 3, padding=1))
            if batchnorm:
                layers.append(nn.BatchNorm2d(w))
            layers += [nn.ReLU(), nn.MaxPool2d(2, 2)]
            c = w
        self.features = nn.Sequential(*layers)
        self.flatten = nn.Flatten()
        side = size // 32
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(128 * side * side, 128), nn.ReLU(),
                                        nn.Dropout(dropout), nn.Linear(128, classes))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def timed(step, steps, batch):
    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batchnorm", action="store_true")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    if a.size % 32:
        p.error("--size must be a multiple of 32")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = ReportNet(a.size, a.batchnorm)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.rand(a.batch, 3, a.size, a.size)
    y = torch.randint(0, 4, (a.batch,))

    def train_step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    def infer_step():
        with torch.no_grad():
            model(x)

    model.train()
    train = timed(train_step, a.steps, a.batch)
    model.eval()
    infer = timed(infer_step, a.steps, a.batch)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {a.batch}, {a.size}x{a.size}, "
          f"{'batch norm' if a.batchnorm else 'no batch norm'}, {a.steps} steps after 1 warm-up")
    print(f"train: {train:.1f} img/s\ninfer: {infer:.1f} img/s\npeak RSS: {rss:.0f} MB")
    if a.json:
        print(json.dumps({"train_img_s": round(train, 2), "infer_img_s": round(infer, 2),
                          "peak_rss_mb": round(rss, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
