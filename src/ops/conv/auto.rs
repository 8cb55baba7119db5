//! The `auto` policy, whole and in one place: which kernel `--algo auto` runs for each pass of a
//! convolution, and the measured reason (2 threads, the standard shapes of `bench/shapes.json`).
//!
//! - forward: [`choose_algo`];
//! - input gradient: the adjoint forward problem where it exists ([`adjoint_for`]), whose own
//!   kernel is again [`choose_algo`]; for strided problems the sub-pixel decomposition
//!   ([`subpixel_for`]), or with few input channels the row gather ([`strided_rows_for`]);
//!   else col2im;
//! - weight gradient: [`weight_algo`], after the dilated classes where they win
//!   ([`super::dilated::weight_wins`]);
//! - [`auto_algos`] names the three choices (for reports and `stride bench conv`).
//!
//! Transposed convolution swaps the roles (its forward is this input gradient), so it follows
//! the same policy.

use super::backward::adjoint_problem;
use super::{batch_lanes, channel_lanes, im2col, width_lanes, winograd, ConvAlgo, ConvShape};

/// Longest reduction `Cin/g·taps` for which the width-lanes kernel beats im2col's GEMM (both the
/// forward and the weight gradient): beyond it the GEMM's cache blocking wins.
const WIDTH_LANES_MAX_REDUCTION: usize = 1024;

/// Forward: the algorithm `Auto` stands for.
pub fn choose_algo(s: &ConvShape) -> ConvAlgo {
    // Measured on the standard shapes (2 threads): 1×1 is a plain GEMM with no copy. With 16
    // or more output channels per group the channel-lanes kernel runs at 190–210 GFLOP/s
    // (LeNet's second layer 1.45× the width-lanes kernel, 3×3 with 64 channels 1.15×, 3×3 with
    // 256 channels 1.07× im2col, the strided 7×7 stem 1.5× im2col; also where the width-lanes
    // kernel fills all 16 lanes: 2026-12-01, conv1d 1.35× and conv3d 1.5× it, forward and
    // input gradient), except where the reduction is too short to pay for the channel-lanes
    // kernel's transposed stores (Cin/g·taps < 64: a 3×3 or 5×5 first layer on one channel runs
    // 1.5–2× faster with the width in the lanes). The width-lanes kernel takes the rest while
    // the reduction Cin/g·taps is small (LeNet's first layer, depthwise); beyond that, im2col.
    // The batch-lanes kernel (images in the lanes) takes full convolutions of narrow rows with
    // few output channels (the input gradients of unpadded layers: LeNet's second layer's,
    // 16 → 6 channels, 10-column rows spread to 14) on 16 or more images: its scatter blocks
    // multiply no padding column (50 products per output row where the padded form does 70)
    // and fill every lane (2026-12-02, 2 threads: 0.73–0.79 ms against the width-lanes
    // kernel's 1.27); elsewhere it is not chosen. Winograd takes
    // 3-tap stride-1 problems with 32–256 reduction channels (3·Cin/g in 3-D), ≥ 16 output
    // channels per group and ≥ 32 tiles ([`winograd::wins`]: F(4×4, 3×3) 1.6–2× the
    // channel-lanes kernel on r3x3-64, r3x3-256 and 128 channels on 28×28; per depth slice
    // 1.4× on conv3d; F(4, 3) 1.2–1.5× on conv1d; error ≤ 4e-6 of the output's largest
    // magnitude with its interpolation points 0, ±1, 2, −1/2).
    let width_fits = width_lanes::suits(s) && s.reduction_len() <= WIDTH_LANES_MAX_REDUCTION;
    if im2col::is_pointwise(s) {
        ConvAlgo::Im2col
    } else if batch_lanes::scatter_widths(s).is_some() && s.batch >= 16 && s.cout_g() < 16 {
        ConvAlgo::BatchLanes
    } else if winograd::wins(s) {
        ConvAlgo::Winograd
    } else if channel_lanes::suits(s)
        && s.cout_g() >= 16
        && !(width_fits && s.reduction_len() < channel_lanes::MIN_REDUCTION)
    {
        ConvAlgo::ChannelLanes
    } else if width_fits {
        ConvAlgo::WidthLanes
    } else {
        ConvAlgo::Im2col
    }
}

/// `algo` with `Auto` replaced by the choice for `s`.
pub fn resolve_algo(s: &ConvShape, algo: ConvAlgo) -> ConvAlgo {
    if algo == ConvAlgo::Auto {
        choose_algo(s)
    } else {
        algo
    }
}

/// Input gradient: the forward problem that computes it for `s` under `algo`, if any.
///
/// `Auto` (and the direct kernels `WidthLanes`, `ChannelLanes` and `Winograd`, which have no
/// input-gradient form of their own) use the adjoint problem ([`adjoint_problem`]) wherever it
/// exists (stride 1, zero padding): the forward kernels it reaches beat col2im on every standard
/// shape, and `Auto` then picks the adjoint's kernel by [`choose_algo`]. Elsewhere (`None`) the
/// input gradient is the algorithm's own form (direct scatter, `Tᵀ gy`, col2im for `Auto`).
pub fn adjoint_for(s: &ConvShape, algo: ConvAlgo) -> Option<ConvShape> {
    if borrows_input_gradient(algo) {
        adjoint_problem(s)
    } else {
        None
    }
}

/// Whether `algo` has no input-gradient form of its own and so takes the forms `auto` chooses
/// (the adjoint problem, the sub-pixel phases, the row gather): `Auto` and the direct kernels.
fn borrows_input_gradient(algo: ConvAlgo) -> bool {
    matches!(
        algo,
        ConvAlgo::Auto
            | ConvAlgo::WidthLanes
            | ConvAlgo::ChannelLanes
            | ConvAlgo::BatchLanes
            | ConvAlgo::Winograd
    )
}

/// Fewest input channels per group for the sub-pixel input gradient: its phases are forward
/// problems with `Cin/g` output channels, and with fewer than 16 the channel-lanes kernel cannot
/// fill its lanes (CPU time on 2026-12-01, 1 thread, a loaded machine: s2-3x3 (Cin 128) 9.5 ms
/// against col2im's 10.1; stem7x7 (Cin 3) 47.7 ms against 26.3).
const SUBPIXEL_MIN_CIN: usize = 16;

/// Input gradient of a strided problem (no adjoint problem): whether `algo` uses the sub-pixel
/// decomposition ([`super::subpixel`]: stride² stride-1 problems on the direct kernels) instead
/// of col2im — for `Auto` and the direct kernels, as [`adjoint_for`], where the phases have at
/// least `SUBPIXEL_MIN_CIN` (16) output channels.
pub fn subpixel_for(s: &ConvShape, algo: ConvAlgo) -> bool {
    adjoint_for(s, algo).is_none()
        && s.cin_g() >= SUBPIXEL_MIN_CIN
        && borrows_input_gradient(algo)
        && super::subpixel::applies(s)
}

/// Input gradient of a strided problem (no adjoint problem) with too few input channels for
/// the sub-pixel phases: whether `algo` gathers it row by row ([`super::strided_rows`]: width
/// stride 2, at most 8 width taps) instead of col2im — for `Auto` and the direct kernels, as
/// [`subpixel_for`]. (stem7x7, 3 → 64 channels, 7×7 stride 2 on 224 × 224, N 8, 2026-12-02, 2
/// threads: 7.5–7.7 ms against col2im's 11.8–11.9 and the sub-pixel phases' ~16.)
pub fn strided_rows_for(s: &ConvShape, algo: ConvAlgo) -> bool {
    adjoint_for(s, algo).is_none()
        && s.cin_g() < SUBPIXEL_MIN_CIN
        && borrows_input_gradient(algo)
        && super::strided_rows::applies(s)
}

/// Weight gradient: the kernel `Auto` uses (measured on the standard shapes, 2 threads): the
/// channel-lanes correlation for 16 or more output channels per group, 1×1 included (its
/// reduction over every position ran 1.9× faster so than as one long GEMM, 2026-12-01) (LeNet's
/// second layer 1.7× the width-lanes kernel, 3×3 with 64 channels 1.3×, the strided 7×7 stem
/// 1.5× im2col) unless the reduction is short (< 64: one-channel first layers, 1.8× faster with
/// the width in the lanes); other 1×1 as one GEMM; the width-lanes correlation for the rest
/// while the reduction Cin/g·taps is small (LeNet's first layer, depthwise); else im2col.
/// Before all of these, Winograd F(4×4, 3×3) run backwards for 2-D 3×3 (per depth slice for
/// 3-D 3×3×3: conv3d 1.5×; F(4, 3) for 1-D 3 taps: conv1d 1.6×) stride-1 problems with
/// 16–256 channels per group and ≥ 32 tiles ([`winograd::wgrad_wins`]: r3x3-64 1.8–2.2×, r3x3-256
/// 1.5–1.7× (CPU time, 1 thread, 2026-12-01, interleaved on a loaded machine) and
/// 128 channels on 28×28 1.8× the channel-lanes correlation; error ≤ 3e-6 of max |dW|).
pub fn weight_algo(s: &ConvShape) -> ConvAlgo {
    if winograd::wgrad_wins(s) {
        ConvAlgo::Winograd
    } else if channel_lanes::suits(s)
        && s.cout_g() >= 16
        && !(width_lanes::suits(s) && s.reduction_len() < channel_lanes::MIN_REDUCTION)
    {
        ConvAlgo::ChannelLanes
    } else if im2col::is_pointwise(s) {
        ConvAlgo::Im2col
    } else if width_lanes::suits(s) && s.reduction_len() <= WIDTH_LANES_MAX_REDUCTION {
        ConvAlgo::WidthLanes
    } else {
        ConvAlgo::Im2col
    }
}

/// Names the kernels `Auto` uses for each pass of `s`: (forward, input gradient, weight gradient).
pub fn auto_algos(s: &ConvShape) -> [String; 3] {
    let name = |a: ConvAlgo| a.name();
    // a dilated problem that `auto` splits into undilated classes (`dilated::wins`)
    let forward_name = |t: &ConvShape| match super::dilated::wins(t)
        .then(|| super::dilated::representative(t))
        .flatten()
    {
        Some(c) => format!("phases-{}", name(choose_algo(&c))),
        None => name(choose_algo(t)).into(),
    };
    let bwd_in = match adjoint_for(s, ConvAlgo::Auto) {
        Some(t) => format!("adj-{}", forward_name(&t)),
        None if subpixel_for(s, ConvAlgo::Auto) => "subpixel".into(),
        None if strided_rows_for(s, ConvAlgo::Auto) => "strided-rows".into(),
        None => "col2im".into(),
    };
    let weight = match super::dilated::weight_wins(s)
        .then(|| super::dilated::representative(s))
        .flatten()
    {
        Some(c) => format!("phases-{}", name(weight_algo(&c))),
        None => name(weight_algo(s)).into(),
    };
    [forward_name(s), bwd_in, weight]
}
