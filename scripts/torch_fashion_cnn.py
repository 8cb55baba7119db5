#!/usr/bin/env python3
"""Train a small CNN in PyTorch on Fashion-MNIST, print its test accuracy and export it to ONNX,
so that `stride eval OUT.onnx` can be compared with PyTorch's accuracy.

  /work/venv/bin/python scripts/torch_fashion_cnn.py fashion_cnn.onnx [--epochs 1]
  target/release/stride eval fashion_cnn.onnx

The network uses what PyTorch users write: Conv2d + BatchNorm2d (folded into the Conv by the
exporter), ReLU, MaxPool2d, a BatchNorm1d after a ReLU, Dropout, x.view(x.size(0), -1) and
Linear layers. Pixels are fed as stride feeds them: float32 in [0, 1], shape (N, 1, 28, 28).
"""
import argparse
import gzip
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 16, 3, padding=1)
        self.b1 = nn.BatchNorm2d(16)
        self.c2 = nn.Conv2d(16, 32, 3, padding=1)
        self.b2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.bn = nn.BatchNorm1d(128)
        self.drop = nn.Dropout(0.25)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.b1(self.c1(x))), 2)
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        x = x.view(x.size(0), -1)
        return self.fc2(self.drop(self.bn(F.relu(self.fc1(x)))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    d = Path(a.data)
    load = lambda s: torch.tensor(idx(d / s).copy())
    xtr = load("train-images-idx3-ubyte.gz").float().unsqueeze(1) / 255
    ytr = load("train-labels-idx1-ubyte.gz").long()
    xte = load("t10k-images-idx3-ubyte.gz").float().unsqueeze(1) / 255
    yte = load("t10k-labels-idx1-ubyte.gz").long()
    torch.manual_seed(0)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for epoch in range(a.epochs):
        net.train()
        perm = torch.randperm(len(xtr))
        for i in range(0, len(xtr), 128):
            b = perm[i: i + 128]
            opt.zero_grad()
            F.cross_entropy(net(xtr[b]), ytr[b]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    print(f"PyTorch test accuracy {acc:.4f} ({len(yte)} images) after {a.epochs} epoch(s)")
    torch.onnx.export(net, (xte[:2],), a.out, dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
