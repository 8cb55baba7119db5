//! Checks on a whole ONNX graph before it is walked: the operators it uses (all unsupported
//! ones are named at once) and its single image input with a fixed `(C, *spatial)` shape.

use super::proto::{GraphProto, FLOAT};
use super::tensors::{MAX_ACTIVATION as MAX_VALUES, MAX_AXIS};
use crate::error::{Error, Result};
use crate::tensor::fmt_shape;

fn bad(msg: impl Into<String>) -> Error {
    Error::arg("onnx", msg.into())
}

/// The single real input (not an initializer): its unbatched shape and fixed batch size.
pub(super) fn graph_input(g: &GraphProto) -> Result<(String, Vec<usize>, Option<i64>)> {
    let inits: std::collections::HashSet<&str> =
        g.initializer.iter().map(|t| t.name.as_str()).collect();
    let real: Vec<_> = g
        .input
        .iter()
        .filter(|i| !inits.contains(i.name.as_str()))
        .collect();
    let [x] = real[..] else {
        return Err(bad(format!(
            "the graph has {} inputs; stride runs models with one image input",
            real.len()
        )));
    };
    let tt = x.r#type.as_ref().and_then(|t| t.tensor_type.as_ref());
    let tt = tt.ok_or_else(|| bad(format!("input `{}` is not a tensor", x.name)))?;
    if tt.elem_type != FLOAT {
        return Err(bad(format!(
            "input `{}` has element type {}; stride takes float32 (1) images",
            x.name, tt.elem_type
        )));
    }
    let dims = tt.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or(&[]);
    if !(3..=5).contains(&dims.len()) {
        return Err(bad(format!(
            "input `{}` has {} axes; stride takes (N, C, L), (N, C, H, W) or (N, C, D, H, W)",
            x.name,
            dims.len()
        )));
    }
    let batch = dims[0].dim_value.filter(|&v| v > 0);
    let mut shape = Vec::new();
    for (a, d) in dims[1..].iter().enumerate() {
        match d.dim_value {
            Some(v) if v > 0 && v as usize <= MAX_AXIS => shape.push(v as usize),
            _ => {
                return Err(bad(format!(
                    "input `{}` axis {} has no fixed size (or one out of 1..={MAX_AXIS}); stride needs a fixed image shape — export with a fixed (C, H, W)",
                    x.name,
                    a + 1
                )))
            }
        }
    }
    if shape
        .iter()
        .try_fold(1usize, |p, &d| p.checked_mul(d))
        .is_none_or(|n| n > MAX_VALUES)
    {
        return Err(bad(format!(
            "input `{}` shape {} is too large",
            x.name,
            fmt_shape(&shape)
        )));
    }
    Ok((x.name.clone(), shape, batch))
}

/// Refuses a graph with operators stride cannot run, naming all of them (`LSTM`).
pub(super) fn unsupported_ops(g: &GraphProto) -> Result<()> {
    let known = super::layers::SUPPORTED
        .replace(" to (N, -1)", "")
        .replace(" +", ",");
    let known: Vec<&str> = known.split(", ").collect();
    let extra = [
        "Pad",
        "ConstantOfShape",
        "Slice",
        "Transpose",
        "Constant",
        "Shape",
        "Gather",
        "Unsqueeze",
        "Squeeze",
        "Concat",
        "Cast",
        "Softmax",
        "LogSoftmax",
        "Add",
    ];
    let mut bad_ops: Vec<&str> = Vec::new();
    for n in &g.node {
        let op = n.op_type.as_str();
        if !known.contains(&op) && !extra.contains(&op) && !bad_ops.contains(&op) {
            bad_ops.push(op);
        }
    }
    match bad_ops.len() {
        0 => Ok(()),
        _ => Err(bad(format!(
            "operator{} {} not supported; stride runs sequential CNNs made of {}",
            if bad_ops.len() > 1 { "s" } else { "" },
            bad_ops
                .iter()
                .map(|o| format!("`{o}`"))
                .collect::<Vec<_>>()
                .join(", ")
                + if bad_ops.len() > 1 { " are" } else { " is" },
            super::layers::SUPPORTED
        ))),
    }
}
