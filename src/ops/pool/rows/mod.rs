//! Fast sliding max, min and average pooling over 1-D and 2-D planes, forward and (average)
//! backward, one pass over the input, vectorised along the width.
//!
//! An output row `oh` reads the input rows of its height span. Per output row:
//! 1. vertical: those rows are combined element-wise into one padded row `pv` of the width's
//!    padded coordinates `q = w + pb` (max/min: the running extreme and its flat index `h·W + w`;
//!    avg: the sum). The padding cells of `pv` hold −∞ (index `u32::MAX`) or 0 and never change.
//! 2. the padded row is split into `s` phases, `phase[r][m] = pv[m·s + r]` (stride `s`).
//! 3. horizontal: tap `j` of output `o` reads `q = o·s + j·d = (o + m_j)·s + r_j`, i.e.
//!    `phase[r_j][o + m_j]`, a contiguous slice per tap, so each tap is one element-wise step over
//!    the whole output row (vectorised: the row loop is compiled for AVX-512 where
//!    [`crate::ops::simd::avx512`] allows). The forward lays the padded rows of a block of output
//!    rows end to end, so steps 2 and 3 run once per block: long loops even on narrow planes.
//!
//! Ties and NaN as PyTorch (and [`super::reduce`]'s reference): in row-major window order the
//! first maximum wins, a NaN wins and the last NaN wins. The vertical step keeps the first
//! maximum of each column (`v > best || v is NaN`); across columns the horizontal step picks the
//! larger value, on equal values the smaller flat index, and among NaNs the larger one — a total
//! order on (value, index), so the result is the reference's whatever the grouping.
//!
//! Average sums are f32 (windows of at most [`MAX_AVG_TAPS`] taps) and multiply by the
//! reciprocal of each cell's divisor ([`super::reduce::Divisor::for_window`], the reference's
//! rule). Backward of average pooling is the exact adjoint: `g = gy / div`, spread over the
//! phases, interleaved back into a padded row and added to every input row of the height span.
//! Max/min backward is the index scatter of [`super::select::scatter`].
//!
//! The shared steps and buffers are in `plan.rs` beside this file. With AVX-512, max and min
//! with width stride 1 or 2 and at most 16 outputs per row take `direct.rs` instead (every tap straight from the input rows,
//! several narrow output rows per vector; the same tie and NaN rule), average pooling with
//! 2-wide windows at stride 2 its `avg_rows`, and non-overlapping
//! 2-wide windows take `expand.rs` backward (max, min and average: each gradient row written
//! once, no zero fill, no scatter). The phase path above stays the portable one
//! (`STRIDE_SIMD=portable`) and covers the other strides.
//!
//! `activated.rs` holds the kernels of [`super::activated`] (an activation and 2×2 average or
//! max pooling in one pass, in blocks of planes).
//!
//! Work is split over both cores by output rows (forward) and planes (backward: output rows of
//! one plane may share input rows).

pub(super) mod activated;
#[cfg(target_arch = "x86_64")]
mod direct;
#[cfg(target_arch = "x86_64")]
pub mod expand;
mod plan;

use super::reduce::Reduce;
use super::shape::PoolShape;
use super::windows::Windows;
use plan::{
    horizontal_extreme, interleave, split, vertical_extreme, vertical_sum, Lane, Plan, Scratch,
    BLOCK_CELLS,
};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Largest average window summed in f32 here.
pub const MAX_AVG_TAPS: usize = 64;

/// Whether this path applies: a sliding max, min or avg pooling over 1 or 2 spatial axes.
pub fn applies(s: &PoolShape) -> bool {
    let (Some(w), Windows::Shared(_)) = (&s.window, &s.windows) else {
        return false;
    };
    let taps = w.axes[1].kernel * w.axes[2].kernel;
    s.nd <= 2
        && match s.reduce {
            Reduce::Max | Reduce::Min => true,
            Reduce::Avg(_) => taps <= MAX_AVG_TAPS,
            _ => false,
        }
}

/// Forward over all planes; requires [`applies`]. `x`: planes × H·W; `y` (and `idx`, the
/// in-plane index of each max/min): planes × OH·OW, overwritten.
pub fn forward(s: &PoolShape, x: &[f32], y: &mut [f32], idx: Option<&mut [u32]>) {
    // SAFETY: MaybeUninit<T> has the layout of T, and `forward_uninit` only writes initialised
    // values into these views
    let y = unsafe { &mut *(y as *mut [f32] as *mut [MaybeUninit<f32>]) };
    let idx = idx.map(|i| unsafe { &mut *(i as *mut [u32] as *mut [MaybeUninit<u32>]) });
    forward_uninit(s, x, y, idx)
}

/// [`forward`] into new buffers, written once (no zero fill first): the output and, when
/// `with_idx` for max/min, the indices.
pub fn forward_new(s: &PoolShape, x: &[f32], with_idx: bool) -> (Vec<f32>, Option<Vec<u32>>) {
    let n = s.planes * s.out_len();
    let with_idx = with_idx && matches!(s.reduce, Reduce::Max | Reduce::Min);
    let mut y = Box::<[f32]>::new_uninit_slice(n);
    let mut idx = with_idx.then(|| Box::<[u32]>::new_uninit_slice(n));
    // debug builds (the tests) poison the buffers: a cell the kernel missed shows
    #[cfg(debug_assertions)]
    {
        y.iter_mut().for_each(|v| {
            v.write(f32::NAN);
        });
        idx.iter_mut().flat_map(|i| i.iter_mut()).for_each(|v| {
            v.write(u32::MAX);
        });
    }
    forward_uninit(s, x, &mut y, idx.as_deref_mut());
    // SAFETY: `forward_uninit` writes every output row of every plane, and for max/min every
    // index (the indices exist only for max/min)
    unsafe {
        (
            y.assume_init().into_vec(),
            idx.map(|i| i.assume_init().into_vec()),
        )
    }
}

/// The forward on possibly uninitialised outputs: writes every cell of `y` and of `idx`
/// (max/min).
fn forward_uninit(
    s: &PoolShape,
    x: &[f32],
    y: &mut [MaybeUninit<f32>],
    idx: Option<&mut [MaybeUninit<u32>]>,
) {
    let p = Plan::new(s);
    let rows = s.planes * p.oh;
    // about 16 tasks per thread, whole output rows each
    let per = rows.div_ceil(rayon::current_num_threads() * 16).max(1);
    let chunk = per * p.ow;
    let run = |t: usize, yc: &mut [MaybeUninit<f32>], ic: Option<&mut [MaybeUninit<u32>]>| {
        #[cfg(target_arch = "x86_64")]
        if crate::ops::simd::avx512() {
            if direct::applies_avg(&p) && ic.is_none() {
                // SAFETY: AVX-512 checked just above, `applies_avg` too; whole rows of `y`
                return unsafe { direct::avg_rows(&p, x, t * per, yc) };
            }
            if direct::applies(&p) {
                // SAFETY: AVX-512 checked just above, `applies` too; whole rows of every buffer
                return unsafe { direct::forward_rows(&p, x, t * per, yc, ic) };
            }
            // SAFETY: the CPU has the features `forward_rows_avx512` enables (checked just above).
            return unsafe { forward_rows_avx512(&p, x, t * per, yc, ic) };
        }
        forward_rows(&p, x, t * per, yc, ic)
    };
    match idx {
        Some(idx) => y
            .par_chunks_mut(chunk)
            .zip(idx.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(t, (yc, ic))| run(t, yc, Some(ic))),
        None => y
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(t, yc)| run(t, yc, None)),
    }
}

/// [`forward_rows`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support the features enabled here; callers check [`crate::ops::simd::avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn forward_rows_avx512(
    p: &Plan,
    x: &[f32],
    row0: usize,
    y: &mut [MaybeUninit<f32>],
    idx: Option<&mut [MaybeUninit<u32>]>,
) {
    forward_rows(p, x, row0, y, idx)
}

/// Output rows `row0..` (global over planes) into `y` (whole rows), and their indices; a block
/// of rows at a time: the rows' padded rows lie end to end, so one split and one pass per tap
/// serve the whole block (a row's taps stay inside its own `M` cells: `OW + reach <= M`).
#[inline(always)]
fn forward_rows(
    p: &Plan,
    x: &[f32],
    row0: usize,
    y: &mut [MaybeUninit<f32>],
    mut idx: Option<&mut [MaybeUninit<u32>]>,
) {
    let rows = y.len() / p.ow;
    let block = (BLOCK_CELLS / p.pv_len).clamp(1, rows.max(1));
    let mut sc = Scratch::new(p, block);
    let in_len = p.h * p.w;
    let mut r = 0;
    while r < rows {
        let nr = block.min(rows - r);
        // phase length of this block, and the outputs computed (all that stay in range)
        let (len, n) = (nr * p.m, nr * p.m - p.reach);
        for k in 0..nr {
            let (plane, oh) = ((row0 + r + k) / p.oh, (row0 + r + k) % p.oh);
            let xp = &x[plane * in_len..][..in_len];
            let at = k * p.pv_len + p.pb;
            match p.lane {
                Lane::Extreme { sign } => {
                    let (dv, di) = (&mut sc.pv[at..at + p.w], &mut sc.pvi[at..at + p.w]);
                    vertical_extreme(p.w, xp, &p.hspans[oh], sign, dv, di);
                }
                Lane::Avg(_) => vertical_sum(p.w, xp, &p.hspans[oh], &mut sc.pv[at..at + p.w]),
            }
        }
        split(p.s, len, &sc.pv[..nr * p.pv_len], &mut sc.ph[..p.s * len]);
        match p.lane {
            Lane::Extreme { sign } => {
                split(p.s, len, &sc.pvi[..nr * p.pv_len], &mut sc.phi[..p.s * len]);
                horizontal_extreme(p, len, n, &mut sc);
                for k in 0..nr {
                    let yr = &mut y[(r + k) * p.ow..][..p.ow];
                    for (yv, a) in yr.iter_mut().zip(&sc.acc[k * p.m..]) {
                        yv.write(sign * a);
                    }
                    if let Some(ic) = idx.as_deref_mut() {
                        let ir = &mut ic[(r + k) * p.ow..][..p.ow];
                        for (iv, a) in ir.iter_mut().zip(&sc.acci[k * p.m..]) {
                            iv.write(*a);
                        }
                    }
                }
            }
            Lane::Avg(_) => {
                let acc = &mut sc.acc[..n];
                acc.fill(0.0);
                for &(rj, mj) in &p.taps {
                    for (a, v) in acc.iter_mut().zip(&sc.ph[rj * len + mj..][..n]) {
                        *a += v;
                    }
                }
                for k in 0..nr {
                    let oh = (row0 + r + k) % p.oh;
                    let yr = &mut y[(r + k) * p.ow..][..p.ow];
                    let inv = &p.inv[oh * p.ow..][..p.ow];
                    for ((yv, a), i) in yr.iter_mut().zip(&sc.acc[k * p.m..]).zip(inv) {
                        yv.write(a * i);
                    }
                }
            }
        }
        r += nr;
    }
}

/// Backward of average pooling (the exact adjoint of [`forward`]'s avg lane), added to `gx`:
/// planes × H·W; `gy`: planes × OH·OW. Max and min go through the index scatter instead.
pub fn backward(s: &PoolShape, gy: &[f32], gx: &mut [f32]) {
    let p = Plan::new(s);
    if !matches!(p.lane, Lane::Avg(_)) {
        return;
    }
    let out_len = p.oh * p.ow;
    // scratch buffers once per rayon task, not per plane
    gx.par_chunks_mut(p.h * p.w)
        .zip(gy.par_chunks(out_len))
        .for_each_init(
            || Scratch::new(&p, (BLOCK_CELLS / p.pv_len).clamp(1, p.oh)),
            |sc, (gxp, gyp)| {
                #[cfg(target_arch = "x86_64")]
                if crate::ops::simd::avx512() {
                    // SAFETY: the CPU has the features `backward_plane_avx512` enables (checked).
                    return unsafe { backward_plane_avx512(&p, gyp, gxp, sc) };
                }
                backward_plane(&p, gyp, gxp, sc)
            },
        );
}

/// [`backward_plane`] compiled for AVX-512.
///
/// # Safety
/// The CPU must support the features enabled here; callers check [`crate::ops::simd::avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
unsafe fn backward_plane_avx512(p: &Plan, gyp: &[f32], gxp: &mut [f32], sc: &mut Scratch) {
    backward_plane(p, gyp, gxp, sc)
}

/// One plane of the average backward, a block of output rows at a time (as the forward): per
/// row `g = gy·inv` (0 past `OW`), spread to the phases of each tap, interleaved into the padded
/// rows, each added to every input row of its height span.
#[inline(always)]
fn backward_plane(p: &Plan, gyp: &[f32], gxp: &mut [f32], sc: &mut Scratch) {
    let block = (BLOCK_CELLS / p.pv_len).clamp(1, p.oh);
    let mut oh0 = 0;
    while oh0 < p.oh {
        let nr = block.min(p.oh - oh0);
        let (len, n) = (nr * p.m, nr * p.m - p.reach);
        let acc = &mut sc.acc[..len];
        acc.fill(0.0);
        for k in 0..nr {
            let o = (oh0 + k) * p.ow;
            let (g, inv) = (&gyp[o..][..p.ow], &p.inv[o..][..p.ow]);
            for ((a, g), i) in acc[k * p.m..].iter_mut().zip(g).zip(inv) {
                *a = g * i;
            }
        }
        let ph = &mut sc.ph[..p.s * len];
        ph.fill(0.0);
        for &(rj, mj) in &p.taps {
            for (d, a) in ph[rj * len + mj..][..n].iter_mut().zip(&acc[..n]) {
                *d += a;
            }
        }
        interleave(p.s, len, ph, &mut sc.pv[..nr * p.pv_len]);
        for k in 0..nr {
            let src = &sc.pv[k * p.pv_len + p.pb..][..p.w];
            let hs = &p.hspans[oh0 + k];
            for j in 0..hs.count {
                let dst = &mut gxp[hs.coord(j) * p.w..][..p.w];
                for (d, v) in dst.iter_mut().zip(src) {
                    *d += v;
                }
            }
        }
        oh0 += nr;
    }
}
