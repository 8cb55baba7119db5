//! Worked solution for the backward pass of pooling: where each output cell's gradient goes
//! (wholly to the winner of a max or min window, shared out by an average, weighted for LP and
//! soft pooling), then each input cell's gradient as the sum of what reaches it. Every
//! contribution is the library's own `pool_backward` applied to that one output cell's
//! gradient (backward is linear in `∂E/∂y`), so the numbers narrated are the numbers computed.

use super::conv::focus_index;
use super::pool::{cell_name, paren, too_large};
use super::{fmt_num, label, position, Explanation, Step, MAX_TERMS};
use crate::error::{Error, Result};
use crate::ops::pool::{pool_backward, pool_forward, PoolKind, PoolParams, PoolShape};
use crate::tensor::{fmt_shape, Tensor};

/// The rule by which `kind` passes an output cell's gradient `g` to its window.
fn rule(kind: PoolKind) -> &'static str {
    match kind {
        PoolKind::Max | PoolKind::AdaptiveMax | PoolKind::GlobalMax | PoolKind::FractionalMax => {
            "max: y is one input cell (the window's largest), so ∂y/∂x is 1 there and 0 elsewhere: \
             each output's gradient goes wholly to the cell that won its window"
        }
        PoolKind::KMax => "k-max: each kept value is one input cell; its gradient goes back there, the rest get 0",
        PoolKind::Min => "min: y is the window's smallest input cell; its gradient goes wholly there",
        PoolKind::Avg | PoolKind::AdaptiveAvg | PoolKind::GlobalAvg => {
            "average: y = Σ x / divisor, so ∂y/∂x = 1/divisor: each output's gradient is shared equally over its window"
        }
        PoolKind::Lp => "LP: y = (Σ x^p · numel/divisor)^(1/p), so ∂y/∂x_i = (x_i / y)^(p−1) · numel/divisor",
        PoolKind::Soft => "soft: y = Σ w_i x_i with w = softmax of the window, so ∂y/∂x_i = w_i · (1 + x_i − y)",
    }
}

/// Explains `∂E/∂x` of `pool_forward(x, p)` for the output gradient `gy`; with `cell`
/// (1-based, `--cell I,J`) only that output cell's contributions are listed.
pub fn explain_backward(
    x: &Tensor,
    p: &PoolParams,
    gy: &Tensor,
    cell: Option<&[usize]>,
) -> Result<Explanation> {
    let s = PoolShape::new(x.shape(), p)?;
    let out = pool_forward(x, p)?;
    if gy.shape() != out.y.shape() {
        return Err(Error::arg(
            "grad-output",
            format!(
                "is {} but the output is {}; give ∂E/∂y in the output's shape (or `ones`)",
                fmt_shape(gy.shape()),
                fmt_shape(out.y.shape())
            ),
        ));
    }
    let (in_len, out_len) = (s.in_len(), s.out_len());
    let work = s.planes * out_len * in_len;
    if work > MAX_TERMS * 50 {
        return Err(too_large(work));
    }
    let focus = cell
        .map(|c| focus_index(c, &s.output[3 - s.nd..]))
        .transpose()?;
    let gx = pool_backward(x, &out, gy, p)?;
    let mut ex = Explanation {
        title: format!("{} pooling backward, step by step", p.kind.name()),
        steps: vec![Step::new("The chain rule")
            .line("∂E/∂x[i] = Σ over the output cells o whose window holds i of g[o] · ∂y[o]/∂x[i]; g = ∂E/∂y below")
            .line(rule(p.kind))
            .show("g = ∂E/∂y", gy.clone(), s.nd)],
    };
    // per input cell: (output cell label, contribution)
    let mut reach: Vec<Vec<(String, f32)>> = vec![vec![]; s.planes * in_len];
    let mut one = vec![0.0f32; gy.numel()];
    let mut sends = Step::new("Where each output's gradient goes");
    for plane in 0..s.planes {
        for o in 0..out_len {
            let at = plane * out_len + o;
            one[at] = gy.data()[at];
            let part = pool_backward(x, &out, &Tensor::new(gy.shape().to_vec(), one.clone())?, p)?;
            one[at] = 0.0;
            let from = format!("y{}", cell_name(&s, plane, o).replace(' ', ""));
            let mut to = vec![];
            for (i, &v) in part.data()[plane * in_len..][..in_len].iter().enumerate() {
                if v != 0.0 {
                    reach[plane * in_len + i].push((from.clone(), v));
                    to.push(format!("x{}: {}", position(i, s.input, s.nd), fmt_num(v)));
                }
            }
            if focus.is_none_or(|f| f == o) {
                sends = sends.line(format!(
                    "g at {} = {} → {}",
                    cell_name(&s, plane, o),
                    fmt_num(gy.data()[at]),
                    if to.is_empty() {
                        "nothing (0)".to_string()
                    } else {
                        to.join(", ")
                    }
                ));
            }
        }
    }
    ex.steps.push(sends);
    if focus.is_none() {
        let c = *s.lead.last().unwrap_or(&1);
        let mut sums = Step::new("Input gradient, entry by entry");
        for plane in 0..s.planes {
            for i in 0..in_len {
                let parts = &reach[plane * in_len + i];
                let lead = [("n", plane / c, s.planes > c), ("c", plane % c, c > 1)];
                let terms = if parts.is_empty() {
                    "no output cell sends it anything".to_string()
                } else {
                    parts
                        .iter()
                        .map(|(from, v)| format!("{} [from {from}]", paren(*v)))
                        .collect::<Vec<_>>()
                        .join(" + ")
                };
                sums = sums.line(format!(
                    "∂E/∂{} = {terms} = {}",
                    label("x", &lead, &position(i, s.input, s.nd)),
                    fmt_num(gx.data()[plane * in_len + i])
                ));
            }
        }
        ex.steps.push(sums);
    }
    ex.steps.push(Step::new("Result").show("∂E/∂x", gx, s.nd));
    Ok(ex)
}
