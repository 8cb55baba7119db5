//! AVX-512 backward of max and min pooling with non-overlapping 2-wide windows along the width
//! (kernel = stride = 2, no width padding or dilation) and non-overlapping windows along the
//! height (kernel = stride, no height padding): every input cell lies in at most one window,
//! so the input gradient is a per-row expansion, written once (no zero fill, no scatter):
//!
//! `gx[h, c] = gy[h / kh, c / 2]` if `idx[h / kh, c / 2] == h·W + c`, else 0
//! (0 too for the rows and columns no window covers).
//!
//! Per input row and 16 outputs `o`: two compares give the even (`c = 2o`) and odd (`c = 2o + 1`)
//! cells, `vpermt2ps` interleaves them into 32 consecutive cells. The cells that matched are
//! counted: when some index does not lie in its own window (indices not from the forward pass)
//! the count falls short and the caller falls back to the scatter
//! ([`super::super::select::scatter`]), which adds every `gy` at its index or reports one
//! outside the plane — so the result is the scatter's for any indices.

use super::super::shape::PoolShape;
use super::super::windows::Windows;
use crate::ops::pool::Reduce;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::mem::MaybeUninit;

/// Whether the expansion applies: max, min or avg over 1 or 2 axes, width windows 2 wide at
/// stride 2 without padding or dilation, height windows at stride = kernel without padding.
pub fn applies(s: &PoolShape) -> bool {
    let (Some(win), Windows::Shared(_)) = (&s.window, &s.windows) else {
        return false;
    };
    let (ah, aw) = (&win.axes[1], &win.axes[2]);
    s.nd <= 2
        && matches!(s.reduce, Reduce::Max | Reduce::Min | Reduce::Avg(_))
        && (aw.kernel, aw.stride, aw.dilation, aw.pad_begin) == (2, 2, 1, 0)
        && ah.kernel == ah.stride
        && (ah.dilation == 1 || ah.kernel == 1)
        && ah.pad_begin == 0
}

/// The input gradient for `idx`, `gy` (planes × OH·OW), or `None` when the expansion does not
/// apply, AVX-512 is off, or some index lies outside its window (the caller then scatters).
pub fn backward(s: &PoolShape, idx: &[u32], gy: &[f32]) -> Option<Vec<f32>> {
    // narrow rows: the plane-wise scatter is cheaper (measured)
    let select = matches!(s.reduce, Reduce::Max | Reduce::Min);
    if !select || !applies(s) || s.output[2] < 8 || !crate::ops::simd::avx512() {
        return None;
    }
    let (in_len, out_len) = (s.in_len(), s.out_len());
    // about 16 tasks per thread, whole planes each
    let per = s.planes.div_ceil(rayon::current_num_threads() * 16).max(1);
    let mut gx = Box::<[f32]>::new_uninit_slice(s.planes * in_len);
    let ok = gx
        .par_chunks_mut(per * in_len)
        .zip(
            gy.par_chunks(per * out_len)
                .zip(idx.par_chunks(per * out_len)),
        )
        .all(|(gxc, (gyc, ic))| {
            // SAFETY: AVX-512 checked above; the chunks hold whole planes
            unsafe { expand_planes(s, gyc, ic, gxc) }
        });
    // SAFETY: `expand_planes` wrote every cell of every plane (all chunks ran: `ok`)
    ok.then(|| unsafe { gx.assume_init() }.into_vec())
}

/// Writes every cell of the planes of `gx`; returns whether every index was found in its
/// window.
///
/// # Safety
/// The CPU must support AVX-512 F (checked by the caller); `gx` holds whole planes, `gy` and
/// `idx` the same planes' outputs.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn expand_planes(
    s: &PoolShape,
    gy: &[f32],
    idx: &[u32],
    gx: &mut [MaybeUninit<f32>],
) -> bool {
    let [_, h, w] = s.input;
    let [_, oh, ow] = s.output;
    let kh = s.window.as_ref().map_or(1, |win| win.axes[1].kernel);
    let (in_len, out_len) = (h * w, oh * ow);
    let even2 = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(2),
    );
    let one = _mm512_set1_epi32(1);
    let lo_mix = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    let hi_mix = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    let zero = _mm512_setzero_ps();
    // per lane: cells matched (a lane counts at most one per row: even or odd)
    let mut hits = _mm512_setzero_si512();
    for (p, gxp) in gx.chunks_exact_mut(in_len).enumerate() {
        let (gyp, ip) = (
            &gy[p * out_len..][..out_len],
            &idx[p * out_len..][..out_len],
        );
        for r in 0..h {
            let dst = gxp[r * w..].as_mut_ptr() as *mut f32;
            let orow = r / kh;
            let mut c0 = 0;
            while c0 < w {
                // cells c0..c0+32 of this row: store masks for the cells inside the row
                let cells = (w - c0).min(32);
                let cm = if cells == 32 {
                    u32::MAX
                } else {
                    (1u32 << cells) - 1
                };
                let (mut lo, mut hi) = (zero, zero);
                let o0 = c0 / 2;
                if orow < oh && o0 < ow {
                    let n = (ow - o0).min(16);
                    let om = ((1u32 << n) - 1) as u16;
                    let at = o0 + orow * ow;
                    let iv = _mm512_maskz_loadu_epi32(om, ip[at..].as_ptr() as *const i32);
                    let g = _mm512_maskz_loadu_ps(om, gyp[at..].as_ptr());
                    let ev = _mm512_add_epi32(even2, _mm512_set1_epi32((r * w + c0) as i32));
                    let me = _mm512_mask_cmpeq_epi32_mask(om, iv, ev);
                    let mo = _mm512_mask_cmpeq_epi32_mask(om, iv, _mm512_add_epi32(ev, one));
                    hits = _mm512_mask_add_epi32(hits, me | mo, hits, one);
                    let (e, od) = (_mm512_maskz_mov_ps(me, g), _mm512_maskz_mov_ps(mo, g));
                    lo = _mm512_permutex2var_ps(e, lo_mix, od);
                    hi = _mm512_permutex2var_ps(e, hi_mix, od);
                }
                _mm512_mask_storeu_ps(dst.add(c0), cm as u16, lo);
                if cells > 16 {
                    _mm512_mask_storeu_ps(dst.add(c0 + 16), (cm >> 16) as u16, hi);
                }
                c0 += 32;
            }
        }
    }
    _mm512_reduce_add_epi32(hits) as usize == gy.len()
}

/// Average pooling's input gradient by the same expansion: `gx[h, c] = gy[h / kh, c / 2] /
/// div` (the divisor of that output cell, as [`super::backward`] computes it: `gy · (1/div)`),
/// 0 where no window covers the cell. `None` when it does not apply or AVX-512 is off.
pub fn backward_avg(s: &PoolShape, gy: &[f32]) -> Option<Vec<f32>> {
    if !matches!(s.reduce, Reduce::Avg(_)) || !applies(s) || !crate::ops::simd::avx512() {
        return None;
    }
    let inv = super::plan::Plan::new(s).inv;
    let (in_len, out_len) = (s.in_len(), s.out_len());
    let per = s.planes.div_ceil(rayon::current_num_threads() * 16).max(1);
    let mut gx = Box::<[f32]>::new_uninit_slice(s.planes * in_len);
    gx.par_chunks_mut(per * in_len)
        .zip(gy.par_chunks(per * out_len))
        .for_each(|(gxc, gyc)| {
            // SAFETY: AVX-512 checked above; the chunks hold whole planes
            unsafe { expand_avg_planes(s, &inv, gyc, gxc) }
        });
    // SAFETY: `expand_avg_planes` wrote every cell of every plane
    Some(unsafe { gx.assume_init() }.into_vec())
}

/// Writes every cell of the planes of `gx` from `gy · inv`.
///
/// # Safety
/// As [`expand_planes`]; `inv` holds `OH·OW` reciprocals.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn expand_avg_planes(s: &PoolShape, inv: &[f32], gy: &[f32], gx: &mut [MaybeUninit<f32>]) {
    let [_, h, w] = s.input;
    let [_, oh, ow] = s.output;
    let kh = s.window.as_ref().map_or(1, |win| win.axes[1].kernel);
    let (in_len, out_len) = (h * w, oh * ow);
    // each output lane twice: cells 2o and 2o + 1
    let lo_dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    let hi_dup = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    let zero = _mm512_setzero_ps();
    for (p, gxp) in gx.chunks_exact_mut(in_len).enumerate() {
        let gyp = &gy[p * out_len..][..out_len];
        for r in 0..h {
            let dst = gxp[r * w..].as_mut_ptr() as *mut f32;
            let orow = r / kh;
            let mut c0 = 0;
            while c0 < w {
                let cells = (w - c0).min(32);
                let cm = if cells == 32 {
                    u32::MAX
                } else {
                    (1u32 << cells) - 1
                };
                let (mut lo, mut hi) = (zero, zero);
                let o0 = c0 / 2;
                if orow < oh && o0 < ow {
                    let om = ((1u32 << (ow - o0).min(16)) - 1) as u16;
                    let at = o0 + orow * ow;
                    let g = _mm512_mul_ps(
                        _mm512_maskz_loadu_ps(om, gyp[at..].as_ptr()),
                        _mm512_maskz_loadu_ps(om, inv[at..].as_ptr()),
                    );
                    lo = _mm512_permutexvar_ps(lo_dup, g);
                    hi = _mm512_permutexvar_ps(hi_dup, g);
                }
                _mm512_mask_storeu_ps(dst.add(c0), cm as u16, lo);
                if cells > 16 {
                    _mm512_mask_storeu_ps(dst.add(c0 + 16), (cm >> 16) as u16, hi);
                }
                c0 += 32;
            }
        }
    }
}
