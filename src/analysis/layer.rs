//! One layer analysed the way the course does it by hand (`stride shape`): the output-size
//! formula per axis with the numbers filled in, the output shape, the parameter count, the
//! multiply-accumulates and the memory of the output.

use super::{bytes, count, thousands};
use crate::error::{Error, Result};
use crate::explain::{
    axis_names, size_formula, size_rule, transposed_size_formula, TRANSPOSED_RULE,
};
use crate::explain::{Explanation, Step};
use crate::geometry::{PaddingSpec, Window3, WindowSpec};
use crate::ops::conv::conv_macs;

/// What kind of layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerKind {
    /// Convolution with `filters` output channels.
    Conv {
        filters: usize,
        groups: usize,
        bias: bool,
    },
    /// Pooling (channels unchanged, no parameters).
    Pool { ceil_mode: bool },
    /// Transposed convolution with `filters` output channels; `output_padding` per axis.
    ConvTranspose {
        filters: usize,
        groups: usize,
        bias: bool,
        output_padding: [usize; 3],
    },
}

/// A single-layer question: input `(C, *spatial)` and the window.
#[derive(Clone, Debug)]
pub struct LayerQuery {
    pub channels: usize,
    pub spatial: Vec<usize>,
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub dilation: Vec<usize>,
    pub padding: PaddingSpec,
    pub kind: LayerKind,
}

/// The figures of a layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerFigures {
    /// Output `(C, *spatial)`.
    pub out_shape: Vec<usize>,
    pub params: u64,
    /// Multiply-accumulates (conv) or window reads (pool), per image.
    pub macs: u64,
}

/// Groups must divide both channel counts.
fn check_groups(groups: usize, channels: usize, filters: usize) -> Result<()> {
    if groups == 0 || !channels.is_multiple_of(groups) || !filters.is_multiple_of(groups) {
        return Err(Error::arg(
            "groups",
            format!(
                "{groups} must divide both the input channels {channels} and the filters {filters}"
            ),
        ));
    }
    Ok(())
}

/// Largest figure (values, parameters, MACs) a layer report handles: its products, doubled
/// FLOPs and ×4 bytes then all fit 64 bits.
pub const MAX_FIGURE: u128 = 1 << 60;

/// Refuses a layer whose figures, computed in 128 bits, pass [`MAX_FIGURE`].
fn check_figures(win: &Window3, channels: usize, filters: usize) -> Result<()> {
    let axes = win.real_axes();
    let prod = |v: Vec<usize>| v.iter().try_fold(1u128, |a, &d| a.checked_mul(d as u128));
    let values = [
        prod(axes.iter().map(|a| a.input).collect()).and_then(|n| n.checked_mul(channels as u128)),
        prod(axes.iter().map(|a| a.output).collect()).and_then(|n| n.checked_mul(filters as u128)),
        // multiply-accumulates, at most: every (input or output cell) × Cin × Cout × taps
        prod(axes.iter().map(|a| a.output.max(a.input)).collect())
            .and_then(|n| n.checked_mul(channels as u128))
            .and_then(|n| n.checked_mul(filters as u128))
            .and_then(|n| n.checked_mul(prod(axes.iter().map(|a| a.kernel).collect())?)),
        (filters as u128)
            .checked_mul(channels as u128)
            .and_then(|n| n.checked_mul(prod(axes.iter().map(|a| a.kernel).collect())?)),
    ];
    if values.iter().any(|v| v.is_none_or(|v| v > MAX_FIGURE)) {
        return Err(Error::TooLarge {
            what: "input".into(),
            msg: "the layer's sizes, parameters or multiply-accumulates pass 2^60; \
                  use smaller sizes, fewer channels or filters"
                .into(),
        });
    }
    Ok(())
}

impl LayerQuery {
    /// Resolves the window (validating it) and computes the figures.
    pub fn figures(&self) -> Result<(Window3, LayerFigures)> {
        let spec = WindowSpec {
            kernel: self.kernel.clone(),
            stride: self.stride.clone(),
            dilation: self.dilation.clone(),
            padding: self.padding.clone(),
            ceil_mode: matches!(self.kind, LayerKind::Pool { ceil_mode: true }),
        };
        if let LayerKind::ConvTranspose {
            filters,
            groups,
            bias,
            output_padding,
        } = self.kind
        {
            // the adjoint window: its `input` is the transposed output, its `output` our input
            let nd = self.spatial.len();
            let win = Window3::transposed(&self.spatial, &spec, &output_padding[..nd])?;
            check_groups(groups, self.channels, filters)?;
            check_figures(&win, self.channels, filters)?;
            let per_in = (filters / groups) as u64 * win.taps() as u64;
            let mut out_shape = vec![filters];
            out_shape.extend(win.real_axes().iter().map(|a| a.input));
            let params = self.channels as u64 * per_in + if bias { filters as u64 } else { 0 };
            // the adjoint convolution's count: every input value (the adjoint's output) is
            // multiplied into Cout/g · taps outputs
            let macs = conv_macs(1, self.channels, filters / groups, &win);
            return Ok((
                win,
                LayerFigures {
                    out_shape,
                    params,
                    macs,
                },
            ));
        }
        let win = Window3::new(&self.spatial, &spec)?;
        let cout = match self.kind {
            LayerKind::Conv { filters, .. } => filters,
            _ => self.channels,
        };
        check_figures(&win, self.channels, cout)?;
        // (output channels, parameters, input channels each output value reads)
        let (cout, params, cin_g) = match self.kind {
            LayerKind::Conv {
                filters,
                groups,
                bias,
            } => {
                check_groups(groups, self.channels, filters)?;
                let fan_in = (self.channels / groups * win.taps()) as u64;
                let params = filters as u64 * (fan_in + bias as u64);
                (filters, params, self.channels / groups)
            }
            // a pooling window reads its taps in its own channel
            LayerKind::Pool { .. } => (self.channels, 0, 1),
            LayerKind::ConvTranspose { .. } => unreachable!("handled above"),
        };
        let mut out_shape = vec![cout];
        out_shape.extend(win.output_shape());
        let macs = conv_macs(1, cout, cin_g, &win);
        Ok((
            win,
            LayerFigures {
                out_shape,
                params,
                macs,
            },
        ))
    }

    /// The worked answer: the output size with the formula filled in, then parameters and cost.
    pub fn report(&self) -> Result<Explanation> {
        let (win, f) = self.figures()?;
        Ok(Explanation {
            title: self.title(&win),
            steps: vec![self.size_step(&win, &f), self.cost_step(&win, &f)],
        })
    }

    /// The report's title: the layer, its input and its kernel.
    fn title(&self, win: &Window3) -> String {
        let input = format!(
            "input {}×{} ({}×C)",
            dims(&self.spatial),
            self.channels,
            axis_names(win.nd).join("×")
        );
        let kernel = kernel_dims(win);
        match self.kind {
            LayerKind::Conv { filters, .. } => format!(
                "Convolution: {input}, {} of {kernel}×{}",
                count(filters as u64, "filter"),
                self.channels
            ),
            LayerKind::ConvTranspose { filters, .. } => format!(
                "Transposed convolution: {input}, {} of {kernel}",
                count(filters as u64, "filter"),
            ),
            LayerKind::Pool { .. } => format!("Pooling: {input}, window {kernel}"),
        }
    }

    /// The output size per axis, the formula filled in, and the output shape.
    fn size_step(&self, win: &Window3, f: &LayerFigures) -> Step {
        let names = axis_names(win.nd);
        let mut size = Step::new("Output size");
        if let LayerKind::ConvTranspose { output_padding, .. } = self.kind {
            size = size.line(TRANSPOSED_RULE);
            // the adjoint window's output is our input, its input our output
            for ((n, a), op) in names.iter().zip(win.real_axes()).zip(output_padding) {
                size = size.line(transposed_size_formula(n, a, op));
            }
        } else {
            size = size.line(size_rule(false));
            for (n, a) in names.iter().zip(win.real_axes()) {
                size = size.line(size_formula(n, a, false));
            }
        }
        let out_sp = &f.out_shape[1..];
        let cout = f.out_shape[0];
        size = size.line(format!(
            "output: {}×{cout} ({}×C; PyTorch layout ({cout}, {}))",
            dims(out_sp),
            names.join("×"),
            out_sp
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        size
    }

    /// Parameters, multiply-accumulates (or window reads) and output memory.
    fn cost_step(&self, win: &Window3, f: &LayerFigures) -> Step {
        let cout = f.out_shape[0];
        let k = win.taps();
        // (parameters line, work line) per kind
        let (params, work) = match self.kind {
            LayerKind::Conv {
                filters,
                groups,
                bias,
            } => (
                format!(
                    "parameters: {} × ({}·{k} weights{}) = {}",
                    count(filters as u64, "filter"),
                    self.channels / groups,
                    if bias { " + 1 bias" } else { "" },
                    thousands(f.params)
                ),
                macs_line(
                    "output",
                    (cout * win.out_len()) as u64,
                    self.channels / groups * k,
                    f.macs,
                ),
            ),
            LayerKind::ConvTranspose {
                filters,
                groups,
                bias,
                ..
            } => {
                let kernel = kernel_dims(win);
                let biases = if bias {
                    format!(" + {filters} biases")
                } else {
                    String::new()
                };
                let inputs = (self.channels * self.spatial.iter().product::<usize>()) as u64;
                (
                    format!(
                        "parameters: weight ({}, {}, {kernel}) = {}·{}·{k}{biases} = {}",
                        self.channels,
                        filters / groups,
                        self.channels,
                        filters / groups,
                        thousands(f.params)
                    ),
                    macs_line("input", inputs, filters / groups * k, f.macs),
                )
            }
            LayerKind::Pool { .. } => (
                "parameters: 0".to_string(),
                format!(
                    "window reads per image: {} output values × {k} = {}",
                    thousands((cout * win.out_len()) as u64),
                    thousands(f.macs)
                ),
            ),
        };
        let mut cost = Step::new("Parameters and cost").line(params).line(work);
        let out_values = f.out_shape.iter().product::<usize>() as u64;
        cost = cost.line(format!(
            "output memory per image: {} values = {} as f32",
            thousands(out_values),
            bytes(out_values * 4)
        ));
        cost
    }
}

/// `multiply-accumulates per image: N output values × K = M (FLOPs = 2·MACs = F)`.
fn macs_line(what: &str, values: u64, per_value: usize, macs: u64) -> String {
    format!(
        "multiply-accumulates per image: {} {what} values × {per_value} = {} (FLOPs = 2·MACs = {})",
        thousands(values),
        thousands(macs),
        thousands(2 * macs)
    )
}

/// The kernel's size per real axis (`5×5`).
fn kernel_dims(win: &Window3) -> String {
    dims(&win.real_axes().iter().map(|a| a.kernel).collect::<Vec<_>>())
}

/// Sizes joined by `×` (`28×28`).
fn dims(v: &[usize]) -> String {
    v.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("×")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pen_and_paper_question_a() {
        // 200×200×3 image, 12323 kernels of 40×40×3, stride 2, no padding → 81×81×12323
        let q = LayerQuery {
            channels: 3,
            spatial: vec![200, 200],
            kernel: vec![40],
            stride: vec![2],
            dilation: vec![1],
            padding: PaddingSpec::Valid,
            kind: LayerKind::Conv {
                filters: 12323,
                groups: 1,
                bias: true,
            },
        };
        let (_, f) = q.figures().unwrap();
        assert_eq!(f.out_shape, vec![12323, 81, 81]);
        assert_eq!(f.params, 12323 * (40 * 40 * 3 + 1));
        assert_eq!(f.macs, 12323 * 81 * 81 * 40 * 40 * 3);
    }
}
