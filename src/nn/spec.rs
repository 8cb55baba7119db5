//! Networks described as text, and the shape pass over them.
//!
//! A spec is a whitespace-separated list of layers, each `name` or `name(args)`, with `#`
//! comments; args are positional values or `key=value`:
//! `conv(6,k=5,p=2) relu maxpool(2) conv(16,k=5) relu maxpool(2) flatten linear(120) relu linear(10)`.
//! An optional leading `input(C,H,W)` sets the input shape (default `(1, 28, 28)`). Per-axis
//! values inside args use `x` (`k=3x5`). In-channels and in-features are not written: the
//! shape pass ([`ModelSpec::shapes`]) infers them from the input shape, layer by layer, using the
//! same validation as the ops (so a spec that passes builds a network that runs).

use crate::error::{Error, Result};
use crate::geometry::{parse_per_axis, per_axis, PaddingMode, PaddingSpec};
use crate::ops::activation::Activation;
use crate::ops::conv::{ConvParams, ConvShape};
use crate::ops::pool::{PoolKind as PoolOpKind, PoolParams, PoolShape};
use crate::tensor::fmt_shape;

/// One layer of a spec. `dims` (1, 2, 3) is set when the name fixes it (`conv2d`); otherwise
/// the number of spatial axes comes from the input shape.
#[derive(Clone, Debug, PartialEq)]
pub enum LayerSpec {
    Conv {
        dims: Option<usize>,
        out: usize,
        kernel: Vec<usize>,
        stride: Vec<usize>,
        padding: PaddingSpec,
        dilation: Vec<usize>,
        groups: usize,
        bias: bool,
        /// How the padding is filled (PyTorch `padding_mode`; `mode=reflect` in a spec).
        mode: PaddingMode,
    },
    /// Pooling through [`crate::ops::pool`] (max, avg, min, lp, soft, adaptive, global);
    /// `params.spatial_axes` is filled in by the shape pass.
    Pool {
        dims: Option<usize>,
        params: PoolParams,
    },
    Linear {
        out: usize,
        bias: bool,
    },
    Flatten,
    Act(Activation),
    Dropout {
        p: f32,
    },
    BatchNorm {
        dims: Option<usize>,
    },
}

/// The layer names the parser knows, for error messages.
pub const KNOWN_LAYERS: &str =
    "input(C,H,W), conv/conv1d/conv2d/conv3d(out,k=,s=,p=,d=,g=,bias=,mode=), \
maxpool/avgpool/minpool/lppool/softpool[1d|2d|3d](k,s=,p=,d=,ceil=,norm=,count_include_pad=), \
adaptiveavgpool/adaptivemaxpool(size), globalavgpool/globalmaxpool, linear(out,bias=), flatten, relu, sigmoid, tanh, \
dropout(p), batchnorm/bn[1d|2d|3d]";

/// A whole network: input shape (unbatched, e.g. `(1, 28, 28)`) and layers.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub input: Vec<usize>,
    pub layers: Vec<LayerSpec>,
}

/// One row of the shape pass.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerShape {
    pub in_shape: Vec<usize>,
    pub out_shape: Vec<usize>,
    /// Trainable values of the layer.
    pub params: usize,
}

impl LayerSpec {
    /// Number of spatial axes of an unbatched input shape `(C, *spatial)`, checked against the
    /// layer's explicit dimensionality.
    fn spatial_dims(&self, in_shape: &[usize], dims: Option<usize>, what: &str) -> Result<usize> {
        let nd = in_shape.len().saturating_sub(1);
        if !(1..=3).contains(&nd) || dims.is_some_and(|d| d != nd) {
            let want = dims.map_or("(C, L), (C, H, W) or (C, D, H, W)".to_string(), |d| {
                ["(C, L)", "(C, H, W)", "(C, D, H, W)"][d - 1].to_string()
            });
            return Err(Error::arg(
                "model",
                format!("{what} needs input {want} but gets {}", fmt_shape(in_shape)),
            ));
        }
        Ok(nd)
    }

    /// The conv parameters of a conv spec.
    pub fn conv_params(&self) -> Option<ConvParams> {
        match self {
            LayerSpec::Conv {
                stride,
                padding,
                dilation,
                groups,
                mode,
                ..
            } => Some(ConvParams {
                stride: stride.clone(),
                padding: padding.clone(),
                dilation: dilation.clone(),
                groups: *groups,
                padding_mode: *mode,
                ..Default::default()
            }),
            _ => None,
        }
    }

    /// The pooling parameters for an input with `nd` spatial axes.
    pub fn pool_params(&self, nd: usize) -> Option<PoolParams> {
        match self {
            LayerSpec::Pool { params, .. } => Some(PoolParams {
                spatial_axes: Some(nd),
                ..params.clone()
            }),
            _ => None,
        }
    }

    /// The conv weight shape `(out, in/groups, *k)` for an input shape.
    pub fn conv_weight_shape(&self, in_shape: &[usize]) -> Result<Vec<usize>> {
        let LayerSpec::Conv {
            dims,
            out,
            kernel,
            groups,
            ..
        } = self
        else {
            return Err(Error::arg("model", "not a convolution"));
        };
        let nd = self.spatial_dims(in_shape, *dims, "conv")?;
        let mut w = vec![*out, in_shape[0] / (*groups).max(1)];
        w.extend(per_axis("kernel", kernel, nd)?);
        Ok(w)
    }

    /// Output shape (unbatched) for an unbatched input shape, with the ops' own validation.
    pub fn out_shape(&self, in_shape: &[usize]) -> Result<Vec<usize>> {
        match self {
            LayerSpec::Conv { .. } => {
                let w = self.conv_weight_shape(in_shape)?;
                let p = self.conv_params().expect("conv");
                Ok(ConvShape::new(in_shape, &w, None, &p)?.out_shape())
            }
            LayerSpec::Pool { dims, .. } => {
                let nd = self.spatial_dims(in_shape, *dims, "pooling")?;
                let p = self.pool_params(nd).expect("pool");
                Ok(PoolShape::new(in_shape, &p)?.out_shape())
            }
            LayerSpec::Linear { out, .. } => {
                if in_shape.len() != 1 {
                    return Err(Error::arg(
                        "model",
                        format!(
                            "linear needs flat features but gets {}; put `flatten` before it",
                            fmt_shape(in_shape)
                        ),
                    ));
                }
                Ok(vec![*out])
            }
            LayerSpec::Flatten => Ok(vec![in_shape.iter().product()]),
            LayerSpec::BatchNorm { dims } => {
                match dims {
                    Some(1) if in_shape.len() <= 2 => {}
                    Some(d) if in_shape.len() != d + 1 => {
                        return Err(Error::arg(
                            "model",
                            format!(
                                "batchnorm{d}d needs input with {d} spatial axes but gets {}",
                                fmt_shape(in_shape)
                            ),
                        ))
                    }
                    _ if in_shape.len() > 4 => {
                        return Err(Error::arg(
                            "model",
                            format!("batchnorm cannot take {}", fmt_shape(in_shape)),
                        ))
                    }
                    _ => {}
                }
                Ok(in_shape.to_vec())
            }
            LayerSpec::Act(_) | LayerSpec::Dropout { .. } => Ok(in_shape.to_vec()),
        }
    }

    /// Trainable values for an input shape (the shape must already pass [`Self::out_shape`]).
    pub fn param_count(&self, in_shape: &[usize]) -> Result<usize> {
        Ok(match self {
            LayerSpec::Conv { out, bias, .. } => {
                let w = self.conv_weight_shape(in_shape)?;
                let w = w.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                w.and_then(|w| w.checked_add(if *bias { *out } else { 0 }))
                    .ok_or_else(too_many)?
            }
            LayerSpec::Linear { out, bias } => in_shape[0]
                .checked_mul(*out)
                .and_then(|w| w.checked_add(if *bias { *out } else { 0 }))
                .ok_or_else(too_many)?,
            LayerSpec::BatchNorm { .. } => 2 * in_shape[0],
            _ => 0,
        })
    }
}

fn too_many() -> Error {
    Error::TooLarge {
        what: "model".into(),
        msg: format!(
            "a layer has more than {} parameters; use fewer features or channels",
            usize::MAX
        ),
    }
}

impl ModelSpec {
    /// Parses a spec; `default_input` is used unless the text starts with `input(...)`.
    ///
    /// ```
    /// use stride::nn::spec::ModelSpec;
    /// let spec = ModelSpec::parse("conv(6,k=5,p=2) relu maxpool(2) flatten linear(10)", &[1, 28, 28])?;
    /// assert_eq!(spec.out_shape()?, vec![10]);
    /// assert_eq!(spec.param_count()?, 6 * 25 + 6 + 6 * 14 * 14 * 10 + 10);
    /// # Ok::<(), stride::Error>(())
    /// ```
    pub fn parse(text: &str, default_input: &[usize]) -> Result<Self> {
        super::spec_parse::parse(text, default_input)
    }

    /// The shape pass: per layer, input and output shape and parameter count. An error names the
    /// layer (1-based position and its text).
    pub fn shapes(&self) -> Result<Vec<LayerShape>> {
        let mut shape = self.input.clone();
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, l) in self.layers.iter().enumerate() {
            let wrap = |e: Error| {
                Error::arg(
                    "model",
                    format!(
                        "layer {} `{l}` does not fit its input {}: {}",
                        i + 1,
                        fmt_shape(&shape),
                        strip_arg(&e)
                    ),
                )
            };
            let next = l.out_shape(&shape).map_err(wrap)?;
            let params = l.param_count(&shape).map_err(wrap)?;
            out.push(LayerShape {
                in_shape: shape.clone(),
                out_shape: next.clone(),
                params,
            });
            shape = next;
        }
        Ok(out)
    }

    /// The output shape of the whole network.
    pub fn out_shape(&self) -> Result<Vec<usize>> {
        Ok(self
            .shapes()?
            .last()
            .map_or(self.input.clone(), |s| s.out_shape.clone()))
    }

    /// Total trainable values.
    pub fn param_count(&self) -> Result<usize> {
        self.shapes()?
            .iter()
            .try_fold(0usize, |a, s| a.checked_add(s.params))
            .ok_or_else(too_many)
    }

    /// Bytes a training or evaluation pass needs, at most: per parameter its value, gradient
    /// and two optimiser moments; per layer, for `batch` images, its output and the gradient
    /// of its output (`None` on overflow). Checked against the memory limit before building.
    pub fn memory_bytes(&self, batch: usize) -> Result<Option<u128>> {
        let shapes = self.shapes()?;
        let params = shapes
            .iter()
            .try_fold(0u128, |a, s| a.checked_add(s.params as u128));
        let acts = shapes.iter().try_fold(0u128, |a, s| {
            let n = s
                .out_shape
                .iter()
                .try_fold(batch as u128, |n, &d| n.checked_mul(d as u128))?;
            a.checked_add(n)
        });
        Ok(params
            .and_then(|p| p.checked_mul(16))
            .zip(acts.and_then(|a| a.checked_mul(8)))
            .and_then(|(p, a)| p.checked_add(a)))
    }
}

/// The message of an error without its `arg: ` prefix (for wrapping).
fn strip_arg(e: &Error) -> String {
    match e {
        Error::InvalidArgument { arg, msg } if arg == "model" => msg.clone(),
        Error::InvalidArgument { arg, msg } => format!("{arg} {msg}"),
        other => other.to_string(),
    }
}

/// Parses a per-axis value written with `x` separators (`3x5`).
pub(super) fn per_axis_value(key: &str, v: &str) -> Result<Vec<usize>> {
    parse_per_axis(key, v)
}

/// The spec name of a pooling kind (`maxpool`, `globalavgpool`).
pub fn pool_name(kind: PoolOpKind) -> &'static str {
    POOL_NAMES
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("pool", |(n, _)| n)
}

/// Pooling layer names and their kinds.
pub const POOL_NAMES: [(&str, PoolOpKind); 9] = [
    ("maxpool", PoolOpKind::Max),
    ("avgpool", PoolOpKind::Avg),
    ("minpool", PoolOpKind::Min),
    ("lppool", PoolOpKind::Lp),
    ("softpool", PoolOpKind::Soft),
    ("adaptiveavgpool", PoolOpKind::AdaptiveAvg),
    ("adaptivemaxpool", PoolOpKind::AdaptiveMax),
    ("globalavgpool", PoolOpKind::GlobalAvg),
    ("globalmaxpool", PoolOpKind::GlobalMax),
];
