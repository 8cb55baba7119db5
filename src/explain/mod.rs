//! Step-by-step narration of an operation on small inputs, as data: a list of steps, each with
//! text and small tensors. Built from the same geometry and the direct reference as the real
//! computation, so the numbers narrated are the numbers computed. The CLI renders it.

pub mod conv;
pub mod conv_grad;
pub mod pool;
pub mod trace;
pub mod trace_pool;

use crate::tensor::Tensor;

/// Largest number of (output cell × tap) terms an explanation spells out.
pub const MAX_TERMS: usize = 20_000;

/// One step of a worked solution.
#[derive(Clone, Debug, Default)]
pub struct Step {
    /// Short heading ("Padded input", "Output cell (0, 1)").
    pub heading: String,
    /// Lines of text (formulas with the numbers filled in).
    pub lines: Vec<String>,
    /// Named small tensors to show as matrices; `spatial` = how many trailing axes are spatial.
    pub tensors: Vec<Shown>,
    /// Lines shown after the tensors (the conclusion drawn from them).
    pub after: Vec<String>,
}

/// A tensor to show, with its name and the number of trailing spatial axes (for layout).
#[derive(Clone, Debug)]
pub struct Shown {
    pub name: String,
    pub tensor: Tensor,
    pub spatial: usize,
}

/// A worked solution.
#[derive(Clone, Debug, Default)]
pub struct Explanation {
    pub title: String,
    pub steps: Vec<Step>,
}

impl Step {
    /// A step with a heading and no content yet.
    pub fn new(heading: impl Into<String>) -> Self {
        Step {
            heading: heading.into(),
            ..Default::default()
        }
    }

    /// Adds a line of text.
    pub fn line(mut self, l: impl Into<String>) -> Self {
        self.lines.push(l.into());
        self
    }

    /// Adds a line shown after the tensors.
    pub fn conclude(mut self, l: impl Into<String>) -> Self {
        self.after.push(l.into());
        self
    }

    /// Adds a tensor to show.
    pub fn show(mut self, name: impl Into<String>, tensor: Tensor, spatial: usize) -> Self {
        self.tensors.push(Shown {
            name: name.into(),
            tensor,
            spatial,
        });
        self
    }
}

/// Formats a number the way a worked solution writes it: integers without decimals,
/// otherwise up to 4 decimals with trailing zeros removed.
pub fn fmt_num(v: f32) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == v.round() && v.abs() < 1e7 {
        return format!("{}", v as i64);
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" || s == "0" {
        // too small for 4 decimals: use scientific notation rather than a misleading 0
        return format!("{v:.3e}");
    }
    s.to_string()
}

/// `a·b` terms joined by ` + `, negative factors in parentheses.
pub fn fmt_products(terms: &[(f32, f32)]) -> String {
    let paren = |v: f32| {
        let s = fmt_num(v);
        if v < 0.0 {
            format!("({s})")
        } else {
            s
        }
    };
    terms
        .iter()
        .map(|&(a, b)| format!("{}·{}", paren(a), paren(b)))
        .collect::<Vec<_>>()
        .join(" + ")
}
