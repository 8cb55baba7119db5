//! Batch normalisation (PyTorch `F.batch_norm`), forward next to backward; the slow f64
//! [`reference`](mod@reference) beside it.
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
//! A following ReLU can be fused in (`relu = true`): the forward writes `y = max(γ x̂ + β, 0)`
//! in its one affine pass, and the backward masks `gy` where `γ x̂ + β <= 0` (PyTorch's ReLU
//! gradient, 0 at 0), recomputing the pre-activation from the cached `x` and the same per-channel
//! `scale·x + shift` (bit-identical to the forward), so neither a ReLU pass nor a ReLU cache is
//! needed.
//!
//! Speed: each direction makes two passes over memory — the channel sums (read), then one
//! element-wise pass (read, write; the backward in place on `gy`) — both split over images
//! (each image's `C·L` values are contiguous) and compiled 16 lanes wide for AVX-512 (`*_wide`
//! wrappers). Per-channel constants are hoisted out of the inner loops, which see exact-length
//! slices (no bounds checks, no divisions).
//!
//! Determinism: every `(image, channel)` plane is summed by the same code (16 f32 lanes, then
//! the lanes in f64); the planes are then added per channel in image order, in f64, on one
//! thread. The result is the same bits for any thread count.

pub mod reference;
mod sums;

use crate::error::{Error, Result};
use crate::ops::simd::avx512;
use rayon::prelude::*;
use sums::{channel_sums, Sum};

/// Sizes `N`, `C`, `L` of a batch-norm input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnDims {
    pub n: usize,
    pub c: usize,
    pub l: usize,
}

impl BnDims {
    /// Values per image, `C·L`.
    fn image(&self) -> usize {
        self.c * self.l
    }

    /// Images per parallel task: at least ~32K values each, so small inputs stay on one thread.
    fn min_images(&self) -> usize {
        ((1 << 15) / self.image().max(1)).max(1)
    }

    /// Whether there is nothing to compute (an empty axis).
    fn empty(&self) -> bool {
        self.n == 0 || self.c == 0 || self.l == 0
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

/// One image of [`affine`] (`inline(always)`: compiled inside the AVX-512 wrapper). The same expression
/// whether in place or not, so both give the same bits.
#[inline(always)]
fn affine_image(
    l: usize,
    yi: &mut [f32],
    xi: Option<&[f32]>,
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) {
    // for each channel: y = a·x + b (then max(·, 0))
    for (c, yp) in yi.chunks_exact_mut(l).enumerate() {
        let (a, b) = (scale[c], shift[c]);
        match (xi, relu) {
            (Some(xi), true) => {
                let xp = &xi[c * l..][..l];
                for (y, &x) in yp.iter_mut().zip(xp) {
                    *y = (a * x + b).max(0.0);
                }
            }
            (Some(xi), false) => {
                let xp = &xi[c * l..][..l];
                for (y, &x) in yp.iter_mut().zip(xp) {
                    *y = a * x + b;
                }
            }
            (None, true) => {
                for y in yp.iter_mut() {
                    *y = (a * *y + b).max(0.0);
                }
            }
            (None, false) => {
                for y in yp.iter_mut() {
                    *y = a * *y + b;
                }
            }
        }
    }
}

/// [`affine_image`], compiled for AVX-512 when the CPU has it.
fn affine_image_wide(
    l: usize,
    yi: &mut [f32],
    xi: Option<&[f32]>,
    scale: &[f32],
    shift: &[f32],
    relu: bool,
) {
    #[cfg(target_arch = "x86_64")]
    {
        /// # Safety
        /// The CPU must support AVX-512F ([`avx512`]).
        #[target_feature(enable = "avx512f")]
        unsafe fn wide(
            l: usize,
            yi: &mut [f32],
            xi: Option<&[f32]>,
            scale: &[f32],
            shift: &[f32],
            relu: bool,
        ) {
            affine_image(l, yi, xi, scale, shift, relu)
        }
        if avx512() {
            // SAFETY: the CPU supports AVX-512 (checked just above).
            return unsafe { wide(l, yi, xi, scale, shift, relu) };
        }
    }
    affine_image(l, yi, xi, scale, shift, relu)
}

/// `y[i, c, :] = scale[c] · x[i, c, :] + shift[c]` (then `max(·, 0)` when `relu`), images in
/// parallel; in place on `y` when `x` is `None`.
fn affine(d: BnDims, x: Option<&[f32]>, scale: &[f32], shift: &[f32], relu: bool, y: &mut [f32]) {
    if d.empty() {
        return;
    }
    let ys = y.par_chunks_mut(d.image()).with_min_len(d.min_images());
    match x {
        Some(x) => ys
            .zip(x.par_chunks(d.image()))
            .for_each(|(yi, xi)| affine_image_wide(d.l, yi, Some(xi), scale, shift, relu)),
        None => ys.for_each(|yi| affine_image_wide(d.l, yi, None, scale, shift, relu)),
    }
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
    // pass 1, per channel: Σx and Σx² (shifted by the first value for accuracy)
    let shift: Vec<f32> = (0..d.c).map(|c| x[c * d.l]).collect();
    let sums = channel_sums(d, x, x, |c| Sum::Moments { shift: shift[c] });
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
    // pass 2
    affine(d, Some(x), &scale, &offs, relu, y);
    stats.scale = scale;
    stats.shift = offs;
    Ok(stats)
}

/// The eval-mode statistics: `scale = γ/√(r_var + ε)`, `shift = β - r_mean · scale`.
fn eval_stats(
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    running_mean: &[f32],
    running_var: &[f32],
    relu: bool,
) -> BnStats {
    let invstd: Vec<f32> = running_var
        .iter()
        .map(|&v| (1.0 / (v as f64 + eps as f64).sqrt()) as f32)
        .collect();
    let scale: Vec<f32> = gamma.iter().zip(&invstd).map(|(g, i)| g * i).collect();
    let shift = (0..gamma.len())
        .map(|c| beta[c] - running_mean[c] * scale[c])
        .collect();
    BnStats {
        mean: running_mean.to_vec(),
        invstd,
        scale,
        shift,
        relu,
    }
}

/// Eval-mode forward: `y = γ (x - r_mean)/√(r_var + ε) + β` (then `max(·, 0)` when `relu`),
/// one pass; in place on `y` when `x` is `None`. Returns the statistics used.
#[allow(clippy::too_many_arguments)]
pub fn forward_eval(
    d: BnDims,
    x: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    running_mean: &[f32],
    running_var: &[f32],
    relu: bool,
    y: &mut [f32],
) -> BnStats {
    let stats = eval_stats(gamma, beta, eps, running_mean, running_var, relu);
    affine(d, x, &stats.scale, &stats.shift, relu, y);
    stats
}

/// Backward. `train` selects the batch-statistics formula (statistics depend on x) or the
/// eval one (fixed statistics). `g` holds `gy` on entry (masked by the fused ReLU, if any) and
/// `gx` on return (left as is when `!want_input_grad`); `ggamma`, `gbeta` are overwritten.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    d: BnDims,
    x: &[f32],
    gamma: &[f32],
    stats: &BnStats,
    train: bool,
    want_input_grad: bool,
    g: &mut [f32],
    ggamma: &mut [f32],
    gbeta: &mut [f32],
) {
    let (mean, invstd, scale, shift) = (&stats.mean, &stats.invstd, &stats.scale, &stats.shift);
    // pass 1, per channel: Σ gy and Σ gy·x̂ (gy masked by the fused ReLU)
    let sums = channel_sums(d, g, x, |c| Sum::Grad {
        mu: mean[c],
        is: invstd[c],
        scale: scale[c],
        shift: shift[c],
        relu: stats.relu,
    });
    let m = (d.n * d.l) as f64;
    // per channel: gx = k · (gy - mg - x̂ · mgx)
    let (mut mg, mut mgx) = (vec![0.0f32; d.c], vec![0.0f32; d.c]);
    for (c, &(sg, sgx)) in sums.iter().enumerate() {
        gbeta[c] = sg as f32;
        ggamma[c] = sgx as f32;
        if train {
            mg[c] = (sg / m) as f32;
            mgx[c] = (sgx / m) as f32;
        }
    }
    if !want_input_grad || d.empty() {
        return;
    }
    // pass 2, in place
    let consts = GradConsts {
        stats,
        gamma,
        mg: &mg,
        mgx: &mgx,
    };
    g.par_chunks_mut(d.image())
        .zip(x.par_chunks(d.image()))
        .with_min_len(d.min_images())
        .for_each(|(gi, xi)| grad_image_wide(d.l, gi, xi, &consts));
}

/// The per-channel constants of the input gradient.
struct GradConsts<'a> {
    stats: &'a BnStats,
    gamma: &'a [f32],
    /// `mean gy`, `mean gy·x̂` (zero in eval mode).
    mg: &'a [f32],
    mgx: &'a [f32],
}

/// [`grad_image`], compiled for AVX-512 when the CPU has it.
fn grad_image_wide(l: usize, gi: &mut [f32], xi: &[f32], k: &GradConsts) {
    #[cfg(target_arch = "x86_64")]
    {
        /// # Safety
        /// The CPU must support AVX-512F ([`avx512`]).
        #[target_feature(enable = "avx512f")]
        unsafe fn wide(l: usize, gi: &mut [f32], xi: &[f32], k: &GradConsts) {
            grad_image(l, gi, xi, k)
        }
        if avx512() {
            // SAFETY: the CPU supports AVX-512 (checked just above).
            return unsafe { wide(l, gi, xi, k) };
        }
    }
    grad_image(l, gi, xi, k)
}

/// One image of the input gradient, in place on `gi` (`inline(always)`: compiled inside
/// the AVX-512 wrapper): `gx = k · (gy - mg - x̂ · mgx)`, `k = γ/√(σ²+ε)`, `gy` masked by the fused ReLU.
#[inline(always)]
fn grad_image(l: usize, gi: &mut [f32], xi: &[f32], k: &GradConsts) {
    let s = k.stats;
    // for each channel
    for (c, (gp, xp)) in gi.chunks_exact_mut(l).zip(xi.chunks_exact(l)).enumerate() {
        let (kc, mu, is) = (k.gamma[c] * s.invstd[c], s.mean[c], s.invstd[c]);
        let (mg, mgx, a, b) = (k.mg[c], k.mgx[c], s.scale[c], s.shift[c]);
        if s.relu {
            for (gv, &xv) in gp.iter_mut().zip(xp) {
                let gy = if a * xv + b > 0.0 { *gv } else { 0.0 };
                *gv = kc * (gy - mg - (xv - mu) * is * mgx);
            }
        } else {
            for (gv, &xv) in gp.iter_mut().zip(xp) {
                *gv = kc * (*gv - mg - (xv - mu) * is * mgx);
            }
        }
    }
}
