//! Padding as the user writes it (`2`, `1,2`, `0:1,1:0`, `valid`, `same`, `full`) and how it is
//! filled (PyTorch `padding_mode`), plus the per-axis list parsing shared by every flag.

use super::AxisWindow;
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

/// How each axis's padding is filled under a [`PaddingMode`]: which input pixel a padded
/// coordinate shows, and whether the mode can fill the padding at all.
impl AxisWindow {
    /// The input pixel whose value appears at padded coordinate `c` (0 = the first padding
    /// cell) under `mode`; `None` for zero padding.
    #[inline]
    pub fn padded_source(&self, c: usize, mode: PaddingMode) -> Option<usize> {
        self.map_coord(c as isize - self.pad_begin as isize, mode)
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
}
