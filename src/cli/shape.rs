//! `stride shape`: one layer's output shape with the formula filled in, parameters, cost, memory.

use super::render;
use clap::Args;
use stride::analysis::layer::{LayerKind, LayerQuery};
use stride::geometry::{parse_per_axis, per_axis, PaddingSpec};
use stride::Error;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples (the pen-and-paper CNN exercise, question (a)):\n  \
  stride shape --input 200x200x3 --kernel 40x40 --filters 12323 --stride 2\n  \
  stride shape --input 6,28,28 --kernel 2 --stride 2 --op pool\n  \
  stride shape --input 16,14,14 --kernel 2 --stride 2 --filters 6 --op conv-transpose"
)]
pub struct ShapeArgs {
    /// Input size: H×W×C as the course writes it (200x200x3; channels last), or C,H,W in PyTorch order (3,200,200). 1 to 3 spatial axes.
    #[arg(long, value_name = "SHAPE")]
    input: String,
    /// Kernel (window) size: one value for every axis, or one per axis (40x40 or 40,40).
    #[arg(long, value_name = "K")]
    kernel: String,
    /// Number of filters (output channels) of a convolution.
    #[arg(long, value_name = "N")]
    filters: Option<usize>,
    /// Stride (one value or one per axis). Pooling defaults to the kernel size, as in PyTorch.
    #[arg(long, value_name = "S")]
    stride: Option<String>,
    /// Padding: an integer, one per axis, begin:end per axis, valid, same or full.
    #[arg(long, value_name = "P", default_value = "0")]
    padding: String,
    /// Dilation (one value or one per axis).
    #[arg(long, value_name = "D", default_value = "1")]
    dilation: String,
    /// Groups of a convolution.
    #[arg(long, value_name = "G", default_value_t = 1)]
    groups: usize,
    /// Convolution without bias.
    #[arg(long)]
    no_bias: bool,
    /// Layer type: conv, pool or conv-transpose.
    #[arg(long, value_name = "OP", default_value = "conv")]
    op: String,
    /// Output padding of a transposed convolution (one value or one per axis).
    #[arg(long, value_name = "OP", default_value = "0")]
    output_padding: String,
    /// Pooling in ceil mode.
    #[arg(long)]
    ceil_mode: bool,
}

/// Parses `200x200x3` (spatial…, C), `5x5` (a one-channel H×W image) or `3,200,200`
/// (C, spatial…) into (C, spatial).
fn parse_input(s: &str) -> stride::Result<(usize, Vec<usize>)> {
    let v = parse_per_axis("input", s)?;
    if !(2..=4).contains(&v.len()) {
        return Err(Error::arg(
            "input",
            format!("'{s}' has {} sizes; give H×W×C (200x200x3) or C,H,W (3,200,200) with 1 to 3 spatial axes", v.len()),
        ));
    }
    Ok(if s.contains('x') {
        // H×W is a one-channel image (5x5 is 5×5, not width 5 with 5 channels); H×W×C and
        // D×H×W×C name the channels last
        if v.len() == 2 {
            (1, v)
        } else {
            (v[v.len() - 1], v[..v.len() - 1].to_vec())
        }
    } else {
        (v[0], v[1..].to_vec())
    })
}

pub fn run(a: ShapeArgs) -> anyhow::Result<()> {
    let (channels, spatial) = parse_input(&a.input)?;
    let kernel = parse_per_axis("kernel", &a.kernel)?;
    let kind = match a.op.as_str() {
        "conv" => LayerKind::Conv {
            filters: a.filters.ok_or_else(|| {
                Error::arg(
                    "filters",
                    "a convolution needs --filters N (its output channels)",
                )
            })?,
            groups: a.groups,
            bias: !a.no_bias,
        },
        "pool" => LayerKind::Pool {
            ceil_mode: a.ceil_mode,
        },
        "conv-transpose" => {
            let op = per_axis(
                "output-padding",
                &parse_per_axis("output-padding", &a.output_padding)?,
                spatial.len(),
            )?;
            let mut output_padding = [0; 3];
            output_padding[..op.len()].copy_from_slice(&op);
            LayerKind::ConvTranspose {
                filters: a.filters.ok_or_else(|| {
                    Error::arg(
                        "filters",
                        "a transposed convolution needs --filters N (its output channels)",
                    )
                })?,
                groups: a.groups,
                bias: !a.no_bias,
                output_padding,
            }
        }
        other => {
            return Err(Error::arg(
                "op",
                format!("unknown layer type '{other}'; use conv, pool or conv-transpose"),
            )
            .into())
        }
    };
    let stride = match (&a.stride, &kind) {
        (Some(s), _) => parse_per_axis("stride", s)?,
        (None, LayerKind::Pool { .. }) => kernel.clone(),
        (None, _) => vec![1],
    };
    let q = LayerQuery {
        channels,
        spatial,
        kernel,
        stride,
        dilation: parse_per_axis("dilation", &a.dilation)?,
        padding: a.padding.parse::<PaddingSpec>()?,
        kind,
    };
    print!("{}", render::explanation(&q.report()?));
    Ok(())
}
