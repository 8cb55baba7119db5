//! Windowed reductions: one loop over (plane, output cell, window tap) shared by every pooling
//! whose output cell summarises a window — sliding (max, min, avg, lp, soft), adaptive, global
//! and fractional — with the arithmetic of a window chosen by the [`Reduce`] strategy.
//! Forward and backward side by side; planes run in parallel (rayon), nothing is allocated per
//! output cell.
//!
//! Per output cell with taps `x_j` (taps in the padding are skipped):
//! - Max / Min: `y = max_j x_j` (min), index = first extreme, NaN propagates (PyTorch);
//!   backward scatters `gy` to the index (see `select::scatter`).
//! - Avg: `y = Σ x_j / div`; `dx_j = gy / div`.
//! - Lp: `y = (Σ x_j^p / div · numel)^(1/p)` — PyTorch's `avg_pool(x^p)·numel` then `^(1/p)`, so
//!   ceil-mode windows cut at the end are rescaled like PyTorch; `dx_j = gy · y^(1-p) · numel/div · x_j^(p-1)`.
//! - Soft: `w = softmax(x)`, `y = Σ w_j x_j`; `dx_j = gy · w_j (1 + x_j - y)`.

use super::{PoolKind, PoolParams, PoolShape};
use crate::error::{Error, Result};
use crate::geometry::Span;
use rayon::prelude::*;

/// What average pooling divides by (PyTorch `count_include_pad`, `divisor_override`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Divisor {
    /// Count the padding (the window clipped to the padded input), else only input cells.
    pub include_pad: bool,
    /// Divide by this instead.
    pub overridden: Option<usize>,
}

impl Divisor {
    fn of(&self, c: &Cell) -> f64 {
        self.for_window(c.extent(), c.count())
    }

    /// The divisor of a window of `extent` cells (clipped to the padded input), `count` of them
    /// inside the input.
    pub fn for_window(&self, extent: usize, count: usize) -> f64 {
        match self.overridden {
            Some(d) => d as f64,
            None if self.include_pad => extent as f64,
            None => count as f64,
        }
    }
}

/// The arithmetic of one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reduce {
    Max,
    Min,
    Avg(Divisor),
    /// LP pooling with `p = norm_type` and the kernel's tap count `numel`.
    Lp {
        p: f64,
        numel: usize,
        div: Divisor,
    },
    Soft,
}

impl Reduce {
    /// The reduction of `p.kind`; `numel` = taps of the kernel (LP).
    pub fn of(p: &PoolParams, numel: usize) -> Result<Self> {
        let div = Divisor {
            include_pad: p.count_include_pad,
            overridden: p.divisor_override,
        };
        if p.divisor_override == Some(0) {
            return Err(Error::arg("divisor-override", "must not be 0"));
        }
        Ok(match p.kind {
            PoolKind::Max
            | PoolKind::AdaptiveMax
            | PoolKind::GlobalMax
            | PoolKind::FractionalMax
            | PoolKind::KMax => Reduce::Max,
            PoolKind::Min => Reduce::Min,
            PoolKind::Avg => Reduce::Avg(div),
            PoolKind::AdaptiveAvg | PoolKind::GlobalAvg => Reduce::Avg(Divisor {
                include_pad: true,
                overridden: None,
            }),
            PoolKind::Lp => {
                if !(p.norm_type.is_finite() && p.norm_type > 0.0) {
                    return Err(Error::arg(
                        "norm-type",
                        format!("{} is not a positive finite number; LP pooling needs p > 0 (p = 2 is the usual choice; p = inf is max pooling: use `stride pool max`)", p.norm_type),
                    ));
                }
                Reduce::Lp {
                    p: p.norm_type,
                    numel,
                    div,
                }
            }
            PoolKind::Soft => Reduce::Soft,
        })
    }
}

/// One output cell's window in a plane `(·, ih, iw)`: a span per axis.
#[derive(Clone, Copy)]
pub struct Cell<'a> {
    pub d: &'a Span,
    pub h: &'a Span,
    pub w: &'a Span,
    ih: usize,
    iw: usize,
}

impl Cell<'_> {
    /// Calls `f` with the flat in-plane index of every tap inside the input, row-major.
    #[inline(always)]
    pub fn for_each(&self, mut f: impl FnMut(usize)) {
        for a in 0..self.d.count {
            let plane_row = self.d.coord(a) * self.ih;
            for b in 0..self.h.count {
                let row = (plane_row + self.h.coord(b)) * self.iw;
                for c in 0..self.w.count {
                    f(row + self.w.coord(c));
                }
            }
        }
    }

    /// Flat index of the first tap inside the input.
    pub fn first(&self) -> usize {
        (self.d.first * self.ih + self.h.first) * self.iw + self.w.first
    }

    /// Taps inside the input.
    pub fn count(&self) -> usize {
        self.d.count * self.h.count * self.w.count
    }

    /// Window size clipped to the padded input.
    pub fn extent(&self) -> usize {
        self.d.extent * self.h.extent * self.w.extent
    }
}

/// Calls `f(o, cell)` for every output cell `o` of a plane, row-major over `[d, h, w]`.
#[inline(always)]
pub fn sweep(spans: &[Vec<Span>; 3], input: &[usize; 3], mut f: impl FnMut(usize, Cell)) {
    let mut o = 0;
    for d in &spans[0] {
        for h in &spans[1] {
            for w in &spans[2] {
                let cell = Cell {
                    d,
                    h,
                    w,
                    ih: input[1],
                    iw: input[2],
                };
                f(o, cell);
                o += 1;
            }
        }
    }
}

/// Online softmax statistics of a window: running max `m`, `Σ e^(x-m)` and `Σ e^(x-m)·x`.
#[derive(Clone, Copy)]
struct SoftStats {
    m: f64,
    z: f64,
    t: f64,
}

impl SoftStats {
    fn of(x: &[f32], cell: &Cell) -> Self {
        let mut s = SoftStats {
            m: f64::NEG_INFINITY,
            z: 0.0,
            t: 0.0,
        };
        cell.for_each(|i| {
            let v = x[i] as f64;
            if v > s.m {
                let scale = (s.m - v).exp();
                s.z *= scale;
                s.t *= scale;
                s.m = v;
            }
            let e = (v - s.m).exp();
            s.z += e;
            s.t += e * v;
        });
        s
    }
}

/// The value (and for max/min the in-plane index) of one output cell.
#[inline(always)]
fn reduce_cell(r: &Reduce, x: &[f32], cell: &Cell) -> (f32, u32) {
    match *r {
        Reduce::Max | Reduce::Min => {
            // compare sign·x so that one loop serves both; first extreme wins, and a NaN wins
            // and sticks (PyTorch: `val > maxval || isnan(val)`). Branch-free: on random data
            // an `if` would mispredict half the time.
            let sign = if *r == Reduce::Max { 1.0f32 } else { -1.0 };
            let (mut best, mut at, mut nan) = (f32::NEG_INFINITY, cell.first(), false);
            cell.for_each(|i| {
                let v = sign * x[i];
                let is_nan = v.is_nan();
                let take = ((v > best) & !nan) | is_nan;
                at = if take { i } else { at };
                nan |= is_nan;
                best = best.max(v);
            });
            let best = if nan { f32::NAN } else { best };
            (sign * best, at as u32)
        }
        Reduce::Avg(div) => {
            let mut sum = 0.0f64;
            cell.for_each(|i| sum += x[i] as f64);
            ((sum / div.of(cell)) as f32, 0)
        }
        Reduce::Lp { p, numel, div } => {
            // y = m·(Σ (x/m)^p · numel/div)^(1/p) with m = max |x|: the same value as
            // (Σ x^p · numel/div)^(1/p), without overflow for large p (x^200 is inf)
            let mut m = 0.0f64;
            cell.for_each(|i| m = m.max((x[i] as f64).abs()));
            if m == 0.0 || !m.is_finite() {
                let mut sum = 0.0f64;
                cell.for_each(|i| sum += (x[i] as f64).powf(p));
                return ((sum / div.of(cell) * numel as f64).powf(1.0 / p) as f32, 0);
            }
            let mut sum = 0.0f64;
            cell.for_each(|i| sum += (x[i] as f64 / m).powf(p));
            (
                (m * (sum / div.of(cell) * numel as f64).powf(1.0 / p)) as f32,
                0,
            )
        }
        Reduce::Soft => {
            let s = SoftStats::of(x, cell);
            ((s.t / s.z) as f32, 0)
        }
    }
}

/// Forward over all planes. `x`: planes × in_len, `y`: planes × out_len; `idx` (same size as
/// `y`) receives the in-plane index of each max/min.
pub fn forward(s: &PoolShape, x: &[f32], y: &mut [f32], idx: Option<&mut [u32]>) {
    if super::rows::applies(s) {
        return super::rows::forward(s, x, y, idx);
    }
    if idx.is_none() && super::separable::applies(s) {
        return super::separable::forward(s, x, y);
    }
    forward_reference(s, x, y, idx)
}

/// The reference forward: every output cell reduces its window tap by tap (all kinds).
pub fn forward_reference(s: &PoolShape, x: &[f32], y: &mut [f32], idx: Option<&mut [u32]>) {
    let (in_len, out_len) = (s.in_len(), s.out_len());
    // for each plane: for each output cell: reduce its window
    let plane = |p: usize, yp: &mut [f32], mut ip: Option<&mut [u32]>| {
        let xp = &x[p * in_len..][..in_len];
        let spans = s.windows.spans(p, &s.input);
        sweep(&spans, &s.input, |o, cell| {
            let (v, i) = reduce_cell(&s.reduce, xp, &cell);
            yp[o] = v;
            if let Some(ip) = ip.as_deref_mut() {
                ip[o] = i;
            }
        });
    };
    match idx {
        Some(idx) => y
            .par_chunks_mut(out_len)
            .zip(idx.par_chunks_mut(out_len))
            .enumerate()
            .for_each(|(p, (yp, ip))| plane(p, yp, Some(ip))),
        None => y
            .par_chunks_mut(out_len)
            .enumerate()
            .for_each(|(p, yp)| plane(p, yp, None)),
    }
}

/// Backward of the kinds without indices (avg, lp, soft): `gx += Σ_cells gy · ∂y/∂x`.
/// `x`, `gx`: planes × in_len; `y`, `gy`: planes × out_len.
pub fn backward(s: &PoolShape, x: &[f32], y: &[f32], gy: &[f32], gx: &mut [f32]) {
    if super::rows::applies(s) {
        return super::rows::backward(s, gy, gx);
    }
    if super::separable::applies(s) {
        return super::separable::backward(s, gy, gx);
    }
    backward_reference(s, x, y, gy, gx)
}

/// The reference backward: every output cell spreads its gradient tap by tap.
pub fn backward_reference(s: &PoolShape, x: &[f32], y: &[f32], gy: &[f32], gx: &mut [f32]) {
    let (in_len, out_len) = (s.in_len(), s.out_len());
    gx.par_chunks_mut(in_len).enumerate().for_each(|(p, gxp)| {
        let xp = &x[p * in_len..][..in_len];
        let (yp, gyp) = (&y[p * out_len..][..out_len], &gy[p * out_len..][..out_len]);
        let spans = s.windows.spans(p, &s.input);
        // for each output cell: spread its gradient over its window
        sweep(&spans, &s.input, |o, cell| {
            let g = gyp[o] as f64;
            match s.reduce {
                Reduce::Avg(div) => {
                    let share = (g / div.of(&cell)) as f32;
                    cell.for_each(|i| gxp[i] += share);
                }
                Reduce::Lp { p, numel, div } => {
                    // ∂y/∂x_i = (x_i/y)^(p−1) · numel/div, written as a ratio so a large p
                    // neither overflows x^(p−1) nor underflows y^(1−p)
                    let (c, y) = (g * numel as f64 / div.of(&cell), yp[o] as f64);
                    cell.for_each(|i| {
                        let r = (xp[i] as f64 / y).powf(p - 1.0);
                        gxp[i] += (c * if y == 0.0 { 0.0 } else { r }) as f32;
                    });
                }
                Reduce::Soft => {
                    let st = SoftStats::of(xp, &cell);
                    let yo = st.t / st.z;
                    cell.for_each(|i| {
                        let v = xp[i] as f64;
                        let w = (v - st.m).exp() / st.z;
                        gxp[i] += (g * w * (1.0 + v - yo)) as f32;
                    });
                }
                // selecting kinds go through `select::scatter`
                Reduce::Max | Reduce::Min => {}
            }
        });
    });
}
