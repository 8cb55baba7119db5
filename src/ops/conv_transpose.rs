//! Transposed convolution (PyTorch `torch.nn.functional.conv_transpose1d/2d/3d`), forward and
//! backward, as the adjoint of convolution.
//!
//! Layouts: input `(N, Cin, *i)` or unbatched `(Cin, *i)`, weight `(Cin, Cout/groups, *k)`,
//! bias `(Cout)`, output `(N, Cout, *o)` with `o = (i-1)*s - pb - pe + d*(k-1) + op + 1`
//! (the formula lives in `geometry`).
//!
//! A transposed convolution `y = Cᵀ x` is the transpose of the convolution `C` that maps a
//! `(N, Cout, *o)` tensor to `(N, Cin, *i)` with the same weight read in conv layout
//! `(Cout_conv = Cin, Cin_conv/g = Cout/g, *k)`. So nothing here is new arithmetic:
//! - forward = the convolution's input gradient (scatter / col2im / `Tᵀ`), plus the bias;
//! - input gradient = the convolution forward of `gy`;
//! - weight gradient = the convolution's weight gradient with the roles of input and output
//!   gradient swapped (`x_conv = gy`, `gy_conv = x`);
//! - bias gradient = `gy` summed per output channel.
//!
//! Every function here takes the [`ConvShape`] of that adjoint convolution ([`adjoint_shape`]):
//! its `cin` is the transposed output's channels, its `cout` the transposed input's, its
//! window's `input` sizes the transposed output and its `output` sizes the transposed input.

use crate::error::{Error, Result};
use crate::geometry::{PaddingMode, PaddingSpec, Window3};
use crate::ops::conv::{
    backward_input_slices, backward_weight_slices, check_grad_output, forward_slices, ConvAlgo,
    ConvGrads, ConvShape, GradRequest,
};
use crate::tensor::Tensor;

/// Parameters of a transposed convolution (PyTorch names and defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvTransposeParams {
    /// Stride per axis (one value applies to all).
    pub stride: Vec<usize>,
    /// Padding removed from the output: explicit per axis (or `begin:end`), or `valid` (none).
    pub padding: PaddingSpec,
    /// Extra size added to one side of the output; smaller than the stride or the dilation.
    pub output_padding: Vec<usize>,
    /// Dilation per axis.
    pub dilation: Vec<usize>,
    /// Number of groups.
    pub groups: usize,
}

impl Default for ConvTransposeParams {
    fn default() -> Self {
        ConvTransposeParams {
            stride: vec![1],
            padding: PaddingSpec::default(),
            output_padding: vec![0],
            dilation: vec![1],
            groups: 1,
        }
    }
}

/// Checks the shapes of input `(N, Cin, *i)`, weight `(Cin, Cout/g, *k)` and bias `(Cout)` and
/// returns the adjoint convolution (see the module doc).
pub fn adjoint_shape(
    input: &[usize],
    weight: &[usize],
    bias: Option<&[usize]>,
    p: &ConvTransposeParams,
) -> Result<ConvShape> {
    let (batched, batch, cin, spatial) = crate::ops::conv::split_input(
        input,
        weight,
        "transposed convolution",
        "(Cin, Cout/groups, k1[, k2[, k3]])",
    )?;
    let groups = p.groups;
    if groups == 0 {
        return Err(Error::arg("groups", "must be at least 1"));
    }
    if weight[0] != cin {
        return Err(Error::arg(
            "weight",
            format!(
                "has {} input channels (weight[0]) but the input has {cin}; a transposed-convolution \
                 weight is (Cin, Cout/groups, ...)",
                weight[0]
            ),
        ));
    }
    if cin == 0 || weight[1] == 0 {
        return Err(Error::arg("weight", "has zero channels"));
    }
    if cin % groups != 0 {
        return Err(Error::arg(
            "groups",
            format!("{groups} does not divide the input channels {cin}; pick a divisor"),
        ));
    }
    let cout = weight[1] * groups;
    crate::ops::conv::check_bias(bias, cout, " (weight[1] × groups)")?;
    let spec = crate::ops::conv::kernel_window(weight, &p.stride, &p.dilation, &p.padding);
    let window = Window3::transposed(spatial, &spec, &p.output_padding)?;
    let shape = ConvShape {
        batch,
        batched,
        cin: cout,
        cout: cin,
        groups,
        window,
        mode: PaddingMode::Zeros,
    };
    // the adjoint's padded input is the transposed output before its padding is cropped
    shape.check_size("stride", "use a smaller stride, dilation or input")?;
    Ok(shape)
}

/// Bias gradient on flat buffers: `gb[c] = Σ_n Σ_o gy[n, c, o]`, `gb: (Cout)` (overwritten).
pub fn backward_bias(s: &ConvShape, gy: &[f32], gb: &mut [f32]) {
    crate::ops::conv::backward::bias_grad(gy, s.batch, s.cin, gb)
}

/// Transposed convolution forward with PyTorch semantics.
/// PyTorch: `torch.nn.functional.conv_transpose{1,2,3}d(x, w, b, stride, padding, output_padding, groups, dilation)`.
pub fn conv_transpose(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: &ConvTransposeParams,
    algo: ConvAlgo,
) -> Result<Tensor> {
    let s = adjoint_shape(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
    let mut y = Tensor::zeros(&s.in_shape());
    // the adjoint convolution's input gradient of `x`, plus the bias per output channel
    backward_input_slices(&s, algo, x.data(), w.data(), y.data_mut())?;
    if let Some(b) = b {
        let plane = s.window.in_len();
        for (i, chunk) in y.data_mut().chunks_mut(plane).enumerate() {
            let bv = b.data()[i % s.cin];
            chunk.iter_mut().for_each(|v| *v += bv);
        }
    }
    Ok(y)
}

/// Transposed convolution backward: given `gy = ∂E/∂y` (the forward output's shape), the
/// gradients that `want` asks for (the bias gradient is defined with or without a bias).
pub fn conv_transpose_backward(
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    p: &ConvTransposeParams,
    algo: ConvAlgo,
    want: GradRequest,
) -> Result<ConvGrads> {
    let s = adjoint_shape(x.shape(), w.shape(), None, p)?;
    check_grad_output(gy.shape(), &s.in_shape())?;
    let mut grads = ConvGrads::default();
    if want.input {
        let mut gx = Tensor::zeros(x.shape());
        // the adjoint convolution's forward of `gy`
        forward_slices(&s, algo, gy.data(), w.data(), None, gx.data_mut())?;
        grads.input = Some(gx);
    }
    if want.weight {
        let mut gw = Tensor::zeros(w.shape());
        // the adjoint's weight gradient with `gy` as its input and `x` as its output gradient
        backward_weight_slices(&s, algo, gy.data(), x.data(), gw.data_mut())?;
        grads.weight = Some(gw);
    }
    if want.bias {
        let mut gb = Tensor::zeros(&[s.cin]);
        backward_bias(&s, gy.data(), gb.data_mut());
        grads.bias = Some(gb);
    }
    Ok(grads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsamples_like_pytorch() {
        // conv_transpose1d([1, 2], [1, 1, 1], stride 2) = [1, 1, 3, 2, 2]
        let x = Tensor::new(vec![1, 1, 2], vec![1., 2.]).unwrap();
        let w = Tensor::new(vec![1, 1, 3], vec![1., 1., 1.]).unwrap();
        let p = ConvTransposeParams {
            stride: vec![2],
            ..Default::default()
        };
        for algo in [ConvAlgo::Direct, ConvAlgo::Im2col, ConvAlgo::Toeplitz] {
            let y = conv_transpose(&x, &w, None, &p, algo).unwrap();
            assert_eq!(y.data(), &[1., 1., 3., 2., 2.], "{algo:?}");
        }
    }
}
