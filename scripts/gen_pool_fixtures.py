#!/usr/bin/env python3
"""Golden values for `stride pool` from PyTorch: forward (y, indices) and backward (gx for a given
gy) of every pooling PyTorch has, in 1-D, 2-D and 3-D. Writes tests/fixtures/pool.json.

Run: /path/to/.venv/bin/python scripts/gen_pool_fixtures.py   (torch + numpy)

Inputs are distinct multiples of 1/8 (no ties, so argmax indices are unambiguous); LP inputs are
positive. Global pooling is recorded as adaptive pooling with output size 1. Fractional max
pooling passes `_random_samples` explicitly and records them. Max-unpool cases record the pooled
values and indices as input.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.manual_seed(4)
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "pool.json")


def enc(t):
    t = t.detach().contiguous()
    if t.dtype in (torch.int64, torch.int32):
        data = [int(v) for v in t.flatten().tolist()]
    else:
        # shortest repr that round-trips through f32
        data = [float(str(np.float32(v))) for v in t.to(torch.float32).flatten().tolist()]
    return {"shape": list(t.shape), "data": data}


def distinct(shape, positive=False):
    n = int(np.prod(shape))
    v = torch.randperm(n).to(torch.float32)
    v = (v + 1) / 8 if positive else (v - n / 2) / 8
    return v.reshape(shape)


def grad_out(shape):
    return torch.randint(-8, 9, shape).to(torch.float32) / 4


CASES = []


def case(name, kind, params, x, fwd, samples=None):
    """Runs `fwd(x) -> y or (y, idx)`, then backward with a random gy; records everything."""
    x = x.clone().requires_grad_(True)
    r = fwd(x)
    y, idx = (r if isinstance(r, tuple) else (r, None))
    gy = grad_out(y.shape)
    (gx,) = torch.autograd.grad(y, x, gy)
    c = {"name": name, "kind": kind, "params": params, "x": enc(x), "y": enc(y), "gy": enc(gy), "gx": enc(gx)}
    if idx is not None:
        c["indices"] = enc(idx)
    if samples is not None:
        c["params"]["samples"] = enc(samples)
    CASES.append(c)


MAXF = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
AVGF = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
LPF = {1: F.lp_pool1d, 2: F.lp_pool2d, 3: F.lp_pool3d}
AMAXF = {1: F.adaptive_max_pool1d, 2: F.adaptive_max_pool2d, 3: F.adaptive_max_pool3d}
AAVGF = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}
UNPOOLF = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}

# ---- max pooling: padding, dilation, ceil mode, indices ----------------------------------------
for name, shape, k, s, p, d, ceil in [
    ("max1d_k3_s2_p1", (2, 3, 11), [3], [2], [1], [1], False),
    ("max1d_k2_ceil", (1, 2, 9), [2], [2], [0], [1], True),
    ("max1d_dil2_ceil", (2, 2, 12), [3], [2], [1], [2], True),
    ("max2d_k2_default_stride", (2, 3, 6, 7), [2, 2], [], [0, 0], [1, 1], False),
    ("max2d_k3_s2_p1_ceil", (1, 2, 7, 8), [3, 3], [2, 2], [1, 1], [1, 1], True),
    ("max2d_k3_s2_p1_dil2", (1, 2, 9, 8), [3, 3], [2, 2], [1, 1], [2, 2], False),
    ("max2d_rect_k2x3_s1x2_p1x0", (1, 2, 6, 9), [2, 3], [1, 2], [1, 0], [1, 1], True),
    ("max2d_unbatched", (3, 5, 6), [2, 2], [2, 2], [0, 0], [1, 1], True),
    ("max3d_k2_s1_p1", (1, 2, 4, 5, 4), [2, 2, 2], [1, 1, 1], [1, 1, 1], [1, 1, 1], False),
    ("max3d_k3_s2_dil_ceil", (1, 1, 7, 6, 8), [3, 2, 3], [2, 2, 2], [1, 1, 1], [1, 2, 1], True),
]:
    nd = len(k)
    st = s if s else None
    params = {"kernel": k, "stride": s, "padding": p, "dilation": d, "ceil_mode": ceil}
    case(name, "max", params, distinct(shape),
         lambda x: MAXF[nd](x, k, st, p, d, ceil_mode=ceil, return_indices=True))

# ---- average pooling: count_include_pad, ceil mode, divisor_override --------------------------
for name, shape, k, s, p, ceil, cip, div in [
    ("avg1d_k3_s2_p1_ceil_excl", (2, 2, 10), [3], [2], [1], True, False, None),
    ("avg1d_k4_s3_p2_ceil_incl", (1, 2, 11), [4], [3], [2], True, True, None),
    ("avg2d_k2_default", (2, 3, 6, 6), [2, 2], [], [0, 0], False, True, None),
    ("avg2d_k3_s2_p1_ceil_incl", (1, 2, 7, 8), [3, 3], [2, 2], [1, 1], True, True, None),
    ("avg2d_k3_s2_p1_ceil_excl", (1, 2, 7, 8), [3, 3], [2, 2], [1, 1], True, False, None),
    ("avg2d_divisor_override", (1, 2, 6, 7), [3, 2], [2, 1], [1, 1], False, True, 5),
    ("avg2d_unbatched_excl", (2, 5, 5), [3, 3], [2, 2], [1, 1], False, False, None),
    ("avg3d_k2_s2_p1_excl", (1, 2, 5, 4, 5), [2, 2, 2], [2, 2, 2], [1, 1, 1], False, False, None),
    ("avg3d_k3_s2_ceil_incl", (1, 1, 6, 7, 5), [3, 3, 3], [2, 2, 2], [1, 1, 0], True, True, None),
]:
    nd = len(k)
    st = s if s else None
    params = {"kernel": k, "stride": s, "padding": p, "ceil_mode": ceil, "count_include_pad": cip,
              "divisor_override": div}
    if nd == 1:
        fwd = lambda x: F.avg_pool1d(x, k, st, p, ceil, cip)  # avg_pool1d has no divisor_override
    else:
        fwd = lambda x: AVGF[nd](x, k, st, p, ceil, cip, div)
    case(name, "avg", params, distinct(shape), fwd)

# ---- LP pooling ------------------------------------------------------------------------------
for name, shape, pnorm, k, s, ceil in [
    ("lp1d_p2_k3_s2", (2, 2, 9), 2.0, [3], [2], False),
    ("lp1d_p1_sum_k2", (1, 3, 8), 1.0, [2], [], False),
    ("lp2d_p3_k2_ceil", (1, 2, 7, 7), 3.0, [2, 2], [2, 2], True),
    ("lp2d_p1_5_k3_s1", (1, 2, 5, 6), 1.5, [3, 3], [1, 1], False),
    ("lp3d_p2_k2", (1, 2, 4, 4, 5), 2.0, [2, 2, 2], [2, 2, 1], False),
]:
    nd = len(k)
    st = s if s else None
    params = {"kernel": k, "stride": s, "norm_type": pnorm, "ceil_mode": ceil}
    case(name, "lp", params, distinct(shape, positive=True),
         lambda x: LPF[nd](x, pnorm, k[0] if nd == 1 else k, (st[0] if st else None) if nd == 1 else st, ceil))

# ---- adaptive and global pooling ----------------------------------------------------------------
for name, shape, out in [
    ("adaptive1d_10_to_4", (2, 2, 10), [4]),
    ("adaptive1d_5_to_7", (1, 2, 5), [7]),
    ("adaptive2d_7x9_to_3x4", (2, 2, 7, 9), [3, 4]),
    ("adaptive2d_5x5_to_7x3", (1, 2, 5, 5), [7, 3]),
    ("adaptive2d_unbatched", (3, 6, 5), [4, 2]),
    ("adaptive3d_5x6x7_to_2x3x4", (1, 2, 5, 6, 7), [2, 3, 4]),
]:
    nd = len(out)
    case(name + "_max", "adaptive-max", {"output_size": out}, distinct(shape),
         lambda x: AMAXF[nd](x, out, return_indices=True))
    case(name + "_avg", "adaptive-avg", {"output_size": out}, distinct(shape),
         lambda x: AAVGF[nd](x, out))
for name, shape in [("global1d", (2, 3, 7)), ("global2d", (2, 2, 5, 6)), ("global3d", (1, 2, 3, 4, 5))]:
    nd = len(shape) - 2
    case(name + "_max", "global-max", {}, distinct(shape),
         lambda x: AMAXF[nd](x, 1, return_indices=True))
    case(name + "_avg", "global-avg", {}, distinct(shape), lambda x: AAVGF[nd](x, 1))

# ---- fractional max pooling with fixed samples -----------------------------------------------
for name, shape, k, out in [
    ("fractional2d_k2", (2, 2, 9, 11), [2, 2], [4, 5]),
    ("fractional2d_k3_rect", (1, 3, 10, 8), [3, 2], [5, 3]),
    ("fractional3d_k2", (1, 2, 7, 8, 9), [2, 2, 2], [3, 4, 5]),
]:
    nd = len(k)
    lead = shape[:2]
    samples = torch.rand(lead[0], lead[1], nd)
    f = F.fractional_max_pool2d if nd == 2 else F.fractional_max_pool3d
    case(name, "fractional-max", {"kernel": k, "output_size": out}, distinct(shape),
         lambda x: f(x, k, output_size=out, return_indices=True, _random_samples=samples),
         samples=samples)

# ---- max-unpooling: the inverse of max pooling -----------------------------------------------
for name, shape, k, s, p, out in [
    ("unpool1d_k2", (2, 2, 9), [2], [2], [0], None),
    ("unpool1d_k3_s2_p1_outsize", (1, 2, 10), [3], [2], [1], [10]),
    ("unpool2d_k2", (1, 2, 6, 7), [2, 2], [2, 2], [0, 0], [6, 7]),
    ("unpool2d_k3_s2_p1", (1, 2, 7, 7), [3, 3], [2, 2], [1, 1], None),
    ("unpool3d_k2", (1, 2, 4, 5, 4), [2, 2, 2], [2, 2, 2], [0, 0, 0], [4, 5, 4]),
]:
    nd = len(k)
    pooled, idx = MAXF[nd](distinct(shape), k, s, p, return_indices=True)
    params = {"kernel": k, "stride": s, "padding": p, "output_size": out or [], "input_indices": enc(idx)}
    case(name, "max-unpool", params, pooled,
         lambda x: UNPOOLF[nd](x, idx, k, s, p, output_size=out))

with open(OUT, "w") as fh:
    json.dump({"torch": torch.__version__, "cases": CASES}, fh, separators=(",", ":"))
print(f"wrote {len(CASES)} cases to {OUT} ({os.path.getsize(OUT)} bytes)")
