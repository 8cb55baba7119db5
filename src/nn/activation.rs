//! Element-wise layers: [`Act`] (ReLU, Sigmoid, Tanh through [`Activation`]) and seeded
//! [`Dropout`]. The maths is in [`crate::ops::activation`]. An [`Act`] can hand its work to a
//! neighbour that applies it in its own passes: the BatchNorm before it ([`Act::fused`]) or the
//! pooling after it ([`Act::pooled`]); it then keeps its place in the layer list (same
//! `state_dict` names, ONNX export and per-layer timing rows) and passes values through.

use super::Layer;
use crate::error::{Error, Result};
use crate::ops::activation::{backward_inplace, forward_inplace, forward_inplace_keep, Activation};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// An element-wise non-linearity, computed in place; caches its output `y` (the derivative of
/// all three is a function of `y`).
///
/// PyTorch: `torch.nn.ReLU()`, `torch.nn.Sigmoid()`, `torch.nn.Tanh()`.
pub struct Act {
    pub kind: Activation,
    /// The previous layer already applied this activation (a ReLU fused into the BatchNorm
    /// before it): forward and backward pass values through.
    pub fused: bool,
    /// The next layer, a pooling, applies this activation to its input (`Pool::act`) in the
    /// training forward, the inference pass and backward, which pass values through here. An
    /// evaluation `forward(x, false)` still applies it here (and the pooling pools only), so
    /// running the layers one by one shows each layer's own output.
    pub pooled: bool,
    /// The last forward passed values through (backward then does too).
    passed: bool,
    y: Tensor,
}

impl Act {
    pub fn new(kind: Activation) -> Self {
        Act {
            kind,
            fused: false,
            pooled: false,
            passed: false,
            y: Tensor::zeros(&[0]),
        }
    }

    /// An activation the previous layer computes (see [`crate::nn::batchnorm::BatchNorm::relu`]).
    pub fn fused(kind: Activation) -> Self {
        Act {
            fused: true,
            ..Act::new(kind)
        }
    }

    /// An activation the next layer, a pooling, computes (see [`crate::nn::pool::Pool::act`]).
    pub fn pooled(kind: Activation) -> Self {
        Act {
            pooled: true,
            ..Act::new(kind)
        }
    }
}

impl Layer for Act {
    fn describe(&self) -> String {
        format!("{}()", self.kind.torch_name())
    }

    fn forward(&mut self, mut x: Tensor, train: bool) -> Result<Tensor> {
        self.passed = self.fused || (self.pooled && train);
        if self.passed {
            return Ok(x);
        }
        if self.y.shape() != x.shape() {
            self.y = Tensor::zeros(x.shape());
        }
        forward_inplace_keep(self.kind, x.data_mut(), self.y.data_mut());
        Ok(x)
    }

    fn infer(&mut self, mut x: Tensor) -> Result<Tensor> {
        if self.fused || self.pooled {
            return Ok(x);
        }
        forward_inplace(self.kind, x.data_mut());
        Ok(x)
    }

    fn cached(&self) -> usize {
        if self.passed {
            0
        } else {
            self.y.numel()
        }
    }

    fn backward(&mut self, mut gy: Tensor, want_input_grad: bool) -> Result<Option<Tensor>> {
        if !want_input_grad {
            return Ok(None);
        }
        if self.fused || self.passed {
            return Ok(Some(gy));
        }
        backward_inplace(self.kind, self.y.data(), gy.data_mut());
        Ok(Some(gy))
    }
}

/// Inverted dropout: in training, each value is zeroed with probability `p` and the survivors
/// are scaled by `1/(1-p)`; in eval mode it is the identity. The mask comes from a seeded
/// [`Rng`] so runs reproduce.
///
/// PyTorch: `torch.nn.Dropout(p)`.
pub struct Dropout {
    pub p: f32,
    rng: Rng,
    /// Per element: 0 or `1/(1-p)`; empty after an eval-mode forward.
    mask: Vec<f32>,
}

impl Dropout {
    /// Dropout with probability `p` in `[0, 1)`.
    pub fn new(p: f32) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::arg(
                "p",
                format!("dropout probability {p} must be in [0, 1)"),
            ));
        }
        Ok(Dropout {
            p,
            rng: Rng::new(0),
            mask: Vec::new(),
        })
    }
}

impl Layer for Dropout {
    fn describe(&self) -> String {
        format!("Dropout(p={})", self.p)
    }

    fn forward(&mut self, mut x: Tensor, train: bool) -> Result<Tensor> {
        self.mask.clear();
        if !train || self.p == 0.0 {
            return Ok(x);
        }
        let keep = 1.0 / (1.0 - self.p);
        let p = self.p;
        let rng = &mut self.rng;
        self.mask
            .extend((0..x.numel()).map(|_| if rng.uniform() < p { 0.0 } else { keep }));
        x.data_mut()
            .iter_mut()
            .zip(&self.mask)
            .for_each(|(v, m)| *v *= m);
        Ok(x)
    }

    fn backward(&mut self, mut gy: Tensor, want_input_grad: bool) -> Result<Option<Tensor>> {
        if !want_input_grad {
            return Ok(None);
        }
        if !self.mask.is_empty() {
            gy.data_mut()
                .iter_mut()
                .zip(&self.mask)
                .for_each(|(g, m)| *g *= m);
        }
        Ok(Some(gy))
    }

    fn reseed(&mut self, seed: u64) {
        self.rng = Rng::new(seed);
    }

    fn cached(&self) -> usize {
        self.mask.len()
    }
}
