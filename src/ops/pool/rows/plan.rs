//! The shared parts of the row pooling (see the parent module): the per-call [`Plan`] (width
//! phases, height spans, divisors), the per-task [`Scratch`] rows, and the steps every block
//! runs: vertical combination, phase split and its inverse, horizontal max/min.

use super::super::reduce::{Divisor, Reduce};
use super::super::shape::PoolShape;
use super::super::windows::Windows;
use crate::geometry::{AxisWindow, Span};

/// The arithmetic of a row, chosen once per call (the strategy of this loop family).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Lane {
    /// Max of `sign·x` (min pooling is `sign = −1`), with indices.
    Extreme { sign: f32 },
    /// Mean, with the divisor rule.
    Avg(Divisor),
}

/// Everything a row needs, shared by all planes.
pub(super) struct Plan<'a> {
    pub(super) lane: Lane,
    /// Input plane height and width.
    pub(super) h: usize,
    pub(super) w: usize,
    /// Output row length, output rows per plane.
    pub(super) ow: usize,
    pub(super) oh: usize,
    /// Width axis: stride, begin padding.
    pub(super) s: usize,
    pub(super) pb: usize,
    /// Phase row length `M >= OW + max_j m_j` with `M·s >= pb + W`; a padded row holds
    /// `pv_len = M·s` cells.
    pub(super) m: usize,
    pub(super) pv_len: usize,
    /// `max_j m_j`: how far the taps reach past an output cell in its phase.
    pub(super) reach: usize,
    /// Per tap `j`: `(r_j, m_j)` with `j·d = m_j·s + r_j`.
    pub(super) taps: Vec<(usize, usize)>,
    /// The height span of every output row.
    pub(super) hspans: &'a [Span],
    /// Average: `1 / divisor` of every output cell of a plane (`OH·OW`).
    pub(super) inv: Vec<f32>,
    /// First input column inside the input of every output column (`OW`, then zeros up to a
    /// multiple of 16 so whole vectors load).
    pub(super) wfirst: Vec<u32>,
}

impl<'a> Plan<'a> {
    pub(super) fn new(s: &'a PoolShape) -> Plan<'a> {
        let (Some(win), Windows::Shared(spans)) = (&s.window, &s.windows) else {
            unreachable!("applies() checked")
        };
        let ax: &AxisWindow = &win.axes[2];
        let lane = match s.reduce {
            Reduce::Max => Lane::Extreme { sign: 1.0 },
            Reduce::Min => Lane::Extreme { sign: -1.0 },
            Reduce::Avg(div) => Lane::Avg(div),
            _ => unreachable!("applies() checked"),
        };
        let taps: Vec<(usize, usize)> = (0..ax.kernel)
            .map(|j| (j * ax.dilation % ax.stride, j * ax.dilation / ax.stride))
            .collect();
        let reach = taps.iter().map(|t| t.1).max().unwrap_or(0);
        let m = (s.output[2] + reach).max((ax.pad_begin + s.input[2]).div_ceil(ax.stride));
        let inv = match lane {
            Lane::Avg(div) => {
                let mut inv = Vec::with_capacity(s.output[1] * s.output[2]);
                for sh in &spans[1] {
                    for sw in &spans[2] {
                        let d = div.for_window(sh.extent * sw.extent, sh.count * sw.count);
                        inv.push((1.0 / d) as f32);
                    }
                }
                inv
            }
            Lane::Extreme { .. } => vec![],
        };
        let mut wfirst: Vec<u32> = spans[2].iter().map(|sp| sp.first as u32).collect();
        wfirst.resize(s.output[2].next_multiple_of(16), 0);
        Plan {
            lane,
            h: s.input[1],
            w: s.input[2],
            ow: s.output[2],
            oh: s.output[1],
            s: ax.stride,
            pb: ax.pad_begin,
            m,
            pv_len: m * ax.stride,
            reach,
            taps,
            hspans: &spans[1],
            inv,
            wfirst,
        }
    }
}

/// Cells of padded rows per block of the forward (rows are processed `BLOCK_CELLS / pv_len` at a
/// time, so the loops run long even on narrow planes).
pub(super) const BLOCK_CELLS: usize = 4096;

/// Per-task buffers for `rows` padded rows: the rows and their phases (values and indices), and
/// the outputs (`rows·M`, of which each row's first `OW` are used).
pub(super) struct Scratch {
    pub(super) pv: Vec<f32>,
    pub(super) pvi: Vec<u32>,
    pub(super) ph: Vec<f32>,
    pub(super) phi: Vec<u32>,
    pub(super) acc: Vec<f32>,
    pub(super) acci: Vec<u32>,
}

impl Scratch {
    pub(super) fn new(p: &Plan, rows: usize) -> Scratch {
        let fill = match p.lane {
            Lane::Extreme { .. } => f32::NEG_INFINITY,
            Lane::Avg(_) => 0.0,
        };
        let idx = matches!(p.lane, Lane::Extreme { .. });
        let n = rows * p.pv_len;
        Scratch {
            pv: vec![fill; n],
            pvi: vec![u32::MAX; if idx { n } else { 0 }],
            ph: vec![0.0; n],
            phi: vec![0; if idx { n } else { 0 }],
            acc: vec![0.0; rows * p.m],
            acci: vec![0; if idx { rows * p.m } else { 0 }],
        }
    }
}

/// Vertical step of average pooling: the sum of the span's rows, into `dst` (`W` cells).
#[inline(always)]
pub(super) fn vertical_sum(w: usize, xp: &[f32], hs: &Span, dst: &mut [f32]) {
    dst.copy_from_slice(&xp[hs.coord(0) * w..][..w]);
    for j in 1..hs.count {
        for (d, v) in dst.iter_mut().zip(&xp[hs.coord(j) * w..][..w]) {
            *d += v;
        }
    }
}

/// Vertical step of max/min: per column the first extreme of `sign·x` over the span's rows
/// (a NaN wins, the last NaN wins) and its flat index, into `dv`, `di` (`W` cells).
#[inline(always)]
pub(super) fn vertical_extreme(
    w: usize,
    xp: &[f32],
    hs: &Span,
    sign: f32,
    dv: &mut [f32],
    di: &mut [u32],
) {
    // flat indices fit u32 (PoolShape checks a plane has at most 2^32 cells)
    let h0 = hs.coord(0);
    let src = &xp[h0 * w..][..w];
    for (((d, i), &v), at) in dv
        .iter_mut()
        .zip(di.iter_mut())
        .zip(src)
        .zip((h0 * w) as u32..)
    {
        *d = sign * v;
        *i = at;
    }
    for j in 1..hs.count {
        let h = hs.coord(j);
        let src = &xp[h * w..][..w];
        for (((d, i), &v), at) in dv
            .iter_mut()
            .zip(di.iter_mut())
            .zip(src)
            .zip((h * w) as u32..)
        {
            let v = sign * v;
            let take = v > *d || v.is_nan();
            *d = if take { v } else { *d };
            *i = if take { at } else { *i };
        }
    }
}

/// Horizontal step of max/min over phases of length `len`: `acc[q]` = the best of
/// `phase[r_j][q + m_j]` over the taps, for the first `n` cells.
#[inline(always)]
pub(super) fn horizontal_extreme(p: &Plan, len: usize, n: usize, sc: &mut Scratch) {
    let (r0, m0) = p.taps[0];
    let (acc, acci) = (&mut sc.acc[..n], &mut sc.acci[..n]);
    acc.copy_from_slice(&sc.ph[r0 * len + m0..][..n]);
    acci.copy_from_slice(&sc.phi[r0 * len + m0..][..n]);
    for &(rj, mj) in &p.taps[1..] {
        let (sv, si) = (&sc.ph[rj * len + mj..][..n], &sc.phi[rj * len + mj..][..n]);
        for (((b, bi), &v), &vi) in acc.iter_mut().zip(acci.iter_mut()).zip(sv).zip(si) {
            // larger value; equal values: smaller index; NaNs: the larger index
            let (vn, bn) = (v.is_nan(), b.is_nan());
            let take = (v > *b) | ((v == *b) & (vi < *bi)) | (vn & (!bn | (vi > *bi)));
            *b = if take { v } else { *b };
            *bi = if take { vi } else { *bi };
        }
    }
}

/// `ph[r·len + m] = pv[m·s + r]`: padded rows (end to end, `len·s` cells) split into their `s`
/// phases (stride 1 and 2 without index arithmetic, so they vectorise).
#[inline(always)]
pub(super) fn split<T: Copy>(s: usize, len: usize, pv: &[T], ph: &mut [T]) {
    match s {
        1 => ph.copy_from_slice(&pv[..len]),
        2 => {
            let (p0, p1) = ph.split_at_mut(len);
            for ((a, b), c) in p0.iter_mut().zip(p1).zip(pv.chunks_exact(2)) {
                *a = c[0];
                *b = c[1];
            }
        }
        _ => {
            for (r, dst) in ph.chunks_exact_mut(len).enumerate() {
                for (mm, d) in dst.iter_mut().enumerate() {
                    *d = pv[mm * s + r];
                }
            }
        }
    }
}

/// The inverse of [`split`]: `pv[m·s + r] = ph[r·len + m]`.
#[inline(always)]
pub(super) fn interleave(s: usize, len: usize, ph: &[f32], pv: &mut [f32]) {
    match s {
        1 => pv[..len].copy_from_slice(ph),
        2 => {
            let (p0, p1) = ph.split_at(len);
            for ((a, b), c) in p0.iter().zip(p1).zip(pv.chunks_exact_mut(2)) {
                c[0] = *a;
                c[1] = *b;
            }
        }
        _ => {
            for (r, src) in ph.chunks_exact(len).enumerate() {
                for (mm, v) in src.iter().enumerate() {
                    pv[mm * s + r] = *v;
                }
            }
        }
    }
}
