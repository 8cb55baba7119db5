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
    /// Learning-rate schedule over the whole run: `constant` or `cosine` (PyTorch's
    /// `CosineAnnealingLR(T_max = all steps, eta_min = 0)`, stepped every batch).
    #[serde(default = "constant")]
    pub schedule: String,
}

fn constant() -> String {
    "constant".into()
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
            schedule: constant(),
        })
    }

    /// Sets the schedule (`constant` or `cosine`).
    pub fn with_schedule(mut self, schedule: &str) -> Result<Self> {
        if schedule != "constant" && schedule != "cosine" {
            return Err(Error::arg(
                "lr-schedule",
                format!("unknown schedule '{schedule}'; use constant or cosine"),
            ));
        }
        self.schedule = schedule.into();
        Ok(self)
    }

    /// Sets SGD momentum and weight decay (both PyTorch's: finite and ≥ 0).
    pub fn with_momentum(mut self, momentum: f64, weight_decay: f64) -> Result<Self> {
        self.momentum = momentum;
        self.weight_decay = weight_decay;
        self.validate()?;
        Ok(self)
    }

    /// Checks every field as PyTorch's constructors do; the error names the field (as the CLI
    /// flag) and the range it must be in. Used for the command line and for checkpoints.
    pub fn validate(&self) -> Result<()> {
        if self.kind != "sgd" && self.kind != "adam" {
            return Err(Error::arg(
                "optimizer",
                format!("unknown optimizer '{}'; use sgd or adam", self.kind),
            ));
        }
        if self.schedule != "constant" && self.schedule != "cosine" {
            return Err(Error::arg(
                "lr-schedule",
                format!(
                    "unknown schedule '{}'; use constant or cosine",
                    self.schedule
                ),
            ));
        }
        let range = |name: &str, v: f64, ok: bool, want: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::arg(name, format!("{v} must be {want}")))
            }
        };
        let (b1, b2) = self.betas;
        range(
            "lr",
            self.lr,
            self.lr.is_finite() && self.lr > 0.0,
            "a positive number",
        )?;
        let nonneg = |v: f64| v.is_finite() && v >= 0.0;
        range(
            "momentum",
            self.momentum,
            nonneg(self.momentum),
            "a number ≥ 0, e.g. 0.9",
        )?;
        range(
            "dampening",
            self.dampening,
            self.dampening.is_finite(),
            "finite",
        )?;
        range(
            "weight-decay",
            self.weight_decay,
            nonneg(self.weight_decay),
            "a number ≥ 0, e.g. 5e-4",
        )?;
        range("betas", b1, (0.0..1.0).contains(&b1), "in [0, 1)")?;
        range("betas", b2, (0.0..1.0).contains(&b2), "in [0, 1)")?;
        range("eps", self.eps, nonneg(self.eps), "a number ≥ 0")?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(Error::arg(
                "nesterov",
                "Nesterov momentum needs a momentum > 0 and zero dampening",
            ));
        }
        Ok(())
    }

    /// The learning rate of step `t` (0-based) out of `total`:
    /// cosine: `η_t = η · (1 + cos(π t / total)) / 2`; constant: `η`.
    pub fn lr_at(&self, t: u64, total: u64) -> f64 {
        if self.schedule == "cosine" && total > 0 {
            let frac = (t.min(total) as f64) / total as f64;
            self.lr * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos())
        } else {
            self.lr
        }
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

/// An optimiser: a [`Rule`]'s state per parameter plus what every optimiser keeps — its
/// settings, the parameter names of the last step (the keys of [`Optimizer::state`]) and the
/// number of steps taken. [`sgd::Sgd`] and [`adam::Adam`] are this with their rules.
pub struct OptimState<S> {
    pub(crate) cfg: OptimConfig,
    pub(crate) names: Vec<String>,
    pub(crate) steps: u64,
    /// One per parameter, in parameter order (empty until the first step).
    pub(crate) state: Vec<S>,
}

impl<S> OptimState<S> {
    pub fn new(cfg: OptimConfig) -> Self {
        OptimState {
            cfg,
            names: Vec::new(),
            steps: 0,
            state: Vec::new(),
        }
    }
}

/// An update rule, implemented on its per-parameter state (Adam's moments, SGD's momentum
/// buffer).
pub trait Rule: Sized + Send {
    /// Updates every parameter; `st.steps` already counts this step.
    fn update(st: &mut OptimState<Self>, params: Vec<(String, &mut Param)>);

    /// This parameter's state tensors under PyTorch's names (`"{name}.exp_avg"`, ...).
    fn export(&self, name: &str) -> Vec<(String, Tensor)>;

    /// Reads this parameter's state back from a checkpoint (`get` looks a tensor up by name).
    fn import(cfg: &OptimConfig, name: &str, get: &dyn Fn(&str) -> Option<Tensor>) -> Result<Self>;
}

impl<S: Rule> Optimizer for OptimState<S> {
    fn step(&mut self, params: Vec<(String, &mut Param)>) {
        self.names = params.iter().map(|(n, _)| n.clone()).collect();
        self.steps += 1;
        S::update(self, params);
    }

    fn steps(&self) -> u64 {
        self.steps
    }

    fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.names
            .iter()
            .zip(&self.state)
            .flat_map(|(n, s)| s.export(n))
            .collect()
    }

    fn load_state(
        &mut self,
        names: &[String],
        steps: u64,
        get: &dyn Fn(&str) -> Option<Tensor>,
    ) -> Result<()> {
        self.names = names.to_vec();
        self.steps = steps;
        self.state = if steps > 0 {
            names
                .iter()
                .map(|n| S::import(&self.cfg, n, get))
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(())
    }
}

/// An optimiser: updates parameters from their gradients.
pub trait Optimizer: Send {
    /// One update of every parameter (named as in the model's `state_dict`, in a fixed order).
    fn step(&mut self, params: Vec<(String, &mut Param)>);

    /// Number of steps taken.
    fn steps(&self) -> u64;

    /// Sets the learning rate used by the next steps (for schedules).
    fn set_lr(&mut self, lr: f64);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_matches_the_closed_form() {
        let c = OptimConfig::new("adam", 1e-3).unwrap();
        assert_eq!(c.lr_at(500, 1000), 1e-3);
        let c = c.with_schedule("cosine").unwrap();
        assert_eq!(c.lr_at(0, 1000), 1e-3);
        assert!((c.lr_at(500, 1000) - 5e-4).abs() < 1e-15);
        assert!((c.lr_at(250, 1000) - 1e-3 * (1.0 + 0.5f64.sqrt()) / 2.0).abs() < 1e-15);
        assert!(c.lr_at(1000, 1000).abs() < 1e-15);
        assert!(OptimConfig::new("adam", 1e-3)
            .unwrap()
            .with_schedule("step")
            .is_err());
        assert!(OptimConfig::new("adam", -1.0).is_err());
    }
}
