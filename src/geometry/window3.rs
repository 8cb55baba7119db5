//! [`Window3`]: the window of an op over three spatial axes (1-D and 2-D ops get leading
//! singleton axes), resolved from a [`WindowSpec`] against the input sizes; flat indices.

use super::{per_axis, AxisSizes, AxisWindow, PaddingMode, PaddingSpec};
use crate::error::{Error, Result};

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

impl WindowSpec {
    /// Checks the number of spatial axes of `input` (1 to 3) and spreads kernel, stride and
    /// dilation to one value per axis: `(nd, kernel, stride, dilation)`.
    #[allow(clippy::type_complexity)]
    pub(super) fn per_axis(
        &self,
        input: &[usize],
    ) -> Result<(usize, Vec<usize>, Vec<usize>, Vec<usize>)> {
        let nd = input.len();
        if !(1..=3).contains(&nd) {
            return Err(Error::arg(
                "input",
                format!("{nd} spatial axes given; stride supports 1, 2 or 3"),
            ));
        }
        Ok((
            nd,
            per_axis("kernel", &self.kernel, nd)?,
            per_axis("stride", &self.stride, nd)?,
            per_axis("dilation", &self.dilation, nd)?,
        ))
    }
}

impl Window3 {
    /// Resolves `spec` against the spatial input sizes `input` (length 1..=3).
    pub fn new(input: &[usize], spec: &WindowSpec) -> Result<Self> {
        let (nd, kernel, stride, dilation) = spec.per_axis(input)?;
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
                AxisSizes {
                    input: input[a],
                    kernel: kernel[a],
                    stride: stride[a],
                    dilation: dilation[a],
                    pad,
                },
                spec.ceil_mode,
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

    /// (d, h, w) of flat output cell `out` (row-major over the output grid).
    #[inline]
    pub fn out_coords(&self, out: usize) -> [usize; 3] {
        let [_, ah, aw] = &self.axes;
        [
            out / (ah.output * aw.output),
            (out / aw.output) % ah.output,
            out % aw.output,
        ]
    }

    /// (d, h, w) of flat tap `tap` (row-major over the kernel).
    #[inline]
    pub fn tap_coords(&self, tap: usize) -> [usize; 3] {
        let [_, ah, aw] = &self.axes;
        [
            tap / (ah.kernel * aw.kernel),
            (tap / aw.kernel) % ah.kernel,
            tap % aw.kernel,
        ]
    }

    /// Flat input index read by flat output cell `out` and flat tap `tap` (both row-major over
    /// (d, h, w)), or `None` when the tap lands in zero padding.
    #[inline]
    pub fn source(&self, out: usize, tap: usize, mode: PaddingMode) -> Option<usize> {
        let [ad, ah, aw] = &self.axes;
        let [od, oh, ow] = self.out_coords(out);
        let [td, th, tw] = self.tap_coords(tap);
        let d = ad.source_mode(od, td, mode)?;
        let h = ah.source_mode(oh, th, mode)?;
        let w = aw.source_mode(ow, tw, mode)?;
        Some((d * ah.input + h) * aw.input + w)
    }
}
