//! Step-by-step narration of an operation on small inputs, as data: a list of steps, each with
//! text and small tensors. Built from the same geometry and the direct reference as the real
//! computation, so the numbers narrated are the numbers computed. The CLI renders it.

pub mod conv;
pub mod conv_grad;
pub mod conv_grad_matrix;
pub mod conv_transpose;
pub mod pool;
pub mod pool_grad;
pub mod trace;
pub mod trace_pool;

use crate::geometry::{AxisWindow, PaddingMode, Window3};
use crate::tensor::Tensor;

/// How every explanation numbers things, stated once under its title: positions, channels,
/// images, planes and rows count from 1, as the course material does (PyTorch's flat
/// `return_indices` stay 0-based and say so).
pub const NUMBERING: &str =
    "positions (row,column), channels, images and planes are numbered from 1, as in the course";

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

/// The per-axis output-size rule (floor, or PyTorch's ceil mode).
pub fn size_rule(ceil: bool) -> &'static str {
    if ceil {
        "per axis: out = ceil((in + pad_begin + pad_end - dilation·(kernel-1) - 1) / stride) + 1 \
         (the last window must start inside the input or the begin padding)"
    } else {
        "per axis: out = floor((in + pad_begin + pad_end - dilation·(kernel-1) - 1) / stride) + 1"
    }
}

/// The output-size formula of one axis with the numbers filled in; in ceil mode with
/// PyTorch's last-window rule noted when it drops a window.
pub fn size_formula(name: &str, a: &AxisWindow, ceil: bool) -> String {
    let (f, raw) = if ceil {
        ("ceil", a.ceil_count())
    } else {
        ("floor", a.output)
    };
    let note = if raw != a.output {
        format!(
            ", but window {raw} would start in the end padding, so {}",
            a.output
        )
    } else {
        String::new()
    };
    format!(
        "{name}: {f}(({} + {} + {} - {}·({}-1) - 1) / {}) + 1 = {raw}{note}",
        a.input, a.pad_begin, a.pad_end, a.dilation, a.kernel, a.stride
    )
}

/// The per-axis output-size rule of a transposed convolution.
pub const TRANSPOSED_RULE: &str =
    "per axis: out = (in - 1)·stride - pad_begin - pad_end + dilation·(kernel-1) + output_padding + 1";

/// The transposed-convolution size formula of one axis with the numbers filled in; `a` is the
/// adjoint convolution's window (its `output` is the transposed input, its `input` the
/// transposed output), `op` the output padding.
pub fn transposed_size_formula(name: &str, a: &AxisWindow, op: usize) -> String {
    format!(
        "{name}: ({} - 1)·{} - {} - {} + {}·({}-1) + {op} + 1 = {}",
        a.output, a.stride, a.pad_begin, a.pad_end, a.dilation, a.kernel, a.input
    )
}

/// Axis names for `nd` spatial axes.
pub fn axis_names(nd: usize) -> &'static [&'static str] {
    &["D", "H", "W"][3 - nd..]
}

/// The 0-based `(d, h, w)` of flat index `flat` in a volume of sizes `dims`.
pub fn split3(flat: usize, dims: [usize; 3]) -> [usize; 3] {
    [
        flat / (dims[1] * dims[2]),
        (flat / dims[2]) % dims[1],
        flat % dims[2],
    ]
}

/// The position label every explanation uses: `(i,j)`, 1-based, of flat index `flat` over
/// the last `nd` of `dims`.
pub fn position(flat: usize, dims: [usize; 3], nd: usize) -> String {
    let p: Vec<String> = split3(flat, dims)[3 - nd..]
        .iter()
        .map(|v| (v + 1).to_string())
        .collect();
    format!("({})", p.join(","))
}

/// `name[n=1, c=2](i,j)`: leading indices (0-based in, 1-based out) shown only where flagged,
/// a bare number where the key is empty (`w[2, 1](1,1)`).
pub fn label(name: &str, lead: &[(&str, usize, bool)], at: &str) -> String {
    let parts: Vec<String> = lead
        .iter()
        .filter(|(_, _, show)| *show)
        .map(|(k, v, _)| {
            if k.is_empty() {
                (v + 1).to_string()
            } else {
                format!("{k}={}", v + 1)
            }
        })
        .collect();
    if parts.is_empty() {
        format!("{name}{at}")
    } else {
        format!("{name}[{}]{at}", parts.join(", "))
    }
}

/// One plane with its padding filled in as `mode` fills it; cells that copy no pixel (zero
/// padding) hold `fill` (0 for sums, −∞ for a max). Shape: the padded real axes.
pub fn padded_plane(win: &Window3, mode: PaddingMode, plane: &[f32], fill: f32) -> Tensor {
    let [ad, ah, aw] = &win.axes;
    let mut out = Vec::with_capacity(ad.padded() * ah.padded() * aw.padded());
    for d in 0..ad.padded() {
        for h in 0..ah.padded() {
            for w in 0..aw.padded() {
                let src = (
                    ad.padded_source(d, mode),
                    ah.padded_source(h, mode),
                    aw.padded_source(w, mode),
                );
                out.push(match src {
                    (Some(d), Some(h), Some(w)) => plane[(d * ah.input + h) * aw.input + w],
                    _ => fill,
                });
            }
        }
    }
    let shape = win.real_axes().iter().map(|a| a.padded()).collect();
    Tensor::new(shape, out).expect("padded shape")
}

/// The kernel the forward applies: `w` mirrored on every spatial axis for `--flip`.
pub fn kernel_used(w: &Tensor, p: &crate::ops::conv::ConvParams) -> Tensor {
    if p.flip {
        w.flip_spatial()
    } else {
        w.clone()
    }
}

/// Whether any axis of `win` is padded.
pub fn is_padded(win: &Window3) -> bool {
    win.real_axes().iter().any(|a| a.pad_begin + a.pad_end > 0)
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
