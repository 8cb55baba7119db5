//! `stride conv`: convolution forward and, with `--grad-output`, backward; printed or written
//! as `.npy` (all files or none), optionally explained step by step.

use super::conv_flags::ConvFlags;
use super::render;
use clap::Args;
use stride::explain::conv::{explain_at, ExplainKind};
use stride::explain::conv_grad::explain_grad_at;
use stride::explain::conv_grad_matrix::explain_grad_matrix;
use stride::geometry::{parse_per_axis, PaddingMode, PaddingSpec};
use stride::ops::conv::{conv, conv_backward, ConvParams, ConvShape};
use stride::Tensor;

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
    /// With --explain: only output cell I,J (1-based) of the forward, and only ∂E/∂x at I,J of the
    /// input gradient, for large inputs.
    #[arg(long, value_name = "I,J", requires = "explain")]
    cell: Option<String>,
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

/// For pen-and-paper literals, says what to write when the input and the kernel disagree in
/// rank or channels (`[1,-1]` is a 1-D kernel: a 1×2 kernel is `[[1,-1]]`; a kernel over two
/// input channels is a 4-D literal).
fn literal_hint(
    e: stride::Error,
    input: &str,
    weight: &str,
    x: &Tensor,
    w: &Tensor,
) -> stride::Error {
    let literal = |s: &str| s.trim_start().starts_with('[');
    if !literal(input) && !literal(weight) {
        return e;
    }
    let ws = w.rank().saturating_sub(2);
    // the input's channels: (N, C, *spatial) or unbatched (C, *spatial)
    let channels = match x.rank() {
        r if r == ws + 2 => Some(x.shape()[1]),
        r if r == ws + 1 => Some(x.shape()[0]),
        _ => None,
    };
    let xs = x.rank().saturating_sub(2);
    let hint = if channels.is_none() && ws == 1 && xs == 2 {
        let k: Vec<String> = w
            .data()
            .iter()
            .map(|v| stride::explain::fmt_num(*v))
            .collect();
        format!(
            "the kernel is a 1-D literal but the input is 2-D; for a 1×{n} kernel write [[{}]] (two brackets)",
            k.join(","),
            n = k.len()
        )
    } else if channels.is_none() {
        format!(
            "the input has {xs} spatial axes and the kernel {ws}; write both with the same number of brackets \
             (a 2-D literal [[..]] is one single-channel image or kernel)"
        )
    } else if let Some(c) = channels.filter(|&c| c != w.shape()[1] && c > 1) {
        format!(
            "the input has {c} channels, so a kernel over all of them is a 4-D literal (Cout, Cin, kH, kW): \
             [[ [[..]], [[..]] ]] with one [[..]] per input channel"
        )
    } else {
        return e;
    };
    // keep the argument the error names (`input` or `weight`), the hint after its message
    match e {
        stride::Error::InvalidArgument { arg, msg } => {
            stride::Error::arg(arg, format!("{msg}; {hint}"))
        }
        e => stride::Error::arg("kernel", format!("{e}; {hint}")),
    }
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
    let shape = ConvShape::new(x.shape(), w.shape(), b.as_ref().map(|b| b.shape()), &p)
        .map_err(|e| literal_hint(e, &f.input, &f.weight, &x, &w))?;
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
        let cell = a
            .cell
            .as_deref()
            .map(|c| parse_per_axis("cell", c))
            .transpose()?;
        let cell = cell.as_deref();
        text += &render::explanation(&explain_at(&x, &w, b.as_ref(), &p, kind, cell)?);
        if let Some(gy) = &gy {
            text += "\n";
            let ex = match kind {
                ExplainKind::Direct => explain_grad_at(&x, &w, b.as_ref(), gy, &p, cell)?,
                matrix => explain_grad_matrix(&x, &w, gy, &p, matrix)?,
            };
            text += &render::explanation(&ex);
        }
    }
    f.finish(
        &text,
        &y,
        &grads,
        shape.window.nd,
        explain_kind.is_some(),
        explain_kind.is_some(),
    )?;
    Ok(())
}
