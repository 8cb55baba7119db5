//! `stride receptive-field`: how the field of one output cell grows through a stack of layers,
//! and the course's parameter / FLOP comparisons of the alternatives.

use super::render;
use clap::Args;
use stride::analysis::receptive::{alternatives, table, RfLayer};
use stride::geometry::parse_per_axis;
use stride::Error;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples (the course notebook \"Convolutional Neural Networks (CNN): High Level\"):\n  \
  stride receptive-field --kernels 3,3,3\n  \
  stride receptive-field --kernels 7,3,3 --strides 2,2,1 --paddings 3,1,1 --channels 64\n  \
  stride receptive-field --kernels 3,2,3 --strides 1,2,1 --pools 2      # conv, 2×2 pooling, conv"
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
    /// Layers that are pooling windows (1-based, e.g. 2): they grow the field but have no weights.
    #[arg(long, value_name = "L,L,...")]
    pools: Option<String>,
    /// Channels in and out of every layer, for the parameter and FLOP comparison.
    #[arg(long, value_name = "C", default_value_t = 64)]
    channels: usize,
}

pub fn run(a: RfArgs) -> anyhow::Result<()> {
    if a.kernels.contains('x') {
        return Err(Error::arg(
            "kernels",
            format!(
                "lists one kernel size per layer (3,3,3 = three stacked 3×3 layers); '{}' would read as {} layers — \
                 for one 3×3 layer write --kernels 3",
                a.kernels,
                a.kernels.split('x').count()
            ),
        )
        .into());
    }
    let kernels = parse_per_axis("kernels", &a.kernels)?;
    let n = kernels.len();
    // one value for every layer, or one per layer
    let per_layer = |arg: &str, s: &str| -> stride::Result<Vec<usize>> {
        let v = parse_per_axis(arg, s)?;
        match v.len() {
            1 => Ok(vec![v[0]; n]),
            m if m == n => Ok(v),
            m => Err(Error::arg(
                arg,
                format!("{m} values given for {n} layers (--kernels has {n}); give one value or one per layer"),
            )),
        }
    };
    let strides = per_layer("strides", &a.strides)?;
    let dilations = per_layer("dilations", &a.dilations)?;
    let paddings = per_layer("paddings", &a.paddings)?;
    let pools = a
        .pools
        .as_deref()
        .map(|s| parse_per_axis("pools", s))
        .transpose()?
        .unwrap_or_default();
    if let Some(&bad) = pools.iter().find(|&&l| l == 0 || l > n) {
        return Err(Error::arg(
            "pools",
            format!("layer {bad} does not exist; give layer numbers from 1 to {n}"),
        )
        .into());
    }
    let layers: Vec<RfLayer> = (0..n)
        .map(|i| RfLayer {
            name: format!("layer {}", i + 1),
            kernel: kernels[i],
            stride: strides[i],
            dilation: dilations[i],
            pad_begin: paddings[i],
            pool: pools.contains(&(i + 1)),
        })
        .collect();
    let mut ex = table(&layers)?;
    ex.steps.extend(alternatives(&layers, a.channels)?);
    print!("{}", render::explanation(&ex));
    Ok(())
}
