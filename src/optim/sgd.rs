//! Stochastic gradient descent, PyTorch's `torch.optim.SGD` update rule exactly:
//! ```text
//! g ← ∇ + λ·p                                     (weight decay λ)
//! b ← g                      on the first step     (momentum μ > 0)
//! b ← μ·b + (1 - τ)·g        afterwards            (dampening τ)
//! g ← g + μ·b if nesterov else b
//! p ← p - η·g
//! ```

use super::{state_tensor, OptimConfig, OptimState, Optimizer};
use crate::error::Result;
use crate::nn::Param;
use crate::tensor::Tensor;

/// SGD with optional momentum, dampening, Nesterov and weight decay.
///
/// PyTorch: `torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov)`.
/// Its per-parameter state is the momentum buffer (none without momentum).
pub struct Sgd(OptimState<Option<Tensor>>);

impl Sgd {
    pub fn new(cfg: OptimConfig) -> Self {
        Sgd(OptimState::new(cfg))
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: Vec<(String, &mut Param)>) {
        let OptimConfig {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            ..
        } = self.0.cfg;
        let (lr, momentum, weight_decay) = (lr as f32, momentum as f32, weight_decay as f32);
        let keep = (1.0 - dampening) as f32;
        self.0.state.resize(params.len(), None);
        self.0.record_names(&params);
        // for each parameter
        for ((_, p), buf) in params.into_iter().zip(&mut self.0.state) {
            let (value, grad) = (p.value.data_mut(), p.grad.data());
            let mut g: Vec<f32> = grad.to_vec();
            if weight_decay != 0.0 {
                g.iter_mut()
                    .zip(value.iter())
                    .for_each(|(g, &v)| *g += weight_decay * v);
            }
            if momentum != 0.0 {
                match buf {
                    None => {
                        *buf = Some(Tensor::new(p.grad.shape().to_vec(), g.clone()).expect("shape"))
                    }
                    Some(b) => b
                        .data_mut()
                        .iter_mut()
                        .zip(&g)
                        .for_each(|(b, &g)| *b = *b * momentum + g * keep),
                }
                let b = buf.as_ref().expect("set above").data();
                if nesterov {
                    g.iter_mut().zip(b).for_each(|(g, &b)| *g += momentum * b);
                } else {
                    g.copy_from_slice(b);
                }
            }
            value.iter_mut().zip(&g).for_each(|(v, &g)| *v += -lr * g);
        }
        self.0.steps += 1;
    }

    fn steps(&self) -> u64 {
        self.0.steps
    }

    fn set_lr(&mut self, lr: f64) {
        self.0.cfg.lr = lr;
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.0
            .names
            .iter()
            .zip(&self.0.state)
            .filter_map(|(n, b)| {
                b.as_ref()
                    .map(|b| (format!("{n}.momentum_buffer"), b.clone()))
            })
            .collect()
    }

    fn load_state(
        &mut self,
        names: &[String],
        steps: u64,
        get: &dyn Fn(&str) -> Option<Tensor>,
    ) -> Result<()> {
        self.0.restore(names, steps);
        self.0.state = if self.0.cfg.momentum != 0.0 && steps > 0 {
            names
                .iter()
                .map(|n| state_tensor(get, &format!("{n}.momentum_buffer"), None).map(Some))
                .collect::<Result<_>>()?
        } else {
            vec![None; names.len()]
        };
        Ok(())
    }
}
