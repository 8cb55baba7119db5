#!/usr/bin/env python3
"""Golden cases for convolution forward, computed by PyTorch.

    .venv/bin/python scripts/gen_conv_fixtures.py   # writes tests/fixtures/conv_forward.json

Each case gives stride's own flag syntax (padding as "1,2", "0:1,1:0", "same", ...) and the
PyTorch result. Padding modes other than zeros and asymmetric padding go through F.pad first,
exactly as torch.nn.Conv{1,2,3}d does. Shapes are small so the file stays small.
"""
import json
import random
from pathlib import Path

import torch
import torch.nn.functional as F

random.seed(1234)
torch.manual_seed(1234)
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def tensor_json(t):
    return {"shape": list(t.shape), "data": [float(f"{v:.9g}") for v in t.detach().reshape(-1).tolist()]}


def randn(*shape):
    """Normal values rounded to multiples of 1/16: exact in f32 and short in JSON."""
    return torch.round(torch.randn(*shape) * 16) / 16


def case(nd, batched, n, groups, cin_g, cout_g, size, k, s, d, pad, mode, bias, flip=False):
    cin, cout = groups * cin_g, groups * cout_g
    x = randn(*( [n, cin] if batched else [cin] ), *size)
    w = randn(cout, cin_g, *k)
    b = randn(cout) if bias else None
    xb = x if batched else x.unsqueeze(0)
    wk = w.flip(list(range(2, 2 + nd))) if flip else w
    if pad in ("same", "valid") and mode == "zeros":
        y = CONV[nd](xb, wk, b, stride=s, padding=pad, dilation=d, groups=groups)
        pad_str = pad
    else:
        # explicit (begin, end) per axis; F.pad takes the last axis first
        pairs = pad
        flat = [v for (bgn, end) in reversed(pairs) for v in (bgn, end)]
        mode_t = MODE[mode]
        xp = F.pad(xb, flat, mode=mode_t) if mode_t != "constant" else F.pad(xb, flat)
        y = CONV[nd](xp, wk, b, stride=s, padding=0, dilation=d, groups=groups)
        pad_str = ",".join(f"{bgn}:{end}" for bgn, end in pairs)
    if not batched:
        y = y.squeeze(0)
    return {
        "stride": ",".join(map(str, s)),
        "padding": pad_str,
        "dilation": ",".join(map(str, d)),
        "groups": groups,
        "padding_mode": mode,
        "flip": flip,
        "x": tensor_json(x),
        "w": tensor_json(w),
        "b": tensor_json(b) if b is not None else None,
        "y": tensor_json(y),
    }


def main():
    cases = []
    # Hand-picked: each parameter on its own, then combinations.
    cases.append(case(2, True, 1, 1, 1, 1, [5, 5], [3, 3], [1, 1], [1, 1], [(0, 0), (0, 0)], "zeros", False))
    cases.append(case(2, True, 2, 1, 3, 4, [7, 6], [3, 2], [2, 1], [1, 1], [(1, 1), (0, 0)], "zeros", True))
    cases.append(case(2, True, 1, 1, 2, 2, [8, 8], [3, 3], [1, 1], [2, 2], [(2, 2), (2, 2)], "zeros", True))
    cases.append(case(2, True, 2, 4, 1, 1, [6, 6], [3, 3], [1, 1], [1, 1], [(1, 1), (1, 1)], "zeros", True))  # depthwise
    cases.append(case(2, True, 1, 2, 2, 3, [6, 7], [3, 3], [1, 1], [1, 1], "same", "zeros", True))
    cases.append(case(2, False, 1, 1, 2, 2, [6, 7], [2, 4], [1, 1], [1, 1], "same", "zeros", False))
    cases.append(case(1, True, 2, 1, 3, 2, [11], [4], [3], [1], [(0, 2)], "zeros", True))
    cases.append(case(1, False, 1, 1, 2, 2, [9], [3], [1], [2], "valid", "zeros", False))
    cases.append(case(3, True, 1, 1, 2, 2, [4, 5, 5], [2, 3, 3], [1, 2, 1], [1, 1, 1], [(1, 0), (1, 1), (0, 1)], "zeros", True))
    cases.append(case(3, False, 1, 2, 1, 1, [5, 4, 4], [3, 2, 2], [1, 1, 1], [1, 1, 1], [(1, 1), (0, 0), (1, 1)], "zeros", False))
    for mode in ("reflect", "replicate", "circular"):
        cases.append(case(2, True, 2, 1, 2, 3, [5, 6], [3, 3], [1, 2], [1, 1], [(1, 1), (2, 2)], mode, True))
        cases.append(case(1, True, 1, 1, 1, 2, [7], [3], [1], [2], [(2, 2)], mode, False))
        cases.append(case(3, True, 1, 1, 1, 1, [3, 4, 4], [2, 3, 3], [1, 1, 1], [1, 1, 1], [(1, 1), (1, 1), (2, 1)], mode, True))
    cases.append(case(2, True, 1, 1, 1, 1, [5, 5], [3, 3], [1, 1], [1, 1], [(0, 0), (0, 0)], "zeros", False, flip=True))
    # Random sweep.
    for _ in range(30):
        nd = random.choice([1, 2, 2, 3])
        groups = random.choice([1, 1, 2, 3])
        k = [random.randint(1, 3) for _ in range(nd)]
        d = [random.randint(1, 2) for _ in range(nd)]
        s = [random.randint(1, 3) for _ in range(nd)]
        size = [d[a] * (k[a] - 1) + 1 + random.randint(0, 4) for a in range(nd)]
        mode = random.choice(["zeros", "zeros", "reflect", "replicate", "circular"])
        limit = lambda a: size[a] - 1 if mode == "reflect" else size[a]
        pad = [(min(random.randint(0, 2), limit(a)), min(random.randint(0, 2), limit(a))) for a in range(nd)]
        if mode == "zeros" and random.random() < 0.3:
            pad = "same" if all(v == 1 for v in s) else "valid"
        cases.append(case(nd, random.random() < 0.8, random.randint(1, 2), groups, random.randint(1, 2),
                          random.randint(1, 2), size, k, s, d, pad, mode, random.random() < 0.5))
    out = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "conv_forward.json"
    out.write_text(json.dumps({"generator": "scripts/gen_conv_fixtures.py", "torch": torch.__version__,
                               "cases": cases}))
    print(f"wrote {out} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
