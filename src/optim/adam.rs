//! Adam (Kingma & Ba 2015), PyTorch's `torch.optim.Adam` single-tensor update rule exactly:
//! ```text
//! g ← ∇ + λ·p                                  (L2 weight decay λ, PyTorch's Adam, not AdamW)
//! m ← m + (1 - β1)·(g - m)                     (lerp)
//! v ← β2·v + (1 - β2)·g²
//! p ← p - (η / (1 - β1^t)) · m / (√v / √(1 - β2^t) + ε)
//! ```
//! Defaults: β = (0.9, 0.999), ε = 1e-8.

use super::{state_tensor, OptimConfig, OptimState, Rule};
use crate::error::Result;
use crate::nn::Param;
use crate::tensor::Tensor;

/// Adam with bias correction.
///
/// PyTorch: `torch.optim.Adam(params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)`.
pub type Adam = OptimState<Moments>;

/// Adam's state per parameter: PyTorch's `exp_avg` (m) and `exp_avg_sq` (v).
pub struct Moments {
    m: Tensor,
    v: Tensor,
}

impl Rule for Moments {
    fn update(st: &mut OptimState<Self>, params: Vec<(String, &mut Param)>) {
        let OptimConfig {
            lr,
            betas: (b1, b2),
            eps,
            weight_decay,
            ..
        } = st.cfg;
        if st.state.len() != params.len() {
            st.state = params
                .iter()
                .map(|(_, p)| Moments {
                    m: Tensor::zeros(p.value.shape()),
                    v: Tensor::zeros(p.value.shape()),
                })
                .collect();
        }
        let t = st.steps as i32;
        let bc2_sqrt = (1.0 - b2.powi(t)).sqrt() as f32;
        let step_size = (lr / (1.0 - b1.powi(t))) as f32;
        let (w1, b2f, w2) = ((1.0 - b1) as f32, b2 as f32, (1.0 - b2) as f32);
        let (eps, weight_decay) = (eps as f32, weight_decay as f32);
        // for each parameter, for each value
        for ((_, p), Moments { m, v }) in params.into_iter().zip(&mut st.state) {
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

    fn export(&self, n: &str) -> Vec<(String, Tensor)> {
        vec![
            (format!("{n}.exp_avg"), self.m.clone()),
            (format!("{n}.exp_avg_sq"), self.v.clone()),
        ]
    }

    fn import(_cfg: &OptimConfig, n: &str, get: &dyn Fn(&str) -> Option<Tensor>) -> Result<Self> {
        let m = state_tensor(get, &format!("{n}.exp_avg"), None)?;
        let v = state_tensor(get, &format!("{n}.exp_avg_sq"), Some(&m))?;
        Ok(Moments { m, v })
    }
}
