//! Stateful layers: each caches what its backward pass needs, holds its parameters and their
//! gradients, and calls the pure maths of [`crate::ops`]. [`Sequential`] chains them;
//! [`spec`] describes networks as text and computes their shapes; [`models`] has the presets.
//!
//! Conventions: layers take batched input `(N, C, *spatial)` (or `(N, features)`); gradients are
//! overwritten by each backward pass (one backward per step), not accumulated as in PyTorch.
//! Parameter names follow PyTorch's `state_dict` (`"0.weight"`, `"3.running_mean"`).

pub mod activation;
pub mod batchnorm;
pub mod conv;
pub mod init;
pub mod linear;
pub mod models;
pub mod pool;
pub mod spec;
mod spec_display;
mod spec_parse;

use crate::error::Result;
use crate::tensor::Tensor;

/// A trainable tensor and its gradient (same shape).
#[derive(Clone, Debug)]
pub struct Param {
    /// PyTorch name inside its layer: `weight` or `bias`.
    pub name: &'static str,
    pub value: Tensor,
    pub grad: Tensor,
}

impl Param {
    /// A layer's parameters in PyTorch's order: the weight, then the bias if any.
    pub fn weight_and_bias<'a>(weight: &'a Param, bias: &'a Option<Param>) -> Vec<&'a Param> {
        std::iter::once(weight).chain(bias).collect()
    }

    /// [`Param::weight_and_bias`], mutable.
    pub fn weight_and_bias_mut<'a>(
        weight: &'a mut Param,
        bias: &'a mut Option<Param>,
    ) -> Vec<&'a mut Param> {
        std::iter::once(weight).chain(bias).collect()
    }

    /// A parameter with a zero gradient.
    pub fn new(name: &'static str, value: Tensor) -> Self {
        let grad = Tensor::zeros(value.shape());
        Param { name, value, grad }
    }
}

/// One layer of a network.
pub trait Layer: Send {
    /// PyTorch-style description, e.g. `Linear(in_features=400, out_features=120)`.
    fn describe(&self) -> String;

    /// Forward pass on a batch; `train` selects training behaviour (batch statistics, dropout).
    /// Takes the input by value so it can be cached for backward without a copy.
    fn forward(&mut self, x: Tensor, train: bool) -> Result<Tensor>;

    /// Forward pass for inference only (evaluation, prediction: no backward follows). Same
    /// result as `forward(x, false)`, but nothing is kept for backward, so a deep network
    /// evaluates in the memory of its two largest activations.
    fn infer(&mut self, x: Tensor) -> Result<Tensor> {
        self.forward(x, false)
    }

    /// Number of values currently kept for the backward pass (memory accounting, tests).
    fn cached(&self) -> usize {
        0
    }

    /// Backward pass: stores parameter gradients and returns the input gradient when
    /// `want_input_grad` (the first layer of a network does not need it).
    fn backward(&mut self, gy: Tensor, want_input_grad: bool) -> Result<Option<Tensor>>;

    /// Trainable parameters.
    fn params(&self) -> Vec<&Param> {
        Vec::new()
    }

    /// Trainable parameters, mutable (for the optimiser).
    fn params_mut(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }

    /// Non-trainable state saved in checkpoints (running statistics).
    fn buffers(&self) -> Vec<(&'static str, &Tensor)> {
        Vec::new()
    }

    /// Non-trainable state, mutable (for loading checkpoints).
    fn buffers_mut(&mut self) -> Vec<(&'static str, &mut Tensor)> {
        Vec::new()
    }

    /// Re-seeds any randomness (dropout masks).
    fn reseed(&mut self, _seed: u64) {}
}

/// The [`Layer`] methods shared by the layers with a weight, an optional bias and a cached
/// input (`Conv`, `Linear`): forward caches `x` for backward, infer keeps nothing, and the
/// parameters are `[weight, bias?]`. The layer provides `apply(&self, &Tensor, fused: bool)`
/// (the forward maths, keeping nothing; `fused` is set in the training forward and the
/// inference pass, where a convolution also applies the activation fused into it) and
/// `backward_impl`, and fields `x`, `weight`, `bias`.
macro_rules! weighted_layer_methods {
    () => {
        fn forward(&mut self, x: Tensor, train: bool) -> Result<Tensor> {
            let y = self.apply(&x, train)?;
            self.x = x;
            Ok(y)
        }

        fn infer(&mut self, x: Tensor) -> Result<Tensor> {
            self.apply(&x, true)
        }

        fn cached(&self) -> usize {
            self.x.numel()
        }

        fn backward(&mut self, gy: Tensor, want_input_grad: bool) -> Result<Option<Tensor>> {
            self.backward_impl(gy, want_input_grad)
        }

        fn params(&self) -> Vec<&Param> {
            Param::weight_and_bias(&self.weight, &self.bias)
        }

        fn params_mut(&mut self) -> Vec<&mut Param> {
            Param::weight_and_bias_mut(&mut self.weight, &mut self.bias)
        }
    };
}
pub(crate) use weighted_layer_methods;

/// Layers applied in order (PyTorch `nn.Sequential`).
#[derive(Default)]
pub struct Sequential {
    pub layers: Vec<Box<dyn Layer>>,
    /// When set, per layer `(forward seconds, backward seconds)` accumulated over calls
    /// (for `stride bench train --layers`).
    pub timings: Option<Vec<(f64, f64)>>,
}

impl Sequential {
    /// A network from its layers.
    pub fn new(layers: Vec<Box<dyn Layer>>) -> Self {
        Sequential {
            layers,
            timings: None,
        }
    }

    /// Starts (or restarts) per-layer timing.
    pub fn time_layers(&mut self) {
        self.timings = Some(vec![(0.0, 0.0); self.layers.len()]);
    }

    /// Forward through every layer.
    pub fn forward(&mut self, mut x: Tensor, train: bool) -> Result<Tensor> {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            let t0 = self.timings.is_some().then(std::time::Instant::now);
            x = layer.forward(x, train)?;
            if let (Some(t), Some(t0)) = (&mut self.timings, t0) {
                t[i].0 += t0.elapsed().as_secs_f64();
            }
        }
        Ok(x)
    }

    /// Forward through every layer for inference: eval mode, nothing kept for backward.
    pub fn infer(&mut self, mut x: Tensor) -> Result<Tensor> {
        for layer in &mut self.layers {
            x = layer.infer(x)?;
        }
        Ok(x)
    }

    /// Values kept for the backward pass by all layers.
    pub fn cached(&self) -> usize {
        self.layers.iter().map(|l| l.cached()).sum()
    }

    /// Backward through every layer in reverse, from the gradient of the loss w.r.t. the output.
    /// No input gradient is computed for the first layer with parameters: nothing before it
    /// has parameters to learn (a leading `flatten` or activation needs no gradient either).
    pub fn backward(&mut self, gy: Tensor) -> Result<()> {
        let mut g = gy;
        let first = (self.layers.iter())
            .position(|l| !l.params().is_empty())
            .unwrap_or(self.layers.len());
        for (i, layer) in self.layers.iter_mut().enumerate().rev() {
            let t0 = self.timings.is_some().then(std::time::Instant::now);
            let gx = layer.backward(g, i > first)?;
            if let (Some(t), Some(t0)) = (&mut self.timings, t0) {
                t[i].1 += t0.elapsed().as_secs_f64();
            }
            match gx {
                Some(gx) => g = gx,
                None => break,
            }
        }
        Ok(())
    }

    /// Parameters with their PyTorch `state_dict` names (`"0.weight"`).
    pub fn named_params(&self) -> Vec<(String, &Param)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(
                l.params()
                    .into_iter()
                    .map(|p| (format!("{i}.{}", p.name), p)),
            );
        }
        out
    }

    /// The parameters' `state_dict` names alone, in order (a checkpoint's parameter list).
    pub fn param_names(&self) -> Vec<String> {
        self.named_params().into_iter().map(|(n, _)| n).collect()
    }

    /// Parameters, mutable, with their names.
    pub fn named_params_mut(&mut self) -> Vec<(String, &mut Param)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            out.extend(
                l.params_mut()
                    .into_iter()
                    .map(|p| (format!("{i}.{}", p.name), p)),
            );
        }
        out
    }

    /// Buffers (running statistics) with their names.
    pub fn named_buffers(&self) -> Vec<(String, &Tensor)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            out.extend(
                l.buffers()
                    .into_iter()
                    .map(|(n, t)| (format!("{i}.{n}"), t)),
            );
        }
        out
    }

    /// Buffers, mutable, with their names.
    pub fn named_buffers_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out = Vec::new();
        for (i, l) in self.layers.iter_mut().enumerate() {
            out.extend(
                l.buffers_mut()
                    .into_iter()
                    .map(|(n, t)| (format!("{i}.{n}"), t)),
            );
        }
        out
    }

    /// Total number of trainable values.
    pub fn num_params(&self) -> usize {
        self.named_params()
            .iter()
            .map(|(_, p)| p.value.numel())
            .sum()
    }

    /// Re-seeds every layer's randomness from one seed (layer `i` gets a distinct stream).
    pub fn reseed(&mut self, seed: u64) {
        for (i, l) in self.layers.iter_mut().enumerate() {
            l.reseed(seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
    }
}
