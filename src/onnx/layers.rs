//! The per-operator mapping of an imported ONNX node onto a stride layer (and its weights), and
//! the symbolic evaluation of small shape computations (`Shape`, `Gather`, `Concat`, …).
//!
//! | ONNX | stride |
//! |---|---|
//! | `Conv` (`pads`, `auto_pad` `VALID` / `SAME_UPPER`) | `conv` |
//! | `Pad` (`reflect`, `edge`, `wrap`, zeros) right before a `Conv` | `conv(…,mode=reflect\|replicate\|circular)` |
//! | `MaxPool`, `AveragePool`, `LpPool` (even `p`) | `maxpool`, `avgpool`, `lppool` |
//! | `GlobalAveragePool`, `GlobalMaxPool` | `globalavgpool`, `globalmaxpool` |
//! | `Gemm` (`alpha`, `beta`, `transB` folded in), `MatMul` (+ `Add` bias) | `linear` |
//! | `BatchNormalization` (inference; any `epsilon`, folded into the variance) | `batchnorm` |
//! | `Relu`, `Sigmoid`, `Tanh` | `relu`, `sigmoid`, `tanh` |
//! | `Flatten` (axis 1), `Reshape` to `(N, -1)` | `flatten` |
//! | `Dropout` | `dropout` (identity at inference) |

use super::import::{Padding, Walk};
use super::layers_pool::pool;
use super::tensors::{Attrs, Const, MAX_AXIS};
use crate::error::Result;
use crate::geometry::{PaddingMode, PaddingSpec};
use crate::nn::spec::LayerSpec;
use crate::ops::activation::Activation;
use crate::ops::pool::{PoolKind, PoolParams};
use crate::tensor::{fmt_shape, Tensor};

/// The operators stride maps onto its layers (for error messages).
pub const SUPPORTED: &str = "Conv, BatchNormalization, Relu, Sigmoid, Tanh, MaxPool, AveragePool, LpPool, \
GlobalAveragePool, GlobalMaxPool, Flatten, Reshape to (N, -1), Gemm, MatMul + Add, Dropout, Identity";

/// What a node becomes.
#[allow(clippy::large_enum_variant)] // one per node, moved once
pub(super) enum Mapped {
    /// A new layer and its tensors by parameter name (`weight`, `running_mean`).
    Layer(LayerSpec, Vec<(&'static str, Tensor)>),
    /// Nothing: the output is the input (a flatten of flat features, dropout-free identity).
    Same,
}

/// The padding of a Conv / pooling node: `auto_pad` or explicit `pads` `[begin…, end…]`.
pub(super) fn padding(a: &Attrs, nd: usize) -> Result<PaddingSpec> {
    match a.string("auto_pad")?.as_deref() {
        None | Some("NOTSET") | Some("") => {
            let p = a.sizes("pads", 2 * nd, 0, 0)?;
            Ok(PaddingSpec::Explicit((0..nd).map(|i| (p[i], p[nd + i])).collect()))
        }
        Some("VALID") => Ok(PaddingSpec::Valid),
        Some("SAME_UPPER") => Ok(PaddingSpec::Same),
        Some(other) => Err(a.err(format!("auto_pad {other} is not supported (stride pads like SAME_UPPER); re-export with explicit pads"))),
    }
}

/// A `Pad` node (before a Conv): its mode and the spatial `(begin, end)` per axis.
/// ONNX `pads` are `[begin of every axis…, end of every axis…]` over (N, C, *spatial).
pub(super) fn pad(w: &Walk, a: &Attrs) -> Result<Padding> {
    a.only(&["mode"])?;
    let mode = match a.string("mode")?.as_deref().unwrap_or("constant") {
        "constant" => PaddingMode::Zeros,
        "reflect" => PaddingMode::Reflect,
        "edge" => PaddingMode::Replicate,
        "wrap" => PaddingMode::Circular,
        m => return Err(a.err(format!("mode `{m}` is not supported"))),
    };
    if let Some(v) = a.node.input.get(2).filter(|s| !s.is_empty()) {
        match w.konst(v) {
            Some(Const::F32(t)) if t.data().iter().all(|&x| x == 0.0) => {}
            _ => {
                return Err(
                    a.err("pads with a value other than 0; stride pads convolutions with zeros")
                )
            }
        }
    }
    let rank = w.shape.len() + 1;
    let p = match w.konst(&a.node.input[1]) {
        Some(Const::I64(_, v)) if v.len() == 2 * rank => v.clone(),
        _ => {
            return Err(a.err(format!(
                "its pads must be a constant of {} values",
                2 * rank
            )))
        }
    };
    if p.iter().any(|&x| !(0..=MAX_AXIS as i64).contains(&x))
        || p[0] != 0
        || p[1] != 0
        || p[rank] != 0
        || p[rank + 1] != 0
    {
        return Err(a.err("pads the batch or channel axis, or by a negative or huge amount; stride pads spatial axes only"));
    }
    let nd = rank - 2;
    Ok((
        mode,
        (0..nd)
            .map(|i| (p[2 + i] as usize, p[rank + 2 + i] as usize))
            .collect(),
    ))
}

fn transpose(t: &Tensor) -> Result<Tensor> {
    let (r, c) = (t.shape()[0], t.shape()[1]);
    let d = t.data();
    let v = (0..c * r).map(|k| d[(k % r) * c + k / r]).collect();
    Tensor::new(vec![c, r], v)
}

/// A float input that must be a 1-D constant of `n` values (BatchNorm statistics, biases).
fn vector(w: &Walk, a: &Attrs, idx: usize, what: &str, n: usize) -> Result<Tensor> {
    let t = w
        .weight(a, idx, what)?
        .ok_or_else(|| a.err(format!("has no {what}")))?;
    if t.numel() != n {
        return Err(a.err(format!(
            "{what} has shape {} but the layer has {n} channels/features",
            fmt_shape(t.shape())
        )));
    }
    t.reshape(&[n])
}

/// A 2-D float constant (Gemm / MatMul weights).
fn matrix(w: &Walk, a: &Attrs) -> Result<Tensor> {
    let t = w
        .weight(a, 1, "weight")?
        .ok_or_else(|| a.err("has no weight"))?;
    if t.rank() != 2 {
        return Err(a.err(format!(
            "weight has shape {}; stride maps 2-D weights only",
            fmt_shape(t.shape())
        )));
    }
    Ok(t)
}

/// Maps one layer node (its data input already checked to be the current activation).
pub(super) fn map_layer(w: &Walk, a: &Attrs) -> Result<Mapped> {
    Ok(match a.node.op_type.as_str() {
        "Conv" => conv(w, a)?,
        "MaxPool" => {
            if a.node.output.get(1).is_some_and(|s| !s.is_empty()) {
                return Err(
                    a.err("returns indices; stride runs MaxPool without its Indices output")
                );
            }
            pool(w, a, PoolKind::Max)?
        }
        "AveragePool" => pool(w, a, PoolKind::Avg)?,
        "LpPool" => pool(w, a, PoolKind::Lp)?,
        "GlobalAveragePool" | "GlobalMaxPool" => {
            a.only(&[])?;
            let kind = if a.node.op_type == "GlobalMaxPool" {
                PoolKind::GlobalMax
            } else {
                PoolKind::GlobalAvg
            };
            Mapped::Layer(
                LayerSpec::Pool {
                    dims: None,
                    params: PoolParams::new(kind, &[]),
                },
                vec![],
            )
        }
        op @ ("Relu" | "Sigmoid" | "Tanh") => {
            a.only(&[])?;
            let act = match op {
                "Relu" => Activation::Relu,
                "Sigmoid" => Activation::Sigmoid,
                _ => Activation::Tanh,
            };
            Mapped::Layer(LayerSpec::Act(act), vec![])
        }
        "BatchNormalization" => batchnorm(w, a)?,
        "Flatten" => {
            a.only(&["axis"])?;
            let rank = w.shape.len() as i64 + 1;
            let axis = a.int("axis", 1)?;
            if axis != 1 && axis.checked_add(rank) != Some(1) {
                return Err(a.err(format!(
                    "flattens from axis {axis}; stride flattens everything but the batch (axis 1)"
                )));
            }
            flatten(w)
        }
        "Reshape" => reshape(w, a)?,
        "Gemm" => gemm(w, a)?,
        "MatMul" => {
            a.only(&[])?;
            a.arity(2, 2)?;
            let wt = transpose(&matrix(w, a)?)?;
            Mapped::Layer(
                LayerSpec::Linear {
                    out: wt.shape()[0],
                    bias: false,
                },
                vec![("weight", wt)],
            )
        }
        "Dropout" => dropout(w, a)?,
        op => {
            return Err(a.err(format!(
                "operator `{op}` is not supported; stride runs sequential CNNs made of {SUPPORTED}"
            )))
        }
    })
}

fn flatten(w: &Walk) -> Mapped {
    if w.shape.len() == 1 {
        Mapped::Same
    } else {
        Mapped::Layer(LayerSpec::Flatten, vec![])
    }
}

/// `Conv` (with the padding of a `Pad` just before it).
fn conv(w: &Walk, a: &Attrs) -> Result<Mapped> {
    a.only(&[
        "auto_pad",
        "dilations",
        "group",
        "kernel_shape",
        "pads",
        "strides",
    ])?;
    a.arity(2, 3)?;
    let wt = w
        .weight(a, 1, "weight")?
        .ok_or_else(|| a.err("has no weight"))?;
    let nd = w.shape.len().saturating_sub(1);
    if wt.rank() != nd + 2 {
        return Err(a.err(format!(
            "weight {} does not fit input {}",
            fmt_shape(wt.shape()),
            fmt_shape(&w.shape)
        )));
    }
    let k = wt.shape()[2..].to_vec();
    if a.ints("kernel_shape")?.is_some() && a.sizes("kernel_shape", nd, 1, 1)? != k {
        return Err(a.err("kernel_shape disagrees with the weight's shape"));
    }
    let groups = a.int("group", 1)?;
    if !(1..=MAX_AXIS as i64).contains(&groups) {
        return Err(a.err(format!("group {groups} is out of range")));
    }
    let bias = w.weight(a, 2, "bias")?;
    let (mut padding, mut mode) = (padding(a, nd)?, PaddingMode::Zeros);
    if let Some((m, extra)) = &w.conv_pad {
        // a Pad before the Conv: its mode; zero padding adds up with the Conv's own
        let PaddingSpec::Explicit(own) = &padding else {
            return Err(a.err("combines a Pad with auto_pad; re-export with explicit pads"));
        };
        let own = crate::geometry::per_axis("pads", own, nd)?;
        if *m != PaddingMode::Zeros && own.iter().any(|&(b, e)| b + e > 0) {
            return Err(a.err("pads twice with different modes"));
        }
        padding = PaddingSpec::Explicit(
            own.iter()
                .zip(extra)
                .map(|(o, x)| (o.0 + x.0, o.1 + x.1))
                .collect(),
        );
        mode = *m;
    }
    let layer = LayerSpec::Conv {
        dims: None,
        out: wt.shape()[0],
        kernel: k,
        stride: a.sizes("strides", nd, 1, 1)?,
        padding,
        dilation: a.sizes("dilations", nd, 1, 1)?,
        groups: groups as usize,
        bias: bias.is_some(),
        mode,
    };
    let mut t = vec![("weight", wt)];
    if let Some(b) = bias {
        let n = b.numel();
        t.push(("bias", b.reshape(&[n])?));
    }
    Ok(Mapped::Layer(layer, t))
}

/// `BatchNormalization` in inference mode; another epsilon is folded into the variance.
fn batchnorm(w: &Walk, a: &Attrs) -> Result<Mapped> {
    let c = w.shape.first().copied().unwrap_or(0);
    a.only(&["epsilon", "momentum", "spatial", "training_mode"])?;
    a.arity(5, 5)?;
    if a.int("training_mode", 0)? != 0 || a.int("spatial", 1)? != 1 || a.node.output.len() > 1 {
        return Err(a.err("is in training mode; export the model in eval mode (model.eval())"));
    }
    let eps = a.float("epsilon", 1e-5)?;
    let mut var = vector(w, a, 4, "variance", c)?;
    // stride's batchnorm uses eps = 1e-5: fold the difference into the variance,
    // sqrt((var + eps - 1e-5) + 1e-5) = sqrt(var + eps)
    if eps != 1e-5 {
        for v in var.data_mut() {
            *v += eps - 1e-5;
            if *v < 0.0 || !v.is_finite() {
                return Err(a.err(format!("epsilon {eps} cannot be expressed with stride's 1e-5 for a variance this small")));
            }
        }
    }
    let t = vec![
        ("weight", vector(w, a, 1, "scale", c)?),
        ("bias", vector(w, a, 2, "bias", c)?),
        ("running_mean", vector(w, a, 3, "mean", c)?),
        ("running_var", var),
    ];
    Ok(Mapped::Layer(LayerSpec::BatchNorm { dims: None }, t))
}

/// `Reshape` to `(N, -1)`: a flatten.
fn reshape(w: &Walk, a: &Attrs) -> Result<Mapped> {
    a.only(&["allowzero"])?;
    a.arity(2, 2)?;
    let target = super::fold::shape_vec(w, a, &a.node.input[1])?;
    let prod = w.shape.iter().product::<usize>() as i64;
    let first_ok = |d: Option<i64>, rest_known: bool| match d {
        None | Some(0) => true,
        Some(-1) => rest_known,
        Some(b) => w.batch == Some(b),
    };
    let ok = match target[..] {
        [d0, Some(d1)] => {
            d1 == -1 && d0 != Some(-1) && first_ok(d0, false) || d1 == prod && first_ok(d0, true)
        }
        _ => false,
    };
    if !ok {
        return Err(a.err(format!(
            "reshapes to {target:?} (None = batch); stride maps only the flatten to (N, -1) of its input {}",
            fmt_shape(&w.shape)
        )));
    }
    Ok(flatten(w))
}

/// `Gemm` as a linear layer: `alpha`, `beta` and `transB` folded into the weights.
fn gemm(w: &Walk, a: &Attrs) -> Result<Mapped> {
    a.only(&["alpha", "beta", "transA", "transB"])?;
    a.arity(2, 3)?;
    if a.int("transA", 0)? != 0 {
        return Err(a.err("transposes its input (transA = 1); stride's linear layer does not"));
    }
    let b = matrix(w, a)?;
    let mut wt = if a.int("transB", 0)? != 0 {
        b
    } else {
        transpose(&b)?
    };
    let alpha = a.float("alpha", 1.0)?;
    if alpha != 1.0 {
        wt.data_mut().iter_mut().for_each(|v| *v *= alpha);
    }
    let out = wt.shape()[0];
    let mut t = vec![("weight", wt)];
    let bias = match w.weight(a, 2, "bias")? {
        None => false,
        Some(cb) => {
            let beta = a.float("beta", 1.0)?;
            let v: Vec<f32> = match cb.numel() {
                n if n == out => cb.data().iter().map(|x| x * beta).collect(),
                1 => vec![cb.data()[0] * beta; out],
                _ => {
                    return Err(a.err(format!(
                        "bias {} does not broadcast to {out} features",
                        fmt_shape(cb.shape())
                    )))
                }
            };
            t.push(("bias", Tensor::new(vec![out], v)?));
            true
        }
    };
    Ok(Mapped::Layer(LayerSpec::Linear { out, bias }, t))
}

/// `Dropout` (eval mode): kept as `dropout(p)`, the identity at inference.
fn dropout(w: &Walk, a: &Attrs) -> Result<Mapped> {
    a.only(&["ratio", "seed"])?;
    a.arity(1, 3)?;
    if a.node.output.get(1).is_some_and(|s| !s.is_empty()) {
        return Err(a.err("returns its mask; export the model in eval mode (model.eval())"));
    }
    let ratio = match a
        .node
        .input
        .get(1)
        .filter(|s| !s.is_empty())
        .map(|n| w.konst(n))
    {
        None => a.float("ratio", 0.5)?,
        Some(Some(Const::F32(t))) if t.numel() == 1 => t.data()[0],
        Some(_) => return Err(a.err("its ratio must be a constant scalar")),
    };
    if let Some(n) = a.node.input.get(2).filter(|s| !s.is_empty()) {
        match w.konst(n) {
            Some(Const::I64(_, v)) if v.iter().all(|&x| x == 0) => {}
            _ => {
                return Err(
                    a.err("runs in training mode; export the model in eval mode (model.eval())")
                )
            }
        }
    }
    if !(0.0..1.0).contains(&ratio) {
        return Err(a.err(format!("ratio {ratio} is outside [0, 1)")));
    }
    Ok(Mapped::Layer(LayerSpec::Dropout { p: ratio }, vec![]))
}
