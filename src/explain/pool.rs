//! Worked solutions for pooling: the output size (or the adaptive / fractional window rule),
//! the padded input, then for each output cell its window and the reduction with the numbers
//! filled in (`max(109, 92, 108, 85) = 109`, as seed 004 solves it by hand); k-max row by row;
//! max-unpooling value by value. Windows come from the same spans the computation walks, and
//! every result shown is the one `pool_forward` returns.

use super::conv::focus_index;
use super::{axis_names, is_padded, padded_plane, position, size_formula, size_rule};
use super::{fmt_num, Explanation, Step, MAX_TERMS};
use crate::error::{Error, Result};
use crate::geometry::PaddingMode;
use crate::ops::pool::reduce::{sweep, Cell};
use crate::ops::pool::select::unpool_shape;
use crate::ops::pool::{
    max_unpool, pool_forward, PoolKind, PoolParams, PoolShape, Reduce, Windows,
};
use crate::tensor::{fmt_shape, Tensor};

pub(crate) fn too_large(terms: usize) -> Error {
    Error::TooLarge {
        what: "explain".into(),
        msg: format!(
            "this pooling reads {terms} window cells, too many to narrate (limit {MAX_TERMS}); \
             use a smaller input or drop --explain"
        ),
    }
}

/// Name of output cell `o` of plane `plane`: `n=1, c=2 (2,1)` (1-based).
pub(crate) fn cell_name(s: &PoolShape, plane: usize, o: usize) -> String {
    let c = *s.lead.last().unwrap_or(&1);
    let mut parts = vec![];
    if s.planes > c {
        parts.push(format!("n={}", plane / c + 1));
    }
    if c > 1 {
        parts.push(format!("c={}", plane % c + 1));
    }
    let at = position(o, s.output, s.nd);
    if parts.is_empty() {
        at
    } else {
        format!("{} {at}", parts.join(", "))
    }
}

pub(crate) fn list(v: &[f32]) -> String {
    v.iter().map(|&x| fmt_num(x)).collect::<Vec<_>>().join(", ")
}

pub(crate) fn paren(v: f32) -> String {
    if v < 0.0 {
        format!("({})", fmt_num(v))
    } else {
        fmt_num(v)
    }
}

/// Explains `pool_forward(x, p)` step by step.
pub fn explain(x: &Tensor, p: &PoolParams) -> Result<Explanation> {
    explain_at(x, p, None)
}

/// [`explain`], with the window-by-window steps limited to one output cell when `cell`
/// (1-based spatial position, `--cell I,J`) is given.
pub fn explain_at(x: &Tensor, p: &PoolParams, cell: Option<&[usize]>) -> Result<Explanation> {
    let s = PoolShape::new(x.shape(), p)?;
    let focus = cell
        .map(|c| focus_index(c, &s.output[3 - s.nd..]))
        .transpose()?;
    let taps = match (&s.window, &s.windows) {
        (Some(w), _) => w.taps(),
        (None, Windows::KMax { .. }) => s.input[2],
        _ => s.in_len(),
    };
    let terms = s.planes * s.out_len() * taps;
    if terms > MAX_TERMS {
        return Err(too_large(terms));
    }
    let out = pool_forward(x, p)?;
    let mut ex = Explanation {
        title: format!("{} pooling, step by step", p.kind.name()),
        steps: vec![size_step(&s, p, x, &out.y)],
    };
    if s.window.as_ref().is_some_and(is_padded) {
        ex.steps.push(padded_step(&s, x));
    }
    if p.kind == PoolKind::KMax {
        kmax_steps(&s, x, &out.y, &mut ex);
    } else {
        window_steps(&s, x, &out.y, out.indices.as_deref(), focus, &mut ex);
    }
    let mut result = Step::new("Result").show("output", out.y.clone(), s.nd);
    if let Some(idx) = out.indices_tensor() {
        result = result
            .line("indices: the flat position of each selected value within its input plane (0-based, PyTorch's return_indices)")
            .show("indices", idx, s.nd);
    }
    ex.steps.push(result);
    Ok(ex)
}

/// The output size: the sliding-window formula per axis, or the adaptive / fractional rule.
fn size_step(s: &PoolShape, p: &PoolParams, x: &Tensor, y: &Tensor) -> Step {
    let names = axis_names(s.nd);
    let mut st = Step::new("Output size").line(format!("input {}", fmt_shape(x.shape())));
    match (&s.window, &s.windows) {
        (Some(w), _) => {
            st = st.line(size_rule(p.ceil_mode));
            for (n, a) in names.iter().zip(w.real_axes()) {
                st = st.line(size_formula(n, a, p.ceil_mode));
            }
        }
        (None, Windows::Shared(spans)) => {
            st = st.line(
                "adaptive windows: output cell o of O over an axis of length i reads [floor(o·i/O), ceil((o+1)·i/O))",
            );
            for (a, n) in names.iter().enumerate() {
                let sp = &spans[3 - s.nd + a];
                let r: Vec<String> = sp
                    .iter()
                    .map(|w| format!("[{}, {})", w.first, w.first + w.count))
                    .collect();
                st = st.line(format!(
                    "{n}: {} → {} windows {}",
                    s.input[3 - s.nd + a],
                    sp.len(),
                    r.join(" ")
                ));
            }
        }
        (
            None,
            Windows::Fractional {
                kernel,
                output,
                samples,
            },
        ) => {
            st = st.line(
                "fractional windows (Graham 2014, PyTorch's rule): alpha = (i - k)/(O - 1); window o < O-1 starts at \
                 int((o + u)·alpha) - int(u·alpha), the last at i - k; one sample u in [0, 1) per plane and axis",
            );
            for (plane, u) in samples.iter().enumerate() {
                let spans = s.windows.spans(plane, &s.input);
                for (a, n) in names.iter().enumerate() {
                    let ax = 3 - s.nd + a;
                    let starts: Vec<String> =
                        spans[ax].iter().map(|w| w.first.to_string()).collect();
                    st = st.line(format!(
                        "plane {}, {n}: u = {}, kernel {}, {} → {}, starts [{}]",
                        plane + 1,
                        fmt_num(u[ax]),
                        kernel[ax],
                        s.input[ax],
                        output[ax],
                        starts.join(", ")
                    ));
                }
            }
        }
        (None, Windows::KMax { k }) => {
            st = st.line(format!(
                "k-max (Kalchbrenner et al. 2014): the {k} largest values of each row along the last axis, kept in their original order"
            ));
        }
    }
    st.line(format!("output shape {}", fmt_shape(y.shape())))
}

/// Value shown for a padded tap: −∞ where padding cannot win a max (or weigh in softmax),
/// +∞ for min, 0 for sums.
fn pad_value(r: &Reduce) -> f32 {
    match r {
        Reduce::Max | Reduce::Soft => f32::NEG_INFINITY,
        Reduce::Min => f32::INFINITY,
        Reduce::Avg(_) | Reduce::Lp { .. } => 0.0,
    }
}

fn padded_step(s: &PoolShape, x: &Tensor) -> Step {
    let w = s.window.as_ref().expect("sliding");
    let fill = pad_value(&s.reduce);
    let mut st = Step::new(format!(
        "Padded input (padding counts as {})",
        fmt_num(fill)
    ));
    for plane in 0..s.planes {
        let xp = &x.data()[plane * s.in_len()..][..s.in_len()];
        st = st.show(
            format!("plane {}", plane + 1),
            padded_plane(w, PaddingMode::Zeros, xp, fill),
            s.nd,
        );
    }
    st
}

/// One step per output cell: its window and the reduction.
fn window_steps(
    s: &PoolShape,
    x: &Tensor,
    y: &Tensor,
    idx: Option<&[u32]>,
    focus: Option<usize>,
    ex: &mut Explanation,
) {
    let (in_len, out_len) = (s.in_len(), s.out_len());
    for plane in 0..s.planes {
        let xp = &x.data()[plane * in_len..][..in_len];
        let spans = s.windows.spans(plane, &s.input);
        sweep(&spans, &s.input, |o, cell| {
            if focus.is_some_and(|f| f != o) {
                return;
            }
            let at = plane * out_len + o;
            let (shape, window) = shown_window(s, xp, o, &cell);
            let mut vals = Vec::with_capacity(cell.count());
            cell.for_each(|i| vals.push(xp[i]));
            let line = reduction_line(s, &vals, &cell, y.data()[at], idx.map(|i| i[at]));
            ex.steps.push(
                Step::new(format!("Output cell {}", cell_name(s, plane, o)))
                    .show("window", Tensor::new(shape, window).expect("window"), s.nd)
                    .line(line),
            );
        });
    }
}

/// The window as a small tensor: the full kernel with padding filled in (sliding kinds), or
/// the cells inside the input (adaptive, global, fractional).
fn shown_window(s: &PoolShape, xp: &[f32], o: usize, cell: &Cell) -> (Vec<usize>, Vec<f32>) {
    match &s.window {
        Some(w) => {
            let fill = pad_value(&s.reduce);
            let v = (0..w.taps())
                .map(|t| w.source(o, t, PaddingMode::Zeros).map_or(fill, |i| xp[i]))
                .collect();
            (w.real_axes().iter().map(|a| a.kernel).collect(), v)
        }
        None => {
            let mut v = Vec::with_capacity(cell.count());
            cell.for_each(|i| v.push(xp[i]));
            let counts = [cell.d.count, cell.h.count, cell.w.count];
            (counts[3 - s.nd..].to_vec(), v)
        }
    }
}

/// `max(…) = v at (r, c)`, `(a + b) / 2 = v`, `(a^p + b^p)^(1/p) = v`, or the softmax weights.
fn reduction_line(s: &PoolShape, vals: &[f32], cell: &Cell, y: f32, idx: Option<u32>) -> String {
    let divisor = |div: &crate::ops::pool::Divisor| match div.overridden {
        Some(d) => (d, "divisor_override"),
        None if s.window.is_none() => (cell.count(), "cells in the window"),
        None if div.include_pad => (cell.extent(), "window size incl. padding"),
        None => (cell.count(), "cells inside the input"),
    };
    match &s.reduce {
        Reduce::Max | Reduce::Min => {
            let f = if s.reduce == Reduce::Max {
                "max"
            } else {
                "min"
            };
            let i = idx.unwrap_or(0) as usize;
            format!(
                "{f}({}) = {} at input {} (flat index {i}, 0-based as PyTorch's indices)",
                list(vals),
                fmt_num(y),
                position(i, s.input, s.nd)
            )
        }
        Reduce::Avg(div) => {
            let (d, why) = divisor(div);
            let sum: Vec<String> = vals.iter().map(|&v| paren(v)).collect();
            format!(
                "({}) / {d} = {}   [{d} = {why}]",
                sum.join(" + "),
                fmt_num(y)
            )
        }
        Reduce::Lp { p, numel, div } => {
            let (d, _) = divisor(div);
            let pw: Vec<String> = vals
                .iter()
                .map(|&v| format!("{}^{}", paren(v), fmt_num(*p as f32)))
                .collect();
            let scale = if d == *numel {
                String::new()
            } else {
                format!(" · {numel}/{d}")
            };
            format!(
                "({}{scale})^(1/{}) = {}",
                pw.join(" + "),
                fmt_num(*p as f32),
                fmt_num(y)
            )
        }
        Reduce::Soft => {
            let m = vals.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let z: f64 = vals.iter().map(|&v| (v as f64 - m).exp()).sum();
            let terms: Vec<String> = vals
                .iter()
                .map(|&v| {
                    format!(
                        "{}·{}",
                        fmt_num(((v as f64 - m).exp() / z) as f32),
                        paren(v)
                    )
                })
                .collect();
            format!(
                "softmax weights · values: {} = {}",
                terms.join(" + "),
                fmt_num(y)
            )
        }
    }
}

/// One step per row: the row, its k largest, and the kept values in order.
fn kmax_steps(s: &PoolShape, x: &Tensor, y: &Tensor, ex: &mut Explanation) {
    let (len, k) = (s.input[2], s.output[2]);
    for (r, (row, kept)) in x.data().chunks(len).zip(y.data().chunks(k)).enumerate() {
        let mut sorted = kept.to_vec();
        sorted.sort_by(|a, b| b.total_cmp(a));
        ex.steps
            .push(Step::new(format!("Row {}", r + 1)).line(format!(
                "[{}]: the {k} largest are {}; in their original order → [{}]",
                list(row),
                list(&sorted),
                list(kept)
            )));
    }
}

/// Explains `max_unpool(x, indices, p)`: each value goes to its index, every other cell is 0.
pub fn explain_unpool(x: &Tensor, indices: &[u32], p: &PoolParams) -> Result<Explanation> {
    let s = unpool_shape(x.shape(), p)?;
    if x.numel() > MAX_TERMS {
        return Err(too_large(x.numel()));
    }
    let y = max_unpool(x, indices, p)?;
    let nd = s.output.len();
    let mut out3 = [1; 3];
    out3[3 - nd..].copy_from_slice(&s.output);
    let mut st = Step::new("Place each value at its index")
        .line(format!(
            "output shape {} (default per axis (in - 1)·stride - 2·padding + kernel); every other cell is 0",
            fmt_shape(y.shape())
        ));
    let in_len: usize = s.input.iter().product();
    for (j, (&v, &i)) in x.data().iter().zip(indices).enumerate() {
        st = st.line(format!(
            "plane {}: {} → output {} (flat index {i})",
            j / in_len + 1,
            fmt_num(v),
            position(i as usize, out3, nd)
        ));
    }
    Ok(Explanation {
        title: "max-unpool, step by step".into(),
        steps: vec![st, Step::new("Result").show("output", y, nd)],
    })
}
