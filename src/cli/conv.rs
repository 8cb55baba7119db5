//! `stride conv`: convolution forward and, with `--grad-output`, backward; printed or written
//! as `.npy` (all files or none), optionally explained step by step.

use super::conv_flags::ConvFlags;
use super::render;
use clap::Args;
use stride::explain::conv::{explain, ExplainKind};
use stride::explain::conv_grad::explain_grad;
use stride::geometry::{parse_per_axis, PaddingMode, PaddingSpec};
use stride::ops::conv::{conv, conv_backward, ConvParams, ConvShape};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
  stride conv --input '[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]' \\\n      --kernel '[[4,3,3],[5,5,5],[2,4,3]]' --explain\n  \
  stride conv --input x.npy --weight w.npy --bias b.npy --stride 2 --padding same --output y.npy\n  \
  stride conv --input '[[4,5,2,2,1],[3,3,2,2,4],[4,3,4,1,1],[5,1,4,1,2],[5,1,3,1,4]]' \\\n      --kernel '[[4,3,3],[5,5,5],[2,4,3]]' --grad-output '[[1,1,1],[1,1,1],[1,1,1]]' --explain\n  \
  stride conv --input x.npy --weight w.npy --grad-output gy.npy --grad-input gx.npy --grad-weight gw.npy")]
pub struct ConvArgs {
    #[command(flatten)]
    f: ConvFlags,
    /// How padding is filled: zeros, reflect, replicate or circular.
    #[arg(long, value_name = "MODE", default_value = "zeros")]
    padding_mode: String,
    /// True convolution: flip the kernel on every spatial axis (default is PyTorch's cross-correlation).
    #[arg(long)]
    flip: bool,
    /// Print the worked computation: direct (window by window, the default), im2col or toeplitz;
    /// with --grad-output, the gradients too.
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
    let f = &a.f;
    f.grad.check()?;
    let p = params(
        &f.stride,
        &f.padding,
        &f.dilation,
        f.groups,
        &a.padding_mode,
        a.flip,
    )?;
    let algo = f.algo()?;
    let explain_kind = a
        .explain
        .as_deref()
        .map(str::parse::<ExplainKind>)
        .transpose()?;
    let (x, w, b) = f.tensors()?;
    let shape = ConvShape::new(x.shape(), w.shape(), b.as_ref().map(|b| b.shape()), &p)?;
    let gy = f.grad.load(&shape.out_shape())?;

    // compute everything (and every explanation) before writing any file
    let y = conv(&x, &w, b.as_ref(), &p, algo)?;
    let grads = gy
        .as_ref()
        .map(|gy| conv_backward(&x, &w, gy, &p, algo, f.grad.want(b.is_some())))
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
    f.finish(&text, &y, &grads, shape.window.nd, explain_kind.is_some())?;
    Ok(())
}
