//! `stride conv-transpose`: transposed convolution forward and, with `--grad-output`, backward;
//! printed or written as `.npy` (all files or none).

use super::conv_flags::ConvFlags;
use super::render;
use clap::Args;
use stride::explain::conv_transpose::explain;
use stride::geometry::{parse_per_axis, PaddingSpec};
use stride::ops::conv_transpose::{
    adjoint_shape, conv_transpose, conv_transpose_backward, ConvTransposeParams,
};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride conv-transpose --input '[[1,2],[3,4]]' --weight '[[1,1],[1,1]]' --stride 2\n  \
  stride conv-transpose --input x.npy --weight w.npy --stride 2 --padding 1 --output-padding 1 --output y.npy\n  \
  stride conv-transpose --input x.npy --weight w.npy --grad-output gy.npy --grad-input gx.npy --grad-weight gw.npy")]
pub struct ConvTransposeArgs {
    #[command(flatten)]
    f: ConvFlags,
    /// Extra size on the end of each output axis (smaller than the stride or the dilation).
    #[arg(
        long,
        value_name = "OP",
        default_value = "0",
        allow_hyphen_values = true
    )]
    output_padding: String,
    /// Print the worked computation: each input value scattering a scaled kernel, and the sums.
    #[arg(long)]
    explain: bool,
    /// With --explain: only input cell I,J's scatter (1-based), for large inputs.
    #[arg(long, value_name = "I,J", requires = "explain")]
    cell: Option<String>,
}

pub fn run(a: ConvTransposeArgs) -> anyhow::Result<()> {
    let f = &a.f;
    f.grad.check()?;
    let p = ConvTransposeParams {
        stride: parse_per_axis("stride", &f.stride)?,
        padding: f.padding.parse::<PaddingSpec>()?,
        output_padding: parse_per_axis("output-padding", &a.output_padding)?,
        dilation: parse_per_axis("dilation", &f.dilation)?,
        groups: f.groups,
    };
    let algo = f.algo()?;
    let (x, w, b) = f.tensors()?;
    let shape = adjoint_shape(x.shape(), w.shape(), b.as_ref().map(|b| b.shape()), &p)?;
    // the adjoint convolution's input is the transposed convolution's output
    let gy = f.grad.load(&shape.in_shape())?;

    // compute everything before writing any file
    let y = conv_transpose(&x, &w, b.as_ref(), &p, algo)?;
    let grads = gy
        .as_ref()
        .map(|gy| conv_transpose_backward(&x, &w, gy, &p, algo, f.grad.want(b.is_some())))
        .transpose()?
        .unwrap_or_default();
    let text = if a.explain {
        let cell = a
            .cell
            .as_deref()
            .map(|c| parse_per_axis("cell", c))
            .transpose()?;
        render::explanation(&explain(&x, &w, b.as_ref(), &p, cell.as_deref())?)
    } else {
        String::new()
    };
    // the explanation narrates the forward only: the gradients are still printed
    f.finish(&text, &y, &grads, shape.window.nd, a.explain, false)?;
    Ok(())
}
