//! Optimisers with PyTorch's exact update rules: [`sgd::Sgd`] (momentum, dampening, Nesterov,
//! weight decay) and [`adam::Adam`] (bias-corrected, L2 weight decay). Each keeps its state per
//! parameter, in parameter order, and can export / import it for checkpoints under PyTorch's
//! state names (`momentum_buffer`, `exp_avg`, `exp_avg_sq`).

pub mod adam;
pub mod sgd;

use crate::error::{Error, Result};
use crate::nn::Param;
use crate::tensor::Tensor;

/// Which optimiser and its hyper-parameters (PyTorch defaults unless set). Scalars are kept in
/// f64 like PyTorch's Python floats; derived constants are computed in f64 and rounded to f32 once.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimConfig {
    /// `sgd` or `adam`.
    pub kind: String,
    pub lr: f64,
    /// SGD momentum (0 = plain SGD).
    pub momentum: f64,
    pub dampening: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Adam's (β1, β2).
    pub betas: (f64, f64),
    pub eps: f64,
}

impl OptimConfig {
    /// PyTorch's defaults for `kind` with learning rate `lr`.
    pub fn new(kind: &str, lr: f64) -> Result<Self> {
        if kind != "sgd" && kind != "adam" {
            return Err(Error::arg(
                "optimizer",
                format!("unknown optimizer '{kind}'; use sgd or adam"),
            ));
        }
        if !(lr.is_finite() && lr > 0.0) {
            return Err(Error::arg(
                "lr",
                format!("learning rate {lr} must be a positive number"),
            ));
        }
        Ok(OptimConfig {
            kind: kind.into(),
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            betas: (0.9, 0.999),
            eps: 1e-8,
        })
    }

    /// Builds the optimiser.
    pub fn build(&self) -> Box<dyn Optimizer> {
        if self.kind == "adam" {
            Box::new(adam::Adam::new(self.clone()))
        } else {
            Box::new(sgd::Sgd::new(self.clone()))
        }
    }
}

/// An optimiser: updates parameters from their gradients.
pub trait Optimizer: Send {
    /// One update of every parameter (named as in the model's `state_dict`, in a fixed order).
    fn step(&mut self, params: Vec<(String, &mut Param)>);

    /// Number of steps taken.
    fn steps(&self) -> u64;

    /// State tensors for a checkpoint: `("{param}.{state}", tensor)`.
    fn state(&self) -> Vec<(String, Tensor)>;

    /// Restores the state saved by [`Optimizer::state`]; `get` looks a tensor up by name.
    fn load_state(
        &mut self,
        names: &[String],
        steps: u64,
        get: &dyn Fn(&str) -> Option<Tensor>,
    ) -> Result<()>;
}

/// Shared by the optimisers: a missing or mis-shaped state tensor is a checkpoint error.
pub(crate) fn state_tensor(
    get: &dyn Fn(&str) -> Option<Tensor>,
    name: &str,
    like: Option<&Tensor>,
) -> Result<Tensor> {
    let t = get(name).ok_or_else(|| {
        Error::arg(
            "checkpoint",
            format!("optimizer state `{name}` is missing; the checkpoint is incomplete or from another optimizer"),
        )
    })?;
    if let Some(like) = like {
        if like.shape() != t.shape() {
            return Err(Error::arg(
                "checkpoint",
                format!("optimizer state `{name}` has the wrong shape"),
            ));
        }
    }
    Ok(t)
}
