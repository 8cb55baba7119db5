//! The kernels of [`super::super::activated`] (`y = pool(f(z))` over non-overlapping 2×2
//! windows, and its backward), on the planes of one rayon task: the [`Geom`] of the call, and
//! per block of planes (about [`BLOCK_CELLS`] cells) the activation in one long loop, then the
//! pooling in two steps (vertical, horizontal) over the whole block — LeNet's rows of 28 and 10
//! cells are too short for 16 lanes. The arithmetic, and why it gives the separate ops' bits,
//! is described in [`super::super::activated`]; compiled for AVX-512 where the CPU has it.

use super::super::reduce::Reduce;
use super::super::shape::PoolShape;
use super::super::windows::Windows;
use std::mem::MaybeUninit;

/// The pooling of the fast path: the mean with `1/divisor`, or the maximum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(in crate::ops::pool) enum Pooling {
    Avg { inv: f32 },
    Max,
}

/// The geometry of the fast path: planes `(H, W)` pooled to `(OH, OW) = (⌊H/2⌋, ⌊W/2⌋)`.
#[derive(Clone, Copy, Debug)]
pub(in crate::ops::pool) struct Geom {
    pub(in crate::ops::pool) planes: usize,
    pub(in crate::ops::pool) h: usize,
    pub(in crate::ops::pool) w: usize,
    pub(in crate::ops::pool) oh: usize,
    pub(in crate::ops::pool) ow: usize,
    pub(in crate::ops::pool) pooling: Pooling,
}

impl Geom {
    pub(in crate::ops::pool) fn new(s: &PoolShape) -> Option<Geom> {
        let (Some(win), Windows::Shared(_)) = (&s.window, &s.windows) else {
            return None;
        };
        let two = |a: usize| {
            let ax = &win.axes[a];
            (ax.kernel, ax.stride, ax.dilation, ax.pad_begin, ax.output)
                == (2, 2, 1, 0, ax.input / 2)
        };
        let pooling = match s.reduce {
            // a full window: 4 cells, none of them padding
            Reduce::Avg(div) => Pooling::Avg {
                inv: (1.0 / div.for_window(4, 4)) as f32,
            },
            Reduce::Max => Pooling::Max,
            _ => return None,
        };
        (s.nd == 2 && two(1) && two(2) && s.output[1] > 0 && s.output[2] > 0).then_some(Geom {
            planes: s.planes,
            h: s.input[1],
            w: s.input[2],
            oh: s.output[1],
            ow: s.output[2],
            pooling,
        })
    }

    /// Planes per rayon task: about 16 tasks per thread.
    pub(in crate::ops::pool) fn per_task(&self) -> usize {
        self.planes
            .div_ceil(rayon::current_num_threads() * 16)
            .max(1)
    }
}

/// The planes of one task: read `z` (the activation goes to a scratch block), overwrite it
/// with `a = f(z)`, or pool them as they are (`a`, activated before: `f` is not applied).
pub(in crate::ops::pool) enum Planes<'a> {
    Read(&'a [f32]),
    InPlace(&'a mut [f32]),
    Ready(&'a [f32]),
}

/// [`forward_planes`], compiled for AVX-512 when the CPU has it (the loops vectorise 16 wide;
/// Rust never contracts `a·b + c` into an FMA, so both builds give the same bits).
pub(in crate::ops::pool) fn forward_wide<F: Fn(f32) -> f32>(
    g: &Geom,
    f: F,
    zp: Planes,
    yp: &mut [MaybeUninit<f32>],
    ip: Option<&mut [MaybeUninit<u32>]>,
) {
    /// # Safety
    /// The CPU must support the features enabled here (checked by the caller).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn avx512<F: Fn(f32) -> f32>(
        g: &Geom,
        f: F,
        zp: Planes,
        yp: &mut [MaybeUninit<f32>],
        ip: Option<&mut [MaybeUninit<u32>]>,
    ) {
        forward_planes(g, f, zp, yp, ip)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::ops::simd::avx512() {
        // SAFETY: the CPU supports AVX-512 (checked just above)
        return unsafe { avx512(g, f, zp, yp, ip) };
    }
    forward_planes(g, f, zp, yp, ip)
}

/// [`backward_planes`], compiled for AVX-512 when the CPU has it (as [`forward_wide`]).
pub(in crate::ops::pool) fn backward_wide<D: Fn(f32) -> f32>(
    g: &Geom,
    df: D,
    ap: &[f32],
    gyp: &[f32],
    ip: &[u32],
    gzp: &mut [MaybeUninit<f32>],
) {
    /// # Safety
    /// The CPU must support the features enabled here (checked by the caller).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
    unsafe fn avx512<D: Fn(f32) -> f32>(
        g: &Geom,
        df: D,
        ap: &[f32],
        gyp: &[f32],
        ip: &[u32],
        gzp: &mut [MaybeUninit<f32>],
    ) {
        backward_planes(g, df, ap, gyp, ip, gzp)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::ops::simd::avx512() {
        // SAFETY: the CPU supports AVX-512 (checked just above)
        return unsafe { avx512(g, df, ap, gyp, ip, gzp) };
    }
    backward_planes(g, df, ap, gyp, ip, gzp)
}

/// Cells of `z` per block: the activation runs over a block of planes at a time in one long
/// loop (vectorised; LeNet's rows of 28 and 10 cells are too short for 16 lanes), into a
/// scratch that stays in the first-level cache for the pooling steps after it.
const BLOCK_CELLS: usize = 4096;

/// Forward of whole planes `zp` into `yp` (and `ip`), a block of planes at a time: `a = f(z)`
/// (into a scratch block, or over `z`), then the vertical step (per column of each window row pair: the sum, or the first maximum
/// and its in-plane index) into `v` (rows of `2·OW`), then the horizontal step over the block's
/// `v` in one loop (output `j` reads `v[2j]`, `v[2j + 1]`).
#[inline(always)]
fn forward_planes(
    g: &Geom,
    f: impl Fn(f32) -> f32,
    mut zp: Planes,
    yp: &mut [MaybeUninit<f32>],
    mut ip: Option<&mut [MaybeUninit<u32>]>,
) {
    let (w, cols, plane, out) = (g.w, 2 * g.ow, g.h * g.w, g.oh * g.ow);
    let block = (BLOCK_CELLS / plane).max(1);
    let (cells, read) = match &zp {
        Planes::Read(z) => (z.len(), true),
        Planes::InPlace(z) => (z.len(), false),
        Planes::Ready(a) => (a.len(), false),
    };
    let mut scratch = vec![0.0f32; if read { block * plane } else { 0 }];
    let mut v = vec![0.0f32; block * g.oh * cols];
    let max = g.pooling == Pooling::Max;
    let mut vi = vec![0u32; if max { v.len() } else { 0 }];
    for (b, c0) in (0..cells).step_by(block * plane).enumerate() {
        let len = (block * plane).min(cells - c0);
        let np = len / plane;
        let a: &[f32] = match &mut zp {
            Planes::Read(z) => {
                let a = &mut scratch[..len];
                for (d, &x) in a.iter_mut().zip(&z[c0..]) {
                    *d = f(x);
                }
                a
            }
            Planes::InPlace(z) => {
                let a = &mut z[c0..][..len];
                a.iter_mut().for_each(|x| *x = f(*x));
                a
            }
            Planes::Ready(a) => &a[c0..][..len],
        };
        let yb = &mut yp[b * block * out..][..np * out];
        let rows = np * g.oh;
        match g.pooling {
            Pooling::Avg { inv } => {
                for (k, vr) in v.chunks_exact_mut(cols).take(rows).enumerate() {
                    let top = k / g.oh * plane + 2 * (k % g.oh) * w;
                    let (t, u) = (&a[top..][..cols], &a[top + w..][..cols]);
                    for ((d, &x), &y) in vr.iter_mut().zip(t).zip(u) {
                        *d = x + y;
                    }
                }
                for (yv, s) in yb.iter_mut().zip(v.chunks_exact(2)) {
                    yv.write((s[0] + s[1]) * inv);
                }
            }
            Pooling::Max => {
                let vrows = v.chunks_exact_mut(cols).zip(vi.chunks_exact_mut(cols));
                for (k, (vr, ir)) in vrows.take(rows).enumerate() {
                    let at = 2 * (k % g.oh) * w;
                    let top = k / g.oh * plane + at;
                    let (t, u) = (&a[top..][..cols], &a[top + w..][..cols]);
                    vertical_max(t, u, at as u32, w as u32, vr, ir);
                }
                let ib = ip
                    .as_deref_mut()
                    .map(|i| &mut i[b * block * out..][..np * out]);
                horizontal_max(&v[..rows * cols], &vi[..rows * cols], yb, ib);
            }
        }
    }
}

/// Per column of a window row pair: the top cell `t` (in-plane index `at + c`) unless the
/// bottom one `u` (index `at + w + c`) is larger or NaN — the first maximum in window order,
/// a NaN winning and the last NaN winning.
#[inline(always)]
fn vertical_max(t: &[f32], u: &[f32], at: u32, w: u32, vr: &mut [f32], ir: &mut [u32]) {
    for ((((d, i), &x), &y), c) in vr.iter_mut().zip(ir).zip(t).zip(u).zip(0u32..) {
        let take = y > x || y.is_nan();
        *d = if take { y } else { x };
        *i = at + c + if take { w } else { 0 };
    }
}

/// Per output `j`: the better of the columns `2j` and `2j + 1` in the order that makes the
/// two steps agree with the window-order rule whatever the grouping (as the row pooling): the
/// larger value; equal values: the smaller index; NaNs: the larger index.
#[inline(always)]
fn horizontal_max(
    v: &[f32],
    vi: &[u32],
    yb: &mut [MaybeUninit<f32>],
    ib: Option<&mut [MaybeUninit<u32>]>,
) {
    let pick = |s: &[f32], si: &[u32]| {
        let (b, bi, x, xi) = (s[0], si[0], s[1], si[1]);
        let (xn, bn) = (x.is_nan(), b.is_nan());
        let take = (x > b) | ((x == b) & (xi < bi)) | (xn & (!bn | (xi > bi)));
        (if take { x } else { b }, if take { xi } else { bi })
    };
    let pairs = v.chunks_exact(2).zip(vi.chunks_exact(2));
    match ib {
        Some(ib) => {
            for ((yv, iv), (s, si)) in yb.iter_mut().zip(ib).zip(pairs) {
                let (m, i) = pick(s, si);
                yv.write(m);
                iv.write(i);
            }
        }
        None => {
            for (yv, (s, si)) in yb.iter_mut().zip(pairs) {
                yv.write(pick(s, si).0);
            }
        }
    }
}

/// Backward of whole planes, a block of planes at a time: the pooling's gradient `ge` of every
/// cell (average: `gy·inv` on the four cells of the window; max: `gy` at the argmax; 0 elsewhere
/// and in the row and column no window covers), then `gz = ge·f'(a)` over the block in one
/// loop (0 where `ge` is 0, as the separate layers' `0·f'(a)`).
#[inline(always)]
fn backward_planes(
    g: &Geom,
    df: impl Fn(f32) -> f32,
    ap: &[f32],
    gyp: &[f32],
    ip: &[u32],
    gzp: &mut [MaybeUninit<f32>],
) {
    let (w, ow, cols, plane, out) = (g.w, g.ow, 2 * g.ow, g.h * g.w, g.oh * g.ow);
    let block = (BLOCK_CELLS / plane).max(1);
    let mut ge = vec![0.0f32; block * plane];
    for (b, (ab, gzb)) in ap
        .chunks(block * plane)
        .zip(gzp.chunks_mut(block * plane))
        .enumerate()
    {
        let ge = &mut ge[..ab.len()];
        for (p, gp) in ge.chunks_exact_mut(plane).enumerate() {
            let o0 = (b * block + p) * out;
            match g.pooling {
                Pooling::Avg { inv } => {
                    // both rows of each window row pair in one loop (copying the first row into
                    // the second was a 112-byte memmove call per row pair: 3% of LeNet's step)
                    for oh in 0..g.oh {
                        let gyr = &gyp[o0 + oh * ow..][..ow];
                        let (top, bottom) = gp[2 * oh * w..][..2 * w].split_at_mut(w);
                        let pairs = top.chunks_exact_mut(2).zip(bottom.chunks_exact_mut(2));
                        for ((t, u), &gv) in pairs.zip(gyr) {
                            let v = gv * inv;
                            t[0] = v;
                            t[1] = v;
                            u[0] = v;
                            u[1] = v;
                        }
                        if cols < w {
                            top[cols..].fill(0.0);
                            bottom[cols..].fill(0.0);
                        }
                    }
                }
                Pooling::Max => {
                    for r in 0..2 * g.oh {
                        let oh = r / 2;
                        let er = &mut gp[r * w..][..w];
                        let gyr = &gyp[o0 + oh * ow..][..ow];
                        let ir = &ip[o0 + oh * ow..][..ow];
                        let row = (r * w) as u32;
                        for (((e, &gv), &i), c) in er
                            .chunks_exact_mut(2)
                            .zip(gyr)
                            .zip(ir)
                            .zip((0u32..).step_by(2))
                        {
                            e[0] = if i == row + c { gv } else { 0.0 };
                            e[1] = if i == row + c + 1 { gv } else { 0.0 };
                        }
                        if cols < w {
                            er[cols..].fill(0.0);
                        }
                    }
                }
            }
            // the rows no window covers
            if 2 * g.oh < g.h {
                gp[2 * g.oh * w..].fill(0.0);
            }
        }
        for ((d, &e), &av) in gzb.iter_mut().zip(&*ge).zip(ab) {
            d.write(e * df(av));
        }
    }
}
