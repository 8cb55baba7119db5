//! The API handlers for the operations: convolution (with its gradients, im2col and Toeplitz
//! views), transposed convolution and pooling. Each parses the request's fields into library
//! parameters, calls the library (the same functions the CLI calls, plus the traces in
//! `explain::trace*` that say which entries make each result), and renders JSON. No maths here.

use super::fields::{ApiError, Fields};
use super::json::{entries, explanation, tensor};
use serde_json::{json, Value};
use stride::explain::conv::{explain, ExplainKind};
use stride::explain::conv_grad::explain_grad;
use stride::explain::trace::{
    conv_grad_trace, conv_trace, conv_transpose_grads, conv_transpose_trace, full_conv,
};
use stride::explain::trace_pool::pool_trace;
use stride::explain::{fmt_num, Explanation};
use stride::geometry::{parse_per_axis, PaddingMode, PaddingSpec};
use stride::ops::conv::{ConvGrads, ConvParams, ConvShape};
use stride::ops::conv_transpose::ConvTransposeParams;
use stride::ops::pool::{PoolKind, PoolParams, PoolShape};
use stride::Tensor;

/// Largest Toeplitz matrix (rows × columns) the page is sent; larger ones are left out.
pub const MAX_TOEPLITZ: usize = 40_000;

/// The fields both convolutions take, in the order an unknown-field error lists them; each
/// adds its own ([`CONV_OWN_FIELDS`], [`TRANSPOSE_OWN_FIELDS`]) before `grad-output`.
const CONV_COMMON_FIELDS: [&str; 8] = [
    "input", "kernel", "weight", "bias", "stride", "padding", "dilation", "groups",
];
pub const CONV_OWN_FIELDS: [&str; 2] = ["padding-mode", "flip"];
pub const TRANSPOSE_OWN_FIELDS: [&str; 1] = ["output-padding"];

pub const POOL_FIELDS: [&str; 14] = [
    "kind",
    "input",
    "kernel",
    "stride",
    "padding",
    "dilation",
    "ceil-mode",
    "count-include-pad",
    "divisor-override",
    "norm-type",
    "output-size",
    "k",
    "seed",
    "grad-output",
];

/// Input, kernel and optional bias.
type Operands = (Tensor, Tensor, Option<Tensor>);

/// The input, weight and bias of a convolution request.
fn operands(f: &Fields) -> Result<Operands, ApiError> {
    let x = f.tensor("input")?.ok_or_else(|| {
        ApiError::bad(
            "input",
            "input: is required; give a literal such as [[1,2,0],[0,1,3],[2,2,1]]",
        )
    })?;
    let w = match f.tensor("kernel")? {
        Some(w) => w,
        None => f.tensor("weight")?.ok_or_else(|| {
            ApiError::bad(
                "kernel",
                "kernel: is required; give a literal such as [[1,0],[0,-1]]",
            )
        })?,
    };
    let b = f
        .literal("bias")?
        .map(|b| {
            if b.rank() == 0 {
                b.reshape(&[1])
            } else {
                Ok(b)
            }
        })
        .transpose()?;
    Ok((x, w, b))
}

/// The index of the first per-cell step of an explanation whose cell steps come last, just
/// before its "Result" step (as `explain::conv::explain` and `explain::pool::explain` build them).
/// `None` when the explanation is laid out otherwise (the page then shows the trace alone).
fn first_cell_step(ex: &Explanation, cells: usize) -> Option<usize> {
    let first = ex.steps.len().checked_sub(1 + cells)?;
    let is_cell = |i: usize| {
        ex.steps
            .get(i)
            .is_some_and(|s| s.heading.starts_with("Output cell"))
    };
    (cells > 0 && is_cell(first) && is_cell(first + cells - 1)).then_some(first)
}

/// The window fields both convolutions take: `stride` (default 1), `padding` (0), `dilation`
/// (1) and `groups` (1).
type WindowFields = (Vec<usize>, PaddingSpec, Vec<usize>, usize);

/// The parts of a convolution request both convolutions read: the fields (checked against the
/// common ones and the operation's `own`), the operands and the window fields.
fn conv_request(body: Value, own: &[&str]) -> Result<(Fields, Operands, WindowFields), ApiError> {
    let known: Vec<&str> = CONV_COMMON_FIELDS
        .iter()
        .chain(own)
        .chain(&["grad-output"])
        .copied()
        .collect();
    let f = Fields::new(body, &known)?;
    let ops = operands(&f)?;
    let win = (
        parse_per_axis("stride", f.or("stride", "1"))?,
        f.or("padding", "0").parse::<PaddingSpec>()?,
        parse_per_axis("dilation", f.or("dilation", "1"))?,
        f.count("groups")?.unwrap_or(1),
    );
    Ok((f, ops, win))
}

/// `POST /api/conv`: forward (traced, with the direct, im2col and Toeplitz explanations) and the
/// gradients for `grad-output` (all ones by default), every entry traced.
pub fn conv(body: Value) -> Result<Value, ApiError> {
    let (f, (x, w, b), (stride, padding, dilation, groups)) = conv_request(body, &CONV_OWN_FIELDS)?;
    let p = ConvParams {
        stride,
        padding,
        dilation,
        groups,
        padding_mode: f.or("padding-mode", "zeros").parse::<PaddingMode>()?,
        flip: f.flag("flip")?,
    };
    let s = ConvShape::new(x.shape(), w.shape(), b.as_ref().map(|b| b.shape()), &p)?;
    let tr = conv_trace(&x, &w, b.as_ref(), &p)?;
    let gy = f.grad_output(&s.out_shape())?;
    let g = conv_grad_trace(&x, &w, &gy, &p)?;
    let direct = explain(&x, &w, b.as_ref(), &p, ExplainKind::Direct)?;
    let im2col = explain(&x, &w, b.as_ref(), &p, ExplainKind::Im2col)?;
    let toeplitz_size = s.cout * s.window.out_len() * s.cin * s.window.in_len();
    let toeplitz = (toeplitz_size <= MAX_TOEPLITZ)
        .then(|| explain(&x, &w, b.as_ref(), &p, ExplainKind::Toeplitz))
        .transpose()?;
    let grad = explain_grad(&x, &w, b.as_ref(), &gy, &p)?;
    // dL/dX as the full convolution (zero padding: every pixel's gradient is its own window)
    let full = (p.padding_mode == PaddingMode::Zeros)
        .then(|| full_conv(&x, &w, &gy, &p))
        .transpose()?
        .map(|f| {
            json!({"spread": tensor(&f.spread), "flipped": tensor(&f.flipped), "windows": f.windows, "taps": f.taps})
        });
    let mut tensors = conv_tensors([&x, &w, &tr.y, &gy], b.as_ref(), &g.grads);
    tensors["kernel_used"] = tensor(&tr.kernel_used);
    tensors["padded"] = tensor(&tr.padded);
    Ok(json!({
        "op": "conv",
        "nd": s.window.nd,
        "tensors": tensors,
        "cells": entries(&tr.cells),
        "pad": tr.pad,
        "grad_weight": entries(&g.weight),
        "grad_input": entries(&g.input),
        "full_conv": full,
        "first_cell_step": first_cell_step(&direct, tr.cells.len()),
        "explain": {
            "direct": explanation(&direct),
            "im2col": explanation(&im2col),
            "toeplitz": toeplitz.as_ref().map(explanation),
            "grad": explanation(&grad),
        },
    }))
}

/// The tensors both convolution answers show: `[input, kernel, output, grad_output]`, the
/// bias when given, and the gradients that were computed.
fn conv_tensors(xwyg: [&Tensor; 4], b: Option<&Tensor>, g: &ConvGrads) -> Value {
    let [x, w, y, gy] = xwyg;
    let mut tensors = json!({
        "input": tensor(x),
        "kernel": tensor(w),
        "output": tensor(y),
        "grad_output": tensor(gy),
    });
    for (name, t) in [
        ("grad_input", &g.input),
        ("grad_weight", &g.weight),
        ("grad_bias", &g.bias),
    ] {
        if let Some(t) = t {
            tensors[name] = tensor(t);
        }
    }
    if let Some(b) = b {
        tensors["bias"] = tensor(b);
    }
    tensors
}

/// `POST /api/conv-transpose`: the scatter of every input value, each output value as the sum
/// of what landed on it, and the gradients for `grad-output`.
pub fn conv_transpose(body: Value) -> Result<Value, ApiError> {
    let (f, (x, w, b), (stride, padding, dilation, groups)) =
        conv_request(body, &TRANSPOSE_OWN_FIELDS)?;
    let p = ConvTransposeParams {
        stride,
        padding,
        output_padding: parse_per_axis("output-padding", f.or("output-padding", "0"))?,
        dilation,
        groups,
    };
    let tr = conv_transpose_trace(&x, &w, b.as_ref(), &p)?;
    let gy = f.grad_output(tr.y.shape())?;
    let g = conv_transpose_grads(&x, &w, &gy, &p)?;
    let tensors = conv_tensors([&x, &w, &tr.y, &gy], b.as_ref(), &g);
    Ok(json!({
        "op": "conv-transpose",
        "nd": w.rank() - 2,
        "tensors": tensors,
        "inputs": entries(&tr.inputs),
        "outputs": entries(&tr.outputs),
    }))
}

/// Pooling parameters from the fields, as `stride pool` builds them.
fn pool_params(f: &Fields) -> Result<PoolParams, ApiError> {
    let kind_s = f.need("kind", "max, avg or soft")?;
    let kind: PoolKind = kind_s.parse()?;
    let mut p = PoolParams::new(kind, &f.list("kernel")?.unwrap_or_default());
    p.stride = f.list("stride")?.unwrap_or_default();
    if let Some(s) = f.get("padding") {
        p.padding = s.parse::<PaddingSpec>()?;
    }
    if let Some(d) = f.list("dilation")? {
        p.dilation = d;
    }
    p.ceil_mode = f.flag("ceil-mode")?;
    p.count_include_pad = !matches!(f.get("count-include-pad"), Some("false" | "0"));
    p.divisor_override = f.count("divisor-override")?;
    if let Some(s) = f.get("norm-type") {
        p.norm_type = s.trim().parse().map_err(|_| {
            ApiError::bad(
                "norm-type",
                format!("norm-type: '{s}' is not a number; give p such as 2"),
            )
        })?;
    }
    p.output_size = f.list("output-size")?.unwrap_or_default();
    p.k = f.count("k")?.unwrap_or(0);
    p.seed = f.count("seed")?.unwrap_or(0) as u64;
    Ok(p)
}

/// `POST /api/pool`: every output value with its window and where its gradient goes, the
/// input gradient for `grad-output` (all ones by default) and the worked explanation.
pub fn pool(body: Value) -> Result<Value, ApiError> {
    let f = Fields::new(body, &POOL_FIELDS)?;
    let p = pool_params(&f)?;
    let x = f.tensor("input")?.ok_or_else(|| {
        ApiError::bad(
            "input",
            "input: is required; give a literal such as [[1,2],[3,4]]",
        )
    })?;
    let s = PoolShape::new(x.shape(), &p)?;
    // refuse before the output gradient (the output's size) is built
    stride::explain::trace_pool::check(&s)?;
    let gy = f.grad_output(&s.out_shape())?;
    let tr = pool_trace(&x, &p, Some(&gy))?;
    let ex = stride::explain::pool::explain(&x, &p)?;
    let cells: Vec<Value> = tr
        .cells
        .iter()
        .map(|c| {
            let routes: Vec<Value> = c
                .routes
                .iter()
                .map(|&(i, v)| json!([i, fmt_num(v)]))
                .collect();
            json!({"at": c.at, "window": c.window, "value": fmt_num(c.value), "routes": routes})
        })
        .collect();
    let mut tensors = json!({
        "input": tensor(&x),
        "output": tensor(&tr.y),
        "grad_output": tensor(&gy),
    });
    if let Some(gx) = &tr.gx {
        tensors["grad_input"] = tensor(gx);
    }
    let per_cell = p.kind != PoolKind::KMax;
    Ok(json!({
        "op": "pool",
        "kind": p.kind.name(),
        "nd": s.nd,
        "tensors": tensors,
        "cells": cells,
        "first_cell_step": per_cell.then(|| first_cell_step(&ex, tr.cells.len())).flatten(),
        "explain": {"direct": explanation(&ex)},
    }))
}
