#!/usr/bin/env python3
"""Randomized check of the `stride pool` CLI against PyTorch, through the contract flags:
forward (--output), argmax indices (--indices) and input gradient (--grad-output/--grad-input)
of max, avg, lp, adaptive, global, fractional max (with --samples) and max-unpool, in 1-D, 2-D
and 3-D, batched and unbatched. Not part of `cargo test` (it needs PyTorch).

Run: cargo build && .venv/bin/python scripts/check_pool_cli.py [SEED] [CASES] [BINARY]
"""
import random
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

B = sys.argv[3] if len(sys.argv) > 3 else "target/debug/stride"
D = tempfile.mkdtemp()
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
torch.manual_seed(0)
fails = 0; n = 0
def run(args):
    r = subprocess.run([B, "pool"] + args, capture_output=True, text=True)
    return r
def cmp(name, args, ref, gref=None, iref=None):
    global fails, n
    n += 1
    r = run(args)
    if r.returncode != 0:
        print("FAIL rc", name, args, r.stderr.strip()); fails += 1; return
    y = np.load(f"{D}/y.npy")
    if y.shape != tuple(ref.shape) or not np.allclose(y, ref.detach().numpy(), rtol=1e-5, atol=1e-5, equal_nan=True):
        print("FAIL y", name, args, y.shape, tuple(ref.shape)); fails += 1; return
    if gref is not None:
        gx = np.load(f"{D}/gx.npy")
        if not np.allclose(gx, gref.numpy(), rtol=1e-4, atol=1e-5):
            print("FAIL gx", name, args, np.abs(gx - gref.numpy()).max()); fails += 1
    if iref is not None:
        i = np.load(f"{D}/i.npy")
        if not np.array_equal(i, iref.numpy().astype(np.float32)):
            print("FAIL idx", name, args); fails += 1
def lst(v): return ",".join(map(str, v))
for it in range(int(sys.argv[2]) if len(sys.argv) > 2 else 60):
    nd = rng.choice([1, 2, 3]); batched = rng.random() < 0.7
    sp = [rng.randint(3, 9) for _ in range(nd)]
    lead = [rng.randint(1, 2), rng.randint(1, 3)] if batched else [rng.randint(1, 3)]
    x = torch.randn(lead + sp)
    np.save(f"{D}/x.npy", x.numpy())
    kind = rng.choice(["max", "avg", "lp", "adaptive-max", "adaptive-avg", "global-max", "global-avg", "fractional-max", "unpool"])
    xb = x if batched else x.unsqueeze(0)
    k = [rng.randint(1, min(3, s)) for s in sp]
    s = [rng.randint(1, 3) for _ in range(nd)]
    p = [rng.randint(0, kk // 2) for kk in k]
    d = [rng.randint(1, 2) for _ in range(nd)]
    ceil = rng.random() < 0.4
    common = ["--input", f"{D}/x.npy", "--output", f"{D}/y.npy"]
    # per-axis lists always given when batched=False so nd is explicit; else sometimes scalar when all equal
    def L(v):
        if batched and len(set(v)) == 1 and rng.random() < 0.5: return str(v[0])
        return lst(v)
    def need_list(v):  # for unbatched, force a list length nd (scalar would be read as rank-2)
        return lst(v) if not batched else L(v)
    xr = x.clone().requires_grad_(True); xrb = xr if batched else xr.unsqueeze(0)
    try:
        if kind == "max":
            # effective span must fit
            if any(dd * (kk - 1) + 1 > ss + 2 * pp for dd, kk, ss, pp in zip(d, k, sp, p)): continue
            y, idx = [F.max_pool1d, F.max_pool2d, F.max_pool3d][nd - 1](xrb, k, s, p, d, ceil_mode=ceil, return_indices=True)
            args = ["max", "--kernel", need_list(k), "--stride", need_list(s), "--padding", need_list(p), "--dilation", need_list(d)] + (["--ceil-mode"] if ceil else []) + ["--indices", f"{D}/i.npy"]
        elif kind == "avg":
            cip = rng.random() < 0.5
            if nd == 1:
                y = F.avg_pool1d(xrb, k, s, p, ceil, cip); div = None
            else:
                div = rng.choice([None, None, 3])
                y = [None, F.avg_pool2d, F.avg_pool3d][nd - 1](xrb, k, s, p, ceil, cip, div)
            args = ["avg", "--kernel", need_list(k), "--stride", need_list(s), "--padding", need_list(p), "--count-include-pad", "true" if cip else "false"] + (["--ceil-mode"] if ceil else []) + (["--divisor-override", str(div)] if div else [])
            idx = None
        elif kind == "lp":
            xr = (x.abs() + 0.1).clone().requires_grad_(True); xrb = xr if batched else xr.unsqueeze(0)
            np.save(f"{D}/x.npy", xr.detach().numpy())
            pn = rng.choice([1.0, 2.0, 3.0, 1.5])
            if nd == 1:
                y = F.lp_pool1d(xrb, pn, k[0], s[0], ceil)
            else:
                y = [None, F.lp_pool2d, F.lp_pool3d][nd - 1](xrb, pn, k, s, ceil)
            args = ["lp", "--norm-type", str(pn), "--kernel", need_list(k), "--stride", need_list(s)] + (["--ceil-mode"] if ceil else [])
            idx = None
        elif kind.startswith("adaptive"):
            o = [rng.randint(1, 8) for _ in range(nd)]
            if kind == "adaptive-max":
                y, idx = [F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d][nd - 1](xrb, o, return_indices=True)
                args = ["adaptive-max", "--output-size", need_list(o), "--indices", f"{D}/i.npy"]
            else:
                y = [F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d][nd - 1](xrb, o); idx = None
                args = ["adaptive-avg", "--output-size", need_list(o)]
        elif kind.startswith("global"):
            if not batched: continue  # no per-axis list to say nd; rank-2 rule applies
            if kind == "global-max":
                y, idx = [F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d][nd - 1](xrb, 1, return_indices=True)
                args = ["global-max", "--indices", f"{D}/i.npy"]
            else:
                y = [F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d][nd - 1](xrb, 1); idx = None
                args = ["global-avg"]
        elif kind == "fractional-max":
            if nd == 1: continue
            o = [rng.randint(1, ss - kk + 1) for ss, kk in zip(sp, k)]
            N = xrb.shape[0]; C = xrb.shape[1]
            smp = torch.rand(N, C, nd)
            np.save(f"{D}/u.npy", smp.numpy())
            f = F.fractional_max_pool2d if nd == 2 else F.fractional_max_pool3d
            y, idx = f(xrb, k, output_size=o, return_indices=True, _random_samples=smp)
            args = ["fractional-max", "--kernel", need_list(k), "--output-size", need_list(o), "--samples", f"{D}/u.npy", "--indices", f"{D}/i.npy"]
        else:  # unpool
            pooled, pidx = [F.max_pool1d, F.max_pool2d, F.max_pool3d][nd - 1](xb, k, s, p, return_indices=True)
            if not batched: pooled = pooled[0]; pidx = pidx[0]
            np.save(f"{D}/x.npy", pooled.numpy()); np.save(f"{D}/pi.npy", pidx.numpy().astype(np.float32))
            xr = pooled.clone().requires_grad_(True); xrb = xr if batched else xr.unsqueeze(0)
            pib = pidx if batched else pidx.unsqueeze(0)
            y = [F.max_unpool1d, F.max_unpool2d, F.max_unpool3d][nd - 1](xrb, pib, k, s, p)
            args = ["max-unpool", "--kernel", need_list(k), "--stride", need_list(s), "--padding", need_list(p), "--indices", f"{D}/pi.npy"]
            idx = None
    except RuntimeError:
        continue  # PyTorch refuses these parameters
    if not batched:
        y = y[0]
        if idx is not None: idx = idx[0]
    gy = torch.randn(y.shape); np.save(f"{D}/gy.npy", gy.numpy())
    (g,) = torch.autograd.grad(y, xr, gy)
    cmp(kind, args + common + ["--grad-output", f"{D}/gy.npy", "--grad-input", f"{D}/gx.npy"], y, g, idx)
print(f"{n} cases, {fails} failures")
sys.exit(1 if fails else 0)
