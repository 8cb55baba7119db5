#!/usr/bin/env python3
"""Small ONNX models exported by PyTorch, with their logits, for tests/onnx_torch.rs.

  /work/venv/bin/python scripts/gen_onnx_fixtures.py

Writes tests/fixtures/onnx/NAME.onnx (torch.onnx.export, TorchScript exporter, opset 17, dynamic
batch) and NAME.json ({"input": {"shape", "data"}, "logits": {"shape", "data"}}, float32 values
from PyTorch in eval mode). Every export is also run in ONNX Runtime and must agree within 1e-5.

(The exporter folds a BatchNorm that follows a Conv into the Conv's weights, so the BatchNorm
layers here follow an activation to stay BatchNormalization nodes.)

Models: a LeNet-like ReLU net (Conv/Relu/MaxPool/Flatten/Gemm); a BatchNorm net with eps 1e-3,
strided/grouped/dilated convs, ceil-mode AveragePool without padding counted, sigmoid, tanh,
global average pooling and dropout; a hand-written module with x.view(x.size(0), -1) (Shape →
Gather → Unsqueeze → Concat → Reshape), ceil-mode dilated MaxPool, x @ W + b (MatMul + Add) and a
final softmax; a 1-D and a 3-D net; reflect and replicate padding (Pad + Conv). Refusal cases: a residual block (Add of two activations) and
an LSTM. Also a safetensors state_dict (weights.safetensors) of an nn.Sequential matching the
stride spec in weights.json, with its logits.
"""
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "onnx"
OUT.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)


def t(x):
    x = x.detach().to(torch.float32)
    return {"shape": list(x.shape), "data": [float(v) for v in x.flatten().tolist()]}


def randomize_bn(m):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c) * 0.3)
            mod.running_var.copy_(torch.rand(c) + 0.5)
            mod.weight.data.copy_(torch.rand(c) + 0.5)
            mod.bias.data.copy_(torch.randn(c) * 0.2)


class ViewNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=(1, 2))
        self.pool = nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True)
        self.w = nn.Parameter(torch.randn(3 * 4 * 6, 10) * 0.1)
        self.b = nn.Parameter(torch.randn(10) * 0.1)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))
        x = x.view(x.size(0), -1)
        return F.softmax(x @ self.w + self.b, dim=1)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(x + self.conv(x), 1))


class Recurrent(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(8, 4, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0][:, -1]


MODELS = {
    "lenet_relu": (
        nn.Sequential(
            nn.Conv2d(1, 4, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(4, 8, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(200, 16), nn.ReLU(), nn.Linear(16, 10),
        ),
        (1, 28, 28),
    ),
    "bn_net": (
        nn.Sequential(
            nn.Conv2d(1, 6, 3, stride=2, padding=1, bias=False), nn.Sigmoid(), nn.BatchNorm2d(6, eps=1e-3),
            nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
            nn.Conv2d(6, 8, 3, groups=2, dilation=2, padding=2), nn.Tanh(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(8, 10),
        ),
        (1, 16, 16),
    ),
    "view_matmul": (ViewNet(), (1, 9, 10)),
    "conv1d": (
        nn.Sequential(
            nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2),
            nn.Conv1d(4, 4, 3, stride=2), nn.ReLU(), nn.BatchNorm1d(4),
            nn.Flatten(), nn.Linear(16, 5),
        ),
        (2, 20),
    ),
    "conv3d": (
        nn.Sequential(
            nn.Conv3d(1, 2, 3), nn.ReLU(), nn.AvgPool3d(2), nn.Flatten(), nn.Linear(16, 4),
        ),
        (1, 6, 6, 6),
    ),
    "pad_modes": (
        nn.Sequential(
            nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
            nn.Conv2d(2, 2, 3, padding=(1, 2), padding_mode="replicate"), nn.ReLU(),
            nn.Flatten(), nn.Linear(2 * 7 * 9, 3),
        ),
        (1, 7, 7),
    ),
    "residual": (Residual(), (1, 8, 8)),
    "lstm": (Recurrent(), (5, 8)),
}

for name, (model, shape) in MODELS.items():
    randomize_bn(model)
    model.eval()
    x = torch.rand(3, *shape)
    with torch.no_grad():
        y = model(x)
    path = OUT / f"{name}.onnx"
    torch.onnx.export(
        model, (x,), str(path), dynamo=False, opset_version=17,
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
    )
    got = ort.InferenceSession(str(path)).run(None, {"input": x.numpy()})[0]
    err = float(np.abs(got - y.numpy()).max())
    assert err < 1e-5, (name, err)
    (OUT / f"{name}.json").write_text(json.dumps({"input": t(x), "logits": t(y)}))
    print(f"{name}: {path.stat().st_size} bytes, onnxruntime max |diff| {err:.2e}")

# PyTorch weights for a stride spec (state_dict names as nn.Sequential gives them)
spec = "input(1,8,8) conv(4,k=3,p=1) batchnorm relu maxpool(2) flatten linear(10)"
net = nn.Sequential(
    nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64, 10),
)
randomize_bn(net)
net.eval()
x = torch.rand(2, 1, 8, 8)
with torch.no_grad():
    y = net(x)
save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(OUT / "weights.safetensors"))
(OUT / "weights.json").write_text(json.dumps({"spec": spec, "input": t(x), "logits": t(y)}))
print("weights.safetensors:", sorted(net.state_dict()))
