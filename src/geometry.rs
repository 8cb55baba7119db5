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

/// How the padding region is filled (PyTorch `padding_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PaddingMode {
    /// Padding reads 0 (or, for pooling, is skipped / −∞).
    #[default]
    Zeros,
    /// Mirror without repeating the edge: `[a b c | b a]`.
    Reflect,
    /// Repeat the edge value: `[a b c | c c]`.
    Replicate,
    /// Wrap around: `[a b c | a b]`.
    Circular,
}

impl std::str::FromStr for PaddingMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "zeros" => Ok(PaddingMode::Zeros),
            "reflect" => Ok(PaddingMode::Reflect),
            "replicate" => Ok(PaddingMode::Replicate),
            "circular" => Ok(PaddingMode::Circular),
            _ => Err(Error::arg(
                "padding-mode",
                format!("unknown mode '{s}'; use zeros, reflect, replicate or circular"),
            )),
        }
    }
}

/// Padding as the user gives it, before it is resolved against the input size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaddingSpec {
    /// `(begin, end)` per axis; a single entry applies to every axis.
    Explicit(Vec<(usize, usize)>),
    /// No padding.
    Valid,
    /// Output length `ceil(i / s)`; the odd extra pixel goes at the end (TF / ONNX `SAME_UPPER`).
    Same,
    /// `d*(k-1)` on both sides: every input pixel meets every kernel tap.
    Full,
}

impl Default for PaddingSpec {
    fn default() -> Self {
        PaddingSpec::Explicit(vec![(0, 0)])
    }
}

impl std::str::FromStr for PaddingSpec {
    type Err = Error;
    /// Parses `2`, `1,2`, `valid`, `same`, `full`, or `begin:end` per axis (`0:1,1:0`).
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        match s {
            "valid" => return Ok(PaddingSpec::Valid),
            "same" => return Ok(PaddingSpec::Same),
            "full" => return Ok(PaddingSpec::Full),
            _ => {}
        }
        let bad = || {
            Error::arg(
                "padding",
                format!(
                    "cannot read '{s}'; use an integer (1), one per axis (1,2), begin:end per axis \
                     (0:1,1:0), valid, same or full"
                ),
            )
        };
        let mut axes = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let pair = if let Some((b, e)) = part.split_once(':') {
                (
                    b.trim().parse().map_err(|_| bad())?,
                    e.trim().parse().map_err(|_| bad())?,
                )
            } else {
                let p: usize = part.parse().map_err(|_| bad())?;
                (p, p)
            };
            axes.push(pair);
        }
        if axes.is_empty() {
            return Err(bad());
        }
        Ok(PaddingSpec::Explicit(axes))
    }
}

/// Parses an integer or a comma list (`2` or `2,1`), as for stride, dilation and kernel sizes.
pub fn parse_per_axis(arg: &str, s: &str) -> Result<Vec<usize>> {
    let s = s
        .trim()
        .trim_start_matches(['(', '['])
        .trim_end_matches([')', ']']);
    s.split([',', 'x'])
        .map(|p| {
            p.trim().parse::<usize>().map_err(|_| {
                Error::arg(
                    arg,
                    format!("cannot read '{s}'; give one integer or one per axis, e.g. 2 or 2,1"),
                )
            })
        })
        .collect()
}

/// Broadcasts a per-axis list to `nd` axes: one value applies to all; otherwise the length must match.
pub fn per_axis<T: Copy>(arg: &str, values: &[T], nd: usize) -> Result<Vec<T>> {
    match values.len() {
        1 => Ok(vec![values[0]; nd]),
        n if n == nd => Ok(values.to_vec()),
        n => Err(Error::arg(
            arg,
            format!("{n} values given for {nd} spatial axes; give one value or exactly {nd}"),
        )),
    }
}

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
        if stride == 0 {
            return Err(Error::arg("stride", "must be at least 1"));
        }
        if dilation == 0 {
            return Err(Error::arg("dilation", "must be at least 1"));
        }
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
        if stride == 0 {
            return Err(Error::arg("stride", "must be at least 1"));
        }
        if dilation == 0 {
            return Err(Error::arg("dilation", "must be at least 1"));
        }
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
/// samples give the same windows. Callers check `O + k - 1 <= i`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(i: usize, k: usize, s: usize, d: usize, p: (usize, usize), ceil: bool) -> AxisWindow {
        AxisWindow::new(0, i, k, s, d, p, ceil).unwrap()
    }

    #[test]
    fn output_size_formula() {
        assert_eq!(axis(5, 3, 1, 1, (0, 0), false).output, 3); // seed 004 (a)
        assert_eq!(axis(5, 3, 2, 1, (0, 0), false).output, 2); // seed 000 (b)
        assert_eq!(axis(200, 40, 2, 1, (0, 0), false).output, 81); // seed 000 (a)
        assert_eq!(axis(7, 3, 2, 2, (1, 1), false).output, 3);
        // ceil mode: PyTorch maxpool k2 s2 on 5 -> 3, but the last window may not start in end padding
        assert_eq!(axis(5, 2, 2, 1, (0, 0), true).output, 3);
        assert_eq!(axis(4, 2, 2, 1, (1, 1), true).output, 3);
        assert_eq!(axis(4, 3, 2, 1, (1, 1), true).output, 3);
        assert_eq!(axis(4, 2, 3, 1, (1, 1), true).output, 2); // last window would start in end padding
    }

    #[test]
    fn same_padding_resolution() {
        for (i, k, s) in [(5, 3, 1), (6, 4, 1), (7, 3, 2), (8, 3, 2), (5, 1, 3)] {
            let (pb, pe) =
                AxisWindow::resolve_padding(&PaddingSpec::Same, 0, 1, i, k, s, 1).unwrap();
            let a = axis(i, k, s, 1, (pb, pe), false);
            assert_eq!(a.output, i.div_ceil(s), "i={i} k={k} s={s}");
            assert!(pe >= pb && pe - pb <= 1);
        }
    }

    #[test]
    fn padding_modes_map_coordinates() {
        let a = axis(4, 3, 1, 1, (2, 2), false);
        let coords: Vec<_> = (-2..6)
            .map(|c| a.map_coord(c, PaddingMode::Reflect).unwrap())
            .collect();
        assert_eq!(coords, vec![2, 1, 0, 1, 2, 3, 2, 1]);
        let coords: Vec<_> = (-2..6)
            .map(|c| a.map_coord(c, PaddingMode::Circular).unwrap())
            .collect();
        assert_eq!(coords, vec![2, 3, 0, 1, 2, 3, 0, 1]);
        let coords: Vec<_> = (-2..6)
            .map(|c| a.map_coord(c, PaddingMode::Replicate).unwrap())
            .collect();
        assert_eq!(coords, vec![0, 0, 0, 1, 2, 3, 3, 3]);
        assert_eq!(a.map_coord(-1, PaddingMode::Zeros), None);
    }

    #[test]
    fn valid_outputs_matches_source() {
        for (i, k, s, d, p) in [
            (7, 3, 2, 2, (1, 2)),
            (5, 5, 1, 1, (2, 2)),
            (9, 2, 3, 1, (0, 1)),
        ] {
            let a = axis(i, k, s, d, p, false);
            for t in 0..k {
                let r = a.valid_outputs(t);
                for o in 0..a.output {
                    assert_eq!(a.source(o, t).is_some(), r.contains(&o));
                }
            }
        }
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(AxisWindow::new(0, 4, 5, 1, 1, (0, 0), false).is_err());
        assert!(AxisWindow::new(0, 4, 3, 0, 1, (0, 0), false).is_err());
        assert!(AxisWindow::new(0, 4, 3, 1, 0, (0, 0), false).is_err());
        let msg = AxisWindow::new(0, 4, 5, 1, 1, (0, 0), false)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("larger than the padded input 4"), "{msg}");
        // sizes that overflow are errors, not panics or wrapped arithmetic
        assert!(AxisWindow::new(0, 4, 3, 1, usize::MAX, (0, 0), false).is_err());
        assert!(AxisWindow::new(0, 4, 3, 1, 1, (usize::MAX, 1), false).is_err());
        assert!(AxisWindow::transposed(0, 3, 3, usize::MAX / 2, 1, (0, 0), 0).is_err());
        assert!(AxisWindow::transposed(0, 3, 3, 1, 1, (usize::MAX, usize::MAX), 0).is_err());
    }

    #[test]
    fn transposed_output_size() {
        // PyTorch: (i-1)*s - 2p + d*(k-1) + op + 1
        let t = |i, k, s, d, p, op| AxisWindow::transposed(0, i, k, s, d, (p, p), op);
        assert_eq!(t(3, 3, 2, 1, 1, 1).unwrap().input, 6);
        assert_eq!(t(4, 2, 1, 3, 0, 2).unwrap().input, 9);
        assert_eq!(t(5, 3, 1, 1, 0, 0).unwrap().input, 7);
        let w = t(3, 3, 2, 1, 1, 1).unwrap();
        assert_eq!(w.output, 3);
        assert!(t(3, 3, 2, 1, 1, 2)
            .unwrap_err()
            .to_string()
            .contains("smaller than the stride 2 or the dilation 1"));
        assert!(t(1, 1, 1, 1, 1, 0).is_err()); // padding crops everything
    }

    #[test]
    fn padding_spec_parsing() {
        assert_eq!("same".parse::<PaddingSpec>().unwrap(), PaddingSpec::Same);
        assert_eq!(
            "0:1,1:0".parse::<PaddingSpec>().unwrap(),
            PaddingSpec::Explicit(vec![(0, 1), (1, 0)])
        );
        assert_eq!(
            "2".parse::<PaddingSpec>().unwrap(),
            PaddingSpec::Explicit(vec![(2, 2)])
        );
        assert!("x".parse::<PaddingSpec>().is_err());
    }
}
