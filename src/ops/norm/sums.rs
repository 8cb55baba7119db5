//! The channel sums of batch normalisation, `(Σ u, Σ v)` per channel for the forward moments
//! and the backward's two reductions: every `(image, channel)` plane summed by the same code
//! (16 f32 lanes, AVX-512 or portable with the same bits, then the lanes in f64), the planes
//! added per channel in image order on one thread — the same bits for any thread count.

use super::BnDims;
use crate::ops::simd::avx512;
use rayon::prelude::*;

/// f32 lanes per plane sum (a lane sums at most `L/16` values).
const LANES: usize = 16;

/// What a plane sum adds up, `(Σ u, Σ v)`.
#[derive(Clone, Copy, Debug)]
pub(super) enum Sum {
    /// Forward moments: `u = x - shift`, `v = u²` (`a = b = x`).
    Moments { shift: f32 },
    /// Backward: `u = g`, `v = g · (x - mu)·is` (`a = gy`, `b = x`), `g` zeroed where the fused
    /// ReLU cut (`scale·x + shift <= 0`) when `relu`.
    Grad {
        mu: f32,
        is: f32,
        scale: f32,
        shift: f32,
        relu: bool,
    },
}

impl Sum {
    /// `(u, v)` for one element; the AVX-512 kernel does the same operations 16 at a time.
    #[inline(always)]
    fn terms(self, a: f32, b: f32) -> (f32, f32) {
        match self {
            Sum::Moments { shift } => {
                let t = a - shift;
                (t, t * t)
            }
            Sum::Grad {
                mu,
                is,
                scale,
                shift,
                relu,
            } => {
                let g = if !relu || scale * b + shift > 0.0 {
                    a
                } else {
                    0.0
                };
                (g, g * ((b - mu) * is))
            }
        }
    }
}

/// `(Σ u, Σ v)` over one plane: 16 f32 lanes (lane `k` takes elements `k, k+16, …`), the
/// lanes then added in f64 in lane order, then the tail in f64. [`plane_sums_avx512`] gives
/// the same bits.
fn plane_sums(a: &[f32], b: &[f32], s: Sum) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if avx512() {
        // SAFETY: the CPU supports AVX-512 (checked just above).
        return unsafe { plane_sums_avx512(a, b, s) };
    }
    let (mut s0, mut s1) = ([0f32; LANES], [0f32; LANES]);
    let whole = a.len() / LANES * LANES;
    for (ca, cb) in a[..whole]
        .chunks_exact(LANES)
        .zip(b[..whole].chunks_exact(LANES))
    {
        for k in 0..LANES {
            let (u, v) = s.terms(ca[k], cb[k]);
            s0[k] += u;
            s1[k] += v;
        }
    }
    finish_sums(&s0, &s1, &a[whole..], &b[whole..], s)
}

/// The lanes added in f64 in order, then the tail's terms.
#[inline(always)]
fn finish_sums(s0: &[f32; LANES], s1: &[f32; LANES], a: &[f32], b: &[f32], s: Sum) -> (f64, f64) {
    let (mut t0, mut t1) = (0.0f64, 0.0f64);
    for k in 0..LANES {
        t0 += s0[k] as f64;
        t1 += s1[k] as f64;
    }
    for (&av, &bv) in a.iter().zip(b) {
        let (u, v) = s.terms(av, bv);
        t0 += u as f64;
        t1 += v as f64;
    }
    (t0, t1)
}

/// [`plane_sums`] with AVX-512 registers as the 16 lanes: the same operations per lane
/// (separate multiply and add, no FMA), so the same bits.
///
/// # Safety
/// The CPU must support AVX-512F ([`avx512`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn plane_sums_avx512(a: &[f32], b: &[f32], s: Sum) -> (f64, f64) {
    use std::arch::x86_64::*;
    let whole = a.len().min(b.len()) / LANES * LANES;
    let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    match s {
        Sum::Moments { shift } => {
            let sh = _mm512_set1_ps(shift);
            for j in (0..whole).step_by(LANES) {
                // SAFETY: j + 16 <= whole <= a.len()
                let t = _mm512_sub_ps(_mm512_loadu_ps(pa.add(j)), sh);
                s0 = _mm512_add_ps(s0, t);
                s1 = _mm512_add_ps(s1, _mm512_mul_ps(t, t));
            }
        }
        Sum::Grad {
            mu,
            is,
            scale,
            shift,
            relu,
        } => {
            let (mu, is) = (_mm512_set1_ps(mu), _mm512_set1_ps(is));
            let (sc, sh, zero) = (
                _mm512_set1_ps(scale),
                _mm512_set1_ps(shift),
                _mm512_setzero_ps(),
            );
            for j in (0..whole).step_by(LANES) {
                // SAFETY: j + 16 <= whole <= a.len(), b.len()
                let (mut g, x) = (_mm512_loadu_ps(pa.add(j)), _mm512_loadu_ps(pb.add(j)));
                if relu {
                    let pre = _mm512_add_ps(_mm512_mul_ps(sc, x), sh);
                    g = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(pre, zero), g);
                }
                let xh = _mm512_mul_ps(_mm512_sub_ps(x, mu), is);
                s0 = _mm512_add_ps(s0, g);
                s1 = _mm512_add_ps(s1, _mm512_mul_ps(g, xh));
            }
        }
    }
    let (mut l0, mut l1) = ([0f32; LANES], [0f32; LANES]);
    _mm512_storeu_ps(l0.as_mut_ptr(), s0);
    _mm512_storeu_ps(l1.as_mut_ptr(), s1);
    finish_sums(&l0, &l1, &a[whole..], &b[whole..], s)
}

/// Per channel `c`, `(Σ u, Σ v)` over all images of `(u, v) = f(c)(a, b)`: every plane summed
/// on its own (images in parallel), then the planes added per channel in image order.
pub(super) fn channel_sums(
    d: BnDims,
    a: &[f32],
    b: &[f32],
    f: impl Fn(usize) -> Sum + Sync,
) -> Vec<(f64, f64)> {
    let mut out = vec![(0.0f64, 0.0f64); d.c];
    if d.empty() {
        return out;
    }
    // planes: (N, C) sums
    let mut planes = vec![(0.0f64, 0.0f64); d.n * d.c];
    planes
        .par_chunks_mut(d.c)
        .zip(a.par_chunks(d.image()))
        .zip(b.par_chunks(d.image()))
        .with_min_len(d.min_images())
        .for_each(|((p, ai), bi)| {
            // for each channel of this image
            let rows = ai.chunks_exact(d.l).zip(bi.chunks_exact(d.l));
            for (c, (pc, (ac, bc))) in p.iter_mut().zip(rows).enumerate() {
                *pc = plane_sums(ac, bc, f(c));
            }
        });
    // for each image, in order
    for p in planes.chunks_exact(d.c) {
        for (o, q) in out.iter_mut().zip(p) {
            o.0 += q.0;
            o.1 += q.1;
        }
    }
    out
}
