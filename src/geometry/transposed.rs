//! The windows of transposed convolution and of the adjoint problem: a transposed convolution
//! is the adjoint of a convolution, so its window is that convolution's, read backwards
//! ([`AxisWindow::transposed`], [`Window3::transposed`]); at stride 1 the input gradient is a
//! convolution of the output gradient ([`AxisWindow::adjoint_padding`]).

use super::{check_step, per_axis, AxisSizes, AxisWindow, PaddingSpec, Window3, WindowSpec};
use crate::error::{Error, Result};

impl AxisWindow {
    /// The window of a transposed convolution (PyTorch `conv_transpose`), seen as the adjoint
    /// convolution that maps the transposed output back to its input: this window's `input` is
    /// the transposed output length `(i - 1)*s - pb - pe + d*(k-1) + op + 1` and its `output` is
    /// the transposed input length `i`. `output_padding` must be smaller than the stride or the
    /// dilation (as in PyTorch).
    pub fn transposed(axis: usize, sizes: AxisSizes, output_padding: usize) -> Result<Self> {
        let (input, kernel, stride, dilation, pad) = sizes.parts();
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
        let mut w = AxisWindow::new(
            axis,
            AxisSizes {
                input: len as usize,
                ..sizes
            },
            false,
        )?;
        debug_assert!(w.output >= input);
        w.output = input;
        Ok(w)
    }

    /// For a window made by [`AxisWindow::transposed`], the output padding it was built with:
    /// what the transposed output `pb + i + pe` has beyond `(o - 1)·s + d·(k-1) + 1`.
    pub fn output_padding(&self) -> usize {
        self.padded() - ((self.output - 1) * self.stride + self.extent())
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
}

impl Window3 {
    /// The window of a transposed convolution over the spatial input sizes `input`, as the
    /// adjoint convolution (see [`AxisWindow::transposed`]): its `input` sizes are the transposed
    /// output, its `output` sizes the transposed input. Padding is explicit (per axis, or
    /// `begin:end`) or `valid`; `spec.ceil_mode` is ignored.
    pub fn transposed(
        input: &[usize],
        spec: &WindowSpec,
        output_padding: &[usize],
    ) -> Result<Self> {
        let (nd, kernel, stride, dilation) = spec.per_axis(input)?;
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
                AxisSizes {
                    input: input[a],
                    kernel: kernel[a],
                    stride: stride[a],
                    dilation: dilation[a],
                    pad: pads[a],
                },
                op[a],
            )?;
        }
        Ok(Window3 { axes, nd })
    }
}
