//! Adam (Kingma & Ba 2015), PyTorch's `torch.optim.Adam` single-tensor update rule exactly:
//! ```text
//! g ← ∇ + λ·p                                  (L2 weight decay λ, PyTorch's Adam, not AdamW)
//! m ← m + (1 - β1)·(g - m)                     (lerp)
//! v ← β2·v + (1 - β2)·g²
//! p ← p - (η / (1 - β1^t)) · m / (√v / √(1 - β2^t) + ε)
//! ```
//! Defaults: β = (0.9, 0.999), ε = 1e-8.

use super::{state_tensor, OptimConfig, OptimState, Optimizer};
use crate::error::Result;
use crate::nn::Param;
use crate::tensor::Tensor;

/// Adam with bias correction.
///
/// PyTorch: `torch.optim.Adam(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)`.
/// Its per-parameter state is `(exp_avg, exp_avg_sq)`.
pub struct Adam(OptimState<(Tensor, Tensor)>);

impl Adam {
    pub fn new(cfg: OptimConfig) -> Self {
        Adam(OptimState::new(cfg))
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: Vec<(String, &mut Param)>) {
        let OptimConfig {
            lr,
            betas: (b1, b2),
            eps,
            weight_decay,
            ..
        } = self.0.cfg;
        if self.0.state.len() != params.len() {
            self.0.state = params
                .iter()
                .map(|(_, p)| {
                    (
                        Tensor::zeros(p.value.shape()),
                        Tensor::zeros(p.value.shape()),
                    )
                })
                .collect();
        }
        self.0.record_names(&params);
        self.0.steps += 1;
        let t = self.0.steps as i32;
        let bc2_sqrt = (1.0 - b2.powi(t)).sqrt() as f32;
        let step_size = (lr / (1.0 - b1.powi(t))) as f32;
        let (w1, b2f, w2) = ((1.0 - b1) as f32, b2 as f32, (1.0 - b2) as f32);
        let (eps, weight_decay) = (eps as f32, weight_decay as f32);
        // for each parameter, for each value
        for ((_, p), (m, v)) in params.into_iter().zip(&mut self.0.state) {
            let (value, grad) = (p.value.data_mut(), p.grad.data());
            for (((pv, &gv), mv), vv) in value
                .iter_mut()
                .zip(grad)
                .zip(m.data_mut())
                .zip(v.data_mut())
            {
                let g = if weight_decay != 0.0 {
                    gv + weight_decay * *pv
                } else {
                    gv
                };
                *mv += w1 * (g - *mv);
                *vv = *vv * b2f + w2 * g * g;
                let denom = vv.sqrt() / bc2_sqrt + eps;
                *pv += -step_size * (*mv / denom);
            }
        }
    }

    fn steps(&self) -> u64 {
        self.0.steps
    }

    fn set_lr(&mut self, lr: f64) {
        self.0.cfg.lr = lr;
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (n, (m, v)) in self.0.names.iter().zip(&self.0.state) {
            out.push((format!("{n}.exp_avg"), m.clone()));
            out.push((format!("{n}.exp_avg_sq"), v.clone()));
        }
        out
    }

    fn load_state(
        &mut self,
        names: &[String],
        steps: u64,
        get: &dyn Fn(&str) -> Option<Tensor>,
    ) -> Result<()> {
        self.0.restore(names, steps);
        self.0.state = if steps > 0 {
            names
                .iter()
                .map(|n| {
                    let m = state_tensor(get, &format!("{n}.exp_avg"), None)?;
                    let v = state_tensor(get, &format!("{n}.exp_avg_sq"), Some(&m))?;
                    Ok((m, v))
                })
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        Ok(())
    }
}
