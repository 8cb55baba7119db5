//! Window spans of the pooling family: the valid taps of each window (sliding, adaptive,
//! fractional) and the output size of max-unpooling.

use super::AxisWindow;
use crate::error::{Error, Result};

/// The input taps of one output cell along one axis once taps in the padding are dropped: input
/// coordinates `first + j*step` for `j in 0..count`. `extent` is the window's length clipped to
/// the padded input `[-pb, i + pe)`: PyTorch's `pool_size` divisor of average pooling with
/// `count_include_pad` (windows that run past the end in ceil mode are cut there).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub first: usize,
    pub count: usize,
    pub step: usize,
    pub extent: usize,
}

impl Span {
    /// The contiguous input range `[start, end)` (no padding).
    pub fn range(start: usize, end: usize) -> Span {
        Span {
            first: start,
            count: end - start,
            step: 1,
            extent: end - start,
        }
    }

    /// Input coordinate of the `j`-th tap inside the input.
    #[inline]
    pub fn coord(&self, j: usize) -> usize {
        self.first + j * self.step
    }
}

impl AxisWindow {
    /// The span of output cell `o`: the taps `t` with `0 <= o*s + t*d - pb < i`, and the
    /// window's extent `min(o*s + d*(k-1) + 1, pb + i + pe) - o*s` (padded coordinates).
    pub fn span(&self, o: usize) -> Span {
        let start = self.padded_coord(o, 0);
        let (pb, d) = (self.pad_begin, self.dilation);
        // first tap at or after the begin padding: o*s + t*d >= pb
        let t_lo = if start >= pb {
            0
        } else {
            (pb - start).div_ceil(d)
        };
        // taps before the end padding: o*s + t*d < pb + i
        let t_hi = if pb + self.input > start {
            ((pb + self.input - start - 1) / d + 1).min(self.kernel)
        } else {
            0
        };
        let count = t_hi.saturating_sub(t_lo);
        let first = if count > 0 {
            self.input_coord(o, t_lo) as usize
        } else {
            0
        };
        let end = (start + d * (self.kernel - 1) + 1).min(self.padded());
        Span {
            first,
            count,
            step: d,
            extent: end - start,
        }
    }
}

impl AxisWindow {
    /// The window count of ceil mode's formula `ceil((pb + i + pe - d*(k-1) - 1)/s) + 1`
    /// before PyTorch's rule drops a last window that would start in the end padding.
    pub fn ceil_count(&self) -> usize {
        (self.padded() - (self.dilation * (self.kernel - 1) + 1)).div_ceil(self.stride) + 1
    }
}

/// Adaptive pooling (PyTorch): output cell `o` of `out` over an axis of length `input` reads
/// `[floor(o*i/O), ceil((o+1)*i/O))`. Windows overlap when `O` does not divide `i`.
pub fn adaptive_span(o: usize, input: usize, out: usize) -> Span {
    let start = o * input / out;
    let end = ((o + 1) * input).div_ceil(out);
    Span::range(start, end)
}

/// Fractional max pooling (Graham 2014) as PyTorch generates it: from one sample `u` in [0, 1),
/// `alpha = (i - k) / (O - 1)`, window `o < O-1` starts at `int((o + u)*alpha) - int(u*alpha)` and
/// the last one at `i - k`. Computed in f32 like PyTorch's kernel for f32 input, so the same
/// samples give the same windows. Callers check `O + k - 1 <= i`
/// ([`check_fractional_fit`]).
pub fn fractional_starts(u: f32, input: usize, out: usize, kernel: usize) -> Vec<usize> {
    let last = input - kernel;
    let mut starts = vec![last; out];
    if out > 1 {
        let alpha = last as f32 / (out - 1) as f32;
        let base = (u * alpha) as i64;
        for (o, st) in starts.iter_mut().take(out - 1).enumerate() {
            let v = ((o as f32 + u) * alpha) as i64 - base;
            *st = v.clamp(0, last as i64) as usize;
        }
    }
    starts
}

/// Checks that `out` fractional windows of size `kernel` fit in `input` on `axis`
/// (`O + k - 1 <= i`, the condition [`fractional_starts`] relies on).
pub fn check_fractional_fit(axis: usize, input: usize, kernel: usize, out: usize) -> Result<()> {
    let (i, k, o) = (input, kernel, out);
    if k > i {
        return Err(Error::arg(
            "kernel",
            format!("{k} is larger than the input {i} on axis {axis}; use a smaller kernel"),
        ));
    }
    if o + k - 1 > i {
        return Err(Error::arg(
            "output-size",
            format!(
                "{o} windows of size {k} do not fit in {i} on axis {axis} (fractional max pooling \
                 needs output + kernel - 1 <= input); use --output-size <= {} or a smaller kernel",
                i - k + 1
            ),
        ));
    }
    Ok(())
}

/// Output length of max-unpooling along one axis (PyTorch `_unpool_output_size`):
/// `(i - 1)*s - pb - pe + k`, the input length of the max pooling it inverts. `None` if <= 0.
pub fn unpool_length(
    input: usize,
    kernel: usize,
    stride: usize,
    pad: (usize, usize),
) -> Option<usize> {
    let len = (input as isize - 1) * stride as isize - (pad.0 + pad.1) as isize + kernel as isize;
    (len > 0).then_some(len as usize)
}
