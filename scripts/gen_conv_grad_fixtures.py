#!/usr/bin/env python3
"""Golden values for convolution gradients and transposed convolution, from PyTorch.

Writes tests/fixtures/conv_grad.json: {"conv": [...], "conv_transpose": [...]}. Each case has
"params" (strings in the CLI's syntax, e.g. padding "1", "0:1,1:0", "same", "valid", "full"),
the inputs (x, w, optional b, gy) and PyTorch's results (y, gx, gw, gb), each as
{"shape": [...], "data": [...]} (row-major). Values are rounded to 6 decimals before use, so the
Rust test reads exactly the numbers PyTorch saw.

Padding modes go through torch.nn.Conv{1,2,3}d(padding_mode=...) for symmetric padding and
F.pad(mode=...) + a valid convolution for asymmetric (begin:end) padding; `same` with stride > 1
pads like TF / ONNX SAME_UPPER (the odd pixel at the end); `full` pads d*(k-1) on both sides;
flip convolves with the kernel flipped on every spatial axis (gradient w.r.t. the unflipped one).

Run: /work/main/.venv/bin/python scripts/gen_conv_grad_fixtures.py
"""
import json
import math
import os
import random

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
R = random.Random(3)
G = torch.Generator().manual_seed(3)


def rnd(shape):
    return torch.round(torch.randn(*shape, generator=G) * 1e6) / 1e6


def enc(t):
    t = t.detach().to(torch.float64)
    return {"shape": list(t.shape), "data": [round(float(v), 6) for v in t.flatten()]}


CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONVT = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MODULE = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}


def resolve(kind, pads, i, k, s, d):
    """(begin, end) per axis, as stride's geometry resolves it."""
    out = []
    for a in range(len(i)):
        span = d[a] * (k[a] - 1) + 1
        if kind == "valid":
            out.append((0, 0))
        elif kind == "full":
            out.append((span - 1, span - 1))
        elif kind == "same":
            o = math.ceil(i[a] / s[a])
            tot = max((o - 1) * s[a] + span - i[a], 0)
            out.append((tot // 2, tot - tot // 2))
        else:
            out.append(pads[a])
    return out


def conv_case(nd, batched, cin, cout, groups, k, s, d, pad_kind, pads, mode, flip, bias):
    i = [max(d[a] * (k[a] - 1) + 1 + R.randrange(0, 4 if nd < 3 else 2), 2) for a in range(nd)]
    if mode == "reflect":
        i = [max(v, 3) for v in i]
    n = 2 if batched and nd < 3 else 1
    x = rnd([n, cin] + i).requires_grad_()
    w = rnd([cout, cin // groups] + k).requires_grad_()
    b = rnd([cout]).requires_grad_() if bias else None
    rp = resolve(pad_kind, pads, i, k, s, d)
    wu = torch.flip(w, list(range(2, 2 + nd))) if flip else w
    symmetric = all(p0 == p1 for p0, p1 in rp)
    if mode != "zeros" and symmetric:
        m = MODULE[nd](cin, cout, k, stride=s, padding=[p for p, _ in rp], dilation=d,
                       groups=groups, bias=bias, padding_mode=mode)
        with torch.no_grad():
            m.weight.copy_(wu)
            if bias:
                m.bias.copy_(b)
        y = m(x)
        y_w = lambda gy: torch.autograd.grad(y, [x, m.weight] + ([m.bias] if bias else []), gy)
        gy = rnd(list(y.shape))
        grads = y_w(gy)
        gx, gwu = grads[0], grads[1]
        gw = torch.flip(gwu, list(range(2, 2 + nd))) if flip else gwu
        gb = grads[2] if bias else None
    else:
        flat = []
        for p0, p1 in reversed(rp):
            flat += [p0, p1]
        xp = F.pad(x, flat, mode="constant" if mode == "zeros" else mode)
        y = CONV[nd](xp, wu, b, stride=s, dilation=d, groups=groups)
        gy = rnd(list(y.shape))
        grads = torch.autograd.grad(y, [x, w] + ([b] if bias else []), gy)
        gx, gw = grads[0], grads[1]
        gb = grads[2] if bias else None
    if pad_kind == "explicit":
        pad_s = ",".join(f"{p0}:{p1}" if p0 != p1 else f"{p0}" for p0, p1 in pads)
    else:
        pad_s = pad_kind
    sq = (lambda t: t) if batched else (lambda t: t[0])
    case = {
        "params": {"stride": ",".join(map(str, s)), "padding": pad_s,
                   "dilation": ",".join(map(str, d)), "groups": groups,
                   "padding_mode": mode, "flip": flip},
        "x": enc(sq(x)), "w": enc(w), "gy": enc(sq(gy)),
        "y": enc(sq(y)), "gx": enc(sq(gx)), "gw": enc(gw),
    }
    if bias:
        case["b"], case["gb"] = enc(b), enc(gb)
    return case


def convt_case(nd, batched, cin, cout, groups, k, s, d, p, op, bias):
    i = [1 + R.randrange(1, 4 if nd < 3 else 2) for _ in range(nd)]
    n = 2 if batched and nd < 3 else 1
    # keep the output non-empty: (i-1)*s - 2p + d*(k-1) + op + 1 >= 1
    p = [min(p[a], ((i[a] - 1) * s[a] + d[a] * (k[a] - 1) + op[a]) // 2) for a in range(nd)]
    x = rnd([n, cin] + i).requires_grad_()
    w = rnd([cin, cout // groups] + k).requires_grad_()
    b = rnd([cout]).requires_grad_() if bias else None
    y = CONVT[nd](x, w, b, stride=s, padding=p, output_padding=op, groups=groups, dilation=d)
    gy = rnd(list(y.shape))
    grads = torch.autograd.grad(y, [x, w] + ([b] if bias else []), gy)
    sq = (lambda t: t) if batched else (lambda t: t[0])
    case = {
        "params": {"stride": ",".join(map(str, s)), "padding": ",".join(map(str, p)),
                   "output_padding": ",".join(map(str, op)),
                   "dilation": ",".join(map(str, d)), "groups": groups},
        "x": enc(sq(x)), "w": enc(w), "gy": enc(sq(gy)),
        "y": enc(sq(y)), "gx": enc(sq(grads[0])), "gw": enc(grads[1]),
    }
    if bias:
        case["b"], case["gb"] = enc(b), enc(grads[2])
    return case


def main():
    conv = []
    modes = ["zeros", "reflect", "replicate", "circular"]
    kinds = ["explicit", "explicit", "valid", "same", "full"]
    for c in range(48):
        nd = [1, 2, 2, 3][c % 4]
        mode = modes[(c // 4) % 4] if c < 32 else modes[R.randrange(4)]
        kind = kinds[c % 5]
        if mode != "zeros" and kind in ("same", "full"):
            kind = "explicit"
        groups = [1, 1, 2, 3][R.randrange(4)]
        depthwise = c % 7 == 0
        cin = groups * (1 + R.randrange(2))
        cout = cin if depthwise else groups * (1 + R.randrange(2))
        if depthwise:
            groups = cin
        k = [1 + R.randrange(3) for _ in range(nd)]
        s = [1 + R.randrange(2) for _ in range(nd)]
        d = [1 + R.randrange(2) for _ in range(nd)]
        maxp = 1 if mode == "reflect" else 2
        asym = c % 3 == 0
        pads = [(R.randrange(maxp + 1), R.randrange(maxp + 1)) if asym else (p, p)
                for p in [R.randrange(maxp + 1) for _ in range(nd)]]
        conv.append(conv_case(nd, c % 5 != 4, cin, cout, groups, k, s, d, kind, pads, mode,
                              c % 6 == 5, c % 2 == 0))
    convt = []
    for c in range(24):
        nd = [1, 2, 2, 3][c % 4]
        groups = [1, 1, 2][R.randrange(3)]
        cin = groups * (1 + R.randrange(2))
        cout = groups * (1 + R.randrange(2))
        k = [1 + R.randrange(3) for _ in range(nd)]
        s = [1 + R.randrange(3 if nd < 3 else 2) for _ in range(nd)]
        d = [1 + R.randrange(2) for _ in range(nd)]
        p = [R.randrange(2) for _ in range(nd)]
        op = [R.randrange(max(s[a], d[a])) for a in range(nd)]
        convt.append(convt_case(nd, c % 5 != 4, cin, cout, groups, k, s, d, p, op, c % 2 == 0))
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "tests", "fixtures", "conv_grad.json")
    with open(path, "w") as f:
        json.dump({"torch": torch.__version__, "conv": conv, "conv_transpose": convt}, f,
                  separators=(",", ":"))
    print(f"wrote {path}: {len(conv)} conv and {len(convt)} conv_transpose cases, "
          f"{os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
