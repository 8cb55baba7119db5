"""Golden values for `stride summary` (tests/summary.rs): per layer the output shape, the
parameter count, and PyTorch's own FLOP count (torch.utils.flop_counter, which counts
convolutions and matrix products only, 2 FLOPs per multiply-accumulate) for the forward pass
and the backward pass of each layer on its own, with no input gradient for the first layer.

Run: /work/main/.venv/bin/python scripts/gen_summary_fixtures.py > tests/fixtures/summary.json
"""
import json

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

torch.manual_seed(0)

# (name, stride spec, input (C, *spatial), the same network in PyTorch)
MODELS = [
    (
        "lenet5",
        "conv(6,k=5,p=2) sigmoid avgpool(2) conv(16,k=5) sigmoid avgpool(2) "
        "flatten linear(120) sigmoid linear(84) sigmoid linear(10)",
        [1, 28, 28],
        nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
            nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(),
            nn.Linear(84, 10),
        ),
    ),
    (
        # seed 002's "lenet_improved"
        "lenet-improved",
        "conv(6,k=5,p=2) relu avgpool(2) conv(16,k=5) relu avgpool(2) conv(32,k=4) relu "
        "avgpool(2) flatten linear(240) relu linear(120) relu linear(84) relu linear(10)",
        [1, 32, 32],
        nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.AvgPool2d(2, 2),
            nn.Conv2d(16, 32, 4), nn.ReLU(), nn.AvgPool2d(2, 2), nn.Flatten(),
            nn.Linear(32, 240), nn.ReLU(), nn.Linear(240, 120), nn.ReLU(),
            nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
        ),
    ),
    (
        "convnet",
        "conv(32,k=3,p=1) batchnorm relu maxpool(2) conv(64,k=3,p=1) batchnorm relu maxpool(2) "
        "flatten linear(128) batchnorm relu dropout(0.25) linear(10)",
        [1, 28, 28],
        nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.BatchNorm1d(128), nn.ReLU(),
            nn.Dropout(0.25), nn.Linear(128, 10),
        ),
    ),
    (
        "strided-dilated-grouped",
        "input(3,33,31) conv(8,k=3x5,s=2,p=1x2) relu conv(16,k=3,d=2,g=2,p=2,bias=false) "
        "maxpool(3,s=2,p=1) adaptiveavgpool(3x2) flatten linear(10)",
        [3, 33, 31],
        nn.Sequential(
            nn.Conv2d(3, 8, (3, 5), stride=2, padding=(1, 2)), nn.ReLU(),
            nn.Conv2d(8, 16, 3, dilation=2, groups=2, padding=2, bias=False),
            nn.MaxPool2d(3, stride=2, padding=1), nn.AdaptiveAvgPool2d((3, 2)), nn.Flatten(),
            nn.Linear(96, 10),
        ),
    ),
    (
        "conv1d",
        "input(2,50) conv1d(4,k=5,s=2) tanh avgpool1d(2) flatten linear(3)",
        [2, 50],
        nn.Sequential(
            nn.Conv1d(2, 4, 5, stride=2), nn.Tanh(), nn.AvgPool1d(2), nn.Flatten(),
            nn.Linear(44, 3),
        ),
    ),
    (
        "conv3d",
        "input(1,6,9,8) conv3d(2,k=3,p=1,s=1x2x2) relu maxpool3d(2) globalavgpool flatten linear(4)",
        [1, 6, 9, 8],
        nn.Sequential(
            nn.Conv3d(1, 2, 3, padding=1, stride=(1, 2, 2)), nn.ReLU(), nn.MaxPool3d(2),
            nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(2, 4),
        ),
    ),
]

BATCH = 2


def flops(fn):
    with FlopCounterMode(display=False) as f:
        fn()
    return f.get_total_flops()


def main():
    out = []
    for name, spec, shape, net in MODELS:
        net.train()
        x = torch.randn(BATCH, *shape)
        layers = []
        for i, layer in enumerate(net):
            xi = x.detach().requires_grad_(i > 0)
            fwd = flops(lambda: layer(xi))
            y = layer(xi)
            gy = torch.randn_like(y)
            bwd = flops(lambda: y.backward(gy))
            layers.append({
                "out_shape": list(y.shape[1:]),
                "params": sum(p.numel() for p in layer.parameters()),
                # per image; PyTorch counts only convolutions and matrix products
                "flops_forward": fwd // BATCH,
                "flops_backward": bwd // BATCH,
            })
            x = y.detach()
        out.append({
            "name": name,
            "spec": spec,
            "input": shape,
            "params": sum(p.numel() for p in net.parameters()),
            "layers": layers,
        })
    print(json.dumps({"batch": BATCH, "models": out}, indent=1))


if __name__ == "__main__":
    main()
