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
//! Each shard runs its images in pieces of at most [`MAX_PIECE`], one after the other, adding
//! their gradients (a gradient accumulation): a piece's activations stay in the core's cache.
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
use crate::tensor::Tensor;

/// Shards per step ([`forward_backward`] joins exactly two).
pub const SHARDS: usize = 2;
const _: () = assert!(SHARDS == 2, "forward_backward joins two shards");

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
    let (xd, shape) = (x.data(), x.shape());
    let part = |k: usize| Shard {
        x: &xd[bounds[k] * per..bounds[k + 1] * per],
        shape,
        y: &y[bounds[k]..bounds[k + 1]],
        total: n,
    };
    let (first, second) = (&mut model.net, &mut model.replicas[0]);
    let (a, b) = rayon::join(|| part(0).run(first), || part(1).run(second));
    let ((loss0, correct0), (loss1, correct1)) = (a?, b?);
    // the batch's gradient: shard 0's plus shard 1's
    for (dst, src) in model.net.layers.iter_mut().zip(&model.replicas[0].layers) {
        for (d, s) in dst.params_mut().into_iter().zip(src.params()) {
            add(&mut d.grad, &s.grad);
        }
    }
    Ok((((loss0 + loss1) / n as f64) as f32, correct0 + correct1))
}

/// Most images a shard runs forward and backward at once: its pieces of at most this many run
/// one after the other, their gradients added (LeNet's first layer's output for 64 images,
/// 1.2 MB, stays in the second-level cache between the layers that write and read it). Measured
/// on lenet5, 2 threads, interleaved: 49.9–50.7k images/s against 47.7–49.6k with one piece per
/// shard (before the batch-lanes scatter kernel); after it, 54.5–57.7k against 56.6–57.1k for
/// pieces of 128 and 51.1–54.0k for pieces of 32.
pub const MAX_PIECE: usize = 64;

/// One shard of a batch: its images `x` (shape `shape` but for the batch axis), labels `y`, and
/// the whole batch's size.
struct Shard<'a> {
    x: &'a [f32],
    shape: &'a [usize],
    y: &'a [usize],
    total: usize,
}

impl Shard<'_> {
    /// Forward and backward of the shard in pieces of at most [`MAX_PIECE`] images: its
    /// parameter gradients (its part of the batch mean) in `net`; returns the sum of its images'
    /// losses and its correct predictions.
    fn run(&self, net: &mut Sequential) -> Result<(f64, usize)> {
        let n = self.y.len();
        let per = self.x.len() / n.max(1);
        let pieces = n.div_ceil(MAX_PIECE);
        let (mut loss, mut correct) = (0.0f64, 0usize);
        // the gradients of the pieces before the last (each backward overwrites them)
        let mut sum: Vec<Tensor> = Vec::new();
        for j in 0..pieces {
            let (a, b) = (j * n / pieces, (j + 1) * n / pieces);
            let mut shape = self.shape.to_vec();
            shape[0] = b - a;
            let x = Tensor::new(shape, self.x[a * per..b * per].to_vec())?;
            let y = &self.y[a..b];
            let ce = crate::train::forward_loss_backward(net, x, y, self.total)?;
            loss += ce.loss as f64 * y.len() as f64;
            correct += ce.correct;
            let grads = net.layers.iter_mut().flat_map(|l| l.params_mut());
            if j == 0 && pieces > 1 {
                sum = grads.map(|p| p.grad.clone()).collect();
            } else if j > 0 {
                for (s, p) in sum.iter_mut().zip(grads) {
                    add(s, &p.grad);
                    if j + 1 == pieces {
                        std::mem::swap(s, &mut p.grad);
                    }
                }
            }
        }
        Ok((loss, correct))
    }
}

/// `dst += src`, element by element.
fn add(dst: &mut Tensor, src: &Tensor) {
    dst.data_mut()
        .iter_mut()
        .zip(src.data())
        .for_each(|(d, s)| *d += s);
}
