//! Import: an ONNX graph (as `torch.onnx.export` writes CNNs) mapped onto a stride spec and its
//! weights, so the model runs on stride's own layers and kernels.
//!
//! The graph must be a chain: every layer node reads the previous layer's output (branches such
//! as residual connections are refused). Nodes are read in file order, which ONNX requires to be
//! topological; a node that reads a name no earlier node, initializer or input defines is
//! refused, which also refuses cycles. Small shape computations (`Shape → Gather → Unsqueeze →
//! Concat → Reshape`, as `x.view(x.size(0), -1)` exports) are evaluated symbolically with the
//! batch size left open. The per-operator mapping lives in [`super::layers`].

use super::layers::{map_layer, Mapped};
use super::proto::{GraphProto, ModelProto, NodeProto};
use super::tensors::{decode, Attrs, Const, MAX_ACTIVATION};
use crate::error::{Error, Result};
use crate::geometry::PaddingMode;
use crate::nn::spec::{LayerSpec, ModelSpec};
use crate::tensor::{fmt_shape, Tensor};
use prost::Message;
use std::collections::HashMap;

/// Most nodes and initializers a graph may have.
const MAX_NODES: usize = 100_000;

/// An imported model: the spec, its weights under stride's names (`0.weight`), and notes
/// (what was dropped or adjusted on the way).
#[derive(Clone, Debug)]
pub struct Imported {
    pub spec: ModelSpec,
    pub weights: HashMap<String, Tensor>,
    /// The file's `producer_name` (`pytorch`, `stride`, …).
    pub producer: String,
    pub notes: Vec<String>,
}

/// A padding mode and the spatial `(begin, end)` per axis.
pub(super) type Padding = (PaddingMode, Vec<(usize, usize)>);

/// A value flowing through the graph.
#[derive(Clone, Debug)]
pub(super) enum Val {
    /// An activation: `id` counts the layers before it; `shape` is unbatched.
    Act {
        id: usize,
        shape: Vec<usize>,
    },
    Const(Const),
    /// A shape vector computed from activations: `None` is the (open) batch size.
    Shape(Vec<Option<i64>>),
}

/// The state of the walk over the nodes.
pub(super) struct Walk {
    pub vals: HashMap<String, Val>,
    pub layers: Vec<LayerSpec>,
    pub weights: HashMap<String, Tensor>,
    /// Unbatched shape of the current activation.
    pub shape: Vec<usize>,
    /// Id of the current activation.
    pub cur: usize,
    /// The declared batch size of the input, when fixed.
    pub batch: Option<i64>,
    /// Layer index of a bias-less linear layer from `MatMul`, while its `Add` may follow.
    pub matmul: Option<usize>,
    /// A `Pad` node waiting for its `Conv`: its output name and the padding.
    pub pad: Option<(String, Padding)>,
    /// The padding the current `Conv` node takes over from the `Pad` before it.
    pub conv_pad: Option<Padding>,
    pub notes: Vec<String>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::arg("onnx", msg.into())
}

/// Decodes and maps an ONNX model file's bytes; [`Imported::into_model`] builds the network.
///
/// ```
/// let bytes = std::fs::read("tests/fixtures/onnx/bn_net.onnx").unwrap();
/// let imported = stride::onnx::import(&bytes)?;
/// assert_eq!(imported.producer, "pytorch");
/// let model = imported.into_model()?;
/// assert_eq!(model.classes()?, 10);
/// // garbage is refused with an error, never a panic
/// assert!(stride::onnx::import(b"not an onnx file").is_err());
/// # Ok::<(), stride::Error>(())
/// ```
pub fn import(bytes: &[u8]) -> Result<Imported> {
    let m = ModelProto::decode(bytes).map_err(|e| {
        bad(format!(
            "not a readable ONNX model ({e}); the file is truncated, corrupt or not ONNX"
        ))
    })?;
    if !m.functions.is_empty() {
        return Err(bad(
            "the model defines local functions; stride runs plain graphs",
        ));
    }
    let opset = m
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| bad("the model imports no default-domain opset; it is not an ONNX model stride can read"))?;
    if !(7..=23).contains(&opset) {
        return Err(bad(format!("opset {opset} is not supported; stride reads opsets 7 to 23 (re-export with opset_version=17)")));
    }
    let g = m
        .graph
        .as_ref()
        .ok_or_else(|| bad("the model has no graph"))?;
    let (spec, weights, notes) = walk(g)?;
    Ok(Imported {
        spec,
        weights,
        producer: m.producer_name.clone(),
        notes,
    })
}

fn walk(g: &GraphProto) -> Result<(ModelSpec, HashMap<String, Tensor>, Vec<String>)> {
    if g.node.len() > MAX_NODES || g.initializer.len() > MAX_NODES {
        return Err(bad(format!(
            "the graph has more than {MAX_NODES} nodes or initializers"
        )));
    }
    if !g.sparse_initializer.is_empty() {
        return Err(bad(
            "the graph has sparse initializers; stride reads dense weights only",
        ));
    }
    super::graph::unsupported_ops(g)?;
    let (input, in_shape, batch) = super::graph::graph_input(g)?;
    let mut w = Walk {
        vals: HashMap::new(),
        layers: Vec::new(),
        weights: HashMap::new(),
        shape: in_shape.clone(),
        cur: 0,
        batch,
        matmul: None,
        pad: None,
        conv_pad: None,
        notes: Vec::new(),
    };
    for t in &g.initializer {
        if w.vals
            .insert(t.name.clone(), Val::Const(decode(t)?))
            .is_some()
        {
            return Err(bad(format!("initializer `{}` is defined twice", t.name)));
        }
    }
    w.vals.insert(
        input,
        Val::Act {
            id: 0,
            shape: in_shape.clone(),
        },
    );
    for (k, node) in g.node.iter().enumerate() {
        let last = k + 1 == g.node.len();
        step(&mut w, node, last)?;
    }
    if let Some((name, ..)) = &w.pad {
        return Err(bad(format!("`{name}` comes from a Pad that no Conv reads; stride pads only as part of a convolution")));
    }
    let [out] = &g.output[..] else {
        return Err(bad(format!(
            "the graph has {} outputs; stride runs models with one output (the logits)",
            g.output.len()
        )));
    };
    match w.vals.get(&out.name) {
        Some(Val::Act { id, .. }) if *id == w.cur => {}
        _ => {
            return Err(bad(format!(
                "the graph output `{}` is not the last layer's output",
                out.name
            )))
        }
    }
    let spec = ModelSpec {
        input: in_shape,
        layers: w.layers,
    };
    Ok((spec, w.weights, w.notes))
}

impl Walk {
    /// The constant named `name`, if it is one.
    pub fn konst(&self, name: &str) -> Option<&Const> {
        match self.vals.get(name) {
            Some(Val::Const(c)) => Some(c),
            _ => None,
        }
    }

    /// A float constant input (weights), named in the error when missing.
    pub fn weight(&self, a: &Attrs, idx: usize, what: &str) -> Result<Option<Tensor>> {
        let Some(name) = a.node.input.get(idx).filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        match self.konst(name) {
            Some(Const::F32(t)) => Ok(Some(t.clone())),
            _ => Err(a.err(format!("its {what} `{name}` must be a float32 initializer (a constant), not computed in the graph"))),
        }
    }

    /// Checks that the node's data input is the current activation (the chain does not branch).
    fn data_input(&self, a: &Attrs) -> Result<()> {
        let name = a.node.input.first().map_or("", |s| s.as_str());
        match self.vals.get(name) {
            Some(Val::Act { id, .. }) if *id == self.cur => Ok(()),
            Some(Val::Act { .. }) => Err(a.err(format!(
                "reads `{name}`, an earlier activation: the graph branches (a skip or residual connection); stride runs sequential networks only"
            ))),
            _ => Err(a.err(format!("its data input `{name}` is not an activation"))),
        }
    }

    /// Appends a layer with its weights (`suffix` → tensor) and makes its output current.
    fn push(&mut self, a: &Attrs, layer: LayerSpec, tensors: Vec<(&str, Tensor)>) -> Result<()> {
        let next = layer.out_shape(&self.shape).map_err(|e| {
            a.err(format!(
                "does not fit its input {}: {e}",
                fmt_shape(&self.shape)
            ))
        })?;
        if next
            .iter()
            .try_fold(1usize, |p, &d| p.checked_mul(d))
            .is_none_or(|n| n > MAX_ACTIVATION)
        {
            return Err(a.err(format!(
                "makes an activation {} of more than 2^24 values per image; stride refuses models this large",
                fmt_shape(&next)
            )));
        }
        // the weights must fit before the layer is built (building allocates from the shapes)
        let expect = match &layer {
            LayerSpec::Conv { .. } => Some(layer.conv_weight_shape(&self.shape)?),
            LayerSpec::Linear { out, .. } => Some(vec![*out, self.shape[0]]),
            _ => None,
        };
        if let (Some(e), Some((_, t))) = (expect, tensors.first()) {
            if t.shape() != e {
                return Err(a.err(format!(
                    "weight {} does not fit input {} (it needs {})",
                    fmt_shape(t.shape()),
                    fmt_shape(&self.shape),
                    fmt_shape(&e)
                )));
            }
        }
        let idx = self.layers.len();
        for (suffix, t) in tensors {
            self.weights.insert(format!("{idx}.{suffix}"), t);
        }
        self.layers.push(layer);
        self.cur += 1;
        self.shape = next;
        self.set_out(
            a,
            Val::Act {
                id: self.cur,
                shape: self.shape.clone(),
            },
        )
    }

    fn set_out(&mut self, a: &Attrs, v: Val) -> Result<()> {
        let out = a
            .node
            .output
            .first()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| a.err("has no output"))?;
        if self.vals.insert(out.clone(), v).is_some() {
            return Err(a.err(format!("output `{out}` is defined twice")));
        }
        Ok(())
    }
}

/// Reads one node.
fn step(w: &mut Walk, node: &NodeProto, last: bool) -> Result<()> {
    let a = Attrs::new(node);
    if !(node.domain.is_empty() || node.domain == "ai.onnx") {
        return Err(a.err(format!(
            "operator from domain `{}` is not supported; stride runs standard ONNX operators",
            node.domain
        )));
    }
    for i in node.input.iter().filter(|i| !i.is_empty()) {
        if !w.vals.contains_key(i) {
            return Err(a.err(format!(
                "reads `{i}`, which no graph input, initializer or earlier node defines (the graph is cyclic, unsorted or incomplete)"
            )));
        }
    }
    let matmul = w.matmul.take();
    w.conv_pad = None;
    if let Some((out, (mode, pads))) = w.pad.take() {
        if node.op_type != "Conv" || node.input.first() != Some(&out) {
            return Err(a.err(format!(
                "reads after a Pad; stride runs a Pad ({}) only right before the Conv it pads",
                format!("{mode:?}").to_lowercase()
            )));
        }
        w.conv_pad = Some((mode, pads));
    }
    if let Some(c) = super::fold::fold(w, &a)? {
        return w.set_out(&a, Val::Const(c));
    }
    match node.op_type.as_str() {
        "Pad" => {
            a.arity(2, 3)?;
            w.data_input(&a)?;
            let padding = super::layers::pad(w, &a)?;
            let out = a.node.output.first().cloned().unwrap_or_default();
            w.pad = Some((out, padding));
            w.set_out(
                &a,
                Val::Act {
                    id: w.cur,
                    shape: w.shape.clone(),
                },
            )
        }
        "Constant" => {
            let c = constant(&a)?;
            w.set_out(&a, Val::Const(c))
        }
        "Identity" => {
            a.arity(1, 1)?;
            let v = w.vals[&node.input[0]].clone();
            w.set_out(&a, v)
        }
        "Shape" | "Gather" | "Unsqueeze" | "Squeeze" | "Concat" | "Cast" => {
            let v = super::fold::shape_op(w, &a)?;
            w.set_out(&a, Val::Shape(v))
        }
        "Add" => matmul_bias(w, node, matmul),
        "Softmax" | "LogSoftmax" if last => {
            a.arity(1, 1)?;
            w.data_input(&a)?;
            w.notes.push(format!(
                "the final {} is left out: stride's models output logits (the predicted classes are the same)",
                node.op_type
            ));
            w.set_out(
                &a,
                Val::Act {
                    id: w.cur,
                    shape: w.shape.clone(),
                },
            )
        }
        _ => {
            a.arity(1, usize::MAX)?;
            w.data_input(&a)?;
            match map_layer(w, &a)? {
                Mapped::Layer(l, t) => {
                    let is_matmul = node.op_type == "MatMul";
                    w.push(&a, l, t)?;
                    if is_matmul {
                        w.matmul = Some(w.layers.len() - 1);
                    }
                    Ok(())
                }
                Mapped::Same => w.set_out(
                    &a,
                    Val::Act {
                        id: w.cur,
                        shape: w.shape.clone(),
                    },
                ),
            }
        }
    }
}

/// The value of a `Constant` node.
fn constant(a: &Attrs) -> Result<Const> {
    a.only(&[
        "value",
        "value_float",
        "value_floats",
        "value_int",
        "value_ints",
    ])?;
    let c = if let Some(t) = a.tensor("value")? {
        decode(t)?
    } else if let Some(v) = a.ints("value_ints")? {
        Const::I64(vec![v.len()], v)
    } else if a.node.attribute.iter().any(|x| x.name == "value_int") {
        Const::I64(vec![], vec![a.int("value_int", 0)?])
    } else if let Some(v) = a.floats("value_floats")? {
        Const::F32(Tensor::new(vec![v.len()], v)?)
    } else {
        Const::F32(Tensor::new(vec![], vec![a.float("value_float", 0.0)?])?)
    };
    Ok(c)
}

/// `Add` as the bias of the linear layer a `MatMul` just made (layer `matmul`).
fn matmul_bias(w: &mut Walk, node: &NodeProto, matmul: Option<usize>) -> Result<()> {
    let a = Attrs::new(node);
    // the bias of a preceding MatMul: Add(matmul_out, b) with b of shape (out,)
    let idx = matmul.ok_or_else(|| a.err("is supported only as the bias after MatMul; adding two activations (a residual connection) is not"))?;
    a.arity(2, 2)?;
    // the activation may come first or second
    let k = usize::from(!matches!(w.vals.get(&node.input[0]), Some(Val::Act { .. })));
    let mut swapped = node.clone();
    swapped.input.swap(0, k);
    let a = Attrs::new(&swapped);
    w.data_input(&a)?;
    let b = w
        .weight(&a, 1, "bias")?
        .ok_or_else(|| a.err("has no bias input"))?;
    let out = w.shape[0];
    if b.numel() != out {
        return Err(a.err(format!(
            "bias has shape {} but the MatMul gives {out} features",
            fmt_shape(b.shape())
        )));
    }
    if let LayerSpec::Linear { bias, .. } = &mut w.layers[idx] {
        *bias = true;
    }
    w.weights.insert(format!("{idx}.bias"), b.reshape(&[out])?);
    w.set_out(
        &a,
        Val::Act {
            id: w.cur,
            shape: w.shape.clone(),
        },
    )
}
