//! An element-wise activation followed by pooling, `y = pool(f(z))`, as one pass over the
//! pre-activation `z`: the pooling reads `z`, computes `a = f(z)` a cache-sized block at a time
//! and pools it (in training writing `a` back over `z` for the backward, [`forward_keep`]); the
//! backward reads `gy` and `a` and writes `gz = pool_backward(gy)·f'(a)` in one pass. The
//! separate layers write and read the activation and its gradient as whole tensors in between
//! (the activation twice: its output and the copy it keeps); in LeNet those are the largest
//! tensors of the network. Keeping `a` rather than `z` spares the backward a second sigmoid
//! (an `exp` and a division per cell: measured slower than the memory pass it saves).
//!
//! The fast path covers non-overlapping 2×2 windows (kernel = stride = 2 on both axes of 2-D
//! planes, no padding or dilation, output `⌊H/2⌋ × ⌊W/2⌋`), average and max pooling, after
//! ReLU, sigmoid or tanh ([`fast_applies`]); everything else runs [`forward_ref`] /
//! [`backward_ref`], the two ops one after the other, which are also the reference the tests
//! hold the fast path to.
//!
//! Same arithmetic as the separate ops, so the results are bit-identical to them (up to the
//! sign of zero), on every path and for any thread count:
//! - `f` and `f'` are the functions of [`crate::ops::activation`] (the vectorised `exp_fast`
//!   sigmoid), with the derivative taken from the output `f(z)` as there;
//! - average: `y = ((a00 + a10) + (a01 + a11))·(1/divisor)`, the order of the row pooling
//!   (vertical sum first); backward `gz = (gy·(1/divisor))·f'(a)`;
//! - max: `f` is applied to all four cells and the first maximum of `a` in row-major window
//!   order wins (a NaN wins, the last NaN wins), as the reference. Pooling `z` first and
//!   applying `f` to the maximum (`max f(z) = f(max z)` for a non-decreasing `f`) would give
//!   the same value but not always the same argmax: where `f` rounds or saturates two different
//!   `z` to the same `a` (sigmoid near 1, tanh near ±1, ReLU at 0) the first of them must get the
//!   gradient. Backward routes `gy·f'(a)` to the argmax and writes 0 elsewhere (`0·f'(a)`, as the
//!   separate layers).
//!
//! Work is split over the rayon pool by whole planes, each output cell computed from its own
//! window only, so the result does not depend on the thread count.

use super::reduce::Reduce;
use super::shape::PoolShape;
use super::windows::Windows;
use super::{pool_backward, pool_backward_indices, pool_forward, PoolKind, PoolOutput, PoolParams};
use crate::error::{Error, Result};
use crate::ops::activation::{
    backward_inplace, forward_inplace, relu, relu_grad, sigmoid, sigmoid_grad, tanh_grad,
    Activation,
};
use crate::tensor::{fmt_shape, Tensor};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Runs `$body` with `$f` and `$df` bound to the activation's function and its derivative
/// from the output (plain functions, so each kind's loops are compiled and vectorised apart).
macro_rules! with_act {
    ($act:expr, |$f:ident, $df:ident| $body:expr) => {
        match $act {
            Activation::Relu => {
                let ($f, $df) = (relu, relu_grad);
                $body
            }
            Activation::Sigmoid => {
                let ($f, $df) = (sigmoid, sigmoid_grad);
                $body
            }
            Activation::Tanh => {
                let ($f, $df) = (f32::tanh, tanh_grad);
                $body
            }
        }
    };
}

/// The pooling of the fast path: the mean with `1/divisor`, or the maximum.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Pooling {
    Avg { inv: f32 },
    Max,
}

/// The geometry of the fast path: planes `(H, W)` pooled to `(OH, OW) = (⌊H/2⌋, ⌊W/2⌋)`.
#[derive(Clone, Copy, Debug)]
struct Geom {
    planes: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    pooling: Pooling,
}

impl Geom {
    fn new(s: &PoolShape) -> Option<Geom> {
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
    fn per_task(&self) -> usize {
        self.planes
            .div_ceil(rayon::current_num_threads() * 16)
            .max(1)
    }
}

/// Whether `pool(f(z))` on an input of shape `x_shape` takes the fused fast path (the other
/// cases are correct too, through the separate ops).
pub fn fast_applies(x_shape: &[usize], p: &PoolParams) -> bool {
    matches!(p.kind, PoolKind::Avg | PoolKind::Max)
        && PoolShape::new(x_shape, p).is_ok_and(|s| Geom::new(&s).is_some())
}

/// Forward `y = pool(f(z))` and, for max pooling when `with_indices`, the in-plane index of
/// each selected cell (what [`super::pool_forward`] returns on `f(z)`); `z` is left as it is
/// (inference).
/// PyTorch: `F.avg_pool2d(torch.sigmoid(z), 2)`, `F.max_pool2d(F.relu(z), 2, return_indices=True)`.
pub fn forward(
    act: Activation,
    z: &Tensor,
    p: &PoolParams,
    with_indices: bool,
) -> Result<PoolOutput> {
    let s = PoolShape::new(z.shape(), p)?;
    let Some(g) = Geom::new(&s) else {
        return forward_ref(act, z, p, with_indices);
    };
    let chunk = g.per_task() * g.h * g.w;
    pooled(
        &g,
        &s,
        with_indices,
        z.data().par_chunks(chunk).map(Planes::Read),
        act,
    )
}

/// [`forward`] for training: also replaces `z` by `a = f(z)` (what [`backward`] reads), in the
/// same pass.
pub fn forward_keep(
    act: Activation,
    z: &mut Tensor,
    p: &PoolParams,
    with_indices: bool,
) -> Result<PoolOutput> {
    let s = PoolShape::new(z.shape(), p)?;
    let Some(g) = Geom::new(&s) else {
        forward_inplace(act, z.data_mut());
        let mut out = pool_forward(z, p)?;
        out.indices = out.indices.filter(|_| with_indices);
        return Ok(out);
    };
    let chunk = g.per_task() * g.h * g.w;
    let planes = z.data_mut().par_chunks_mut(chunk).map(Planes::InPlace);
    pooled(&g, &s, with_indices, planes, act)
}

/// The planes of one task: read `z` (the activation goes to a scratch block) or overwrite it
/// with `a = f(z)`.
enum Planes<'a> {
    Read(&'a [f32]),
    InPlace(&'a mut [f32]),
}

/// The fast forward over the tasks' planes `zs` (whole planes, `g.per_task()` each).
fn pooled<'a>(
    g: &Geom,
    s: &PoolShape,
    with_indices: bool,
    zs: impl IndexedParallelIterator<Item = Planes<'a>>,
    act: Activation,
) -> Result<PoolOutput> {
    let with_indices = with_indices && g.pooling == Pooling::Max;
    let n = g.planes * g.oh * g.ow;
    let mut y = Box::<[f32]>::new_uninit_slice(n);
    let mut idx = with_indices.then(|| Box::<[u32]>::new_uninit_slice(n));
    let out = g.per_task() * g.oh * g.ow;
    let run = |zp: Planes, yp: &mut [MaybeUninit<f32>], ip: Option<&mut [MaybeUninit<u32>]>| {
        with_act!(act, |f, _df| forward_wide(g, f, zp, yp, ip))
    };
    match idx.as_deref_mut() {
        Some(ic) => zs
            .zip(y.par_chunks_mut(out))
            .zip(ic.par_chunks_mut(out))
            .for_each(|((zp, yp), ip)| run(zp, yp, Some(ip))),
        None => zs
            .zip(y.par_chunks_mut(out))
            .for_each(|(zp, yp)| run(zp, yp, None)),
    }
    // SAFETY: `forward_planes` wrote every output (and index) of every plane
    let (y, indices) = unsafe {
        (
            y.assume_init().into_vec(),
            idx.map(|i| i.assume_init().into_vec()),
        )
    };
    Ok(PoolOutput {
        y: Tensor::new(s.out_shape(), y)?,
        indices,
    })
}

/// Backward: `gz = dL/dz` from `a = f(z)` (as [`forward_keep`] leaves it), `gy = dL/dy` and,
/// for max pooling, the forward's indices.
pub fn backward(
    act: Activation,
    a: &Tensor,
    idx: Option<&[u32]>,
    gy: &Tensor,
    p: &PoolParams,
) -> Result<Tensor> {
    let s = PoolShape::new(a.shape(), p)?;
    let Some(g) = Geom::new(&s) else {
        return backward_ref(act, a, idx, gy, p);
    };
    check_grad(&s, gy)?;
    let idx = match (g.pooling, idx) {
        (Pooling::Max, Some(i)) if i.len() == gy.numel() => Some(i),
        (Pooling::Max, _) => return Err(missing_indices(p)),
        (Pooling::Avg { .. }, _) => None,
    };
    let mut gz = Box::<[f32]>::new_uninit_slice(a.numel());
    let per = g.per_task();
    let (zc, out) = (g.h * g.w, g.oh * g.ow);
    let gyd = gy.data();
    (a.data().par_chunks(per * zc))
        .zip(gz.par_chunks_mut(per * zc))
        .enumerate()
        .for_each(|(t, (ap, gzp))| {
            // this task's planes of gy and of the indices (none for average pooling)
            let (o0, len) = (t * per * out, ap.len() / zc * out);
            let gyp = &gyd[o0..][..len];
            let ip = idx.map_or(&[][..], |i| &i[o0..][..len]);
            with_act!(act, |_f, df| backward_wide(&g, df, ap, gyp, ip, gzp))
        });
    // SAFETY: `backward_planes` wrote every cell of every plane
    Tensor::new(a.shape().to_vec(), unsafe { gz.assume_init() }.into_vec())
}

/// The reference forward: `a = f(z)` as a tensor, then [`pool_forward`].
pub fn forward_ref(
    act: Activation,
    z: &Tensor,
    p: &PoolParams,
    with_indices: bool,
) -> Result<PoolOutput> {
    let mut a = z.clone();
    forward_inplace(act, a.data_mut());
    let mut out = pool_forward(&a, p)?;
    if !with_indices {
        out.indices = None;
    }
    Ok(out)
}

/// The reference backward: the pooling's backward on `a = f(z)`, then the activation's.
pub fn backward_ref(
    act: Activation,
    a: &Tensor,
    idx: Option<&[u32]>,
    gy: &Tensor,
    p: &PoolParams,
) -> Result<Tensor> {
    let mut ga = if p.kind.has_indices() {
        let idx = idx.ok_or_else(|| missing_indices(p))?;
        pool_backward_indices(a.shape(), idx, gy, p)?
    } else {
        let out = pool_forward(a, p)?;
        pool_backward(a, &out, gy, p)?
    };
    backward_inplace(act, a.data(), ga.data_mut());
    Ok(ga)
}

fn missing_indices(p: &PoolParams) -> Error {
    Error::arg(
        "indices",
        format!(
            "{} pooling backward needs the forward pass's indices",
            p.kind.name()
        ),
    )
}

fn check_grad(s: &PoolShape, gy: &Tensor) -> Result<()> {
    let want = s.out_shape();
    if gy.shape() == want.as_slice() {
        return Ok(());
    }
    Err(Error::arg(
        "grad-output",
        format!(
            "has shape {} but the output has shape {}; give one gradient per output value",
            fmt_shape(gy.shape()),
            fmt_shape(&want)
        ),
    ))
}

/// [`forward_planes`], compiled for AVX-512 when the CPU has it (the loops vectorise 16 wide;
/// Rust never contracts `a·b + c` into an FMA, so both builds give the same bits).
fn forward_wide<F: Fn(f32) -> f32>(
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
fn backward_wide<D: Fn(f32) -> f32>(
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
            for r in 0..g.h {
                let er = &mut gp[r * w..][..w];
                let oh = r / 2;
                if oh >= g.oh {
                    er.fill(0.0);
                    continue;
                }
                let gyr = &gyp[o0 + oh * ow..][..ow];
                match g.pooling {
                    Pooling::Avg { inv } => {
                        for (e, &gv) in er.chunks_exact_mut(2).zip(gyr) {
                            let v = gv * inv;
                            e[0] = v;
                            e[1] = v;
                        }
                    }
                    Pooling::Max => {
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
                    }
                }
                er[cols..].fill(0.0);
            }
        }
        for ((d, &e), &av) in gzb.iter_mut().zip(&*ge).zip(ab) {
            d.write(e * df(av));
        }
    }
}
