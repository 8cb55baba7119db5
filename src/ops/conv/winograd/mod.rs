//! Winograd minimal filtering F(4, 3) (Lavin & Gray 2016) for 3-tap kernels at stride 1:
//! along every spatial axis whose kernel has 3 taps, 4 outputs come from 6 inputs with 6
//! multiplies instead of 12, so a 3×3 convolution needs 36 multiplies per 4×4 output tile
//! instead of 144 (4× fewer), a 3-tap 1-D convolution 1.5 per output instead of 3, a 3×3×3
//! one (F(4×4, 3×3) per depth slice) 108 per output instead of 432 (per input channel).
//!
//! `y_tile = Aᵀ [ (G w Gᵀ) ⊙ (Bᵀ d B) ] A` (cross-correlation, as PyTorch). What lives where:
//! - [`transform`]: the 1-D matrices `Bᵀ`, `G`, `Aᵀ` and the interpolation points (chosen for
//!   float32 accuracy);
//! - [`plane`]: the fast path, tiles in the vector lanes, register-blocked products
//!   (`lanes`): F(4×4, 3×3) in 2-D, the same per depth slice in 3-D (depth taps summed
//!   directly), F(4, 3) in 1-D;
//! - [`wgrad`]: the weight gradient of that path, the same transforms run backwards
//!   (`dU = Σ_tiles (A dY Aᵀ) ⊗ (Bᵀ d B)`, `dW = Gᵀ dU G`), channels in the lanes.
//!
//! Applies to zero padding, stride 1, dilation 1, every real axis with 3 taps ([`suits`]).
//! Numerics: the transforms multiply by up to 8 and divide by up to 30, so rounding errors are
//! a few times those of the direct sum (measured ≤ 4e-6 of the output's largest magnitude on
//! 3×3 with 256 channels; tests/conv_winograd.rs bounds them at 1e-5).

use super::ConvShape;
use crate::geometry::PaddingMode;

mod lanes;
pub mod plane;
pub mod transform;
pub mod wgrad;
mod wgrad_lanes;
mod wgrad_runs;
mod wgrad_tiles;

/// Whether F(4,3) applies to `s`.
pub fn suits(s: &ConvShape) -> bool {
    s.mode == PaddingMode::Zeros
        && s.window
            .real_axes()
            .iter()
            .all(|a| a.kernel == 3 && a.stride == 1 && a.dilation == 1)
}

/// Shortest reduction per transformed position (depth taps × input channels per group) for
/// which `auto` picks Winograd: at 16 channels (2-D) it ties with the channel-lanes kernel, at
/// 32 it wins 1.3× (N 8, 56×56), 1-D 32 → 32 (N 32, length 1024) 1.1–1.15×.
pub const MIN_CHANNELS: usize = 32;
/// Most input channels per group for `auto`: U (36·Cin/g·Cout/g values) and one block's V
/// outgrow the caches (512 → 512 on 7×7, N 8: 0.6× the channel-lanes kernel; N 32: 1.16×).
pub const MAX_CIN: usize = 256;
/// Fewest output tiles (N·⌈OH/4⌉·⌈OW/4⌉) for `auto`, so the weight transform is amortised
/// (32 tiles, 256 → 256 on 7×7: 1.33× the channel-lanes kernel).
pub const MIN_TILES: usize = 32;

/// Whether `auto` runs Winograd on `s` (forward, or the adjoint of an input gradient): 32–256
/// reduction channels (KD·Cin/g, KD = 3 depth taps in 3-D, else 1), ≥ 16 output channels per
/// group, ≥ 32 tiles. CPU time on 2026-12-01, 1 thread, a loaded machine, against the
/// channel-lanes kernel: 2-D r3x3-64 (N 8, 64 → 64, 56×56) 8.7 ms against 15.0; r3x3-256 (N 8,
/// 256 → 256, 14×14) 8.4 against 13.4; 128 → 128 on 28×28 6.7 against 13.1; 64 → 16 on 56×56
/// 3.5 against 10.2. 1-D conv1d (N 32, 64 → 64, 1024) 5.6–7.2 against 7.8–8.8 (its adjoint the
/// same), 256 → 256 (N 8, 256) 4.4 against 6.6, 32 → 32 2.2 against 2.4. 3-D conv3d (N 2,
/// 16 → 32, 16×32×32) 4.6–5.2 against 6.7–6.9, its adjoint (32 → 16) 6.0–6.8 against 6.9–7.0;
/// 16 → 16 3.3 against 3.7, 64 → 64 on 8×14×14 4.5 against 4.8. Error ≤ 4e-6 of the output's
/// largest magnitude (tests/conv_winograd.rs bounds 1e-5).
pub fn wins(s: &ConvShape) -> bool {
    plane::applies(s)
        && (MIN_CHANNELS..=MAX_CIN).contains(&(plane::depth_taps(s) * s.cin_g()))
        && s.cout_g() >= 16
        && plane::tiles(s) >= MIN_TILES
}

/// Fewest input and output channels per group for which `auto` runs the weight gradient
/// through Winograd ([`wgrad`]): channels are padded to multiples of 16 in its vector lanes, so
/// fewer would waste most of each product (3 input channels on 112×112: 3.3 ms against the
/// channel-lanes kernel's 1.7).
pub const WGRAD_MIN_CHANNELS: usize = 16;

/// Whether `auto` runs the weight gradient of `s` through Winograd ([`wgrad`]): the 2-D
/// F(4×4, 3×3) path (in 1-D F(4, 3): conv1d (N 32, 64 → 64, 1024) 5.6–5.9 ms against the
/// channel-lanes correlation's 9.1–9.3, 32 → 32 2.1–2.5 against 2.7–2.9, 256 → 256 (N 8, 256)
/// 4.7–5.1 against 6.6, 16 → 64 3.1–3.2 against the width-lanes correlation's 3.4; in 3-D per
/// depth slice, one dU per depth tap: conv3d (N 2, 16 → 32,
/// 16×32×32) 4.9–5.4 ms against the channel-lanes correlation's 7.8–8.1, 16 → 16 2.8 against
/// 5.2, 32 → 32 on 8×16×16 1.2 against 2.3, 64 → 64 on 8×14×14 4.3 against 6.1) with 16–256
/// input and ≥ 16 output channels per group and ≥ 32 tiles. CPU
/// time on 2026-12-01, 1 thread, a loaded machine, against the channel-lanes correlation
/// (`stride bench conv --threads 1`): 16 → 16 on 56×56 (N 8) 0.77 ms against 1.26; 32 → 32
/// 2.4 against 3.7; 128 → 128 on 28×28 8.0 against 14.7; 256 → 256 on 7×7 2.8 against 4.4;
/// 64 → 64 on 14×14 (N 2, 32 tiles) 0.23 against 0.27; 512 → 512 on 7×7 22.8 against 23.5
/// (a tie: dU, 36·Cin·Cout values, outgrows the caches), so the same MAX_CIN as the forward.
/// Error ≤ 3e-6 of max |dW| (tests/conv_winograd.rs bounds 1e-5).
pub fn wgrad_wins(s: &ConvShape) -> bool {
    wgrad::applies(s)
        && (WGRAD_MIN_CHANNELS..=MAX_CIN).contains(&s.cin_g())
        && s.cout_g() >= WGRAD_MIN_CHANNELS
        && plane::tiles(s) >= MIN_TILES
}

/// Refuses a problem whose transformed weights `U` (and the weight gradient's `dU`, as many
/// values: P·KD·Cin·⌈Cout/g⌉ with P = 36, or 6 in 1-D) would pass the memory limit
/// ([`crate::limits`]): `--algo winograd` on a very wide layer (4096 → 4096 channels: 2.4 GB)
/// fails with a clear message instead of allocating; `auto` picks Winograd only up to 256
/// channels per group (U ≤ 9.4 MB).
pub fn check_size(s: &ConvShape) -> crate::error::Result<()> {
    let p = if s.window.nd == 1 { 6 } else { 36 };
    let per_group = [
        p,
        plane::depth_taps(s) * s.cin_g(),
        s.cout_g().next_multiple_of(12),
    ];
    let bytes = crate::limits::f32_bytes(&[&[s.groups, per_group[0], per_group[1], per_group[2]]]);
    crate::limits::check(
        "algo winograd",
        bytes,
        "Winograd's transformed weights hold 36 values per 3×3 kernel (4× the weights); use \
         --algo auto or channel-lanes for layers this wide",
    )
}

/// Forward pass. `x`: (N, Cin, D, H, W), `w`: (Cout, Cin/g, 3, 3, 3 or 1…), `y`: (N, Cout, od,
/// oh, ow), every value written. Requires [`plane::applies`] ([`suits`] and an input under 2³¹
/// values).
pub fn forward(s: &ConvShape, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    plane::forward(s, x, w, bias, y)
}
