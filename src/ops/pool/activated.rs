//! An element-wise activation followed by pooling, `y = pool(f(z))`, as one pass over the
//! pre-activation `z`: the pooling reads `z`, computes `a = f(z)` in registers and pools it; the
//! backward reads `gy` and `z` and writes `gz = pool_backward(gy)·f'(f(z))` in one pass. The
//! separate layers read and write the activation `a` (and its gradient) as whole tensors in
//! between; in LeNet those are the largest tensors of the network.
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
//!   gradient. Computing `f` on the four cells costs no memory traffic; backward routes
//!   `gy·f'(a)` to the argmax and writes 0 elsewhere (`0·f'(a)`, as the separate layers).
//!
//! Work is split over the rayon pool by whole planes, each output cell computed from its own
//! window only, so the result does not depend on the thread count.

use super::reduce::Reduce;
use super::shape::PoolShape;
use super::windows::Windows;
use super::{pool_backward, pool_backward_indices, pool_forward, PoolKind, PoolOutput, PoolParams};
use crate::error::{Error, Result};
use crate::ops::activation::{
    backward_inplace, forward_inplace, relu, relu_grad, sigmoid, sigmoid_grad, tanh_grad, wide,
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
/// each selected cell (what [`super::pool_forward`] returns on `f(z)`).
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
    let with_indices = with_indices && g.pooling == Pooling::Max;
    let n = g.planes * g.oh * g.ow;
    let mut y = Box::<[f32]>::new_uninit_slice(n);
    let mut idx = with_indices.then(|| Box::<[u32]>::new_uninit_slice(n));
    let per = g.per_task();
    let (zc, out) = (g.h * g.w, g.oh * g.ow);
    let run = |(zp, yp, ip): (
        &[f32],
        &mut [MaybeUninit<f32>],
        Option<&mut [MaybeUninit<u32>]>,
    )| { wide(|| with_act!(act, |f, _df| forward_planes(&g, f, zp, yp, ip))) };
    let zs = z.data().par_chunks(per * zc);
    match idx.as_deref_mut() {
        Some(ic) => zs
            .zip(y.par_chunks_mut(per * out))
            .zip(ic.par_chunks_mut(per * out))
            .for_each(|((zp, yp), ip)| run((zp, yp, Some(ip)))),
        None => zs
            .zip(y.par_chunks_mut(per * out))
            .for_each(|(zp, yp)| run((zp, yp, None))),
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

/// Backward: `gz = dL/dz` from `z`, `gy = dL/dy` and, for max pooling, the forward's indices.
pub fn backward(
    act: Activation,
    z: &Tensor,
    idx: Option<&[u32]>,
    gy: &Tensor,
    p: &PoolParams,
) -> Result<Tensor> {
    let s = PoolShape::new(z.shape(), p)?;
    let Some(g) = Geom::new(&s) else {
        return backward_ref(act, z, idx, gy, p);
    };
    check_grad(&s, gy)?;
    let idx = match (g.pooling, idx) {
        (Pooling::Max, Some(i)) if i.len() == gy.numel() => Some(i),
        (Pooling::Max, _) => return Err(missing_indices(p)),
        (Pooling::Avg { .. }, _) => None,
    };
    let mut gz = Box::<[f32]>::new_uninit_slice(z.numel());
    let per = g.per_task();
    let (zc, out) = (g.h * g.w, g.oh * g.ow);
    let gyd = gy.data();
    (z.data().par_chunks(per * zc))
        .zip(gz.par_chunks_mut(per * zc))
        .enumerate()
        .for_each(|(t, (zp, gzp))| {
            // this task's planes of gy and of the indices (none for average pooling)
            let (o0, len) = (t * per * out, zp.len() / zc * out);
            let gyp = &gyd[o0..][..len];
            let ip = idx.map_or(&[][..], |i| &i[o0..][..len]);
            wide(|| with_act!(act, |f, df| backward_planes(&g, f, df, zp, gyp, ip, gzp)))
        });
    // SAFETY: `backward_planes` wrote every cell of every plane
    Tensor::new(z.shape().to_vec(), unsafe { gz.assume_init() }.into_vec())
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
    z: &Tensor,
    idx: Option<&[u32]>,
    gy: &Tensor,
    p: &PoolParams,
) -> Result<Tensor> {
    let mut a = z.clone();
    forward_inplace(act, a.data_mut());
    let mut ga = if p.kind.has_indices() {
        let idx = idx.ok_or_else(|| missing_indices(p))?;
        pool_backward_indices(a.shape(), idx, gy, p)?
    } else {
        let out = pool_forward(&a, p)?;
        pool_backward(&a, &out, gy, p)?
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

/// Forward of whole planes `zp` into `yp` (and `ip`): per output row, `f` on the two input rows
/// (scratch), then the 2×2 windows.
#[inline(always)]
fn forward_planes(
    g: &Geom,
    f: impl Fn(f32) -> f32,
    zp: &[f32],
    yp: &mut [MaybeUninit<f32>],
    mut ip: Option<&mut [MaybeUninit<u32>]>,
) {
    let (w, ow, cols) = (g.w, g.ow, 2 * g.ow);
    let mut a0 = vec![0.0f32; cols];
    let mut a1 = vec![0.0f32; cols];
    for (plane, zpl) in zp.chunks_exact(g.h * w).enumerate() {
        for oh in 0..g.oh {
            let (top, bottom) = (2 * oh * w, (2 * oh + 1) * w);
            let yr = &mut yp[(plane * g.oh + oh) * ow..][..ow];
            match g.pooling {
                Pooling::Avg { inv } => {
                    // a0 = f(top) + f(bottom), then the horizontal pairs
                    for ((s, &t), &b) in a0.iter_mut().zip(&zpl[top..]).zip(&zpl[bottom..]) {
                        *s = f(t) + f(b);
                    }
                    for (yv, s) in yr.iter_mut().zip(a0.chunks_exact(2)) {
                        yv.write((s[0] + s[1]) * inv);
                    }
                }
                Pooling::Max => {
                    for (d, &v) in a0.iter_mut().zip(&zpl[top..]) {
                        *d = f(v);
                    }
                    for (d, &v) in a1.iter_mut().zip(&zpl[bottom..]) {
                        *d = f(v);
                    }
                    let ir = ip
                        .as_deref_mut()
                        .map(|i| &mut i[(plane * g.oh + oh) * ow..][..ow]);
                    max_row(&a0, &a1, top as u32, w as u32, yr, ir);
                }
            }
        }
    }
}

/// One output row of max pooling from the activated rows `a0` (top, starting at in-plane index
/// `top`) and `a1` (the row below): per window the cells in row-major order, the first maximum
/// winning, a NaN winning and the last NaN winning.
#[inline(always)]
fn max_row(
    a0: &[f32],
    a1: &[f32],
    top: u32,
    w: u32,
    yr: &mut [MaybeUninit<f32>],
    ir: Option<&mut [MaybeUninit<u32>]>,
) {
    let windows = a0.chunks_exact(2).zip(a1.chunks_exact(2));
    let best = |(t, b): (&[f32], &[f32]), o: u32| {
        let at = top + 2 * o;
        let (mut best, mut i) = (t[0], at);
        for (v, vi) in [(t[1], at + 1), (b[0], at + w), (b[1], at + w + 1)] {
            let take = v > best || v.is_nan();
            best = if take { v } else { best };
            i = if take { vi } else { i };
        }
        (best, i)
    };
    match ir {
        Some(ir) => {
            for (((yv, iv), win), o) in yr.iter_mut().zip(ir).zip(windows).zip(0u32..) {
                let (v, i) = best(win, o);
                yv.write(v);
                iv.write(i);
            }
        }
        None => {
            for ((yv, win), o) in yr.iter_mut().zip(windows).zip(0u32..) {
                yv.write(best(win, o).0);
            }
        }
    }
}

/// Backward of whole planes: per input row, the pooling's gradient `ge` of its cells (average:
/// `gy·inv` twice; max: `gy` at the argmax, else 0), then `gz = ge·f'(f(z))`; the row and column
/// no window covers (odd `H`, `W`) get 0.
#[inline(always)]
fn backward_planes(
    g: &Geom,
    f: impl Fn(f32) -> f32,
    df: impl Fn(f32) -> f32,
    zp: &[f32],
    gyp: &[f32],
    ip: &[u32],
    gzp: &mut [MaybeUninit<f32>],
) {
    let (w, ow, cols) = (g.w, g.ow, 2 * g.ow);
    let mut ge = vec![0.0f32; cols];
    let (zc, out) = (g.h * w, g.oh * ow);
    for (plane, (zpl, gzpl)) in zp
        .chunks_exact(zc)
        .zip(gzp.chunks_exact_mut(zc))
        .enumerate()
    {
        for r in 0..g.h {
            let (zr, gzr) = (&zpl[r * w..][..w], &mut gzpl[r * w..][..w]);
            let oh = r / 2;
            if oh >= g.oh {
                gzr.iter_mut().for_each(|v| {
                    v.write(0.0);
                });
                continue;
            }
            let gyr = &gyp[plane * out + oh * ow..][..ow];
            match g.pooling {
                Pooling::Avg { inv } => {
                    for (e, &gv) in ge.chunks_exact_mut(2).zip(gyr) {
                        let v = gv * inv;
                        e[0] = v;
                        e[1] = v;
                    }
                }
                Pooling::Max => {
                    let ir = &ip[plane * out + oh * ow..][..ow];
                    let row = (r * w) as u32;
                    for (((e, &gv), &i), o) in ge.chunks_exact_mut(2).zip(gyr).zip(ir).zip(0u32..) {
                        e[0] = if i == row + 2 * o { gv } else { 0.0 };
                        e[1] = if i == row + 2 * o + 1 { gv } else { 0.0 };
                    }
                }
            }
            for ((d, &e), &zv) in gzr.iter_mut().zip(&ge).zip(zr) {
                d.write(e * df(f(zv)));
            }
            gzr[cols..].iter_mut().for_each(|v| {
                v.write(0.0);
            });
        }
    }
}
