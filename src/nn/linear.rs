//! The fully connected layer ([`Linear`]) and [`Flatten`], on the maths of [`crate::ops::linear`].

use super::{weighted_layer_methods, Layer, Param};
use crate::error::{Error, Result};
use crate::ops::linear::{backward, forward, LinearDims};
use crate::tensor::{fmt_shape, Tensor};

/// `y = x · wᵀ + b` on `x: (N, in)`; weight `(out, in)`, bias `(out)`. Caches its input.
///
/// PyTorch: `torch.nn.Linear(in_features, out_features, bias)`.
pub struct Linear {
    pub weight: Param,
    pub bias: Option<Param>,
    x: Tensor,
}

impl Linear {
    /// A layer with zero weights (the model builder initialises them).
    pub fn new(in_features: usize, out_features: usize, bias: bool) -> Self {
        Linear {
            weight: Param::new("weight", Tensor::zeros(&[out_features, in_features])),
            bias: bias.then(|| Param::new("bias", Tensor::zeros(&[out_features]))),
            x: Tensor::zeros(&[0]),
        }
    }

    fn dims(&self, n: usize) -> LinearDims {
        let s = self.weight.value.shape();
        LinearDims {
            n,
            inf: s[1],
            outf: s[0],
        }
    }
}

impl Layer for Linear {
    fn describe(&self) -> String {
        let s = self.weight.value.shape();
        format!(
            "Linear(in_features={}, out_features={}, bias={})",
            s[1],
            s[0],
            if self.bias.is_some() { "True" } else { "False" }
        )
    }

    weighted_layer_methods!();
}

impl Linear {
    /// `y = x · wᵀ + b`, keeping nothing (nothing is fused into a linear layer).
    fn apply(&self, x: &Tensor, _fused: bool) -> Result<Tensor> {
        let inf = self.weight.value.shape()[1];
        if x.rank() != 2 || x.shape()[1] != inf {
            return Err(Error::arg(
                "input",
                format!(
                    "Linear expects (N, {inf}) but got {}; add a flatten before it or fix in_features",
                    fmt_shape(x.shape())
                ),
            ));
        }
        let d = self.dims(x.shape()[0]);
        let mut y = Tensor::zeros(&[d.n, d.outf]);
        forward(
            d,
            x.data(),
            self.weight.value.data(),
            self.bias.as_ref().map(|b| b.value.data()),
            y.data_mut(),
        );
        Ok(y)
    }

    fn backward_impl(&mut self, gy: Tensor, want_input_grad: bool) -> Result<Option<Tensor>> {
        let d = self.dims(self.x.shape()[0]);
        let mut gx = want_input_grad.then(|| Tensor::zeros(self.x.shape()));
        backward(
            d,
            self.x.data(),
            self.weight.value.data(),
            gy.data(),
            gx.as_mut().map(|g| g.data_mut()),
            self.weight.grad.data_mut(),
            self.bias.as_mut().map(|b| b.grad.data_mut()),
        );
        Ok(gx)
    }
}

/// Flattens every axis after the batch axis: `(N, C, H, W) → (N, C·H·W)`. A reshape, no copy.
///
/// PyTorch: `torch.nn.Flatten()`.
#[derive(Default)]
pub struct Flatten {
    in_shape: Vec<usize>,
}

impl Layer for Flatten {
    fn describe(&self) -> String {
        "Flatten(start_dim=1, end_dim=-1)".into()
    }

    fn forward(&mut self, x: Tensor, _train: bool) -> Result<Tensor> {
        if x.rank() < 2 {
            return Err(Error::arg(
                "input",
                format!(
                    "Flatten expects a batch (N, ...) but got {}",
                    fmt_shape(x.shape())
                ),
            ));
        }
        self.in_shape = x.shape().to_vec();
        let n = self.in_shape[0];
        let rest = x.numel() / n.max(1);
        x.reshape(&[n, rest])
    }

    fn backward(&mut self, gy: Tensor, want_input_grad: bool) -> Result<Option<Tensor>> {
        Ok(if want_input_grad {
            Some(gy.reshape(&self.in_shape)?)
        } else {
            None
        })
    }
}
