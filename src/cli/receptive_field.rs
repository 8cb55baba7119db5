//! `stride receptive-field`: how the field of one output cell grows through a stack of layers,
//! and the course's parameter / FLOP comparisons of the alternatives.

use super::render;
use clap::Args;
use stride::analysis::receptive::{alternatives, table, RfLayer};
use stride::geometry::{parse_per_axis, per_axis};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples (the course notebook \"Convolutional Neural Networks (CNN): High Level\"):\n  \
  stride receptive-field --kernels 3,3,3\n  \
  stride receptive-field --kernels 7,3,3 --strides 2,2,1 --paddings 3,1,1 --channels 64"
)]
pub struct RfArgs {
    /// Kernel size of each layer, first layer first (3,3,3 = three stacked 3×3 layers).
    #[arg(long, value_name = "K,K,...")]
    kernels: String,
    /// Stride of each layer (one value applies to every layer).
    #[arg(long, value_name = "S,S,...", default_value = "1")]
    strides: String,
    /// Dilation of each layer (one value applies to every layer).
    #[arg(long, value_name = "D,D,...", default_value = "1")]
    dilations: String,
    /// Begin padding of each layer (one value applies to every layer); shifts where the field starts.
    #[arg(long, value_name = "P,P,...", default_value = "0")]
    paddings: String,
    /// Channels in and out of every layer, for the parameter and FLOP comparison.
    #[arg(long, value_name = "C", default_value_t = 64)]
    channels: usize,
}

pub fn run(a: RfArgs) -> anyhow::Result<()> {
    let kernels = parse_per_axis("kernels", &a.kernels)?;
    let n = kernels.len();
    let strides = per_axis("strides", &parse_per_axis("strides", &a.strides)?, n)?;
    let dilations = per_axis("dilations", &parse_per_axis("dilations", &a.dilations)?, n)?;
    let paddings = per_axis("paddings", &parse_per_axis("paddings", &a.paddings)?, n)?;
    let layers: Vec<RfLayer> = (0..n)
        .map(|i| RfLayer {
            name: format!("layer {}", i + 1),
            kernel: kernels[i],
            stride: strides[i],
            dilation: dilations[i],
            pad_begin: paddings[i],
        })
        .collect();
    let mut ex = table(&layers)?;
    ex.steps.extend(alternatives(&layers, a.channels)?);
    print!("{}", render::explanation(&ex));
    Ok(())
}
