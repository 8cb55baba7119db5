//! Convolution (PyTorch `torch.nn.functional.conv1d/2d/3d`): the algorithm names and the
//! dispatch from a validated problem to the kernel that computes it. What lives where:
//! - [`shape`]: [`ConvParams`] (PyTorch's arguments) and [`ConvShape`] (the validated problem);
//! - [`auto`]: the `auto` policy, which kernel each pass runs and the measured reason;
//! - [`backward`]: the gradients (input, weight, bias) and the adjoint problem;
//! - [`dilated`]: `auto` runs a dilated stride-1 2-D problem as `d²` undilated ones;
//! - the algorithms, which all agree with the first:
//!   - [`direct`]: the literal sum, the reference;
//!   - [`im2col`] (with [`unfold`]): unfold the input into columns, then one GEMM per image and
//!     group;
//!   - [`toeplitz`]: the explicit (doubly blocked) Toeplitz matrix times the flattened input;
//!   - [`width_lanes`]: direct, output columns in the vector lanes (few channels, depthwise);
//!   - [`channel_lanes`]: direct, output channels in the vector lanes (≥ 16 per group);
//!   - [`batch_lanes`]: direct, 16 images in the vector lanes (few channels, narrow planes);
//!   - [`winograd`]: F(4,3) for 3-tap kernels at stride 1.
//!
//! Layouts: input `(N, Cin, *spatial)` or unbatched `(Cin, *spatial)`, weight
//! `(Cout, Cin/groups, *k)`, bias `(Cout)`, output `(N, Cout, *out)`.
//! Internally every convolution is 3-D ([`crate::geometry::Window3`]); kernels see flat buffers.
//! The slice-level dispatchers ([`forward_slices`], [`backward_input_slices`],
//! [`backward_weight_slices`]) are shared with the transposed convolution, its adjoint.

pub mod auto;
pub mod backward;
pub mod batch_lanes;
pub mod channel_lanes;
pub mod dilated;
pub mod direct;
pub mod im2col;
pub mod shape;
pub mod strided_rows;
pub mod subpixel;
pub mod toeplitz;
pub mod unfold;
pub mod width_lanes;
pub mod winograd;

use crate::error::{Error, Result};
use crate::ops::activation::Activation;
use crate::ops::uninit::{as_uninit, assume_init, zeroed};
use crate::tensor::Tensor;
use std::mem::MaybeUninit;

pub use auto::{auto_algos, choose_algo, resolve_algo, weight_algo};
pub use backward::{
    adjoint_problem, adjoint_weight, backward_input_slices, backward_weight_slices,
    check_grad_output, conv_backward, ConvGrads, GradRequest,
};
pub(crate) use shape::{check_bias, kernel_window, split_input};
pub use shape::{conv_macs, ConvParams, ConvShape, MAX_ELEMENTS};

/// The algorithm that computes a convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConvAlgo {
    /// The fastest algorithm that applies.
    #[default]
    Auto,
    /// The literal sum (reference).
    Direct,
    /// Unfold + GEMM.
    Im2col,
    /// Explicit Toeplitz matrix times the flattened input.
    Toeplitz,
    /// Direct convolution with output columns (the width) in the vector lanes (depthwise, few
    /// input channels; zero padding). CLI name `width-lanes` (formerly `rows`).
    WidthLanes,
    /// Direct convolution with output channels in the vector lanes (≥ 16 output channels per
    /// group; zero padding, width stride 1 or 2). CLI name `channel-lanes` (formerly `blocked`).
    ChannelLanes,
    /// Direct convolution with 16 images of the batch in the vector lanes (few output channels,
    /// narrow planes; zero padding, one group, width stride 1, 1-D and 2-D). CLI name
    /// `batch-lanes`.
    BatchLanes,
    /// Winograd F(4,3) for 3-tap kernels at stride 1 (1-D, 2-D, 3-D; zero padding).
    Winograd,
}

impl ConvAlgo {
    /// The name `--algo` takes (and reports print) for this algorithm.
    pub fn name(self) -> &'static str {
        match self {
            ConvAlgo::Auto => "auto",
            ConvAlgo::Direct => "direct",
            ConvAlgo::Im2col => "im2col",
            ConvAlgo::Toeplitz => "toeplitz",
            ConvAlgo::WidthLanes => "width-lanes",
            ConvAlgo::ChannelLanes => "channel-lanes",
            ConvAlgo::BatchLanes => "batch-lanes",
            ConvAlgo::Winograd => "winograd",
        }
    }
}

impl std::str::FromStr for ConvAlgo {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(ConvAlgo::Auto),
            "direct" => Ok(ConvAlgo::Direct),
            "im2col" => Ok(ConvAlgo::Im2col),
            "toeplitz" => Ok(ConvAlgo::Toeplitz),
            // `rows` and `blocked` are the names of earlier versions, still accepted
            "width-lanes" | "rows" => Ok(ConvAlgo::WidthLanes),
            "channel-lanes" | "blocked" => Ok(ConvAlgo::ChannelLanes),
            "batch-lanes" => Ok(ConvAlgo::BatchLanes),
            "winograd" => Ok(ConvAlgo::Winograd),
            _ => Err(Error::arg(
                "algo",
                format!(
                    "unknown algorithm '{s}'; use auto, direct, im2col, toeplitz, width-lanes, channel-lanes, batch-lanes or winograd"
                ),
            )),
        }
    }
}

/// Forward on flat buffers: `x: (N, Cin, D, H, W)`, `w: (Cout, Cin/g, kd, kh, kw)` (already
/// flipped for `--flip`), `y: (N, Cout, od, oh, ow)` (overwritten).
pub fn forward_slices(
    s: &ConvShape,
    algo: ConvAlgo,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [f32],
) -> Result<()> {
    if algo == ConvAlgo::Auto && dilated::wins(s) {
        return dilated::forward(s, x, w, bias, as_uninit(y));
    }
    match resolve_algo(s, algo) {
        ConvAlgo::Direct | ConvAlgo::Auto => direct::forward(s, x, w, bias, y),
        ConvAlgo::Im2col => im2col::forward(s, x, w, bias, y),
        ConvAlgo::Toeplitz => toeplitz::forward(s, x, w, bias, y)?,
        ConvAlgo::WidthLanes if width_lanes::suits(s) => {
            width_lanes::forward(s, x, w, bias, as_uninit(y))
        }
        // outside its domain the width-lanes kernel defers to im2col
        ConvAlgo::WidthLanes => im2col::forward(s, x, w, bias, y),
        ConvAlgo::ChannelLanes if channel_lanes::suits(s) => {
            channel_lanes::forward(s, x, w, bias, as_uninit(y))
        }
        // outside its domain the channel-lanes kernel defers to im2col
        ConvAlgo::ChannelLanes => im2col::forward(s, x, w, bias, y),
        ConvAlgo::BatchLanes if batch_lanes::suits(s) => batch_lanes::forward(s, x, w, bias, y),
        // outside its domain the batch-lanes kernel defers to im2col
        ConvAlgo::BatchLanes => im2col::forward(s, x, w, bias, y),
        ConvAlgo::Winograd if winograd::plane::applies(s) => {
            winograd::check_size(s)?;
            winograd::forward(s, x, w, bias, y)
        }
        // outside its domain Winograd defers to im2col
        ConvAlgo::Winograd => im2col::forward(s, x, w, bias, y),
    }
    Ok(())
}

/// Forward into `y: (N, Cout, od, oh, ow)` whose values need not be initialised. The
/// channel-lanes and width-lanes kernels, im2col's GEMMs, the Winograd path and the dilated
/// classes write every output value,
/// so they skip the zero fill (for big outputs the fill costs 3–10% of the convolution); the
/// other algorithms get zeros first.
pub fn forward_uninit(
    s: &ConvShape,
    algo: ConvAlgo,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
) -> Result<()> {
    forward_uninit_act(s, algo, x, w, bias, y, None)
}

/// [`forward_uninit`], then `y ← act(y)` when `act` is given (a convolution followed by its
/// activation, as one layer computes them in training: LeNet's `Conv2d → Sigmoid`). The
/// width-lanes and channel-lanes kernels apply the activation to each work item's output
/// planes right after computing them, while they are in the first-level cache (LeNet's first
/// layer's 4.8 MB output is otherwise written, read back from memory, and written again); the
/// other algorithms apply it in one pass afterwards. Same values either way: the activation is
/// [`crate::ops::activation::forward_inplace`]'s, element by element.
pub fn forward_uninit_act(
    s: &ConvShape,
    algo: ConvAlgo,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    y: &mut [MaybeUninit<f32>],
    act: Option<Activation>,
) -> Result<()> {
    // the direct kernels apply the activation per work item; the other paths after
    let split = algo == ConvAlgo::Auto && dilated::wins(s);
    match resolve_algo(s, algo) {
        _ if split => dilated::forward(s, x, w, bias, y)?,
        ConvAlgo::ChannelLanes if channel_lanes::suits(s) => {
            channel_lanes::forward_act(s, x, w, bias, y, act);
            return Ok(());
        }
        ConvAlgo::WidthLanes if width_lanes::suits(s) => {
            width_lanes::forward_act(s, x, w, bias, y, act);
            return Ok(());
        }
        ConvAlgo::Im2col => im2col::forward_uninit(s, x, w, bias, y),
        ConvAlgo::Winograd if winograd::plane::applies(s) => {
            winograd::check_size(s)?;
            winograd::plane::forward_uninit(s, x, w, bias, y);
        }
        _ => forward_slices(s, algo, x, w, bias, zeroed(y))?,
    }
    if let Some(act) = act {
        // SAFETY: every path above wrote every value of `y`
        crate::ops::activation::forward_inplace(act, unsafe { assume_init(y) });
    }
    Ok(())
}

/// Forward into a new buffer `(N, Cout, od, oh, ow)` ([`forward_uninit`]: no zero fill where
/// the kernel writes every value).
pub fn forward_new(
    s: &ConvShape,
    algo: ConvAlgo,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
) -> Result<Vec<f32>> {
    forward_new_act(s, algo, x, w, bias, None)
}

/// [`forward_new`] with the activation `act` applied ([`forward_uninit_act`]).
pub fn forward_new_act(
    s: &ConvShape,
    algo: ConvAlgo,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Option<Activation>,
) -> Result<Vec<f32>> {
    let len = s.batch * s.cout * s.window.out_len();
    let mut y = Box::<[f32]>::new_uninit_slice(len);
    // debug builds (the tests) poison the buffer: a value the kernel missed shows as NaN
    #[cfg(debug_assertions)]
    y.iter_mut().for_each(|v| {
        v.write(f32::NAN);
    });
    forward_uninit_act(s, algo, x, w, bias, &mut y, act)?;
    // SAFETY: forward_uninit_act writes every value of `y`
    Ok(unsafe { y.assume_init() }.into_vec())
}

/// Convolution forward: `y = conv(x, w) + b` with PyTorch semantics.
///
/// ```
/// use stride::ops::conv::{conv, ConvAlgo, ConvParams};
/// use stride::Tensor;
/// // x: (N=1, Cin=1, 3, 3), w: (Cout=1, Cin=1, 2, 2) → y: (1, 1, 2, 2)
/// let x = Tensor::new(vec![1, 1, 3, 3], (1..=9).map(|v| v as f32).collect())?;
/// let w = Tensor::new(vec![1, 1, 2, 2], vec![1.0, 0.0, 0.0, -1.0])?;
/// let y = conv(&x, &w, None, &ConvParams::default(), ConvAlgo::Auto)?;
/// assert_eq!(y.shape(), &[1, 1, 2, 2]);
/// assert_eq!(y.data(), &[-4.0, -4.0, -4.0, -4.0]); // x[i][j] - x[i+1][j+1]
/// # Ok::<(), stride::Error>(())
/// ```
pub fn conv(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: &ConvParams,
    algo: ConvAlgo,
) -> Result<Tensor> {
    conv_act(x, w, b, p, algo, None)
}

/// [`conv`] followed by an activation: `act(conv(x, w) + b)` ([`forward_uninit_act`]: in cache,
/// per work item, on the direct kernels).
/// PyTorch: `torch.sigmoid(F.conv2d(x, w, b, ...))`.
pub fn conv_act(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: &ConvParams,
    algo: ConvAlgo,
    act: Option<Activation>,
) -> Result<Tensor> {
    let s = ConvShape::new(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
    let flipped;
    let w = if p.flip {
        flipped = w.flip_spatial();
        &flipped
    } else {
        w
    };
    let y = forward_new_act(&s, algo, x.data(), w.data(), b.map(|b| b.data()), act)?;
    Tensor::new(s.out_shape(), y)
}
