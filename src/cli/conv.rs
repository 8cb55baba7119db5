//! `stride conv`: convolution forward and, with `--grad-output`, backward; printed or written
//! as `.npy` (all files or none), optionally explained step by step.

use super::{args, grad, render};
use clap::Args;
use std::path::PathBuf;
use stride::explain::conv::{explain, ExplainKind};
use stride::explain::conv_grad::explain_grad;
use stride::geometry::{parse_per_axis, PaddingMode, PaddingSpec};
use stride::ops::conv::{conv, conv_backward, ConvAlgo, ConvParams, ConvShape};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride conv --input '[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]' \\\n      --kernel '[[4,3,3],[5,5,5],[2,4,3]]' --explain\n  \
  stride conv --input x.npy --weight w.npy --bias b.npy --stride 2 --padding same --output y.npy\n  \
  stride conv --input '[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]' \\\n      --kernel '[[4,3,3],[5,5,5],[2,4,3]]' --grad-output '[[1,1,1],[1,1,1],[1,1,1]]' --explain\n  \
  stride conv --input x.npy --weight w.npy --grad-output gy.npy --grad-input gx.npy --grad-weight gw.npy")]
pub struct ConvArgs {
    /// Input: .npy (N, Cin, *spatial) or (Cin, *spatial), or an inline literal (a 2-D literal is one single-channel image).
    #[arg(long, value_name = "X")]
    input: String,
    /// Weight (Cout, Cin/groups, *kernel): .npy or inline literal (a 2-D literal is one kernel). Alias: --kernel.
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
    /// Padding: an integer, one per axis (1,2), begin:end per axis (0:1,1:0), valid, same (ceil(i/s), extra at the end) or full.
    #[arg(
        long,
        value_name = "P",
        default_value = "0",
        allow_hyphen_values = true
    )]
    padding: String,
    /// Dilation: one integer, or one per spatial axis.
    #[arg(
        long,
        value_name = "D",
        default_value = "1",
        allow_hyphen_values = true
    )]
    dilation: String,
    /// Groups: input and output channels split into this many independent convolutions (Cin = depthwise).
    #[arg(
        long,
        value_name = "G",
        default_value_t = 1,
        value_parser = args::count,
        allow_hyphen_values = true
    )]
    groups: usize,
    /// How padding is filled: zeros, reflect, replicate or circular.
    #[arg(long, value_name = "MODE", default_value = "zeros")]
    padding_mode: String,
    /// True convolution: flip the kernel on every spatial axis (default is PyTorch's cross-correlation).
    #[arg(long)]
    flip: bool,
    /// Algorithm: auto, direct, im2col, toeplitz, rows, blocked or winograd (all give the same
    /// result to float32 rounding; see the README's table).
    #[arg(long, value_name = "ALGO", default_value = "auto")]
    algo: String,
    /// Write the output to this .npy file instead of printing it.
    #[arg(long, value_name = "Y.npy")]
    output: Option<PathBuf>,
    /// Print the worked computation: direct (window by window, the default), im2col or toeplitz;
    /// with --grad-output, the gradients too.
    #[arg(long, value_name = "HOW", num_args = 0..=1, default_missing_value = "direct")]
    explain: Option<String>,
    #[command(flatten)]
    grad: grad::GradArgs,
}

/// Builds the library parameters from the flags.
pub fn params(
    stride: &str,
    padding: &str,
    dilation: &str,
    groups: usize,
    mode: &str,
    flip: bool,
) -> stride::Result<ConvParams> {
    Ok(ConvParams {
        stride: parse_per_axis("stride", stride)?,
        padding: padding.parse::<PaddingSpec>()?,
        dilation: parse_per_axis("dilation", dilation)?,
        groups,
        padding_mode: mode.parse::<PaddingMode>()?,
        flip,
    })
}

pub fn run(a: ConvArgs) -> anyhow::Result<()> {
    a.grad.check()?;
    let p = params(
        &a.stride,
        &a.padding,
        &a.dilation,
        a.groups,
        &a.padding_mode,
        a.flip,
    )?;
    let algo: ConvAlgo = a.algo.parse()?;
    let explain_kind = a
        .explain
        .as_deref()
        .map(str::parse::<ExplainKind>)
        .transpose()?;
    let x = args::load_tensor("input", &a.input)?;
    let w = args::load_tensor("weight", &a.weight)?;
    let b = a
        .bias
        .as_deref()
        .map(|s| args::load_vector("bias", s))
        .transpose()?;
    let shape = ConvShape::new(x.shape(), w.shape(), b.as_ref().map(|b| b.shape()), &p)?;
    let nd = shape.window.nd;
    let gy = a.grad.load(&shape.out_shape())?;

    // compute everything (and every explanation) before writing any file
    let y = conv(&x, &w, b.as_ref(), &p, algo)?;
    let grads = gy
        .as_ref()
        .map(|gy| conv_backward(&x, &w, gy, &p, algo, a.grad.want(b.is_some())))
        .transpose()?
        .unwrap_or_default();
    let mut text = String::new();
    if let Some(kind) = explain_kind {
        text += &render::explanation(&explain(&x, &w, b.as_ref(), &p, kind)?);
        if let Some(gy) = &gy {
            text += "\n";
            text += &render::explanation(&explain_grad(&x, &w, b.as_ref(), gy, &p)?);
        }
    }
    let mut files = vec![];
    if let Some(path) = &a.output {
        files.push(("output", path.as_path(), &y));
    }
    files.extend(a.grad.outputs(&grads));
    let wrote = grad::save_all(&files)?;

    print!("{text}");
    if explain_kind.is_none() {
        if a.output.is_none() {
            render::printable(&y)?;
            print!("{}", render::tensor("output", &y, nd));
        }
        if a.grad.print_mode() {
            print!("{}", grad::render_grads(&grads, nd));
        }
    }
    for line in wrote {
        println!("{line}");
    }
    Ok(())
}
