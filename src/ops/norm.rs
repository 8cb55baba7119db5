//! Batch normalisation (PyTorch `F.batch_norm`), forward next to backward.
//!
//! Layout `x: (N, C, L)` where `L` is the product of the spatial axes (1 for `BatchNorm1d` on
//! `(N, C)`). Per channel `c`, over the `M = N·L` values:
//! - train: `μ = mean x`, `σ² = mean (x - μ)²` (biased), `x̂ = (x - μ)/√(σ² + ε)`,
//!   `y = γ x̂ + β`; running stats `r ← (1 - m) r + m · batch` with the *unbiased* variance
//!   `σ² · M/(M-1)` (PyTorch);
//! - eval: the same with the running mean and variance;
//! - backward (train): `gx = γ/√(σ²+ε) · (gy - mean gy - x̂ · mean(gy · x̂))`,
//!   `gγ = Σ gy · x̂`, `gβ = Σ gy`; (eval): `gx = γ/√(r_var + ε) · gy`.
//!
//! Channel statistics are accumulated in f64, one channel per task (deterministic).
//!
//! A following ReLU can be fused in (`relu = true`): the forward writes `y = max(γ x̂ + β, 0)`
//! in its one affine pass, and the backward masks `gy` where `γ x̂ + β <= 0` (PyTorch's ReLU
//! gradient, 0 at 0), recomputing the pre-activation from the cached `x` and the same per-channel
//! `scale·x + shift` (bit-identical to the forward), so neither a ReLU pass nor a ReLU cache is
//! needed. Each direction reads the input twice (statistics, then the element-wise pass) and
//! writes once; the backward works in place on `gy`.

use crate::error::{Error, Result};
use rayon::prelude::*;

/// Sizes `N`, `C`, `L` of a batch-norm input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnDims {
    pub n: usize,
    pub c: usize,
    pub l: usize,
}

impl BnDims {
    /// The `L` values of channel `c` in image `i`.
    fn plane<'a>(&self, x: &'a [f32], i: usize, c: usize) -> &'a [f32] {
        &x[(i * self.c + c) * self.l..][..self.l]
    }
}

/// What the backward needs: per-channel mean and `1/√(σ² + ε)` used, the affine
/// `y = scale·x + shift` applied, and whether a ReLU was fused in.
#[derive(Clone, Debug, Default)]
pub struct BnStats {
    pub mean: Vec<f32>,
    pub invstd: Vec<f32>,
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    pub relu: bool,
}

/// The fused ReLU's gradient mask: whether `scale·x + shift` (the pre-activation) is kept.
#[inline(always)]
fn kept(relu: bool, a: f32, b: f32, x: f32) -> bool {
    !relu || a * x + b > 0.0
}

/// `(Σ u, Σ v)` over one plane, `(u, v) = f(a[j], b[j])`: 16 f32 lanes per plane (so the loop
/// vectorises; a lane sums at most `L/16` values), the lanes then added in f64.
#[inline(always)]
fn plane_sums(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> (f32, f32)) -> (f64, f64) {
    const LANES: usize = 16;
    let (mut s0, mut s1) = ([0f32; LANES], [0f32; LANES]);
    let whole = a.len() / LANES * LANES;
    for (ca, cb) in a[..whole]
        .chunks_exact(LANES)
        .zip(b[..whole].chunks_exact(LANES))
    {
        for k in 0..LANES {
            let (u, v) = f(ca[k], cb[k]);
            s0[k] += u;
            s1[k] += v;
        }
    }
    let (mut t0, mut t1) = (0.0f64, 0.0f64);
    for k in 0..LANES {
        t0 += s0[k] as f64;
        t1 += s1[k] as f64;
    }
    for (&av, &bv) in a[whole..].iter().zip(&b[whole..]) {
        let (u, v) = f(av, bv);
        t0 += u as f64;
        t1 += v as f64;
    }
    (t0, t1)
}

/// Per channel `c`, `(Σ u, Σ v)` over all images of `(u, v) = f(c)(a, b)`; one channel per task,
/// planes in image order (deterministic).
fn channel_sums<F>(
    d: BnDims,
    a: &[f32],
    b: &[f32],
    f: impl Fn(usize) -> F + Sync,
) -> Vec<(f64, f64)>
where
    F: Fn(f32, f32) -> (f32, f32),
{
    (0..d.c)
        .into_par_iter()
        .map(|c| {
            let fc = f(c);
            let (mut s0, mut s1) = (0.0f64, 0.0f64);
            for i in 0..d.n {
                let (u, v) = plane_sums(d.plane(a, i, c), d.plane(b, i, c), &fc);
                s0 += u;
                s1 += v;
            }
            (s0, s1)
        })
        .collect()
}

/// `y[i, c, :] = scale[c] · x[i, c, :] + shift[c]` (then `max(·, 0)` when `relu`), images in
/// parallel.
fn affine(d: BnDims, x: &[f32], scale: &[f32], shift: &[f32], relu: bool, y: &mut [f32]) {
    y.par_chunks_mut(d.c * d.l)
        .zip(x.par_chunks(d.c * d.l))
        .for_each(|(yi, xi)| {
            for c in 0..d.c {
                let (a, b) = (scale[c], shift[c]);
                let (yp, xp) = (&mut yi[c * d.l..][..d.l], &xi[c * d.l..][..d.l]);
                if relu {
                    yp.iter_mut()
                        .zip(xp)
                        .for_each(|(y, &x)| *y = (a * x + b).max(0.0));
                } else {
                    yp.iter_mut().zip(xp).for_each(|(y, &x)| *y = a * x + b);
                }
            }
        });
}

/// Train-mode forward: normalises with batch statistics and updates the running ones; `relu`
/// fuses a following ReLU.
#[allow(clippy::too_many_arguments)]
pub fn forward_train(
    d: BnDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    momentum: f32,
    running_mean: &mut [f32],
    running_var: &mut [f32],
    relu: bool,
    y: &mut [f32],
) -> Result<BnStats> {
    let m = d.n * d.l;
    if m < 2 {
        return Err(Error::arg(
            "input",
            format!(
                "batch norm in training mode needs more than 1 value per channel (got {m}); \
                 use a batch of at least 2 or eval mode"
            ),
        ));
    }
    // per channel: Σx and Σx² (shifted by the first value for accuracy)
    let shift: Vec<f32> = (0..d.c).map(|c| x[c * d.l]).collect();
    let sums = channel_sums(d, x, x, |c| {
        let sh = shift[c];
        move |v: f32, _| {
            let t = v - sh;
            (t, t * t)
        }
    });
    let mut stats = BnStats {
        relu,
        ..BnStats::default()
    };
    let (mut scale, mut offs) = (vec![0.0; d.c], vec![0.0; d.c]);
    for (c, &(s, ss)) in sums.iter().enumerate() {
        let mt = s / m as f64;
        let var = (ss / m as f64 - mt * mt).max(0.0);
        let mean = mt + shift[c] as f64;
        let invstd = 1.0 / (var + eps as f64).sqrt();
        stats.mean.push(mean as f32);
        stats.invstd.push(invstd as f32);
        scale[c] = (gamma[c] as f64 * invstd) as f32;
        offs[c] = (beta[c] as f64 - mean * gamma[c] as f64 * invstd) as f32;
        let unbiased = var * m as f64 / (m - 1) as f64;
        running_mean[c] =
            ((1.0 - momentum) as f64 * running_mean[c] as f64 + momentum as f64 * mean) as f32;
        running_var[c] =
            ((1.0 - momentum) as f64 * running_var[c] as f64 + momentum as f64 * unbiased) as f32;
    }
    affine(d, x, &scale, &offs, relu, y);
    stats.scale = scale;
    stats.shift = offs;
    Ok(stats)
}

/// Eval-mode forward: `y = γ (x - r_mean)/√(r_var + ε) + β` (then `max(·, 0)` when `relu`).
/// Returns the statistics used.
#[allow(clippy::too_many_arguments)]
pub fn forward_eval(
    d: BnDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    running_mean: &[f32],
    running_var: &[f32],
    relu: bool,
    y: &mut [f32],
) -> BnStats {
    let invstd: Vec<f32> = running_var
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps as f64).sqrt()) as f32)
        .collect();
    let scale: Vec<f32> = (0..d.c).map(|c| gamma[c] * invstd[c]).collect();
    let offs: Vec<f32> = (0..d.c)
        .map(|c| beta[c] - running_mean[c] * scale[c])
        .collect();
    affine(d, x, &scale, &offs, relu, y);
    BnStats {
        mean: running_mean.to_vec(),
        invstd,
        scale,
        shift: offs,
        relu,
    }
}

/// Backward. `train` selects the batch-statistics formula (statistics depend on x) or the
/// eval one (fixed statistics). `g` holds `gy` on entry (masked by the fused ReLU, if any) and
/// `gx` on return; `ggamma`, `gbeta` are overwritten.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    d: BnDims,
    x: &[f32],
    gamma: &[f32],
    stats: &BnStats,
    train: bool,
    g: &mut [f32],
    ggamma: &mut [f32],
    gbeta: &mut [f32],
) {
    let (mean, invstd, relu) = (&stats.mean, &stats.invstd, stats.relu);
    let (scale, shift) = (&stats.scale, &stats.shift);
    // per channel: Σ gy and Σ gy·x̂ (gy masked by the fused ReLU)
    let sums = channel_sums(d, g, x, |c| {
        let (mu, is, a, b) = (mean[c], invstd[c], scale[c], shift[c]);
        move |gv: f32, xv: f32| {
            let gv = if kept(relu, a, b, xv) { gv } else { 0.0 };
            (gv, gv * ((xv - mu) * is))
        }
    });
    let m = (d.n * d.l) as f64;
    let mut mg = vec![0.0f32; d.c];
    let mut mgx = vec![0.0f32; d.c];
    for (c, &(sg, sgx)) in sums.iter().enumerate() {
        gbeta[c] = sg as f32;
        ggamma[c] = sgx as f32;
        if train {
            mg[c] = (sg / m) as f32;
            mgx[c] = (sgx / m) as f32;
        }
    }
    g.par_chunks_mut(d.c * d.l)
        .zip(x.par_chunks(d.c * d.l))
        .for_each(|(gi, xi)| {
            for c in 0..d.c {
                let k = gamma[c] * invstd[c];
                let (a, b) = (scale[c], shift[c]);
                let r = c * d.l..(c + 1) * d.l;
                for (gv, &xv) in gi[r.clone()].iter_mut().zip(&xi[r]) {
                    let gy = if kept(relu, a, b, xv) { *gv } else { 0.0 };
                    let xh = (xv - mean[c]) * invstd[c];
                    *gv = k * (gy - mg[c] - xh * mgx[c]);
                }
            }
        });
}
