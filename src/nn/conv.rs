//! Convolution layers (1-D, 2-D, 3-D) on [`crate::ops::conv`]: forward with the fastest
//! algorithm, backward through `conv_backward`. Caches its input.

use super::{weighted_layer_methods, Layer, Param};
use crate::error::{Error, Result};
use crate::ops::activation::Activation;
use crate::ops::conv::{conv_act, conv_backward, ConvAlgo, ConvParams, GradRequest};
use crate::tensor::{fmt_shape, Tensor};

/// `y = conv(x, w) + b` on `x: (N, Cin, *spatial)`; weight `(Cout, Cin/groups, *k)`, bias `(Cout)`.
///
/// PyTorch: `torch.nn.Conv1d/Conv2d/Conv3d(in_channels, out_channels, kernel_size, stride,
/// padding, dilation, groups, bias)`.
pub struct Conv {
    pub weight: Param,
    pub bias: Option<Param>,
    pub params: ConvParams,
    pub algo: ConvAlgo,
    /// The activation after this layer when a pooling follows it that takes the activation's
    /// gradient ([`crate::nn::pool::Pool::act`] with `act_applied`): applied here to the output
    /// in the training forward and the inference pass, per work item while the output is in
    /// cache ([`conv_act`]); the [`crate::nn::activation::Act::pooled`] between them passes
    /// values through there. An evaluation `forward(x, false)` leaves it to that layer, so
    /// running the layers one by one shows each layer's own output.
    pub act: Option<Activation>,
    x: Tensor,
}

impl Conv {
    /// A layer with a zero weight of shape `(Cout, Cin/groups, *k)` (the model builder
    /// initialises it).
    pub fn new(weight_shape: &[usize], bias: bool, params: ConvParams) -> Self {
        let cout = weight_shape[0];
        Conv {
            weight: Param::new("weight", Tensor::zeros(weight_shape)),
            bias: bias.then(|| Param::new("bias", Tensor::zeros(&[cout]))),
            params,
            algo: ConvAlgo::Auto,
            act: None,
            x: Tensor::zeros(&[0]),
        }
    }

    fn nd(&self) -> usize {
        self.weight.value.rank() - 2
    }
}

fn tuple(v: &[usize], nd: usize) -> String {
    let v: Vec<String> = (0..nd)
        .map(|i| v.get(i).or(v.first()).copied().unwrap_or(1).to_string())
        .collect();
    if nd == 1 {
        format!("({},)", v[0])
    } else {
        format!("({})", v.join(", "))
    }
}

impl Layer for Conv {
    fn describe(&self) -> String {
        let s = self.weight.value.shape();
        let nd = self.nd();
        let mut out = format!(
            "Conv{nd}d({}, {}, kernel_size={}, stride={}",
            s[1] * self.params.groups,
            s[0],
            tuple(&s[2..], nd),
            tuple(&self.params.stride, nd)
        );
        match &self.params.padding {
            crate::geometry::PaddingSpec::Explicit(p)
                if p.iter().all(|&(a, b)| a == 0 && b == 0) => {}
            crate::geometry::PaddingSpec::Explicit(p) => {
                let v: Vec<usize> = p.iter().map(|&(a, _)| a).collect();
                out += &format!(", padding={}", tuple(&v, nd));
            }
            other => out += &format!(", padding={other:?}").to_lowercase(),
        }
        if self.params.dilation.iter().any(|&d| d != 1) {
            out += &format!(", dilation={}", tuple(&self.params.dilation, nd));
        }
        if self.params.groups != 1 {
            out += &format!(", groups={}", self.params.groups);
        }
        if self.bias.is_none() {
            out += ", bias=False";
        }
        if self.params.padding_mode != crate::geometry::PaddingMode::Zeros {
            out += &format!(", padding_mode='{:?}'", self.params.padding_mode).to_lowercase();
        }
        out + ")"
    }

    weighted_layer_methods!();
}

impl Conv {
    /// The forward maths, keeping nothing; with `fused`, followed by the fused activation.
    fn apply(&self, x: &Tensor, fused: bool) -> Result<Tensor> {
        if x.rank() != self.nd() + 2 {
            return Err(Error::arg(
                "input",
                format!(
                    "{} expects a batch (N, C, ...) of rank {} but got {}",
                    self.describe(),
                    self.nd() + 2,
                    fmt_shape(x.shape())
                ),
            ));
        }
        conv_act(
            x,
            &self.weight.value,
            self.bias.as_ref().map(|b| &b.value),
            &self.params,
            self.algo,
            self.act.filter(|_| fused),
        )
    }

    fn backward_impl(&mut self, gy: Tensor, want_input_grad: bool) -> Result<Option<Tensor>> {
        let want = GradRequest {
            input: want_input_grad,
            weight: true,
            bias: self.bias.is_some(),
        };
        let g = conv_backward(
            &self.x,
            &self.weight.value,
            &gy,
            &self.params,
            self.algo,
            want,
        )?;
        if let Some(gw) = g.weight {
            self.weight.grad = gw;
        }
        if let (Some(b), Some(gb)) = (&mut self.bias, g.bias) {
            b.grad = gb;
        }
        Ok(g.input)
    }
}
