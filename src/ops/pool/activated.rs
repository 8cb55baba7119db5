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
//! hold the fast path to. The kernels are in `rows/activated.rs`.
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

use super::rows::activated::{backward_wide, forward_wide, Geom, Planes, Pooling};
use super::shape::PoolShape;
use super::{pool_backward, pool_backward_indices, pool_forward, PoolKind, PoolOutput, PoolParams};
use crate::error::{Error, Result};
use crate::ops::activation::{
    backward_inplace, forward_inplace, relu, relu_grad, sigmoid, sigmoid_grad, tanh_grad,
    Activation,
};
use crate::tensor::Tensor;
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

/// The forward of [`forward_keep`] on an input the layer before has already activated
/// (`a = f(z)`, a convolution applying its activation): `y = pool(a)` and the indices, as
/// [`forward_keep`] returns them, `a` unchanged. Takes the fast path's blocks of planes (the
/// general pooling kernels go row by row: three times slower on LeNet's 28 × 28 planes).
pub fn pool_activated(a: &Tensor, p: &PoolParams, with_indices: bool) -> Result<PoolOutput> {
    let s = PoolShape::new(a.shape(), p)?;
    let Some(g) = Geom::new(&s) else {
        let mut out = pool_forward(a, p)?;
        out.indices = out.indices.filter(|_| with_indices);
        return Ok(out);
    };
    let chunk = g.per_task() * g.h * g.w;
    let planes = a.data().par_chunks(chunk).map(Planes::Ready);
    // `f` is not applied to ready planes: any activation's kernel will do
    pooled(&g, &s, with_indices, planes, Activation::Relu)
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
    crate::ops::conv::check_grad_output(gy.shape(), &s.out_shape())?;
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
