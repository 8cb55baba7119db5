//! `stride conv-transpose`: transposed convolution forward and, with `--grad-output`, backward;
//! printed or written as `.npy` (all files or none).

use super::{args, grad, render};
use clap::Args;
use std::path::PathBuf;
use stride::geometry::{parse_per_axis, PaddingSpec};
use stride::ops::conv::ConvAlgo;
use stride::ops::conv_transpose::{
    adjoint_shape, conv_transpose, conv_transpose_backward, ConvTransposeParams,
};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride conv-transpose --input '[[1,2],[3,4]]' --weight '[[1,1],[1,1]]' --stride 2\n  \
  stride conv-transpose --input x.npy --weight w.npy --stride 2 --padding 1 --output-padding 1 --output y.npy\n  \
  stride conv-transpose --input x.npy --weight w.npy --grad-output gy.npy --grad-input gx.npy --grad-weight gw.npy")]
pub struct ConvTransposeArgs {
    /// Input: .npy (N, Cin, *spatial) or (Cin, *spatial), or an inline literal (a 2-D literal is one single-channel image).
    #[arg(long, value_name = "X")]
    input: String,
    /// Weight (Cin, Cout/groups, *kernel): .npy or inline literal (a 2-D literal is one kernel). Alias: --kernel.
    #[arg(long, visible_alias = "kernel", value_name = "W")]
    weight: String,
    /// Bias (Cout): .npy or inline literal such as '[0.5]'.
    #[arg(long, value_name = "B", allow_hyphen_values = true)]
    bias: Option<String>,
    /// Stride: one integer, or one per spatial axis (2,1).
    #[arg(
        long,
        value_name = "S",
        default_value = "1",
        allow_hyphen_values = true
    )]
    stride: String,
    /// Padding removed from each side of the output: an integer, one per axis (1,2), or begin:end per axis.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        allow_hyphen_values = true
    )]
    padding: String,
    /// Extra size on the end of each output axis (smaller than the stride or the dilation).
    #[arg(
        long,
        value_name = "OP",
        default_value = "0",
        allow_hyphen_values = true
    )]
    output_padding: String,
    /// Dilation: one integer, or one per spatial axis.
    #[arg(
        long,
        value_name = "D",
        default_value = "1",
        allow_hyphen_values = true
    )]
    dilation: String,
    /// Groups: input and output channels split into this many independent transposed convolutions.
    #[arg(
        long,
        value_name = "G",
        default_value_t = 1,
        value_parser = args::count,
        allow_hyphen_values = true
    )]
    groups: usize,
    /// Algorithm: auto, direct, im2col, toeplitz, rows, blocked or winograd (all give the same
    /// result to float32 rounding; see the README's table).
    #[arg(long, value_name = "ALGO", default_value = "auto")]
    algo: String,
    /// Write the output to this .npy file instead of printing it.
    #[arg(long, value_name = "Y.npy")]
    output: Option<PathBuf>,
    #[command(flatten)]
    grad: grad::GradArgs,
}

pub fn run(a: ConvTransposeArgs) -> anyhow::Result<()> {
    a.grad.check()?;
    let p = ConvTransposeParams {
        stride: parse_per_axis("stride", &a.stride)?,
        padding: a.padding.parse::<PaddingSpec>()?,
        output_padding: parse_per_axis("output-padding", &a.output_padding)?,
        dilation: parse_per_axis("dilation", &a.dilation)?,
        groups: a.groups,
    };
    let algo: ConvAlgo = a.algo.parse()?;
    let x = args::load_tensor("input", &a.input)?;
    let w = args::load_tensor("weight", &a.weight)?;
    let b = a
        .bias
        .as_deref()
        .map(|s| args::load_vector("bias", s))
        .transpose()?;
    let shape = adjoint_shape(x.shape(), w.shape(), b.as_ref().map(|b| b.shape()), &p)?;
    let nd = shape.window.nd;
    // the adjoint convolution's input is the transposed convolution's output
    let gy = a.grad.load(&shape.in_shape())?;

    // compute everything before writing any file
    let y = conv_transpose(&x, &w, b.as_ref(), &p, algo)?;
    let grads = gy
        .as_ref()
        .map(|gy| conv_transpose_backward(&x, &w, gy, &p, algo, a.grad.want(b.is_some())))
        .transpose()?
        .unwrap_or_default();
    let mut files = vec![];
    if let Some(path) = &a.output {
        files.push(("output", path.as_path(), &y));
    }
    files.extend(a.grad.outputs(&grads));
    let wrote = grad::save_all(&files)?;

    if a.output.is_none() {
        render::printable(&y)?;
        print!("{}", render::tensor("output", &y, nd));
    }
    if a.grad.print_mode() {
        print!("{}", grad::render_grads(&grads, nd));
    }
    for line in wrote {
        println!("{line}");
    }
    Ok(())
}
