//! Data-parallel training steps: the batch split into [`SHARDS`] shards of consecutive images
//! that run forward and backward side by side (`rayon::join`), each on its own copy of the
//! layers (its own caches; the weights copied from the model first), their parameter gradients
//! then added in shard order. The sum is the batch's gradient: each shard's loss gradient is
//! divided by the whole batch's size, so the shards' gradients add up to the mean over the
//! batch (the same maths as one pass; only the float rounding of the sums differs).
//!
//! Why: LeNet's step is about forty short parallel loops with serial parts between them (the
//! loss, the small layers, the bias sums); on two cores each loop's start and end cost more
//! than the loop's work would split. As two independent halves the cores meet once per step,
//! and each core's half of the activations (2.4 MB for LeNet's first layer) nearly fits its
//! second-level cache. The kernels inside a shard still split their work, so a core that
//! finishes first helps the other.
//!
//! Applies when no layer couples the images of a batch or draws random numbers in training
//! ([`applies`]: no BatchNorm, whose statistics are over the whole batch, and no Dropout,
//! whose masks would depend on the split) and the batch has at least `SHARDS · MIN_SHARD`
//! images. The split does not depend on the thread count, so neither do the results.

use crate::error::Result;
use crate::nn::init::Init;
use crate::nn::models::Model;
use crate::nn::spec::LayerSpec;
use crate::nn::Sequential;
use crate::ops::loss::{cross_entropy, cross_entropy_backward_over};
use crate::tensor::Tensor;

/// Shards per step.
pub const SHARDS: usize = 2;

/// Fewest images per shard (smaller batches run as one pass).
pub const MIN_SHARD: usize = 32;

/// Whether a training step of `batch` images on `model` runs as shards.
pub fn applies(model: &Model, batch: usize) -> bool {
    batch >= SHARDS * MIN_SHARD
        && model
            .spec
            .layers
            .iter()
            .all(|l| !matches!(l, LayerSpec::BatchNorm { .. } | LayerSpec::Dropout { .. }))
}

/// Forward, loss and backward of the batch `(x, y)` as shards: leaves the batch's gradients in
/// the parameters of `model.net` (the optimiser's step reads them there); returns the mean
/// loss and the number of correct predictions. Requires [`applies`].
pub fn forward_backward(model: &mut Model, x: Tensor, y: &[usize]) -> Result<(f32, usize)> {
    let n = y.len();
    if model.replicas.len() < SHARDS - 1 {
        // the replicas' own initial weights are overwritten below before every use
        model.replicas = (1..SHARDS)
            .map(|_| Ok(Model::build(&model.spec, Init::Default, 0)?.net))
            .collect::<Result<_>>()?;
    }
    // the weights of this step
    for replica in &mut model.replicas {
        for (dst, src) in replica.layers.iter_mut().zip(&model.net.layers) {
            for (d, s) in dst.params_mut().into_iter().zip(src.params()) {
                d.value.data_mut().copy_from_slice(s.value.data());
            }
        }
    }
    // shard k: images [k·n/SHARDS, (k+1)·n/SHARDS)
    let bounds: Vec<usize> = (0..=SHARDS).map(|k| k * n / SHARDS).collect();
    let per = x.numel() / n;
    let mut shape = x.shape().to_vec();
    let mut part = |k: usize| -> Result<Tensor> {
        shape[0] = bounds[k + 1] - bounds[k];
        Tensor::new(
            shape.clone(),
            x.data()[bounds[k] * per..bounds[k + 1] * per].to_vec(),
        )
    };
    let (x0, x1) = (part(0)?, part(1)?);
    drop(x);
    let (first, second) = (&mut model.net, &mut model.replicas[0]);
    let (a, b) = rayon::join(
        || shard_step(first, x0, &y[..bounds[1]], n),
        || shard_step(second, x1, &y[bounds[1]..], n),
    );
    let ((loss0, correct0), (loss1, correct1)) = (a?, b?);
    // the batch's gradient: shard 0's plus shard 1's
    for (dst, src) in model.net.layers.iter_mut().zip(&model.replicas[0].layers) {
        for (d, s) in dst.params_mut().into_iter().zip(src.params()) {
            d.grad
                .data_mut()
                .iter_mut()
                .zip(s.grad.data())
                .for_each(|(g, v)| *g += v);
        }
    }
    Ok((((loss0 + loss1) / n as f64) as f32, correct0 + correct1))
}

/// Forward and backward of one shard of a batch of `total` images: its parameter gradients
/// (its part of the batch mean) in `net`; returns the sum of its images' losses and its
/// correct predictions.
fn shard_step(net: &mut Sequential, x: Tensor, y: &[usize], total: usize) -> Result<(f64, usize)> {
    let out = net.forward(x, true)?;
    let classes = out.shape()[1];
    let ce = cross_entropy(out.data(), classes, y)?;
    let mut g = out;
    cross_entropy_backward_over(&ce, classes, y, total, g.data_mut());
    net.backward(g)?;
    Ok((ce.loss as f64 * y.len() as f64, ce.correct))
}
