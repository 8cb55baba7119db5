//! Winograd minimal filtering F(4, 3) (Lavin & Gray 2016) for 3-tap kernels at stride 1:
//! along every spatial axis whose kernel has 3 taps, 4 outputs come from 6 inputs with 6
//! multiplies instead of 12, so a 3×3 convolution needs 36 multiplies per 4×4 output tile
//! instead of 144 (4× fewer), a 3-tap 1-D convolution 1.5 per output instead of 3.
//!
//! `y_tile = Aᵀ [ (G w Gᵀ) ⊙ (Bᵀ d B) ] A` (cross-correlation, as PyTorch). What lives where:
//! - [`transform`]: the 1-D matrices `Bᵀ`, `G`, `Aᵀ` and the interpolation points (chosen for
//!   float32 accuracy);
//! - [`plane`]: the fast 2-D path, F(4×4, 3×3), tiles in the vector lanes, register-blocked
//!   products ([`lanes`]);
//! - [`generic`]: every other 3-tap problem (1-D, 3-D, 3×1 …), one generic tile loop.
//!
//! Applies to zero padding, stride 1, dilation 1, every real axis with 3 taps ([`suits`]).
//! Numerics: the transforms multiply by up to 8 and divide by up to 30, so rounding errors are
//! a few times those of the direct sum (measured ≤ 4e-6 of the output's largest magnitude on
//! 3×3 with 256 channels; tests/conv_winograd.rs bounds them at 1e-5).

use super::ConvShape;
use crate::geometry::PaddingMode;

mod generic;
mod lanes;
pub mod plane;
pub mod transform;

/// Whether F(4,3) applies to `s`.
pub fn suits(s: &ConvShape) -> bool {
    s.mode == PaddingMode::Zeros
        && s.window
            .real_axes()
            .iter()
            .all(|a| a.kernel == 3 && a.stride == 1 && a.dilation == 1)
}

/// Forward pass. `x`: (N, Cin, D, H, W), `w`: (Cout, Cin/g, 3, 3, 3 or 1…), `y`: (N, Cout, od,
/// oh, ow), every value written. Requires [`suits`].
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    if plane::applies(s) {
        plane::forward(s, x, w, bias, y)
    } else {
        generic::forward(s, x, w, bias, y)
    }
}
