//! Export: a stride model (spec + weights) as an ONNX graph, opset 17. Every layer maps onto one
//! node with the same semantics (PyTorch's, which ONNX follows for these operators):
//!
//! | stride layer | ONNX node |
//! |---|---|
//! | `conv` (1-D/2-D/3-D, groups, dilation, strides, `begin:end` pads) | `Conv` (pads `[begin…, end…]`) |
//! | `conv(…,mode=reflect\|replicate\|circular)` | `Pad` (`reflect`, `edge`, `wrap`: opset 19) + `Conv` |
//! | `maxpool` (dilation, ceil mode) | `MaxPool` |
//! | `avgpool` (count_include_pad, ceil mode) | `AveragePool` |
//! | `lppool` with an even integer `norm` | `LpPool` |
//! | `globalavgpool` / `globalmaxpool`, adaptive pooling to 1 | `GlobalAveragePool` / `GlobalMaxPool` |
//! | adaptive pooling whose output size divides the input | `AveragePool` / `MaxPool` with kernel = stride = in/out |
//! | `linear` | `Gemm` (`transB = 1`) |
//! | `relu`, `sigmoid`, `tanh` | `Relu`, `Sigmoid`, `Tanh` |
//! | `batchnorm` | `BatchNormalization` (inference: running statistics) |
//! | `flatten` | `Flatten` (axis 1) |
//! | `dropout` | nothing (identity at inference) |
//!
//! Pooling that ONNX has no operator for (min, soft, k-max, fractional) is refused, naming the
//! layer. Ceil mode: PyTorch drops a last window that would start in the end padding; the
//! exporter writes `ceil_mode` only when the sizes agree with ONNX's plain `ceil` on every
//! axis, and `ceil_mode = 0` when PyTorch's sizes are the floor ones, so the shapes match.

use super::proto::{
    attr_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, TensorShapeProto, TypeProto, TypeTensor, ValueInfoProto, FLOAT,
};
use crate::error::{Error, Result};
use crate::geometry::PaddingMode;
use crate::nn::models::Model;
use crate::nn::spec::{pool_name, LayerSpec};
use crate::ops::activation::Activation;
use crate::ops::conv::ConvShape;
use crate::ops::pool::{PoolKind, PoolParams, PoolShape};
use crate::tensor::Tensor;
use prost::Message;
use std::collections::HashMap;

/// The opset written in exported files.
pub const OPSET: i64 = 17;
/// The opset written when a circular padding needs `Pad` mode `wrap` (opset 19, IR version 9).
pub const OPSET_WRAP: i64 = 19;
/// ONNX IR version 8 (ONNX 1.10+), which opset 17 needs.
const IR_VERSION: i64 = 8;
/// Names of the graph's input and output.
pub const INPUT_NAME: &str = "input";
pub const OUTPUT_NAME: &str = "logits";

fn ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INTS,
        ints: v.iter().map(|&x| x as i64).collect(),
        ..Default::default()
    }
}

fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INT,
        i,
        ..Default::default()
    }
}

fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::FLOAT,
        f,
        ..Default::default()
    }
}

/// A float tensor as an initializer (little-endian `raw_data`).
pub(super) fn tensor_proto(name: &str, t: &Tensor) -> TensorProto {
    TensorProto {
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: FLOAT,
        name: name.into(),
        raw_data: t.data().iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// A float tensor value with a dynamic first (batch) axis named `N`.
fn value_info(name: &str, unbatched: &[usize]) -> ValueInfoProto {
    let mut dim = vec![Dimension {
        dim_value: None,
        dim_param: Some("N".into()),
    }];
    dim.extend(unbatched.iter().map(|&d| Dimension {
        dim_value: Some(d as i64),
        dim_param: None,
    }));
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeTensor {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

/// The attributes of a `Conv` node (`pads` zero when a `Pad` node pads with another mode).
fn conv_attrs(l: &LayerSpec, in_shape: &[usize]) -> Result<Vec<AttributeProto>> {
    let w = l.conv_weight_shape(in_shape)?;
    let cp = l.conv_params().expect("conv");
    let cs = ConvShape::new(in_shape, &w, None, &cp)?;
    let axes = cs.window.real_axes();
    let per_axis =
        |f: fn(&crate::geometry::AxisWindow) -> usize| axes.iter().map(f).collect::<Vec<_>>();
    let mut pads = per_axis(|a| a.pad_begin);
    pads.extend(per_axis(|a| a.pad_end));
    if cp.padding_mode != PaddingMode::Zeros {
        pads.fill(0); // the Pad node before did it
    }
    Ok(vec![
        ints("kernel_shape", &w[2..]),
        ints("strides", &per_axis(|a| a.stride)),
        ints("pads", &pads),
        ints("dilations", &per_axis(|a| a.dilation)),
        int("group", cp.groups as i64),
    ])
}

/// A `Pad` node and its `pads` initializer.
struct PadNode {
    node: NodeProto,
    pads: TensorProto,
}

/// The `Pad` node a convolution with a non-zero padding mode needs before it (reflect → `reflect`,
/// replicate → `edge`, circular → `wrap`); `pads` are `[0, 0, begin…, 0, 0, end…]` over
/// (N, C, *spatial). `None` for zero padding, which the `Conv` does itself.
fn pad_node(l: &LayerSpec, in_shape: &[usize], i: usize, cur: &str) -> Result<Option<PadNode>> {
    let LayerSpec::Conv { mode, .. } = l else {
        return Ok(None);
    };
    let mode = match mode {
        PaddingMode::Zeros => return Ok(None),
        PaddingMode::Reflect => "reflect",
        PaddingMode::Replicate => "edge",
        PaddingMode::Circular => "wrap",
    };
    let w = l.conv_weight_shape(in_shape)?;
    let cs = ConvShape::new(in_shape, &w, None, &l.conv_params().expect("conv"))?;
    let axes = cs.window.real_axes();
    let mut pads = vec![0i64, 0];
    pads.extend(axes.iter().map(|a| a.pad_begin as i64));
    pads.extend([0, 0]);
    pads.extend(axes.iter().map(|a| a.pad_end as i64));
    let name = format!("{i}.pads");
    let pads = TensorProto {
        dims: vec![pads.len() as i64],
        data_type: super::proto::INT64,
        name: name.clone(),
        raw_data: pads.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    };
    let node = NodeProto {
        input: vec![cur.into(), name],
        output: vec![format!("{i}.pad")],
        name: format!("{i}.Pad"),
        op_type: "Pad".into(),
        attribute: vec![AttributeProto {
            name: "mode".into(),
            r#type: attr_type::STRING,
            s: mode.as_bytes().to_vec(),
            ..Default::default()
        }],
        ..Default::default()
    };
    Ok(Some(PadNode { node, pads }))
}

/// The ONNX operator and attributes of a pooling layer on an unbatched input `(C, *spatial)`.
fn pool_node(
    p: &PoolParams,
    in_shape: &[usize],
    what: &str,
) -> Result<(&'static str, Vec<AttributeProto>)> {
    let spatial = &in_shape[1..];
    let refuse = |why: &str| {
        Err(Error::arg(
            "model",
            format!("{what} cannot be exported to ONNX: {why}"),
        ))
    };
    let sliding = |op: &'static str,
                   p: &PoolParams|
     -> Result<(&'static str, Vec<AttributeProto>)> {
        let shape = PoolShape::new(in_shape, p)?;
        let w = shape.window.expect("sliding pooling has a window");
        let axes = w.real_axes();
        let get =
            |f: fn(&crate::geometry::AxisWindow) -> usize| axes.iter().map(f).collect::<Vec<_>>();
        let mut pads = get(|a| a.pad_begin);
        pads.extend(get(|a| a.pad_end));
        // per axis: PyTorch's size against ONNX's floor and ceil formulas
        let mut ceil_needed = false;
        for a in axes {
            let (floor, ceil) = a.floor_ceil_outputs();
            if a.output != floor {
                ceil_needed = true;
            }
            if a.output != floor && a.output != ceil {
                return refuse("its ceil-mode output size has no ONNX equivalent");
            }
        }
        if ceil_needed && axes.iter().any(|a| a.output != a.floor_ceil_outputs().1) {
            return refuse("ceil mode rounds up on some axes and down on others");
        }
        let mut attrs = vec![
            ints("kernel_shape", &get(|a| a.kernel)),
            ints("strides", &get(|a| a.stride)),
            ints("pads", &pads),
        ];
        if ceil_needed {
            attrs.push(int("ceil_mode", 1));
        }
        match op {
            "MaxPool" => attrs.push(ints("dilations", &get(|a| a.dilation))),
            "AveragePool" => attrs.push(int("count_include_pad", p.count_include_pad as i64)),
            _ => {
                let n = p.norm_type;
                if n.fract() != 0.0 || n < 2.0 || n % 2.0 != 0.0 {
                    return refuse(&format!(
                        "ONNX LpPool takes |x|^p, which equals PyTorch's x^p only for an even integer p (norm={n})"
                    ));
                }
                if ceil_needed {
                    return refuse("LpPool has no ceil mode in opset 17");
                }
                attrs.push(int("p", n as i64));
            }
        }
        Ok((op, attrs))
    };
    match p.kind {
        PoolKind::Max => sliding("MaxPool", p),
        PoolKind::Avg => {
            if p.divisor_override.is_some() {
                return refuse("AveragePool has no divisor override");
            }
            sliding("AveragePool", p)
        }
        PoolKind::Lp => sliding("LpPool", p),
        PoolKind::GlobalAvg => Ok(("GlobalAveragePool", vec![])),
        PoolKind::GlobalMax => Ok(("GlobalMaxPool", vec![])),
        PoolKind::AdaptiveAvg | PoolKind::AdaptiveMax => {
            let out = crate::geometry::per_axis("output-size", &p.output_size, spatial.len())?;
            let max = p.kind == PoolKind::AdaptiveMax;
            if out.iter().all(|&o| o == 1) {
                return Ok((
                    if max {
                        "GlobalMaxPool"
                    } else {
                        "GlobalAveragePool"
                    },
                    vec![],
                ));
            }
            if spatial
                .iter()
                .zip(&out)
                .any(|(&i, &o)| o == 0 || i % o != 0)
            {
                return refuse(
                    "its output size does not divide the input, so its windows are uneven",
                );
            }
            let k: Vec<usize> = spatial.iter().zip(&out).map(|(&i, &o)| i / o).collect();
            let mut q = PoolParams::new(if max { PoolKind::Max } else { PoolKind::Avg }, &k);
            q.stride = k.clone();
            q.spatial_axes = Some(spatial.len());
            sliding(if max { "MaxPool" } else { "AveragePool" }, &q)
        }
        other => refuse(&format!(
            "ONNX has no {} pooling operator; replace it with max or average pooling",
            pool_name(other)
        )),
    }
}

/// Serialises `model` as an ONNX model (opset 17): input `input` `(N, *spec.input)` float32,
/// output `logits` `(N, classes)`. Errors name the first layer ONNX cannot express.
///
/// ```
/// use stride::nn::{init::Init, models::{resolve, Model}};
/// let (spec, _, _) = resolve("lenet5-relu")?;
/// let model = Model::build(&spec, Init::Default, 0)?;
/// let bytes = stride::onnx::export(&model, "lenet5-relu")?; // write it to a .onnx file
/// let back = stride::onnx::import(&bytes)?;
/// assert_eq!(back.spec.layers.len(), spec.layers.len());
///
/// // min pooling has no ONNX operator
/// let (spec, _, _) = resolve("input(1,8,8) minpool(2) flatten linear(2)")?;
/// let err = stride::onnx::export(&Model::build(&spec, Init::Default, 0)?, "m").unwrap_err();
/// assert!(err.to_string().contains("layer 1 `minpool"));
/// # Ok::<(), stride::Error>(())
/// ```
pub fn export(model: &Model, name: &str) -> Result<Vec<u8>> {
    let spec = &model.spec;
    let shapes = spec.shapes()?;
    let classes = model.classes()?;
    let mut tensors: HashMap<String, &Tensor> = HashMap::new();
    for (n, p) in model.net.named_params() {
        tensors.insert(n, &p.value);
    }
    for (n, b) in model.net.named_buffers() {
        tensors.insert(n, b);
    }
    let mut nodes: Vec<NodeProto> = Vec::new();
    let mut inits: Vec<TensorProto> = Vec::new();
    let mut cur = INPUT_NAME.to_string();
    let mut wrap = false;
    for (i, (l, s)) in spec.layers.iter().zip(&shapes).enumerate() {
        let what = format!("layer {} `{l}`", i + 1);
        if let Some(pad) = pad_node(l, &s.in_shape, i, &cur)? {
            wrap |= pad.node.attribute[0].s == b"wrap";
            inits.push(pad.pads);
            cur = pad.node.output[0].clone();
            nodes.push(pad.node);
        }
        let mut inputs = vec![cur.clone()];
        let mut weight = |suffix: &str, inputs: &mut Vec<String>| {
            let key = format!("{i}.{suffix}");
            if let Some(t) = tensors.get(&key) {
                inits.push(tensor_proto(&key, t));
                inputs.push(key);
            }
        };
        let (op, attrs): (&str, Vec<AttributeProto>) = match l {
            LayerSpec::Conv { .. } => {
                weight("weight", &mut inputs);
                weight("bias", &mut inputs);
                ("Conv", conv_attrs(l, &s.in_shape)?)
            }
            LayerSpec::Pool { .. } => {
                let p = l.pool_params(s.in_shape.len() - 1).expect("pool");
                pool_node(&p, &s.in_shape, &what)?
            }
            LayerSpec::Linear { .. } => {
                weight("weight", &mut inputs);
                weight("bias", &mut inputs);
                ("Gemm", vec![int("transB", 1)])
            }
            LayerSpec::Flatten => ("Flatten", vec![int("axis", 1)]),
            LayerSpec::Act(a) => (
                match a {
                    Activation::Relu => "Relu",
                    Activation::Sigmoid => "Sigmoid",
                    Activation::Tanh => "Tanh",
                },
                vec![],
            ),
            LayerSpec::Dropout { .. } => continue,
            LayerSpec::BatchNorm { .. } => {
                for t in ["weight", "bias", "running_mean", "running_var"] {
                    weight(t, &mut inputs);
                }
                (
                    "BatchNormalization",
                    vec![float("epsilon", 1e-5), float("momentum", 0.9)],
                )
            }
        };
        let out = format!("{i}.{}", op.to_lowercase());
        nodes.push(NodeProto {
            input: inputs,
            output: vec![out.clone()],
            name: format!("{i}.{op}"),
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
        cur = out;
    }
    match nodes.last_mut() {
        Some(last) => last.output[0] = OUTPUT_NAME.into(),
        None => nodes.push(NodeProto {
            input: vec![cur],
            output: vec![OUTPUT_NAME.into()],
            name: "identity".into(),
            op_type: "Identity".into(),
            ..Default::default()
        }),
    }
    let m = ModelProto {
        ir_version: if wrap { 9 } else { IR_VERSION },
        producer_name: "stride".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!("stride model `{name}`: {spec}"),
        graph: Some(GraphProto {
            node: nodes,
            name: name.into(),
            initializer: inits,
            input: vec![value_info(INPUT_NAME, &spec.input)],
            output: vec![value_info(OUTPUT_NAME, &[classes])],
            ..Default::default()
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: if wrap { OPSET_WRAP } else { OPSET },
        }],
        ..Default::default()
    };
    Ok(m.encode_to_vec())
}
