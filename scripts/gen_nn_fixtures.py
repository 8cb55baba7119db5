#!/usr/bin/env python3
"""Golden values from PyTorch for the nn/optim tests: tests/fixtures/nn.json.

  /work/main/.venv/bin/python scripts/gen_nn_fixtures.py

Cases: SGD (momentum, dampening, nesterov, weight decay) and Adam (with and without weight
decay) over a few steps with given gradients; BatchNorm1d/2d train forward (output, running
stats) and backward, and eval forward; cross-entropy value and gradient.
"""
import json
from pathlib import Path

import torch

torch.manual_seed(0)
OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "nn.json"


def t(x):
    x = x.detach().to(torch.float32)
    return {"shape": list(x.shape), "data": [float(v) for v in x.flatten().tolist()]}


def optim_case(kind, steps=3, **kw):
    p0 = torch.randn(3, 4)
    grads = [torch.randn(3, 4) for _ in range(steps)]
    p = p0.clone().requires_grad_(True)
    opt = (torch.optim.SGD if kind == "sgd" else torch.optim.Adam)([p], **kw)
    after = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        after.append(t(p))
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in kw.items()}
    return {"kind": kind, "params": params, "p0": t(p0), "grads": [t(g) for g in grads], "after": after}


def bn_case(shape):
    c = shape[1]
    x = torch.randn(*shape) * 2 + 0.5
    bn = (torch.nn.BatchNorm1d if len(shape) <= 3 else torch.nn.BatchNorm2d)(c)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(c) + 0.5)
        bn.bias.copy_(torch.randn(c))
    gamma, beta = bn.weight.detach().clone(), bn.bias.detach().clone()
    xr = x.clone().requires_grad_(True)
    bn.train()
    y = bn(xr)
    gy = torch.randn(*shape)
    y.backward(gy)
    case = {"x": t(x), "gamma": t(gamma), "beta": t(beta), "y_train": t(y), "gy": t(gy),
            "gx": t(xr.grad), "ggamma": t(bn.weight.grad), "gbeta": t(bn.bias.grad),
            "running_mean": t(bn.running_mean), "running_var": t(bn.running_var)}
    bn.eval()
    case["y_eval"] = t(bn(x))
    return case


def ce_case(n, c):
    z = (torch.randn(n, c) * 3).requires_grad_(True)
    target = torch.randint(0, c, (n,))
    loss = torch.nn.functional.cross_entropy(z, target)
    loss.backward()
    return {"z": t(z), "target": target.tolist(), "loss": float(loss.detach()), "grad": t(z.grad)}


doc = {
    "optim": [
        optim_case("sgd", lr=0.1),
        optim_case("sgd", lr=0.1, momentum=0.9, weight_decay=0.01),
        optim_case("sgd", lr=0.05, momentum=0.9, dampening=0.1),
        optim_case("sgd", lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.001),
        optim_case("adam", steps=4, lr=1e-2),
        optim_case("adam", steps=4, lr=1e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    ],
    "batchnorm": [bn_case((6, 3)), bn_case((4, 3, 5)), bn_case((3, 2, 4, 4))],
    "cross_entropy": [ce_case(5, 4), ce_case(8, 10)],
}
OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps(doc))
print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
