//! Sliding-window geometry: the one home of every formula that relates input, kernel, stride,
//! dilation, padding and output. Convolution, pooling, their gradients, im2col, Toeplitz, the
//! explanations and the analysis all ask this module where a window reads; no other file
//! computes `o * stride + t * dilation - pad`.
//!
//! Per spatial axis a [`AxisWindow`]: input length `i`, kernel `k`, stride `s`, dilation `d`,
//! padding `pb` (begin) and `pe` (end). Output length (PyTorch):
//! `o = floor((i + pb + pe - d*(k-1) - 1) / s) + 1` (or `ceil` in ceil mode, where the last
//! window must still start inside the input or the begin padding).
//! Output cell `o`, kernel tap `t` reads padded coordinate `o*s + t*d`, i.e. input coordinate
//! `o*s + t*d - pb`, which may land in the padding.
//!
//! Internally every op is 3-D: 1-D and 2-D windows get leading singleton axes ([`Window3`]).

use crate::error::{Error, Result};

mod padding;
mod pool;
#[cfg(test)]
mod tests;

pub use padding::{parse_per_axis, per_axis, PaddingMode, PaddingSpec};
pub use pool::{adaptive_span, check_fractional_fit, fractional_starts, unpool_length, Span};

/// Input coordinate read by output cell `o`, kernel tap `t` of a window with stride `s`,
/// dilation `d` and begin padding `pb`: `o*s + t*d - pb` (negative or past the end = padding).
/// The one place this formula is written; everything else calls it.
#[inline]
pub fn tap_coord(o: usize, t: usize, s: usize, d: usize, pb: usize) -> isize {
    (o * s + t * d) as isize - pb as isize
}

/// The window along one spatial axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisWindow {
    /// Input length `i` (unpadded).
    pub input: usize,
    /// Kernel length `k` (taps).
    pub kernel: usize,
    /// Stride `s`.
    pub stride: usize,
    /// Dilation `d` (distance between taps).
    pub dilation: usize,
    /// Padding before the first input pixel.
    pub pad_begin: usize,
    /// Padding after the last input pixel.
    pub pad_end: usize,
    /// Output length `o`.
    pub output: usize,
}

/// Stride and dilation are steps: both at least 1.
fn check_step(stride: usize, dilation: usize) -> Result<()> {
    if stride == 0 {
        return Err(Error::arg("stride", "must be at least 1"));
    }
    if dilation == 0 {
        return Err(Error::arg("dilation", "must be at least 1"));
    }
    Ok(())
}

impl AxisWindow {
    /// Validates the window and computes the output length; `axis` is used in error messages,
    /// `ceil_mode` follows PyTorch pooling (the last window must start inside input or begin padding).
    pub fn new(
        axis: usize,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        pad: (usize, usize),
        ceil_mode: bool,
    ) -> Result<Self> {
        check_step(stride, dilation)?;
        if kernel == 0 {
            return Err(Error::arg(
                "kernel",
                format!("has size 0 on axis {axis}; every kernel axis needs at least one tap"),
            ));
        }
        if input == 0 {
            return Err(Error::arg(
                "input",
                format!("has size 0 on spatial axis {axis}"),
            ));
        }
        let (pad_begin, pad_end) = pad;
        // sizes come from the command line: overflow is the user's number being too large
        let span = dilation
            .checked_mul(kernel - 1)
            .and_then(|v| v.checked_add(1))
            .ok_or_else(|| {
                Error::arg(
                    "dilation",
                    format!("{dilation} on axis {axis} is too large; use a smaller dilation"),
                )
            })?;
        let padded = input
            .checked_add(pad_begin)
            .and_then(|v| v.checked_add(pad_end))
            .ok_or_else(|| {
                Error::arg(
                    "padding",
                    format!("{pad_begin}:{pad_end} on axis {axis} is too large; use less padding"),
                )
            })?;
        if span > padded {
            let what = if dilation > 1 {
                format!("size {kernel} with dilation {dilation} spans {span}, which")
            } else {
                format!("size {kernel}")
            };
            return Err(Error::arg(
                "kernel",
                format!(
                    "{what} is larger than the padded input {padded} on axis {axis}; \
                     add padding or use a smaller kernel"
                ),
            ));
        }
        let reach = padded - span; // last start position of a window, in padded coordinates
        let mut output = if ceil_mode {
            reach.div_ceil(stride) + 1
        } else {
            reach / stride + 1
        };
        // PyTorch: in ceil mode the last window must start inside the input or the begin padding.
        if ceil_mode && (output - 1) * stride >= input + pad_begin {
            output -= 1;
        }
        Ok(AxisWindow {
            input,
            kernel,
            stride,
            dilation,
            pad_begin,
            pad_end,
            output,
        })
    }

    /// A trivial axis (length 1, kernel 1): used to lift 1-D and 2-D ops to 3-D.
    pub fn singleton() -> Self {
        AxisWindow {
            input: 1,
            kernel: 1,
            stride: 1,
            dilation: 1,
            pad_begin: 0,
            pad_end: 0,
            output: 1,
        }
    }

    /// Resolves a padding choice for one axis into `(begin, end)`.
    /// `same`: total = max((ceil(i/s) - 1)*s + d*(k-1) + 1 - i, 0), begin = total/2 (extra at the end);
    /// `full`: d*(k-1) on both sides; `valid`: none.
    pub fn resolve_padding(
        spec: &PaddingSpec,
        axis: usize,
        nd: usize,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
    ) -> Result<(usize, usize)> {
        // saturating: an overflowing size is reported by `AxisWindow::new`
        let span = dilation
            .saturating_mul(kernel.saturating_sub(1))
            .saturating_add(1);
        Ok(match spec {
            PaddingSpec::Valid => (0, 0),
            PaddingSpec::Full => (span - 1, span - 1),
            PaddingSpec::Same => {
                let out = input.div_ceil(stride.max(1));
                let total = ((out.max(1) - 1).saturating_mul(stride))
                    .saturating_add(span)
                    .saturating_sub(input);
                (total / 2, total - total / 2)
            }
            PaddingSpec::Explicit(v) => per_axis("padding", v, nd)?[axis],
        })
    }

    /// Padded length `pb + i + pe`.
    pub fn padded(&self) -> usize {
        self.pad_begin + self.input + self.pad_end
    }

    /// The window of a transposed convolution (PyTorch `conv_transpose`), seen as the adjoint
    /// convolution that maps the transposed output back to its input: this window's `input` is
    /// the transposed output length `(i - 1)*s - pb - pe + d*(k-1) + op + 1` and its `output` is
    /// the transposed input length `i`. `output_padding` must be smaller than the stride or the
    /// dilation (as in PyTorch).
    pub fn transposed(
        axis: usize,
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        pad: (usize, usize),
        output_padding: usize,
    ) -> Result<Self> {
        check_step(stride, dilation)?;
        if kernel == 0 || input == 0 {
            return Err(Error::arg(
                if kernel == 0 { "kernel" } else { "input" },
                format!("has size 0 on spatial axis {axis}"),
            ));
        }
        if output_padding >= stride && output_padding >= dilation {
            return Err(Error::arg(
                "output-padding",
                format!(
                    "{output_padding} on axis {axis} must be smaller than the stride {stride} or the \
                     dilation {dilation}; it only picks among output sizes that one stride leaves open"
                ),
            ));
        }
        // the uncropped length (i-1)*s + d*(k-1) + op + 1; overflow = a stride or dilation too large
        let full = (input - 1)
            .checked_mul(stride)
            .and_then(|v| v.checked_add(dilation.checked_mul(kernel - 1)?))
            .and_then(|v| v.checked_add(output_padding + 1))
            .ok_or_else(|| {
                Error::arg(
                    "stride",
                    format!(
                        "{stride} (dilation {dilation}) on axis {axis} makes the transposed output \
                         too large; use a smaller stride or dilation"
                    ),
                )
            })?;
        let len = full as i128 - pad.0 as i128 - pad.1 as i128;
        if len < 1 {
            return Err(Error::arg(
                "padding",
                format!(
                    "{}+{} on axis {axis} crops the whole transposed output (size {len}); use less padding",
                    pad.0, pad.1
                ),
            ));
        }
        // The adjoint convolution over the transposed output has floor(((i-1)*s + op)/s) + 1 >= i
        // windows; the transposed input fills the first i of them.
        let mut w = AxisWindow::new(axis, len as usize, kernel, stride, dilation, pad, false)?;
        debug_assert!(w.output >= input);
        w.output = input;
        Ok(w)
    }

    /// Padding `(d·(k-1) - pb, d·(k-1) - pe)` of the adjoint convolution: at stride 1 the input
    /// gradient is the output gradient padded by this much, correlated with the flipped kernel
    /// (the "full convolution"). `None` when the stride is not 1 or a padding is wider than
    /// `d·(k-1)` (the adjoint would need negative padding).
    pub fn adjoint_padding(&self) -> Option<(usize, usize)> {
        let span = self.dilation * (self.kernel - 1);
        if self.stride != 1 || self.pad_begin > span || self.pad_end > span {
            return None;
        }
        Some((span - self.pad_begin, span - self.pad_end))
    }

    /// Length of the output gradient spread out by the stride (`s - 1` zeros between entries)
    /// and padded by `d*(k-1)` zeros on both sides: `(o-1)*s + 1 + 2*d*(k-1)`. Entry `o` sits at
    /// `padded_coord(o, k-1)`; correlating this with the flipped kernel (the "full convolution")
    /// gives the gradient with respect to the padded input.
    pub fn spread_len(&self) -> usize {
        self.padded_coord(self.output - 1, self.kernel - 1) + self.dilation * (self.kernel - 1) + 1
    }

    /// Padded coordinate read by output cell `o`, tap `t`: `o*s + t*d`.
    #[inline]
    pub fn padded_coord(&self, o: usize, t: usize) -> usize {
        tap_coord(o, t, self.stride, self.dilation, 0) as usize
    }

    /// Input coordinate read by output cell `o`, tap `t`: `o*s + t*d - pb` (may be outside `0..i`).
    #[inline]
    pub fn input_coord(&self, o: usize, t: usize) -> isize {
        tap_coord(o, t, self.stride, self.dilation, self.pad_begin)
    }

    /// The input pixel read by output cell `o`, tap `t` under zero padding; `None` in the padding.
    #[inline]
    pub fn source(&self, o: usize, t: usize) -> Option<usize> {
        let c = self.input_coord(o, t);
        (c >= 0 && (c as usize) < self.input).then_some(c as usize)
    }

    /// The input pixel whose value appears at padded coordinate `c` (0 = the first padding
    /// cell) under `mode`; `None` for zero padding.
    #[inline]
    pub fn padded_source(&self, c: usize, mode: PaddingMode) -> Option<usize> {
        self.map_coord(c as isize - self.pad_begin as isize, mode)
    }

    /// Padded coordinate of input pixel `i`: `i + pb`.
    #[inline]
    pub fn padded_index(&self, i: usize) -> usize {
        i + self.pad_begin
    }

    /// The input pixel whose value appears at (possibly padded) coordinate `c` under `mode`;
    /// `None` for zero padding outside the input.
    #[inline]
    pub fn map_coord(&self, c: isize, mode: PaddingMode) -> Option<usize> {
        let n = self.input as isize;
        if (0..n).contains(&c) {
            return Some(c as usize);
        }
        match mode {
            PaddingMode::Zeros => None,
            PaddingMode::Replicate => Some(c.clamp(0, n - 1) as usize),
            PaddingMode::Circular => Some(c.rem_euclid(n) as usize),
            PaddingMode::Reflect => {
                if n == 1 {
                    return Some(0);
                }
                // Reflection is periodic with period 2(n-1).
                let period = 2 * (n - 1);
                let m = c.rem_euclid(period);
                Some(if m < n { m } else { period - m } as usize)
            }
        }
    }

    /// The input pixel read by output cell `o`, tap `t` under padding mode `mode`.
    #[inline]
    pub fn source_mode(&self, o: usize, t: usize, mode: PaddingMode) -> Option<usize> {
        self.map_coord(self.input_coord(o, t), mode)
    }

    /// Checks that `mode` can fill this axis's padding (PyTorch: reflect needs pad < input,
    /// circular needs pad <= input).
    pub fn check_mode(&self, axis: usize, mode: PaddingMode) -> Result<()> {
        let pad = self.pad_begin.max(self.pad_end);
        match mode {
            PaddingMode::Reflect if pad >= self.input => Err(Error::arg(
                "padding",
                format!(
                    "reflect padding {pad} must be smaller than the input size {} on axis {axis}; \
                     use less padding or --padding-mode replicate",
                    self.input
                ),
            )),
            PaddingMode::Circular if pad > self.input => Err(Error::arg(
                "padding",
                format!(
                    "circular padding {pad} must not exceed the input size {} on axis {axis}; \
                     use less padding",
                    self.input
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Range of output cells whose window covers tap `t` at a valid input pixel under zero padding:
    /// the `o` with `0 <= o*s + t*d - pb < i`. Used by fast kernels to skip bounds checks.
    pub fn valid_outputs(&self, t: usize) -> std::ops::Range<usize> {
        let off = t * self.dilation;
        // o*s >= pb - off
        let lo = if self.pad_begin > off {
            (self.pad_begin - off).div_ceil(self.stride)
        } else {
            0
        };
        // o*s + off - pb <= i - 1  <=>  o <= (i - 1 + pb - off) / s
        let hi = if self.input + self.pad_begin > off {
            ((self.input - 1 + self.pad_begin - off) / self.stride + 1).min(self.output)
        } else {
            0
        };
        lo.min(hi)..hi
    }
}

/// A window over three spatial axes (depth, height, width); lower-dimensional ops use leading
/// singleton axes. `nd` records how many axes the user's op really has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window3 {
    /// Axes in order depth, height, width.
    pub axes: [AxisWindow; 3],
    /// Number of real spatial axes (1, 2 or 3): the last `nd` of `axes`.
    pub nd: usize,
}

/// Per-axis parameters of a window before it is resolved against an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    pub kernel: Vec<usize>,
    pub stride: Vec<usize>,
    pub dilation: Vec<usize>,
    pub padding: PaddingSpec,
    pub ceil_mode: bool,
}

impl Window3 {
    /// Resolves `spec` against the spatial input sizes `input` (length 1..=3).
    pub fn new(input: &[usize], spec: &WindowSpec) -> Result<Self> {
        let nd = input.len();
        if !(1..=3).contains(&nd) {
            return Err(Error::arg(
                "input",
                format!("{nd} spatial axes given; stride supports 1, 2 or 3"),
            ));
        }
        let kernel = per_axis("kernel", &spec.kernel, nd)?;
        let stride = per_axis("stride", &spec.stride, nd)?;
        let dilation = per_axis("dilation", &spec.dilation, nd)?;
        let mut axes = [AxisWindow::singleton(); 3];
        for a in 0..nd {
            let pad = AxisWindow::resolve_padding(
                &spec.padding,
                a,
                nd,
                input[a],
                kernel[a],
                stride[a],
                dilation[a],
            )?;
            axes[3 - nd + a] = AxisWindow::new(
                a,
                input[a],
                kernel[a],
                stride[a],
                dilation[a],
                pad,
                spec.ceil_mode,
            )?;
        }
        Ok(Window3 { axes, nd })
    }

    /// The window of a transposed convolution over the spatial input sizes `input`, as the
    /// adjoint convolution (see [`AxisWindow::transposed`]): its `input` sizes are the transposed
    /// output, its `output` sizes the transposed input. Padding is explicit (per axis, or
    /// `begin:end`) or `valid`; `spec.ceil_mode` is ignored.
    pub fn transposed(
        input: &[usize],
        spec: &WindowSpec,
        output_padding: &[usize],
    ) -> Result<Self> {
        let nd = input.len();
        if !(1..=3).contains(&nd) {
            return Err(Error::arg(
                "input",
                format!("{nd} spatial axes given; stride supports 1, 2 or 3"),
            ));
        }
        let kernel = per_axis("kernel", &spec.kernel, nd)?;
        let stride = per_axis("stride", &spec.stride, nd)?;
        let dilation = per_axis("dilation", &spec.dilation, nd)?;
        let op = per_axis("output-padding", output_padding, nd)?;
        let pads =
            match &spec.padding {
                PaddingSpec::Explicit(v) => per_axis("padding", v, nd)?,
                PaddingSpec::Valid => vec![(0, 0); nd],
                PaddingSpec::Same | PaddingSpec::Full => return Err(Error::arg(
                    "padding",
                    "a transposed convolution takes explicit padding (an integer, one per axis, \
                     or begin:end); same and full are not defined for it",
                )),
            };
        let mut axes = [AxisWindow::singleton(); 3];
        for a in 0..nd {
            axes[3 - nd + a] = AxisWindow::transposed(
                a,
                input[a],
                kernel[a],
                stride[a],
                dilation[a],
                pads[a],
                op[a],
            )?;
        }
        Ok(Window3 { axes, nd })
    }

    /// The real axes (the last `nd`).
    pub fn real_axes(&self) -> &[AxisWindow] {
        &self.axes[3 - self.nd..]
    }

    /// Output sizes of the real axes.
    pub fn output_shape(&self) -> Vec<usize> {
        self.real_axes().iter().map(|a| a.output).collect()
    }

    /// Number of output cells `od*oh*ow`.
    pub fn out_len(&self) -> usize {
        self.axes.iter().map(|a| a.output).product()
    }

    /// Number of input cells `id*ih*iw`.
    pub fn in_len(&self) -> usize {
        self.axes.iter().map(|a| a.input).product()
    }

    /// Number of kernel taps `kd*kh*kw`.
    pub fn taps(&self) -> usize {
        self.axes.iter().map(|a| a.kernel).product()
    }

    /// Checks every axis against a padding mode.
    pub fn check_mode(&self, mode: PaddingMode) -> Result<()> {
        for (a, ax) in self.real_axes().iter().enumerate() {
            ax.check_mode(a, mode)?;
        }
        Ok(())
    }

    /// Flat input index read by flat output cell `out` and flat tap `tap` (both row-major over
    /// (d, h, w)), or `None` when the tap lands in zero padding.
    #[inline]
    pub fn source(&self, out: usize, tap: usize, mode: PaddingMode) -> Option<usize> {
        let [ad, ah, aw] = &self.axes;
        let (od, oh, ow) = (
            out / (ah.output * aw.output),
            (out / aw.output) % ah.output,
            out % aw.output,
        );
        let (td, th, tw) = (
            tap / (ah.kernel * aw.kernel),
            (tap / aw.kernel) % ah.kernel,
            tap % aw.kernel,
        );
        let d = ad.source_mode(od, td, mode)?;
        let h = ah.source_mode(oh, th, mode)?;
        let w = aw.source_mode(ow, tw, mode)?;
        Some((d * ah.input + h) * aw.input + w)
    }
}

// ---- Pooling windows ------------------------------------------------------------------------
// Pooling visits, per output cell and axis, a run of input coordinates. Sliding windows come from
// `AxisWindow::span`; adaptive windows from `adaptive_span`; fractional windows from
// `fractional_starts` + `Span::range`. The reductions in `ops::pool` only walk spans.
