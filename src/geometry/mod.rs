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
//!
//! Where each part lives: this file, one axis ([`AxisWindow`]: output length, padding
//! resolution, tap coordinates); `padding.rs`, padding as written and as filled (modes);
//! `window3.rs`, the 3-D window and flat indices; `transposed.rs`, transposed convolution's
//! window and the adjoint padding; `pool.rs`, the spans of the pooling family.

use crate::error::{Error, Result};

mod padding;
mod pool;
#[cfg(test)]
mod tests;
mod transposed;
mod window3;

pub use padding::{parse_per_axis, per_axis, PaddingMode, PaddingSpec};
pub use pool::{adaptive_span, check_fractional_fit, fractional_starts, unpool_length, Span};
pub use window3::{Window3, WindowSpec};

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

/// The sizes that define one axis of a window, before they are checked: the input length, the
/// kernel taps, stride, dilation and `(begin, end)` padding. [`AxisWindow::new`] makes a
/// convolution's or pooling's window of them, [`AxisWindow::transposed`] a transposed one's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AxisSizes {
    pub input: usize,
    pub kernel: usize,
    pub stride: usize,
    pub dilation: usize,
    pub pad: (usize, usize),
}

impl AxisSizes {
    /// `(input, kernel, stride, dilation, pad)`.
    pub fn parts(self) -> (usize, usize, usize, usize, (usize, usize)) {
        (
            self.input,
            self.kernel,
            self.stride,
            self.dilation,
            self.pad,
        )
    }
}

impl AxisWindow {
    /// Validates the window and computes the output length; `axis` is used in error messages,
    /// `ceil_mode` follows PyTorch pooling (the last window must start inside input or begin padding).
    pub fn new(axis: usize, sizes: AxisSizes, ceil_mode: bool) -> Result<Self> {
        let (input, kernel, stride, dilation, pad) = sizes.parts();
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

    /// Length the dilated kernel covers: `d·(k-1) + 1`.
    pub fn extent(&self) -> usize {
        self.dilation * (self.kernel - 1) + 1
    }

    /// The output length with the division rounded down and rounded up:
    /// `floor/ceil((pb + i + pe - d·(k-1) - 1) / s) + 1` (without PyTorch's ceil-mode rule that
    /// the last window starts inside the input; for comparing with formats that lack it).
    pub fn floor_ceil_outputs(&self) -> (usize, usize) {
        let room = self.padded() - self.extent();
        (room / self.stride + 1, room.div_ceil(self.stride) + 1)
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

    /// Padded coordinate of input pixel `i`: `i + pb`.
    #[inline]
    pub fn padded_index(&self, i: usize) -> usize {
        i + self.pad_begin
    }

    /// The windows that read input pixel `i` under zero padding: every (tap `t`, output cell `o`)
    /// with `o*s + t*d - pb = i`, taps in increasing order. (The input gradient at `i` sums
    /// exactly these terms.)
    pub fn readers(&self, i: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        let c = i + self.pad_begin;
        (0..self.kernel).filter_map(move |t| {
            let rest = c.checked_sub(t * self.dilation)?;
            (rest % self.stride == 0 && rest / self.stride < self.output)
                .then_some((t, rest / self.stride))
        })
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

// ---- Pooling windows ------------------------------------------------------------------------
// Pooling visits, per output cell and axis, a run of input coordinates. Sliding windows come from
// `AxisWindow::span`; adaptive windows from `adaptive_span`; fractional windows from
// `fractional_starts` + `Span::range`. The reductions in `ops::pool` only walk spans.
