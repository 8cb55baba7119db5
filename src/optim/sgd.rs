//! Stochastic gradient descent, PyTorch's `torch.optim.SGD` update rule exactly:
//! ```text
//! g ← ∇ + λ·p                                     (weight decay λ)
//! b ← g                      on the first step     (momentum μ > 0)
//! b ← μ·b + (1 - τ)·g        afterwards            (dampening τ)
//! g ← g + μ·b if nesterov else b
//! p ← p - η·g
//! ```

use super::{state_tensor, OptimConfig, OptimState, Rule};
use crate::error::Result;
use crate::nn::Param;
use crate::tensor::Tensor;

/// SGD with optional momentum, dampening, Nesterov and weight decay.
///
/// PyTorch: `torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov)`.
pub type Sgd = OptimState<Momentum>;

/// SGD's state per parameter: PyTorch's `momentum_buffer` (none without momentum, and before
/// the first step).
pub struct Momentum(Option<Tensor>);

impl Rule for Momentum {
    fn update(st: &mut OptimState<Self>, params: Vec<(String, &mut Param)>) {
        let OptimConfig {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            ..
        } = st.cfg;
        let (lr, momentum, weight_decay) = (lr as f32, momentum as f32, weight_decay as f32);
        let keep = (1.0 - dampening) as f32;
        st.state.resize_with(params.len(), || Momentum(None));
        // for each parameter: one element-wise pass, no temporary (the formulas above, in the
        // same order of operations as PyTorch's for-each implementation)
        for ((_, p), Momentum(buf)) in params.into_iter().zip(&mut st.state) {
            let (value, grad) = (p.value.data_mut(), p.grad.data());
            if momentum == 0.0 {
                for (v, &gr) in value.iter_mut().zip(grad) {
                    let g = if weight_decay != 0.0 {
                        gr + weight_decay * *v
                    } else {
                        gr
                    };
                    *v += -lr * g;
                }
                continue;
            }
            let first = buf.is_none();
            let b = buf.get_or_insert_with(|| Tensor::zeros(p.grad.shape()));
            for ((v, &gr), b) in value.iter_mut().zip(grad).zip(b.data_mut()) {
                let g = if weight_decay != 0.0 {
                    gr + weight_decay * *v
                } else {
                    gr
                };
                *b = if first { g } else { *b * momentum + g * keep };
                let g = if nesterov { g + momentum * *b } else { *b };
                *v += -lr * g;
            }
        }
    }

    fn export(&self, n: &str) -> Vec<(String, Tensor)> {
        self.0
            .iter()
            .map(|b| (format!("{n}.momentum_buffer"), b.clone()))
            .collect()
    }

    fn import(cfg: &OptimConfig, n: &str, get: &dyn Fn(&str) -> Option<Tensor>) -> Result<Self> {
        if cfg.momentum == 0.0 {
            return Ok(Momentum(None));
        }
        let b = state_tensor(get, &format!("{n}.momentum_buffer"), None)?;
        Ok(Momentum(Some(b)))
    }
}
