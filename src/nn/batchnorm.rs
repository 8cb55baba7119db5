//! Batch normalisation layers (`BatchNorm1d/2d/3d`), train and eval mode, running statistics with
//! PyTorch's momentum 0.1 and eps 1e-5. The maths is in [`crate::ops::norm`].

use super::{Layer, Param};
use crate::error::{Error, Result};
use crate::ops::norm::{backward, forward_eval, forward_train, BnDims, BnStats};
use crate::tensor::{fmt_shape, Tensor};

/// Normalises each channel over the batch (and spatial axes). `spatial` is 1 for
/// `BatchNorm1d` (input `(N, C)` or `(N, C, L)`), 2 for `BatchNorm2d` (`(N, C, H, W)`), 3 for
/// `BatchNorm3d`. Parameters `weight` (γ, ones) and `bias` (β, zeros); buffers `running_mean`
/// (zeros) and `running_var` (ones). Caches its input and the statistics used.
///
/// PyTorch: `torch.nn.BatchNorm1d/2d/3d(num_features, eps=1e-5, momentum=0.1)`
/// (without the `num_batches_tracked` counter, which only matters for `momentum=None`).
pub struct BatchNorm {
    pub spatial: usize,
    pub weight: Param,
    pub bias: Param,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub eps: f32,
    pub momentum: f32,
    /// A following ReLU computed here (see [`crate::ops::norm`]); the ReLU layer then passes
    /// values through (`Act::fused`).
    pub relu: bool,
    x: Tensor,
    stats: BnStats,
    train: bool,
}

impl BatchNorm {
    /// A fresh layer over `c` channels.
    pub fn new(spatial: usize, c: usize) -> Self {
        BatchNorm {
            spatial,
            weight: Param::new("weight", Tensor::full(&[c], 1.0)),
            bias: Param::new("bias", Tensor::zeros(&[c])),
            running_mean: Tensor::zeros(&[c]),
            running_var: Tensor::full(&[c], 1.0),
            eps: 1e-5,
            momentum: 0.1,
            relu: false,
            x: Tensor::zeros(&[0]),
            stats: BnStats::default(),
            train: false,
        }
    }

    fn channels(&self) -> usize {
        self.weight.value.numel()
    }

    /// Checks the input shape and returns `(N, C, L)`.
    fn dims(&self, shape: &[usize]) -> Result<BnDims> {
        let c = self.channels();
        let ok_rank = match self.spatial {
            1 => shape.len() == 2 || shape.len() == 3,
            s => shape.len() == s + 2,
        };
        if !ok_rank || shape[1] != c {
            let want = match self.spatial {
                1 => format!("(N, {c}) or (N, {c}, L)"),
                2 => format!("(N, {c}, H, W)"),
                _ => format!("(N, {c}, D, H, W)"),
            };
            return Err(Error::arg(
                "input",
                format!(
                    "BatchNorm{}d({c}) expects {want} but got {}",
                    self.spatial,
                    fmt_shape(shape)
                ),
            ));
        }
        Ok(BnDims {
            n: shape[0],
            c,
            l: shape[2..].iter().product(),
        })
    }

    /// Evaluation mode into `y` from `x`, or in place on `y` when `x` is `None`: the running
    /// statistics, the affine map and the fused ReLU if any (one pass); shared by
    /// `forward(.., false)` and `infer`.
    fn eval_into(&self, d: BnDims, x: Option<&Tensor>, y: &mut Tensor) -> BnStats {
        forward_eval(
            d,
            x.map(|x| x.data()),
            self.weight.value.data(),
            self.bias.value.data(),
            self.eps,
            self.running_mean.data(),
            self.running_var.data(),
            self.relu,
            y.data_mut(),
        )
    }

    /// An output buffer shaped like `x`: the previous step's cached input when it has the same
    /// size (it is dead once a new forward starts), so a training step allocates nothing here.
    fn output_buffer(&mut self, x: &Tensor) -> Result<Tensor> {
        let old = std::mem::replace(&mut self.x, Tensor::zeros(&[0]));
        if old.numel() == x.numel() {
            old.reshape(x.shape())
        } else {
            Ok(Tensor::zeros(x.shape()))
        }
    }
}

impl Layer for BatchNorm {
    fn describe(&self) -> String {
        format!(
            "BatchNorm{}d({}, eps={}, momentum={})",
            self.spatial,
            self.channels(),
            self.eps,
            self.momentum
        )
    }

    fn forward(&mut self, x: Tensor, train: bool) -> Result<Tensor> {
        let d = self.dims(x.shape())?;
        let mut y = self.output_buffer(&x)?;
        self.stats = if train {
            forward_train(
                d,
                x.data(),
                self.weight.value.data(),
                self.bias.value.data(),
                self.eps,
                self.momentum,
                self.running_mean.data_mut(),
                self.running_var.data_mut(),
                self.relu,
                y.data_mut(),
            )?
        } else {
            self.eval_into(d, Some(&x), &mut y)
        };
        self.train = train;
        self.x = x;
        Ok(y)
    }

    fn infer(&mut self, mut x: Tensor) -> Result<Tensor> {
        let d = self.dims(x.shape())?;
        // in place: nothing allocated, nothing kept
        self.eval_into(d, None, &mut x);
        Ok(x)
    }

    fn cached(&self) -> usize {
        self.x.numel()
    }

    fn backward(&mut self, mut g: Tensor, want_input_grad: bool) -> Result<Option<Tensor>> {
        let d = self.dims(self.x.shape())?;
        if g.shape() != self.x.shape() {
            return Err(Error::arg(
                "grad-output",
                format!(
                    "has shape {} but the layer's output has shape {}",
                    fmt_shape(g.shape()),
                    fmt_shape(self.x.shape())
                ),
            ));
        }
        // in place: g holds gy, then gx
        backward(
            d,
            self.x.data(),
            self.weight.value.data(),
            &self.stats,
            self.train,
            want_input_grad,
            g.data_mut(),
            self.weight.grad.data_mut(),
            self.bias.grad.data_mut(),
        );
        Ok(want_input_grad.then_some(g))
    }

    fn params(&self) -> Vec<&Param> {
        vec![&self.weight, &self.bias]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.weight, &mut self.bias]
    }

    fn buffers(&self) -> Vec<(&'static str, &Tensor)> {
        vec![
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ]
    }

    fn buffers_mut(&mut self) -> Vec<(&'static str, &mut Tensor)> {
        vec![
            ("running_mean", &mut self.running_mean),
            ("running_var", &mut self.running_var),
        ]
    }
}
