//! `stride conv`: convolution forward, printed or written as `.npy`, optionally explained.

use super::{args, render};
use clap::Args;
use std::path::PathBuf;
use stride::explain::conv::{explain, ExplainKind};
use stride::geometry::{parse_per_axis, PaddingMode, PaddingSpec};
use stride::ops::conv::{conv, ConvAlgo, ConvParams, ConvShape};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride conv --input '[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]' \\\n      --kernel '[[4,3,3],[5,5,5],[2,4,3]]' --explain\n  \
  stride conv --input x.npy --weight w.npy --bias b.npy --stride 2 --padding same --output y.npy")]
pub struct ConvArgs {
    /// Input: .npy (N, Cin, *spatial) or (Cin, *spatial), or an inline literal (a 2-D literal is one single-channel image).
    #[arg(long, value_name = "X")]
    input: String,
    /// Weight (Cout, Cin/groups, *kernel): .npy or inline literal (a 2-D literal is one kernel). Alias: --kernel.
    #[arg(long, visible_alias = "kernel", value_name = "W")]
    weight: String,
    /// Bias (Cout): .npy or inline literal such as '[0.5]'.
    #[arg(long, value_name = "B")]
    bias: Option<String>,
    /// Stride: one integer, or one per spatial axis (2,1).
    #[arg(long, value_name = "S", default_value = "1")]
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
    #[arg(long, value_name = "D", default_value = "1")]
    dilation: String,
    /// Groups: input and output channels split into this many independent convolutions (Cin = depthwise).
    #[arg(long, value_name = "G", default_value_t = 1)]
    groups: usize,
    /// How padding is filled: zeros, reflect, replicate or circular.
    #[arg(long, value_name = "MODE", default_value = "zeros")]
    padding_mode: String,
    /// True convolution: flip the kernel on every spatial axis (default is PyTorch's cross-correlation).
    #[arg(long)]
    flip: bool,
    /// Algorithm: auto, direct, im2col or toeplitz (all give the same result).
    #[arg(long, value_name = "ALGO", default_value = "auto")]
    algo: String,
    /// Write the output to this .npy file instead of printing it.
    #[arg(long, value_name = "Y.npy")]
    output: Option<PathBuf>,
    /// Print the worked computation: direct (window by window, the default), im2col or toeplitz.
    #[arg(long, value_name = "HOW", num_args = 0..=1, default_missing_value = "direct")]
    explain: Option<String>,
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

    if let Some(kind) = explain_kind {
        print!(
            "{}",
            render::explanation(&explain(&x, &w, b.as_ref(), &p, kind)?)
        );
    }
    let y = conv(&x, &w, b.as_ref(), &p, algo)?;
    match &a.output {
        Some(path) => {
            args::save(path, &y)?;
            println!(
                "wrote {} {}",
                path.display(),
                stride::tensor::fmt_shape(y.shape())
            );
        }
        None if explain_kind.is_none() => print!("{}", render::tensor("output", &y, nd)),
        None => {}
    }
    Ok(())
}
