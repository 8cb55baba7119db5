#!/usr/bin/env python3
"""Cross-check `stride conv` and `stride conv-transpose` against PyTorch through the CLI only.

Generates many random, seeded configurations (1-D/2-D/3-D, batched and unbatched, groups incl.
depthwise and channel multipliers, bias or not, stride, every padding form, padding modes,
dilation, --flip, every --algo, f32 and f64 .npy inputs; for conv-transpose stride, padding,
output_padding, dilation, groups, bias), runs the binary with exactly the contract flags
(--input --weight [--bias] ... --output Y.npy --grad-output GY.npy --grad-input GX.npy
--grad-weight GW.npy --grad-bias GB.npy) and compares every result with PyTorch (float64
autograd) within 1e-4 * max(1, max|ref|). Also: edge cases (1x1 outputs, 1-pixel inputs, large
padding, stride > kernel, single channels, batch of 1 vs unbatched), inline literals, printing
without --output, and the bad-input policy (exit 2, one line naming the argument, no panic, no
file left behind).

Reference semantics (as stride documents them):
- padding int / per-axis / begin:end / valid / full / same (same with stride > 1 = SAME_UPPER:
  total = max((ceil(i/s)-1)*s + d*(k-1)+1 - i, 0), begin = total // 2); non-zero padding modes
  pad with F.pad(mode=...) exactly as nn.Conv{1,2,3}d(padding_mode=...) does, then a valid
  convolution (a subset is also checked through nn.Conv*d itself);
- --flip: the kernel flipped on every spatial axis (the gradient is w.r.t. the unflipped kernel);
- conv-transpose begin:end padding: the unpadded transposed output cropped [pb : L - pe];
- --grad-bias without --bias: the sum of the output gradient per channel.

Usage:
  /work/main/.venv/bin/python scripts/crosscheck.py target/release/stride [--cases 600]
      [--seed 1] [--big 0.15] [--keep /tmp/stride-crosscheck] [--only N]
      [--fixture OUT.json (--fixture-ids 3,17 | --fixture-auto 48)]
Exit status 0 when everything agrees. The summary gives the worst error per result and
algorithm; every mismatch prints a reproducer command (the case's files are kept under --keep).
tests/fixtures/crosscheck_regressions.json was written with
  --cases 600 --seed 1 --fixture tests/fixtures/crosscheck_regressions.json --fixture-auto 48
"""
import argparse
import json
import math
import os
import random
import shlex
import shutil
import subprocess
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONVT = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
MODULE = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
ALGOS = ["auto", "direct", "im2col", "toeplitz", "rows", "winograd"]
MODES = ["zeros", "reflect", "replicate", "circular"]
RTOL = 1e-4
# fraction of cases made big (more channels, larger images); --big sets it
BIG = 0.15
# worst error / max(1, max|ref|) seen per result (y, gx, gw, gb)
WORST = {}


# ---------------------------------------------------------------- reference (PyTorch)

def resolve_padding(form, pads, i, k, s, d):
    """(begin, end) per axis, as the contract defines every padding form."""
    out = []
    for a in range(len(i)):
        span = d[a] * (k[a] - 1) + 1
        if form == "valid":
            out.append((0, 0))
        elif form == "full":
            out.append((span - 1, span - 1))
        elif form == "same":
            o = math.ceil(i[a] / s[a])
            tot = max((o - 1) * s[a] + span - i[a], 0)
            out.append((tot // 2, tot - tot // 2))
        else:
            out.append(pads[a])
    return out


def torch_pad(x, rp, mode):
    """F.pad with (begin, end) per spatial axis; x is batched (N, C, *spatial)."""
    flat = []
    for pb, pe in reversed(rp):
        flat += [pb, pe]
    if not any(flat):
        return x
    if mode == "zeros":
        return F.pad(x, flat)
    return F.pad(x, flat, mode=mode)


def ref_conv(c, x, w, b, gy):
    """Forward and gradients of stride's conv in float64 (x, w, b, gy numpy float64)."""
    nd = c["nd"]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if b is not None else None
    xb = xt if c["batched"] else xt.unsqueeze(0)
    wu = torch.flip(wt, list(range(2, 2 + nd))) if c["flip"] else wt
    spatial = list(x.shape[-nd:])
    rp = resolve_padding(c["pad_form"], c["pads"], spatial, c["k"], c["s"], c["d"])
    if c.get("via_module"):
        # nn.ConvNd(padding_mode=...) itself (symmetric padding only)
        m = MODULE[nd](c["cin"], c["cout"], c["k"], stride=c["s"], padding=[p for p, _ in rp],
                       dilation=c["d"], groups=c["groups"], bias=b is not None,
                       padding_mode=c["mode"])
        # the module's own forward (F.pad per padding_mode, then the convolution) on our tensors
        y = m._conv_forward(xb, wu, bt)
    else:
        y = CONV[nd](torch_pad(xb, rp, c["mode"]), wu, bt, stride=c["s"], dilation=c["d"],
                     groups=c["groups"])
    if not c["batched"]:
        y = y.squeeze(0)
    return grads_of(y, xt, wt, bt, gy, c["batched"])


def ref_conv_transpose(c, x, w, b, gy):
    nd = c["nd"]
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if b is not None else None
    xb = xt if c["batched"] else xt.unsqueeze(0)
    rp = c["pads"] if c["pad_form"] != "valid" else [(0, 0)] * nd
    if all(pb == pe for pb, pe in rp):
        y = CONVT[nd](xb, wt, bt, stride=c["s"], padding=[p for p, _ in rp],
                      output_padding=c["op_pad"], groups=c["groups"], dilation=c["d"])
    else:
        y = CONVT[nd](xb, wt, bt, stride=c["s"], padding=0, output_padding=c["op_pad"],
                      groups=c["groups"], dilation=c["d"])
        idx = [slice(None), slice(None)] + [slice(pb, y.shape[2 + a] - pe)
                                             for a, (pb, pe) in enumerate(rp)]
        y = y[tuple(idx)]
    if not c["batched"]:
        y = y.squeeze(0)
    return grads_of(y, xt, wt, bt, gy, c["batched"])


def grads_of(y, xt, wt, bt, gy, batched):
    res = {"y": y.detach().numpy()}
    if gy is None:
        return res
    g = torch.tensor(gy)
    if g.shape != y.shape:
        raise ValueError(f"gy shape {tuple(g.shape)} != y {tuple(y.shape)}")
    y.backward(g)
    res["gx"] = xt.grad.numpy()
    res["gw"] = wt.grad.numpy()
    # the bias gradient: gy summed over everything but the channel axis
    ch = 1 if batched else 0
    axes = tuple(a for a in range(g.dim()) if a != ch)
    res["gb"] = g.sum(dim=axes).numpy() if bt is None else bt.grad.numpy()
    return res


# ---------------------------------------------------------------- case generation

def pick(r, choices, weights=None):
    return r.choices(choices, weights=weights)[0]


def variants(r):
    """How the flags are spelled: inline literals instead of files, which gradient files are
    asked for, --kernel for --weight, and whether the forward output is printed instead."""
    return dict(literal=r.random() < 0.15, want_gx=r.random() < 0.85, want_gw=r.random() < 0.85,
                alias=r.random() < 0.2, print_y=r.random() < 0.1)


def gen_conv(r, cid):
    nd = pick(r, [1, 2, 3], [3, 5, 2])
    algo = ALGOS[cid % len(ALGOS)] if r.random() < 0.8 else pick(r, ALGOS)
    # groups: plain, grouped, depthwise, depthwise with channel multiplier
    gkind = pick(r, ["plain", "grouped", "depthwise", "multiplier"], [4, 2, 2, 2])
    if gkind == "plain":
        groups, cin, cout = 1, r.randint(1, 4), r.randint(1, 4)
    elif gkind == "grouped":
        groups = r.randint(2, 3)
        cin, cout = groups * r.randint(1, 3), groups * r.randint(1, 3)
    elif gkind == "depthwise":
        groups = cin = cout = r.randint(1, 5)
    else:
        groups = cin = r.randint(1, 4)
        cout = cin * r.randint(2, 3)
    small = nd == 3
    k = [r.randint(1, 3 if small else 5) for _ in range(nd)]
    if algo == "winograd" and r.random() < 0.7:
        k = [3] * nd
    s = [pick(r, [1, 1, 2, 3]) for _ in range(nd)]
    d = [pick(r, [1, 1, 1, 2, 3]) for _ in range(nd)]
    if algo == "winograd" and r.random() < 0.6:
        s, d = [1] * nd, [1] * nd
    mode = pick(r, MODES, [5, 2, 2, 2])
    pad_form = pick(r, ["int", "list", "valid", "same", "full", "beginend", "beginend1"],
                    [3, 2, 1, 3, 1, 2, 1])
    # spatial sizes: big enough for every kernel span (before padding), a few exact fits
    span = [d[a] * (k[a] - 1) + 1 for a in range(nd)]
    i = [span[a] + r.randint(0, 2 if small else 7) for a in range(nd)]
    pads = None
    if pad_form == "int":
        p = r.randint(0, 3)
        pads = [(p, p)] * nd
        pad_str = str(p)
    elif pad_form == "list":
        pads = [(p, p) for p in (r.randint(0, 3) for _ in range(nd))]
        pad_str = ",".join(str(p) for p, _ in pads)
    elif pad_form == "beginend":
        pads = [(r.randint(0, 3), r.randint(0, 3)) for _ in range(nd)]
        pad_str = ",".join(f"{pb}:{pe}" for pb, pe in pads)
    elif pad_form == "beginend1":
        pb, pe = r.randint(0, 3), r.randint(0, 3)
        pads = [(pb, pe)] * nd
        pad_str = f"{pb}:{pe}"
    else:
        pad_str = pad_form
    if pad_form in ("int", "list", "beginend", "beginend1"):
        # with padding, the input may be smaller than the span
        i = [max(1, i[a] - r.randint(0, pads[a][0] + pads[a][1])) for a in range(nd)]
    # padding modes need pad < i (reflect) / pad <= i (circular)
    if mode in ("reflect", "circular"):
        rp = resolve_padding(pad_form, pads, i, k, s, d)
        need = [max(pb, pe) + (1 if mode == "reflect" else 0) for pb, pe in rp]
        i = [max(i[a], need[a]) for a in range(nd)]
    if small:
        i = [min(v, 9) for v in i]
    batched = r.random() < 0.7
    n = r.randint(1, 3) if batched else 1
    if r.random() < BIG and mode == "zeros":
        # big: past the fast paths' vector widths, tiles, GEMM blocks and batching
        grow = [r.randint(8, 14 if nd == 3 else 40 if nd == 2 else 200) for _ in range(nd)]
        i = [v + g for v, g in zip(i, grow)]
        mult = r.randint(2, 6)
        if gkind == "depthwise":
            groups = cin = cout = cin * mult
        elif gkind == "multiplier":
            groups, cin, cout = groups * mult, cin * mult, cout * mult
        else:
            cin, cout = cin * mult, cout * mult
        n = r.randint(1, 5) if batched else 1
    c = dict(op="conv", nd=nd, batched=batched, n=n, cin=cin, cout=cout, groups=groups, k=k,
             s=s, d=d, i=i, pad_form=pad_form if pad_form in ("valid", "same", "full") else "explicit",
             pads=pads, pad_str=pad_str, mode=mode, flip=r.random() < 0.25, algo=algo,
             bias=r.random() < 0.6, f64=r.random() < 0.2, grads=r.random() < 0.7,
             grad_bias=r.random() < 0.7, per_axis_flags=r.random() < 0.3,
             via_module=False, **variants(r))
    if mode != "zeros" and c["pad_form"] == "explicit" and all(pb == pe for pb, pe in pads) \
            and r.random() < 0.5:
        c["via_module"] = True
    return c


def gen_conv_transpose(r, cid):
    nd = pick(r, [1, 2, 3], [3, 5, 2])
    algo = pick(r, ["auto", "direct", "im2col", "toeplitz", "rows", "winograd"])
    gkind = pick(r, ["plain", "grouped", "depthwise"], [4, 2, 2])
    if gkind == "plain":
        groups, cin, cout_g = 1, r.randint(1, 4), r.randint(1, 4)
    elif gkind == "grouped":
        groups = r.randint(2, 3)
        cin, cout_g = groups * r.randint(1, 2), r.randint(1, 3)
    else:
        groups = cin = r.randint(1, 4)
        cout_g = pick(r, [1, 1, 2])
    small = nd == 3
    k = [r.randint(1, 3 if small else 5) for _ in range(nd)]
    s = [pick(r, [1, 2, 2, 3]) for _ in range(nd)]
    d = [pick(r, [1, 1, 2]) for _ in range(nd)]
    i = [r.randint(1, 4 if small else 7) for _ in range(nd)]
    if r.random() < BIG:
        i = [v + r.randint(4, 8 if small else 24) for v in i]
        cin, cout_g = cin * 3, cout_g * 2
    op = [r.randint(0, max(s[a], d[a]) - 1) if r.random() < 0.5 else 0 for a in range(nd)]
    full = [(i[a] - 1) * s[a] + d[a] * (k[a] - 1) + 1 + op[a] for a in range(nd)]
    pad_form = pick(r, ["int", "list", "beginend", "valid"], [4, 2, 2, 1])
    if pad_form == "valid":
        pads, pad_str = [(0, 0)] * nd, "valid"
    elif pad_form == "int":
        p = r.randint(0, min((f - 1) // 2 for f in full))
        pads, pad_str = [(p, p)] * nd, str(p)
    elif pad_form == "list":
        pads = [(p, p) for p in (r.randint(0, (f - 1) // 2) for f in full)]
        pad_str = ",".join(str(p) for p, _ in pads)
    else:
        pads = []
        for f in full:
            pb = r.randint(0, (f - 1) // 2)
            pe = r.randint(0, f - 1 - pb)
            pads.append((pb, pe))
        pad_str = ",".join(f"{pb}:{pe}" for pb, pe in pads)
    batched = r.random() < 0.7
    return dict(op="conv-transpose", nd=nd, batched=batched, n=r.randint(1, 3) if batched else 1,
                cin=cin, cout=cout_g * groups, groups=groups, k=k, s=s, d=d, i=i, op_pad=op,
                pad_form="valid" if pad_form == "valid" else "explicit", pads=pads,
                pad_str=pad_str, algo=algo, bias=r.random() < 0.6, f64=r.random() < 0.2,
                grads=r.random() < 0.7, grad_bias=r.random() < 0.7,
                per_axis_flags=r.random() < 0.3, **variants(r))


def edge_cases():
    """Hand-picked corners, in the same format as the generated cases."""
    base = dict(op="conv", nd=2, batched=True, n=1, cin=1, cout=1, groups=1, s=[1, 1],
                d=[1, 1], pad_form="explicit", mode="zeros", flip=False, algo="auto", bias=False,
                f64=False, grads=True, grad_bias=True, per_axis_flags=False, via_module=False)
    out = []

    def add(**kw):
        c = dict(base)
        c.update(kw)
        if "pads" not in kw and c["pad_form"] == "explicit":
            c["pads"] = [(0, 0)] * c["nd"]
            c["pad_str"] = "0"
        out.append(c)

    for algo in ALGOS:
        # kernel == padded input: a 1x1 output
        add(k=[3, 3], i=[3, 3], algo=algo)
        add(k=[3, 3], i=[1, 1], pads=[(1, 1)] * 2, pad_str="1", algo=algo)
        # 1-pixel input and kernel
        add(k=[1, 1], i=[1, 1], algo=algo, cin=3, cout=2)
        # large padding
        add(k=[2, 3], i=[2, 2], pads=[(5, 5)] * 2, pad_str="5", algo=algo, bias=True)
        # stride larger than the kernel
        add(k=[2, 2], i=[9, 8], s=[4, 5], algo=algo, cin=2, cout=3)
        # channels = 1 everywhere, 1-D and 3-D
        add(nd=1, k=[3], i=[5], s=[1], d=[1], algo=algo)
        add(nd=3, k=[2, 2, 2], i=[3, 3, 3], s=[1, 1, 1], d=[1, 1, 1], algo=algo)
        # batch of 1 vs unbatched
        add(k=[3, 3], i=[5, 6], batched=False, algo=algo, cin=2, cout=2, bias=True)
        # same with stride > 1 (SAME_UPPER), even kernels and dilation
        add(k=[4, 2], i=[7, 6], s=[2, 3], pad_form="same", pads=None, pad_str="same",
            algo=algo)
        add(k=[3, 3], i=[5, 5], d=[2, 2], pad_form="same", pads=None, pad_str="same",
            algo=algo, mode="reflect")
        # depthwise, 1-D, big stride, winograd shape with full padding
        add(nd=1, k=[3], i=[10], s=[1], d=[1], cin=4, cout=4, groups=4, pad_form="full",
            pads=None, pad_str="full", algo=algo)
    for mode in MODES[1:]:
        if mode != "reflect":
            add(k=[3, 3], i=[3, 3], pads=[(2, 2)] * 2, pad_str="2", mode=mode, batched=False)
        add(k=[3, 3], i=[4, 3], pads=[(0, 2), (1, 0)], pad_str="0:2,1:0", mode=mode)
        add(nd=1, k=[1], i=[1], s=[1], d=[1], mode=mode)
    tb = dict(op="conv-transpose", nd=2, batched=True, n=1, cin=1, cout=1, groups=1, d=[1, 1],
              pad_form="explicit", algo="auto", bias=False, f64=False, grads=True,
              grad_bias=True, per_axis_flags=False)
    for algo in ALGOS:
        for kw in [dict(k=[1, 1], i=[1, 1], s=[1, 1], op_pad=[0, 0], pads=[(0, 0)] * 2),
                   dict(k=[3, 3], i=[1, 1], s=[2, 2], op_pad=[1, 1], pads=[(1, 1)] * 2),
                   dict(k=[2, 2], i=[3, 3], s=[5, 5], op_pad=[4, 0], pads=[(0, 0)] * 2),
                   dict(k=[3, 3], i=[2, 2], s=[2, 2], op_pad=[0, 0], pads=[(2, 2)] * 2),
                   dict(nd=1, k=[3], i=[4], s=[2], d=[1], op_pad=[1], pads=[(0, 3)]),
                   dict(batched=False, cin=2, cout=4, groups=2, k=[3, 3], i=[3, 3], s=[2, 1],
                        op_pad=[1, 0], pads=[(1, 1), (0, 0)], bias=True)]:
            c = dict(tb)
            c.update(kw)
            c["algo"] = algo
            c["pad_str"] = ",".join(f"{pb}:{pe}" for pb, pe in c["pads"])
            out.append(c)
    return out


# ---------------------------------------------------------------- running one case

def rnd_array(rng, shape, f64=False):
    """Normal values; rounded to float32 unless the case feeds float64 files."""
    a = rng.standard_normal(shape)
    return a if f64 else a.astype(np.float32).astype(np.float64)


def make_tensors(c, seed):
    rng = np.random.default_rng(seed)
    nd = c["nd"]
    xs = ([c["n"]] if c["batched"] else []) + [c["cin"]] + list(c["i"])
    if c["op"] == "conv":
        ws = [c["cout"], c["cin"] // c["groups"]] + list(c["k"])
    else:
        ws = [c["cin"], c["cout"] // c["groups"]] + list(c["k"])
    x = rnd_array(rng, xs, c["f64"])
    w = rnd_array(rng, ws, c["f64"])
    b = rnd_array(rng, [c["cout"]], c["f64"]) if c["bias"] else None
    assert len(ws) == nd + 2
    return rng, x, w, b


def axis_flag(vals, per_axis):
    if not per_axis and len(set(vals)) == 1:
        return str(vals[0])
    return ",".join(str(v) for v in vals)


def save(path, a, f64):
    np.save(path, a.astype(np.float64 if f64 else np.float32))


def literal(a, f64):
    """An inline literal holding exactly the values of `a` (as float32 unless f64)."""
    return json.dumps(a.astype(np.float64 if f64 else np.float32).tolist()).replace(" ", "")


def cli_args(c, files):
    args = [c["op"], "--input", files["x"], "--kernel" if c.get("alias") else "--weight",
            files["w"]]
    if "b" in files:
        args += ["--bias", files["b"]]
    args += ["--stride", axis_flag(c["s"], c["per_axis_flags"]),
             "--padding", c["pad_str"],
             "--dilation", axis_flag(c["d"], c["per_axis_flags"]),
             "--groups", str(c["groups"])]
    if c["op"] == "conv":
        args += ["--padding-mode", c["mode"], "--algo", c["algo"]]
        if c["flip"]:
            args.append("--flip")
    else:
        args += ["--output-padding", axis_flag(c["op_pad"], c["per_axis_flags"]),
                 "--algo", c["algo"]]
    return args


def close(got, want, name, algo=None):
    """None when `got` agrees with `want`, else a short description."""
    if got is None:
        return f"{name}: missing"
    if tuple(got.shape) != tuple(want.shape):
        return f"{name}: shape {tuple(got.shape)} != torch {tuple(want.shape)}"
    scale = max(1.0, float(np.abs(want).max()) if want.size else 1.0)
    err = float(np.abs(got.astype(np.float64) - want).max()) if want.size else 0.0
    key = f"{name}[{algo}]" if algo else name
    WORST[key] = max(WORST.get(key, 0.0), err / scale)
    if not np.isfinite(err) or err > RTOL * scale:
        return f"{name}: max abs err {err:.3g} > {RTOL * scale:.3g} (max|ref| {scale:.3g})"
    return None


def run_case(exe, c, cid, keep, seed):
    """Runs one case; returns (status, message, reproducer, data) with status ok/fail/skip."""
    cdir = os.path.join(keep, f"case-{cid:04d}")
    shutil.rmtree(cdir, ignore_errors=True)
    os.makedirs(cdir)
    rng, x, w, b = make_tensors(c, seed)
    ref_fn = ref_conv if c["op"] == "conv" else ref_conv_transpose
    try:
        ref = ref_fn(c, x, w, b, None)
    except Exception as e:  # torch rejects the configuration: stride must too (exit 2)
        ref = None
        torch_err = str(e).splitlines()[0]
    gy = None
    if ref is not None and c["grads"]:
        gy = rnd_array(rng, ref["y"].shape, c["f64"])
        ref = ref_fn(c, x, w, b, gy)
    files = {}
    for key, a in (("x", x), ("w", w), ("b", b)):
        if a is None:
            continue
        if c.get("literal") and (a.ndim >= 3 or key == "b") and a.size <= 300:
            files[key] = literal(a, c["f64"])
        else:
            files[key] = os.path.join(cdir, f"{key}.npy")
            save(files[key], a, c["f64"])
    args = cli_args(c, files)
    outs = {}
    if not c.get("print_y"):
        outs["y"] = os.path.join(cdir, "y.npy")
        args += ["--output", outs["y"]]
    if gy is not None:
        if c.get("literal") and gy.size <= 300:
            args += ["--grad-output", literal(gy, c["f64"])]
        else:
            save(os.path.join(cdir, "gy.npy"), gy, c["f64"])
            args += ["--grad-output", os.path.join(cdir, "gy.npy")]
        for key, flag, want in (("gx", "--grad-input", c.get("want_gx", True)),
                                ("gw", "--grad-weight", c.get("want_gw", True)),
                                ("gb", "--grad-bias", c["grad_bias"])):
            if want:
                outs[key] = os.path.join(cdir, f"{key}.npy")
                args += [flag, outs[key]]
        if not any(k in outs for k in ("gx", "gw", "gb")):
            outs["gx"] = os.path.join(cdir, "gx.npy")
            args += ["--grad-input", outs["gx"]]
    repro = shlex.join([exe] + args)
    p = subprocess.run([exe] + args, capture_output=True, text=True, timeout=120)
    err = p.stderr.strip()
    if ref is None:
        if p.returncode == 2 and "\n" not in err and "panicked" not in err:
            if any(os.path.exists(f) for f in outs.values()):
                return "fail", "rejected but left an output file", repro, None
            return "rejected", f"torch: {torch_err} / stride: {err}", repro, None
        return "fail", (f"torch rejects ({torch_err}) but stride exit {p.returncode}: "
                        f"{err[:300]}"), repro, None
    if p.returncode == 2 and "Toeplitz matrix would be" in err and "\n" not in err:
        # --algo toeplitz refuses matrices over 64 MiB by design (issue 2): a clean refusal
        return "rejected", f"toeplitz size limit: {err}", repro, None
    if p.returncode != 0:
        return "fail", f"exit {p.returncode}: {err[:400]}", repro, None
    problems = []
    if c.get("print_y") and "output (" not in p.stdout:
        problems.append("printed output missing")
    got = {}
    for key, path in outs.items():
        got[key] = np.load(path) if os.path.exists(path) else None
        if got[key] is not None and got[key].dtype != np.float32:
            problems.append(f"{key}: dtype {got[key].dtype}")
        msg = close(got[key], ref[key], key, c["algo"])
        if msg:
            problems.append(msg)
    data = dict(x=x, w=w, b=b, gy=gy, ref=ref)
    if problems:
        return "fail", "; ".join(problems), repro, data
    shutil.rmtree(cdir, ignore_errors=True)
    return "ok", "", repro, data


# ---------------------------------------------------------------- literals, printing, bad input

def run(exe, args):
    return subprocess.run([exe] + args, capture_output=True, text=True, timeout=60)


def check_literals(exe, tmp):
    """Inline literals: a 2-D literal is one single-channel image / kernel."""
    fails = []
    n = 0
    lit_cases = [
        ("conv", "[[1,2],[3,4]]", "[[1,0],[0,-1]]", []),
        ("conv", "[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]",
         "[[4,3,3],[5,5,5],[2,4,3]]", ["--stride", "2", "--padding", "1"]),
        ("conv", "[1,2,3,4,5]", "[1,0,-1]", ["--padding", "same"]),
        ("conv", "[[1,2,3],[4,5,6],[7,8,9]]", "[[1,2],[3,4]]", ["--flip", "--padding", "full"]),
        ("conv-transpose", "[[1,2],[3,4]]", "[[1,1],[1,1]]", ["--stride", "2"]),
        ("conv-transpose", "[1,2,3]", "[1,1,1]", ["--stride", "2", "--padding", "1"]),
    ]
    for op, xs, ws, extra in lit_cases:
        x = np.array(json.loads(xs), dtype=np.float64)
        w = np.array(json.loads(ws), dtype=np.float64)
        nd = x.ndim
        xb, wb = x.reshape((1, 1) + x.shape), w.reshape((1, 1) + w.shape)
        y_path = os.path.join(tmp, "lit_y.npy")
        args = [op, "--input", xs, "--weight", ws] + extra
        vals = [a for a in extra if a != "--flip"]
        opts = dict(zip(vals[::2], vals[1::2]))
        s = int(opts.get("--stride", 1))
        padv = opts.get("--padding", "0")
        if op == "conv":
            k = list(w.shape)
            rp = resolve_padding(padv if padv in ("same", "full", "valid") else "explicit",
                                 [(int(padv), int(padv))] * nd if padv.isdigit() else None,
                                 list(x.shape), k, [s] * nd, [1] * nd)
            wt = torch.tensor(wb)
            if "--flip" in extra:
                wt = torch.flip(wt, list(range(2, 2 + nd)))
            want = CONV[nd](torch_pad(torch.tensor(xb), rp, "zeros"), wt, stride=s).numpy()
        else:
            want = CONVT[nd](torch.tensor(xb), torch.tensor(wb), stride=s,
                             padding=int(padv)).numpy()
        n += 1
        p = run(exe, args + ["--output", y_path])
        if p.returncode != 0:
            fails.append((f"literal {op} {xs} {ws} {extra}: exit {p.returncode}: "
                          f"{p.stderr.strip()}", shlex.join([exe] + args)))
            continue
        y = np.load(y_path)
        # the literal is one single-channel image: PyTorch's (1, 1, *out) for x[None, None]
        msg = close(y, want, "y")
        if msg:
            fails.append((f"literal {op} {xs}: {msg}", shlex.join([exe] + args)))
        # printing without --output: must succeed and print every value
        n += 1
        p = run(exe, args)
        if p.returncode != 0 or "panicked" in p.stderr:
            fails.append((f"printing literal {op}: exit {p.returncode}: {p.stderr.strip()}",
                          shlex.join([exe] + args)))
        elif "output" not in p.stdout:
            fails.append((f"printing literal {op}: no output shown", shlex.join([exe] + args)))
        # with a literal output gradient (all ones), printed
        n += 1
        ones = json.dumps(np.ones(want.shape[2:]).tolist())
        p = run(exe, args + ["--grad-output", ones])
        if p.returncode != 0 or "grad_input" not in p.stdout or "grad_weight" not in p.stdout:
            fails.append((f"printing literal grads {op}: exit {p.returncode}: "
                          f"{p.stderr.strip()[:200]}", shlex.join([exe] + args + ["--grad-output", ones])))
    return n, fails


def check_printing(exe, cases, tmp, seed):
    """Printing (no --output) must not crash, for a sample of generated cases."""
    n, fails = 0, []
    for cid, c in cases:
        _, x, w, b = make_tensors(c, seed + cid)
        files = {"x": os.path.join(tmp, "px.npy"), "w": os.path.join(tmp, "pw.npy")}
        save(files["x"], x, False)
        save(files["w"], w, False)
        if b is not None:
            files["b"] = os.path.join(tmp, "pb.npy")
            save(files["b"], b, False)
        args = cli_args(c, files)
        extras = [[]]
        if c["op"] == "conv":
            extras += [["--explain"], ["--explain", "im2col"], ["--explain", "toeplitz"]]
        try:
            ref = (ref_conv if c["op"] == "conv" else ref_conv_transpose)(c, x, w, b, None)
            gy = os.path.join(tmp, "pgy.npy")
            save(gy, np.ones(ref["y"].shape), False)
            extras.append(["--grad-output", gy])
            if c["op"] == "conv":
                extras.append(["--grad-output", gy, "--explain"])
        except Exception:  # torch rejects it: printing is checked without gradients
            pass
        for extra in extras:
            n += 1
            p = run(exe, args + extra)
            one_line = len(p.stderr.strip().splitlines()) == 1
            if p.returncode not in (0, 2) or "panicked" in p.stderr or (
                    p.returncode == 2 and not one_line):
                fails.append((f"printing case {cid} {' '.join(extra)}: exit "
                              f"{p.returncode}: {p.stderr.strip()[:300]}",
                              shlex.join([exe] + args + extra)))
    return n, fails


def bad_inputs(tmp):
    """(description, args, expected argument name in the message) for the bad-input policy."""
    x4 = os.path.join(tmp, "bx4.npy")
    np.save(x4, np.random.default_rng(0).standard_normal((1, 2, 5, 5)).astype(np.float32))
    w4 = os.path.join(tmp, "bw4.npy")
    np.save(w4, np.random.default_rng(1).standard_normal((3, 2, 3, 3)).astype(np.float32))
    w3 = os.path.join(tmp, "bw3.npy")
    np.save(w3, np.ones((3, 2, 3), np.float32))
    wt = os.path.join(tmp, "bwt.npy")
    np.save(wt, np.ones((2, 3, 3, 3), np.float32))
    xi = os.path.join(tmp, "bxi.npy")
    np.save(xi, np.ones((1, 2, 5, 5), np.int64))
    xf = os.path.join(tmp, "bxf.npy")
    np.save(xf, np.asfortranarray(np.ones((1, 2, 5, 5), np.float32)))
    xh = os.path.join(tmp, "bxh.npy")
    np.save(xh, np.ones((1, 2, 5, 5), np.float16))
    xbig = os.path.join(tmp, "bxbe.npy")
    np.save(xbig, np.ones((1, 2, 5, 5), ">f4"))
    trunc = os.path.join(tmp, "btrunc.npy")
    with open(x4, "rb") as f:
        raw = f.read()
    with open(trunc, "wb") as f:
        f.write(raw[:-7])
    garbage = os.path.join(tmp, "bgarbage.npy")
    with open(garbage, "w") as f:
        f.write("not an npy file\n")
    emp = os.path.join(tmp, "bempty.npy")
    np.save(emp, np.ones((1, 2, 0, 5), np.float32))
    gy_bad = os.path.join(tmp, "bgy.npy")
    np.save(gy_bad, np.ones((1, 3, 2, 2), np.float32))
    b2 = os.path.join(tmp, "bb2.npy")
    np.save(b2, np.ones((2,), np.float32))
    missing = os.path.join(tmp, "nope", "missing.npy")
    C = ["conv", "--input", x4, "--weight", w4]
    T = ["conv-transpose", "--input", x4, "--weight", wt]
    G = ["--grad-output", gy_bad]
    return [
        ("missing input file", ["conv", "--input", missing, "--weight", w4], "input"),
        ("garbage npy", ["conv", "--input", garbage, "--weight", w4], "input"),
        ("truncated npy", ["conv", "--input", trunc, "--weight", w4], "input"),
        ("int64 npy", ["conv", "--input", xi, "--weight", w4], "input"),
        ("float16 npy", ["conv", "--input", xh, "--weight", w4], "input"),
        ("zero-size axis", ["conv", "--input", emp, "--weight", w4], "input"),
        ("malformed literal", ["conv", "--input", "[[1,2],[3]]", "--weight", w4], "input"),
        ("literal junk", ["conv", "--input", "[[1,2],[3,x]]", "--weight", "[[1]]"], "input"),
        ("weight rank 2 npy", ["conv", "--input", x4, "--weight", os.path.join(tmp, "bw2.npy")],
         "weight"),
        ("channel mismatch", ["conv", "--input", x4, "--weight", w3], "input"),
        ("wrong cin", ["conv", "--input", "[[1,2],[3,4]]", "--weight", w4], "weight"),
        ("kernel too large", C + ["--stride", "1", "--dilation", "3"], "kernel"),
        ("kernel larger than input", ["conv", "--input", "[[1,2],[3,4]]", "--weight",
                                      "[[1,2,3],[4,5,6],[7,8,9]]"], "kernel"),
        ("stride 0", C + ["--stride", "0"], "stride"),
        ("stride negative", C + ["--stride", "-1"], "stride"),
        ("stride junk", C + ["--stride", "two"], "stride"),
        ("stride 3 axes for 2-D", C + ["--stride", "1,1,1"], "stride"),
        ("dilation 0", C + ["--dilation", "0"], "dilation"),
        ("padding junk", C + ["--padding", "sam"], "padding"),
        ("padding negative", C + ["--padding", "-1"], "padding"),
        ("padding 3 axes", C + ["--padding", "1,1,1"], "padding"),
        ("padding bad pair", C + ["--padding", "1:"], "padding"),
        ("groups 0", C + ["--groups", "0"], "groups"),
        ("groups not dividing", C + ["--groups", "3"], None),
        ("groups junk", C + ["--groups", "x"], "groups"),
        ("padding mode junk", C + ["--padding-mode", "mirror"], "padding-mode"),
        ("reflect pad too big", C + ["--padding", "5", "--padding-mode", "reflect"], "padding"),
        ("circular pad too big", C + ["--padding", "6", "--padding-mode", "circular"], "padding"),
        ("algo junk", C + ["--algo", "fft"], "algo"),
        ("explain junk", C + ["--explain", "fft"], "explain"),
        ("bias wrong size", C + ["--bias", b2], "bias"),
        ("bias literal wrong size", C + ["--bias", "[1,2]"], "bias"),
        ("grad-output wrong shape", C + G + ["--grad-input", os.path.join(tmp, "o_gx.npy")],
         "grad-output"),
        ("grad-input without grad-output", C + ["--grad-input", os.path.join(tmp, "o_gx.npy")],
         "grad-output"),
        ("output dir missing", C + ["--output", missing], "output"),
        ("output is a directory", C + ["--output", tmp], "output"),
        ("output under a file", C + ["--output", os.path.join(x4, "y.npy")], "output"),
        ("grad file dir missing", C + ["--grad-output", os.path.join(tmp, "bgy_ok.npy"),
                                       "--grad-input", missing], "grad-input"),
        ("same file twice", C + ["--output", os.path.join(tmp, "o_same.npy"), "--grad-output",
                                 os.path.join(tmp, "bgy_ok.npy"), "--grad-input",
                                 os.path.join(tmp, "o_same.npy")], "grad-input"),
        ("missing weight flag", ["conv", "--input", x4], "weight"),
        ("unknown flag", C + ["--pading", "1"], "pading"),
        ("conv-transpose op too big", T + ["--stride", "2", "--output-padding", "2"],
         "output-padding"),
        ("conv-transpose padding crops all", T + ["--padding", "5"], "padding"),
        ("conv-transpose same", T + ["--padding", "same"], "padding"),
        ("conv-transpose wrong cin", ["conv-transpose", "--input", x4, "--weight", w4], "weight"),
        ("conv-transpose groups", T + ["--groups", "3"], "groups"),
        ("conv-transpose bias", T + ["--bias", b2], "bias"),
        ("conv-transpose gy shape", T + G + ["--grad-input", os.path.join(tmp, "o_tgx.npy")],
         "grad-output"),
        ("conv-transpose output-padding junk", T + ["--output-padding", "a"], "output-padding"),
        ("conv-transpose stride 0", T + ["--stride", "0"], "stride"),
        ("huge padding", C + ["--padding", "9223372036854775807"], "padding"),
        ("padding past usize", C + ["--padding", "18446744073709551616"], "padding"),
        ("huge begin:end padding", C + ["--padding", "0:9223372036854775807,0"], "padding"),
        ("padding too big to allocate", C + ["--padding", "100000"], "padding"),
        ("huge dilation", C + ["--dilation", "9223372036854775808"], "dilation"),
        ("huge dilation with full", C + ["--dilation", "9223372036854775807", "--padding",
                                         "full"], None),
        ("huge dilation with same", C + ["--dilation", "9223372036854775807", "--padding",
                                         "same"], None),
        ("conv-transpose huge stride", T + ["--stride", "4611686018427387904"], "stride"),
        ("conv-transpose stride too big to allocate", T + ["--stride", "100000"], "stride"),
        ("conv-transpose huge padding", T + ["--padding", "9223372036854775807"], "padding"),
        ("conv-transpose negative padding", T + ["--padding", "-1"], "padding"),
        ("conv-transpose negative output-padding", T + ["--output-padding", "-1"],
         "output-padding"),
        ("negative groups", C + ["--groups", "-1"], "groups"),
        ("negative dilation", C + ["--dilation", "-1"], "dilation"),
        ("flag without value", C + ["--algo"], "algo"),
        ("unknown subcommand", ["cnv", "--input", x4], "cnv"),
        ("fortran-order npy", ["conv", "--input", xf, "--weight", w4], None),
        ("big-endian npy", ["conv", "--input", xbig, "--weight", w4], None),
    ]


def check_bad_inputs(exe, tmp):
    fails = []
    np.save(os.path.join(tmp, "bw2.npy"), np.ones((3, 3), np.float32))
    np.save(os.path.join(tmp, "bgy_ok.npy"), np.ones((1, 3, 3, 3), np.float32))
    cases = bad_inputs(tmp)
    outs = ["--output", os.path.join(tmp, "o_y.npy"), "--grad-output",
            os.path.join(tmp, "bgy_ok.npy"), "--grad-input", os.path.join(tmp, "o_gx.npy"),
            "--grad-weight", os.path.join(tmp, "o_gw.npy"), "--grad-bias",
            os.path.join(tmp, "o_gb.npy")]
    n = 0
    for desc, args, argname in cases:
        has_out = any(a.startswith("--output") or a.startswith("--grad") for a in args)
        variants = [args] if has_out or desc in ("missing weight flag", "unknown flag",
                                                 "unknown subcommand", "flag without value") \
            else [args, args + outs]
        for v in variants:
            n += 1
            for f in os.listdir(tmp):
                if f.startswith("o_") or f.startswith(".o_"):
                    os.remove(os.path.join(tmp, f))
            p = run(exe, v)
            err = p.stderr.strip()
            repro = shlex.join([exe] + v)
            leftovers = [f for f in os.listdir(tmp) if f.startswith("o_") or f.startswith(".o_")]
            if desc in ("fortran-order npy", "big-endian npy"):
                # valid numpy files: either read correctly or refused cleanly
                if p.returncode not in (0, 2) or "panicked" in err:
                    fails.append((f"{desc}: exit {p.returncode}: {err[:300]}", repro))
                continue
            problems = []
            if p.returncode != 2:
                problems.append(f"exit {p.returncode}")
            if "panicked" in err:
                problems.append("panic")
            lines = [l for l in err.splitlines() if l.strip()]
            if len(lines) != 1:
                problems.append(f"{len(lines)} lines on stderr")
            if argname and argname not in err:
                problems.append(f"message does not name '{argname}'")
            if leftovers:
                problems.append(f"left files {leftovers}")
            if problems:
                fails.append((f"bad input '{desc}': {', '.join(problems)}: {err[:300]}", repro))
    return n, fails


def check_file_variants(exe, tmp):
    """Big-endian .npy files hold valid arrays: the result must match. Fortran-order files are
    refused with a clear error (exit 2, one line naming Fortran order), as issue 2 asks."""
    fails = []
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 5, 6)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 2)).astype(np.float32)
    want = F.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64)).numpy()
    n = 0
    for desc, xa in [("fortran", np.asfortranarray(x)), ("big-endian", x.astype(">f4")),
                     ("f64 fortran", np.asfortranarray(x.astype(np.float64)))]:
        n += 1
        xp, yp = os.path.join(tmp, "v_x.npy"), os.path.join(tmp, "v_y.npy")
        np.save(xp, xa)
        np.save(os.path.join(tmp, "v_w.npy"), w)
        args = ["conv", "--input", xp, "--weight", os.path.join(tmp, "v_w.npy"), "--output", yp]
        p = run(exe, args)
        if "fortran" in desc:
            err = p.stderr.strip()
            if p.returncode != 2 or "Fortran order" not in err or "\n" in err:
                fails.append((f"{desc} .npy: expected a one-line Fortran-order refusal, got exit "
                              f"{p.returncode}: {err[:200]}", shlex.join([exe] + args)))
            continue
        if p.returncode != 0:
            fails.append((f"{desc} .npy: exit {p.returncode}: {p.stderr.strip()[:200]}",
                          shlex.join([exe] + args)))
            continue
        msg = close(np.load(yp), want, "y")
        if msg:
            fails.append((f"{desc} .npy: {msg}", shlex.join([exe] + args)))
    return n, fails


# ---------------------------------------------------------------- fixtures for regressions

def enc(a):
    a = np.asarray(a, dtype=np.float64)
    # 9 significant digits: every float32 reads back exactly
    return {"shape": list(a.shape), "data": [float(f"{np.float32(v):.9g}") for v in a.flatten()]}


def fixture_kind(c):
    """What a fixture case stands for: one of each kind is enough."""
    pad = c["pad_str"] if c["pad_str"] in ("valid", "same", "full") else (
        "begin:end" if ":" in c["pad_str"] else "explicit")
    return (c["op"], c["nd"], c["batched"], pad, c.get("mode"), c.get("flip"), c["groups"] > 1,
            c["bias"])


def data_arrays(data):
    return [a for a in (data["x"], data["w"], data["b"], data["gy"], *data["ref"].values())
            if a is not None]


def fixture_case(c, data, cid):
    params = {"op": c["op"], "stride": axis_flag(c["s"], c["per_axis_flags"]),
              "padding": c["pad_str"], "dilation": axis_flag(c["d"], c["per_axis_flags"]),
              "groups": c["groups"], "algo": c["algo"]}
    if c["op"] == "conv":
        params.update(padding_mode=c["mode"], flip=c["flip"])
    else:
        params.update(output_padding=axis_flag(c["op_pad"], c["per_axis_flags"]))
    case = {"id": cid, "params": params, "x": enc(data["x"]), "w": enc(data["w"])}
    if data["b"] is not None:
        case["b"] = enc(data["b"])
    case["y"] = enc(data["ref"]["y"])
    if data["gy"] is not None:
        case["gy"] = enc(data["gy"])
        for k in ("gx", "gw", "gb"):
            case[k] = enc(data["ref"][k])
    return case


# ---------------------------------------------------------------- main

def main():
    global BIG
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("exe", help="path to the stride binary (cargo build --release)")
    ap.add_argument("--cases", type=int, default=600, help="random cases (conv : conv-transpose = 2 : 1)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", default="/tmp/stride-crosscheck", help="where failing cases stay")
    ap.add_argument("--only", type=int, help="run only this case id")
    ap.add_argument("--fixture", help="write the cases --fixture-ids to this JSON file")
    ap.add_argument("--fixture-ids", default="", help="comma list of case ids for --fixture")
    ap.add_argument("--fixture-auto", type=int, default=0,
                    help="also add up to this many small passing cases of distinct kinds")
    ap.add_argument("--big", type=float, default=0.15, help="fraction of big cases (0.15)")
    args = ap.parse_args()
    BIG = args.big
    exe = os.path.abspath(args.exe)
    os.makedirs(args.keep, exist_ok=True)
    r = random.Random(args.seed)
    cases = []
    for cid in range(args.cases):
        cases.append((cid, gen_conv(r, cid) if cid % 3 != 2 else gen_conv_transpose(r, cid)))
    for j, c in enumerate(edge_cases()):
        cases.append((100000 + j, c))
    if args.only is not None:
        cases = [(cid, c) for cid, c in cases if cid == args.only]
    fixture_ids = {int(v) for v in args.fixture_ids.split(",") if v}
    auto = set()
    fixtures = []
    counts = {"ok": 0, "fail": 0, "rejected": 0}
    failures = []
    stats = {}
    for cid, c in cases:
        try:
            status, msg, repro, data = run_case(exe, c, cid, args.keep, args.seed * 1000003 + cid)
        except Exception as e:  # a bug in this script, not in stride: report it loudly
            status, msg, repro, data = "fail", f"crosscheck error: {e!r}", "", None
        counts[status] += 1
        key = (c["op"], c["nd"], c.get("algo"))
        stats.setdefault(key, 0)
        stats[key] += 1
        if status == "fail":
            failures.append((cid, c, msg, repro))
        if data is not None and status == "ok" and (cid in fixture_ids or (
                len(auto) < args.fixture_auto and fixture_kind(c) not in auto
                and not c["f64"] and sum(a.size for a in data_arrays(data)) <= 300)):
            if cid not in fixture_ids:
                auto.add(fixture_kind(c))
            fixtures.append(fixture_case(c, data, cid))
    tmp = os.path.join(args.keep, "misc")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    extra_fails = []
    extra_n = 0
    if args.only is None:
        for fn in (lambda: check_literals(exe, tmp),
                   lambda: check_printing(exe, [(cid, c) for cid, c in cases[::25]], tmp,
                                          args.seed * 1000003),
                   lambda: check_bad_inputs(exe, tmp),
                   lambda: check_file_variants(exe, tmp)):
            n, f = fn()
            extra_n += n
            extra_fails += f
    print(f"stride crosscheck (seed {args.seed}): {len(cases)} configurations, "
          f"{counts['ok']} agree with PyTorch, {counts['rejected']} rejected by both, "
          f"{counts['fail']} mismatches; {extra_n} literal / printing / bad-input checks, "
          f"{len(extra_fails)} failures")
    print("  worst error / max(1, max|ref|): " + ", ".join(f"{k} {v:.2g}" for k, v in
                                                         sorted(WORST.items())))
    by_op = {}
    for (op, nd, algo), v in stats.items():
        by_op.setdefault(op, []).append(f"{nd}-D {algo}: {v}")
    for op, v in by_op.items():
        print(f"  {op}: " + ", ".join(sorted(v)))
    for cid, c, msg, repro in failures:
        desc = {k: c[k] for k in ("nd", "batched", "n", "cin", "cout", "groups", "k", "s", "d",
                                  "i", "pad_str", "mode", "flip", "algo", "op_pad", "bias", "f64")
                if k in c}
        print(f"\nMISMATCH case {cid} {c['op']} {desc}\n  {msg}\n  repro: {repro}")
    for msg, repro in extra_fails:
        print(f"\nFAIL {msg}\n  repro: {repro}")
    if args.fixture:
        with open(args.fixture, "w") as f:
            json.dump({"generator": "scripts/crosscheck.py", "seed": args.seed,
                       "cases": fixtures}, f, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {len(fixtures)} cases to {args.fixture}")
    return 1 if failures or extra_fails else 0


if __name__ == "__main__":
    sys.exit(main())
