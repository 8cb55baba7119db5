//! A whole network summarised layer by layer (`stride summary`), as data: per layer the output
//! shape, parameters, multiply-accumulates, forward and backward FLOPs, the activation memory
//! kept for the backward pass, and the receptive field per spatial axis; totals at the bottom.
//! The counting rules are part of the report ([`RULES`]) so every number can be checked by hand.
//!
//! Shapes and parameter counts come from the spec's shape pass ([`ModelSpec::shapes`]); window
//! geometry from the ops' own validation ([`ConvShape`], [`PoolShape`]); receptive fields from
//! [`super::receptive`]. All counts are per image unless the name says `batch`.

use super::receptive::{Rf, RfLayer};
use crate::error::{Error, Result};
use crate::geometry::AxisWindow;
use crate::nn::spec::{LayerShape, LayerSpec, ModelSpec};
use crate::ops::conv::ConvShape;
use crate::ops::pool::{PoolShape, Windows};
use serde::Serialize;

/// Bytes of one stored value (f32) or index (u32).
pub const BYTES_PER_VALUE: u64 = 4;

/// How each number is counted, shown under the table and included in the JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub what: &'static str,
    pub rule: &'static str,
}

/// The counting rules.
pub const RULES: [Rule; 8] = [
    Rule {
        what: "conv, linear",
        rule: "MACs = output values × fan-in (Cin/groups · kernel taps, or in_features); \
               FLOPs = 2·MACs (a multiply and an add each; with a bias the adds are exact)",
    },
    Rule {
        what: "pooling",
        rule: "one op per input element a window reads (a compare for max/min, an add for \
               avg/lp/soft; taps in the padding are skipped); no MACs",
    },
    Rule {
        what: "activation, dropout",
        rule: "one op per element (the non-linearity; dropout's mask multiply in training)",
    },
    Rule {
        what: "batch norm",
        rule: "2 ops per element (x·scale + shift per channel; batch statistics not counted)",
    },
    Rule {
        what: "flatten",
        rule: "0 (a reshape)",
    },
    Rule {
        what: "backward",
        rule: "layers with parameters: weight gradient (= forward FLOPs) + input gradient \
               (= forward FLOPs, none for the first layer) ≈ 2× forward; layers without: input \
               gradient only (= forward FLOPs, 0 for the first layer)",
    },
    Rule {
        what: "memory",
        rule: "values each layer keeps for its backward pass, 4 bytes each: conv, linear, batch \
               norm: the input; pooling: input + output (+ one index per output for max/min); \
               activation: the output; dropout: its mask; flatten: nothing",
    },
    Rule {
        what: "receptive field",
        rule: "per spatial axis: size (input pixels one output cell sees), jump (input pixels \
               between neighbouring cells), start (input coordinate of cell 0's first pixel; \
               negative = padding); conv and pooling windows grow it (adaptive pooling only \
               when the output size divides the input), element-wise layers keep it, flatten \
               and linear end it",
    },
];

/// The receptive field along one spatial axis (see [`Rf`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RfAxis {
    pub size: u64,
    pub jump: u64,
    pub start: i64,
}

impl From<Rf> for RfAxis {
    fn from(r: Rf) -> Self {
        RfAxis {
            size: r.size as u64,
            jump: r.jump as u64,
            start: r.start as i64,
        }
    }
}

/// One layer of the summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LayerRow {
    /// 1-based position in the spec.
    pub index: usize,
    /// The layer's canonical spec text (`conv(6,k=5,p=2)`).
    pub layer: String,
    /// `conv`, `pool`, `linear`, `flatten`, `activation`, `batchnorm` or `dropout`.
    pub kind: &'static str,
    /// Unbatched shapes `(C, *spatial)` or `(features)`.
    pub in_shape: Vec<usize>,
    pub out_shape: Vec<usize>,
    pub params: u64,
    pub macs: u64,
    pub flops_forward: u64,
    pub flops_backward: u64,
    pub activation_bytes_per_image: u64,
    pub activation_bytes_batch: u64,
    /// Per spatial axis; `None` once flatten / linear (or uneven adaptive pooling) ended it.
    pub receptive_field: Option<Vec<RfAxis>>,
}

/// The sums over all layers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub params: u64,
    pub param_bytes: u64,
    pub macs: u64,
    pub flops_forward: u64,
    pub flops_backward: u64,
    /// `(forward + backward) · batch size`.
    pub flops_train_step: u64,
    pub activation_bytes_per_image: u64,
    pub activation_bytes_batch: u64,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub model: String,
    /// Canonical spec text (parses back to the same network).
    pub spec: String,
    pub input_shape: Vec<usize>,
    pub batch_size: usize,
    pub bytes_per_value: u64,
    pub layers: Vec<LayerRow>,
    pub totals: Totals,
    pub rules: Vec<Rule>,
}

/// What a layer does to the receptive field.
enum RfEffect {
    Keep,
    /// One window per spatial axis.
    Through(Vec<RfLayer>),
    End,
}

/// The per-image figures of one layer, before the receptive field.
struct Figures {
    kind: &'static str,
    macs: u64,
    flops_forward: u64,
    /// Values kept for backward.
    saved: u64,
    rf: RfEffect,
}

fn too_large() -> Error {
    Error::TooLarge {
        what: "model".into(),
        msg: "its counts overflow 64 bits; use a smaller --input-shape or fewer channels".into(),
    }
}

fn rf_too_large(layer: &str) -> Error {
    Error::TooLarge {
        what: "model".into(),
        msg: format!("the receptive field overflows at `{layer}`; use smaller strides or kernels"),
    }
}

/// `a · b`, refusing overflow.
fn mul(a: u64, b: u64) -> Result<u64> {
    a.checked_mul(b).ok_or_else(too_large)
}

/// `a + b`, refusing overflow.
fn add(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).ok_or_else(too_large)
}

/// Number of values of a shape.
fn numel(shape: &[usize]) -> Result<u64> {
    shape.iter().try_fold(1u64, |acc, &d| mul(acc, d as u64))
}

/// The window of each real axis, as the receptive-field recurrence sees it.
fn rf_layers(name: &str, axes: &[AxisWindow]) -> Vec<RfLayer> {
    axes.iter()
        .map(|a| RfLayer {
            name: name.to_string(),
            kernel: a.kernel,
            stride: a.stride,
            dilation: a.dilation,
            pad_begin: a.pad_begin,
            pool: false,
        })
        .collect()
}

/// The figures of layer `l` for its shapes.
fn figures(l: &LayerSpec, s: &LayerShape) -> Result<Figures> {
    let (x, y) = (numel(&s.in_shape)?, numel(&s.out_shape)?);
    let name = l.to_string();
    Ok(match l {
        LayerSpec::Conv { .. } => {
            let w = l.conv_weight_shape(&s.in_shape)?;
            let p = l.conv_params().expect("conv");
            let shape = ConvShape::new(&s.in_shape, &w, None, &p)?;
            let macs = shape.macs();
            Figures {
                kind: "conv",
                macs,
                flops_forward: mul(2, macs)?,
                saved: x,
                rf: RfEffect::Through(rf_layers(&name, shape.window.real_axes())),
            }
        }
        LayerSpec::Linear { .. } => {
            let macs = mul(y, x)?;
            Figures {
                kind: "linear",
                macs,
                flops_forward: mul(2, macs)?,
                saved: x,
                rf: RfEffect::End,
            }
        }
        LayerSpec::Pool { .. } => {
            let nd = s.in_shape.len() - 1;
            let p = l.pool_params(nd).expect("pool");
            let shape = PoolShape::new(&s.in_shape, &p)?;
            let reads = match &shape.windows {
                // the spans are shared by every plane and factor over the axes:
                // Σ_cells Π_axes count = Π_axes Σ_o count
                Windows::Shared(spans) => {
                    spans.iter().try_fold(s.in_shape[0] as u64, |acc, a| {
                        mul(acc, a.iter().map(|sp| sp.count as u64).sum())
                    })?
                }
                // (not reachable from a spec) each input element read once
                _ => x,
            };
            let indices = if p.kind.has_indices() { y } else { 0 };
            let rf = match shape.window {
                Some(w) => RfEffect::Through(rf_layers(&name, w.real_axes())),
                None => adaptive_rf(&name, &shape),
            };
            Figures {
                kind: "pool",
                macs: 0,
                flops_forward: reads,
                saved: add(add(x, y)?, indices)?,
                rf,
            }
        }
        LayerSpec::Act(_) => Figures {
            kind: "activation",
            macs: 0,
            flops_forward: y,
            saved: y,
            rf: RfEffect::Keep,
        },
        LayerSpec::Dropout { .. } => Figures {
            kind: "dropout",
            macs: 0,
            flops_forward: y,
            saved: x,
            rf: RfEffect::Keep,
        },
        LayerSpec::BatchNorm { .. } => Figures {
            kind: "batchnorm",
            macs: 0,
            flops_forward: mul(2, y)?,
            saved: x,
            rf: RfEffect::Keep,
        },
        LayerSpec::Flatten => Figures {
            kind: "flatten",
            macs: 0,
            flops_forward: 0,
            saved: 0,
            rf: RfEffect::End,
        },
    })
}

/// Adaptive and global pooling: where the output size divides the input on every axis the
/// windows are a sliding window with kernel = stride = input / output; otherwise their sizes
/// vary and there is no single field.
fn adaptive_rf(name: &str, shape: &PoolShape) -> RfEffect {
    let axes = (3 - shape.nd..3).map(|a| (shape.input[a], shape.output[a]));
    let mut layers = Vec::new();
    for (i, o) in axes {
        if !i.is_multiple_of(o) {
            return RfEffect::End;
        }
        layers.push(RfLayer {
            name: name.to_string(),
            kernel: i / o,
            stride: i / o,
            dilation: 1,
            pad_begin: 0,
            pool: true,
        });
    }
    RfEffect::Through(layers)
}

/// One more layer of the receptive field, refusing overflow (huge strides).
fn rf_through(rf: &[Rf], layers: &[RfLayer]) -> Result<Vec<Rf>> {
    rf.iter()
        .zip(layers)
        .map(|(r, l)| {
            let span = (l.dilation as u64).checked_mul(l.kernel.saturating_sub(1) as u64);
            let ok = r.jump.checked_mul(l.stride).is_some()
                && span
                    .and_then(|sp| sp.checked_mul(r.jump as u64))
                    .and_then(|g| g.checked_add(r.size as u64))
                    .is_some_and(|v| v < isize::MAX as u64);
            if ok {
                Ok(r.through(l))
            } else {
                Err(rf_too_large(&l.name))
            }
        })
        .collect()
}

/// Summarises `spec` (named `model`) for a batch of `batch_size` images.
pub fn summarize(spec: &ModelSpec, model: &str, batch_size: usize) -> Result<Summary> {
    if batch_size == 0 {
        return Err(Error::arg("batch-size", "must be at least 1"));
    }
    let shapes = spec.shapes()?;
    let batch = batch_size as u64;
    let nd = spec.input.len().saturating_sub(1);
    let mut rf = (nd >= 1).then(|| vec![Rf::input(); nd]);
    let mut layers = Vec::with_capacity(shapes.len());
    for (i, (l, s)) in spec.layers.iter().zip(&shapes).enumerate() {
        let f = figures(l, s)?;
        rf = match (f.rf, rf) {
            (RfEffect::Keep, r) => r,
            (RfEffect::Through(ws), Some(r)) => Some(rf_through(&r, &ws)?),
            _ => None,
        };
        let params = s.params as u64;
        let flops_backward = match (params > 0, i == 0) {
            (true, true) => f.flops_forward,
            (true, false) => mul(2, f.flops_forward)?,
            (false, true) => 0,
            (false, false) => f.flops_forward,
        };
        let bytes = mul(f.saved, BYTES_PER_VALUE)?;
        layers.push(LayerRow {
            index: i + 1,
            layer: l.to_string(),
            kind: f.kind,
            in_shape: s.in_shape.clone(),
            out_shape: s.out_shape.clone(),
            params,
            macs: f.macs,
            flops_forward: f.flops_forward,
            flops_backward,
            activation_bytes_per_image: bytes,
            activation_bytes_batch: mul(bytes, batch)?,
            receptive_field: rf
                .as_ref()
                .map(|r| r.iter().copied().map(RfAxis::from).collect()),
        });
    }
    let sum = |f: fn(&LayerRow) -> u64| layers.iter().try_fold(0u64, |acc, r| add(acc, f(r)));
    let params = sum(|r| r.params)?;
    let (flops_forward, flops_backward) = (sum(|r| r.flops_forward)?, sum(|r| r.flops_backward)?);
    let totals = Totals {
        params,
        param_bytes: mul(params, BYTES_PER_VALUE)?,
        macs: sum(|r| r.macs)?,
        flops_forward,
        flops_backward,
        flops_train_step: mul(add(flops_forward, flops_backward)?, batch)?,
        activation_bytes_per_image: sum(|r| r.activation_bytes_per_image)?,
        activation_bytes_batch: sum(|r| r.activation_bytes_batch)?,
    };
    Ok(Summary {
        model: model.to_string(),
        spec: spec.to_string(),
        input_shape: spec.input.clone(),
        batch_size,
        bytes_per_value: BYTES_PER_VALUE,
        layers,
        totals,
        rules: RULES.to_vec(),
    })
}

impl Summary {
    /// The receptive field of the last layer that still has one (the deepest feature map).
    pub fn last_receptive_field(&self) -> Option<(&LayerRow, &[RfAxis])> {
        self.layers
            .iter()
            .rev()
            .find_map(|r| r.receptive_field.as_deref().map(|f| (r, f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::models::INPUT;

    #[test]
    fn lenet5_figures() {
        let spec = ModelSpec::parse(crate::nn::models::PRESETS[0].spec, &INPUT).unwrap();
        let s = summarize(&spec, "lenet5", 256).unwrap();
        assert_eq!(s.totals.params, 61_706);
        // conv1: 6·28·28 outputs × 25 taps; conv2: 16·10·10 × 150; linears 400·120 + 120·84 + 84·10
        assert_eq!(s.layers[0].macs, 117_600);
        assert_eq!(s.layers[3].macs, 240_000);
        assert_eq!(s.totals.macs, 117_600 + 240_000 + 48_000 + 10_080 + 840);
        // first conv: weight gradient only
        assert_eq!(s.layers[0].flops_backward, s.layers[0].flops_forward);
        assert_eq!(s.layers[3].flops_backward, 2 * s.layers[3].flops_forward);
        // 2×2 average pooling reads every input once
        assert_eq!(s.layers[2].flops_forward, 6 * 28 * 28);
        // receptive field of the last pooling: 5 + 1·1 + 4·2 + 1·2 = 16, jump 4, start -2
        let rf = s.layers[5].receptive_field.as_ref().unwrap();
        assert_eq!(
            rf[0],
            RfAxis {
                size: 16,
                jump: 4,
                start: -2
            }
        );
        assert!(s.layers[6].receptive_field.is_none());
        assert_eq!(
            s.totals.activation_bytes_batch,
            256 * s.totals.activation_bytes_per_image
        );
    }
}
