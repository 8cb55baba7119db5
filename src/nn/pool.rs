//! Pooling layers on [`crate::ops::pool`]: max, average, min, LP, soft, adaptive and global
//! pooling. Caches its input and, for backward, the argmax indices (selecting kinds: max, min,
//! adaptive and global max) or a copy of the output (the others; LP pooling's backward reads it).
//! With [`Pool::act`] it also applies the activation before it ([`crate::ops::pool::activated`]).

use super::spec::pool_name;
use super::Layer;
use crate::error::Result;
use crate::ops::activation::Activation;
use crate::ops::pool::{
    activated, pool_backward, pool_backward_indices, pool_forward, PoolKind, PoolOutput, PoolParams,
};
use crate::tensor::Tensor;

/// A pooling layer; `params.spatial_axes` fixes the number of spatial axes.
///
/// PyTorch: `torch.nn.MaxPool2d(kernel_size, stride, padding, dilation, ceil_mode)`,
/// `AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad)`, `LPPool2d`,
/// `AdaptiveAvgPool2d(output_size)`, `AdaptiveMaxPool2d` (and the 1-D / 3-D variants).
pub struct Pool {
    pub params: PoolParams,
    /// The activation of the layer before (an [`crate::nn::activation::Act::pooled`]), applied
    /// to the input here in one pass with the pooling: in the training forward (keeping
    /// `a = f(z)` in the input's buffer, no copy), the inference pass and backward (which
    /// returns the gradient with respect to the pre-activation `z`). An evaluation `forward(x, false)` pools only, the
    /// activation layer having applied it.
    pub act: Option<Activation>,
    /// The convolution before the activation already applies it in the training forward and
    /// the inference pass ([`crate::nn::conv::Conv::act`]): there this layer pools its input
    /// (`a`) only; backward is the same.
    pub act_applied: bool,
    /// The last forward was the fused one (backward then is too).
    fused_last: bool,
    x: Tensor,
    out: PoolOutput,
}

impl Pool {
    pub fn new(params: PoolParams) -> Self {
        Pool {
            params,
            act: None,
            act_applied: false,
            fused_last: false,
            x: Tensor::zeros(&[0]),
            out: PoolOutput {
                y: Tensor::zeros(&[0]),
                indices: None,
            },
        }
    }
}

impl Layer for Pool {
    fn describe(&self) -> String {
        let p = &self.params;
        let nd = p.spatial_axes.unwrap_or(2);
        let name = match p.kind {
            PoolKind::Max => "MaxPool",
            PoolKind::Avg => "AvgPool",
            PoolKind::Lp => "LPPool",
            PoolKind::AdaptiveAvg | PoolKind::GlobalAvg => "AdaptiveAvgPool",
            PoolKind::AdaptiveMax | PoolKind::GlobalMax => "AdaptiveMaxPool",
            _ => return format!("{}{nd}d (stride extension)", pool_name(p.kind)),
        };
        // PyTorch's repr: one number when every axis agrees (`kernel_size=2`), else a tuple
        let list = |v: &[usize]| match v {
            [first, rest @ ..] if rest.iter().all(|x| x == first) => first.to_string(),
            _ => format!(
                "({})",
                v.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        if p.kind.is_sliding() {
            format!(
                "{name}{nd}d(kernel_size={}, stride={})",
                list(&p.kernel),
                list(p.stride_or_kernel())
            )
        } else if p.output_size.is_empty() {
            format!("{name}{nd}d(output_size=1)")
        } else {
            format!("{name}{nd}d(output_size={})", list(&p.output_size))
        }
    }

    fn forward(&mut self, x: Tensor, train: bool) -> Result<Tensor> {
        self.fused_last = false;
        if let (Some(act), true) = (self.act, train) {
            let (mut x, has) = (x, self.params.kind.has_indices());
            // x becomes (or already is) a = f(x): with the indices, all the backward needs
            let out = if self.act_applied {
                activated::pool_activated(&x, &self.params, has)?
            } else {
                activated::forward_keep(act, &mut x, &self.params, has)?
            };
            self.x = x;
            self.out.indices = out.indices;
            self.out.y = Tensor::zeros(&[0]);
            self.fused_last = true;
            return Ok(out.y);
        }
        let out = pool_forward(&x, &self.params)?;
        self.x = x;
        if self.params.kind.has_indices() {
            // the indices are all the backward needs: no copy of y (a pass over the output)
            self.out.indices = out.indices;
            return Ok(out.y);
        }
        // keep a copy of y (reusing the cached buffer) for backward
        if self.out.y.shape() == out.y.shape() {
            self.out.y.data_mut().copy_from_slice(out.y.data());
        } else {
            self.out.y = out.y.clone();
        }
        Ok(out.y)
    }

    fn infer(&mut self, x: Tensor) -> Result<Tensor> {
        Ok(match self.act {
            Some(act) if !self.act_applied => activated::forward(act, &x, &self.params, false)?.y,
            _ => pool_forward(&x, &self.params)?.y,
        })
    }

    fn cached(&self) -> usize {
        self.x.numel() + self.out.y.numel() + self.out.indices.as_ref().map_or(0, Vec::len)
    }

    fn backward(&mut self, gy: Tensor, want_input_grad: bool) -> Result<Option<Tensor>> {
        if !want_input_grad {
            return Ok(None);
        }
        if let (Some(act), true) = (self.act, self.fused_last) {
            let idx = self.out.indices.as_deref();
            let gz = activated::backward(act, &self.x, idx, &gy, &self.params)?;
            return Ok(Some(gz));
        }
        if self.params.kind.has_indices() {
            let idx = self.out.indices.as_deref().unwrap_or_default();
            return Ok(Some(pool_backward_indices(
                self.x.shape(),
                idx,
                &gy,
                &self.params,
            )?));
        }
        Ok(Some(pool_backward(&self.x, &self.out, &gy, &self.params)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_itself_as_pytorch_prints_it() {
        let p = |k: &[usize]| Pool::new(PoolParams::new(PoolKind::Max, k)).describe();
        assert_eq!(p(&[2, 2]), "MaxPool2d(kernel_size=2, stride=2)");
        assert_eq!(p(&[2, 3]), "MaxPool2d(kernel_size=(2, 3), stride=(2, 3))");
    }
}
