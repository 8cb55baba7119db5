//! Convolution (PyTorch `torch.nn.functional.conv1d/2d/3d`): parameters, shape checking and the
//! choice of algorithm. The algorithms live beside this file and all agree:
//! - [`direct`]: the literal sum, the reference;
//! - [`im2col`]: unfold the input into columns, then one GEMM per image and group;
//! - [`toeplitz`]: the explicit (doubly blocked) Toeplitz matrix times the flattened input.
//!
//! Layouts: input `(N, Cin, *spatial)` or unbatched `(Cin, *spatial)`, weight
//! `(Cout, Cin/groups, *k)`, bias `(Cout)`, output `(N, Cout, *out)`.
//! Internally every convolution is 3-D ([`Window3`]); kernels see flat buffers.
//!
//! Backward ([`conv_backward`]) sits beside the forward: the input gradient (direct scatter,
//! col2im, or `Tᵀ gy`), the weight gradient (direct correlation or im2col) and the bias
//! gradient (a sum). The slice-level dispatchers ([`forward_slices`], [`backward_input_slices`],
//! [`backward_weight_slices`]) are shared with the transposed convolution, its adjoint.

pub mod backward;
pub mod blocked;
pub mod direct;
pub mod im2col;
pub mod rows;
pub mod toeplitz;
pub mod unfold;
pub mod winograd;

use crate::error::{Error, Result};
use crate::geometry::{PaddingMode, PaddingSpec, Window3, WindowSpec};
use crate::tensor::{fmt_shape, Tensor};
use std::mem::MaybeUninit;

pub use backward::{
    adjoint_problem, adjoint_weight, auto_algos, backward_input_slices, backward_weight_slices,
    check_grad_output, conv_backward, ConvGrads, GradRequest,
};

/// Most values in one tensor of a convolution (padded input or output): 2³², 16 GiB of f32.
pub const MAX_ELEMENTS: usize = 1 << 32;

/// Parameters of a convolution (PyTorch names and defaults).
#[derive(Clone, Debug, PartialEq)]
pub struct ConvParams {
    /// Stride per axis (one value applies to all).
    pub stride: Vec<usize>,
    /// Padding (explicit, `valid`, `same`, `full`).
    pub padding: PaddingSpec,
    /// Dilation per axis (one value applies to all).
    pub dilation: Vec<usize>,
    /// Number of groups: input and output channels split into `groups` independent convolutions.
    pub groups: usize,
    /// How the padding is filled.
    pub padding_mode: PaddingMode,
    /// True convolution (kernel flipped on every spatial axis) instead of cross-correlation.
    pub flip: bool,
}

impl Default for ConvParams {
    fn default() -> Self {
        ConvParams {
            stride: vec![1],
            padding: PaddingSpec::default(),
            dilation: vec![1],
            groups: 1,
            padding_mode: PaddingMode::Zeros,
            flip: false,
        }
    }
}

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
    /// Direct convolution by output rows (depthwise, few input channels; zero padding).
    Rows,
    /// Direct convolution with output channels in the vector lanes (≥ 16 output channels per
    /// group; zero padding, width stride 1 or 2).
    Blocked,
    /// Winograd F(4,3) for 3-tap kernels at stride 1 (1-D, 2-D, 3-D; zero padding).
    Winograd,
}

impl std::str::FromStr for ConvAlgo {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(ConvAlgo::Auto),
            "direct" => Ok(ConvAlgo::Direct),
            "im2col" => Ok(ConvAlgo::Im2col),
            "toeplitz" => Ok(ConvAlgo::Toeplitz),
            "rows" => Ok(ConvAlgo::Rows),
            "blocked" => Ok(ConvAlgo::Blocked),
            "winograd" => Ok(ConvAlgo::Winograd),
            _ => Err(Error::arg(
                "algo",
                format!(
                    "unknown algorithm '{s}'; use auto, direct, im2col, toeplitz, rows, blocked or winograd"
                ),
            )),
        }
    }
}

/// A validated convolution problem: sizes, groups and the window, ready for any algorithm.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvShape {
    /// Batch size `N` (1 for unbatched input).
    pub batch: usize,
    /// Whether the input had a batch axis.
    pub batched: bool,
    pub cin: usize,
    pub cout: usize,
    pub groups: usize,
    /// The spatial window (3-D, with leading singleton axes for 1-D and 2-D).
    pub window: Window3,
    pub mode: PaddingMode,
}

impl ConvShape {
    /// Checks the shapes of input, weight and bias against the parameters.
    pub fn new(
        input: &[usize],
        weight: &[usize],
        bias: Option<&[usize]>,
        p: &ConvParams,
    ) -> Result<Self> {
        let (batched, batch, cin, spatial) = split_input(
            input,
            weight,
            "convolution",
            "(Cout, Cin/groups, k1[, k2[, k3]])",
        )?;
        let (cout, cin_g) = (weight[0], weight[1]);
        let groups = p.groups;
        if groups == 0 {
            return Err(Error::arg("groups", "must be at least 1"));
        }
        if cin_g * groups != cin {
            return Err(Error::arg(
                "weight",
                format!(
                    "expects {} input channels (weight[1] = {cin_g} × groups {groups}) but the input has {cin}; \
                     the weight must be (Cout, Cin/groups, ...)",
                    cin_g * groups
                ),
            ));
        }
        if cin % groups != 0 || cout % groups != 0 {
            return Err(Error::arg(
                "groups",
                format!("{groups} does not divide the channels (Cin {cin}, Cout {cout}); pick a common divisor"),
            ));
        }
        if cout == 0 || cin == 0 {
            return Err(Error::arg("weight", "has zero channels"));
        }
        check_bias(bias, cout, "")?;
        let spec = kernel_window(weight, &p.stride, &p.dilation, &p.padding);
        let window = Window3::new(spatial, &spec)?;
        window.check_mode(p.padding_mode)?;
        let shape = ConvShape {
            batch,
            batched,
            cin,
            cout,
            groups,
            window,
            mode: p.padding_mode,
        };
        shape.check_size("padding", "use less padding or a smaller input")?;
        Ok(shape)
    }

    /// Refuses a problem whose padded input `N·Cin·Π(pb + i + pe)` (which the row kernel
    /// builds) or output `N·Cout·out` would hold more than [`MAX_ELEMENTS`] values, or whose
    /// padded input, output and one gradient of the output together pass the memory limit
    /// ([`crate::limits`]); `arg` and `fix` name the argument to change and how.
    pub fn check_size(&self, arg: &str, fix: &str) -> Result<()> {
        let axes = &self.window.axes;
        let dims = |c: usize, lens: [usize; 3]| [self.batch, c, lens[0], lens[1], lens[2]];
        let padded = dims(self.cin, axes.map(|a| a.padded()));
        let out = dims(self.cout, axes.map(|a| a.output));
        let count = |d: &[usize]| {
            d.iter()
                .try_fold(1usize, |n, &l| n.checked_mul(l))
                .filter(|&n| n <= MAX_ELEMENTS)
        };
        if count(&padded).is_none() || count(&out).is_none() {
            return Err(Error::TooLarge {
                what: arg.into(),
                msg: format!(
                    "needs a tensor of more than {MAX_ELEMENTS} values (16 GiB of f32); {fix}"
                ),
            });
        }
        crate::limits::check(arg, crate::limits::f32_bytes(&[&padded, &out, &out]), fix)
    }

    /// Input channels per group.
    pub fn cin_g(&self) -> usize {
        self.cin / self.groups
    }

    /// Output channels per group.
    pub fn cout_g(&self) -> usize {
        self.cout / self.groups
    }

    /// Rows of the im2col matrix / columns of the reshaped weight: `Cin/g · kd·kh·kw`.
    pub fn k_len(&self) -> usize {
        self.cin_g() * self.window.taps()
    }

    /// Input shape (with or without the batch axis, as given).
    pub fn in_shape(&self) -> Vec<usize> {
        let mut s = vec![self.cin];
        s.extend(self.window.real_axes().iter().map(|a| a.input));
        if self.batched {
            s.insert(0, self.batch);
        }
        s
    }

    /// Output shape as PyTorch returns it (with or without the batch axis).
    pub fn out_shape(&self) -> Vec<usize> {
        let mut s = vec![self.cout];
        s.extend(self.window.output_shape());
        if self.batched {
            s.insert(0, self.batch);
        }
        s
    }

    /// Multiply-accumulates of the direct sum: `N · Cout · out · Cin/g · taps`.
    pub fn macs(&self) -> u64 {
        (self.batch * self.cout * self.window.out_len()) as u64 * self.k_len() as u64
    }
}

/// Checks the weight's rank (1 to 3 kernel axes, layout described by `layout`) and the input's
/// rank against it, and splits the input shape into (batched, N, C, spatial sizes). Shared by
/// convolution and transposed convolution.
pub(crate) fn split_input<'a>(
    input: &'a [usize],
    weight: &[usize],
    op: &str,
    layout: &str,
) -> Result<(bool, usize, usize, &'a [usize])> {
    if !(3..=5).contains(&weight.len()) {
        return Err(Error::arg(
            "weight",
            format!(
                "has shape {}; a {op} weight is {layout} with 1 to 3 kernel axes",
                fmt_shape(weight)
            ),
        ));
    }
    let nd = weight.len() - 2;
    match input.len() {
        r if r == nd + 2 => Ok((true, input[0], input[1], &input[2..])),
        r if r == nd + 1 => Ok((false, 1, input[0], &input[1..])),
        _ => Err(Error::arg(
            "input",
            format!(
                "has shape {}, but a {nd}-D {op} (weight {}) takes (N, Cin, {s}) or (Cin, {s})",
                fmt_shape(input),
                fmt_shape(weight),
                s = spatial_names(nd)
            ),
        )),
    }
}

/// Checks a bias shape against `cout`, one value per output channel; `how` says how Cout follows
/// from the weight (empty when it is weight[0]). Shared by convolution and its transpose.
pub(crate) fn check_bias(bias: Option<&[usize]>, cout: usize, how: &str) -> Result<()> {
    match bias {
        Some(b) if b != [cout] => Err(Error::arg(
            "bias",
            format!(
                "has shape {} but must be ({cout}), one value per output channel{how}",
                fmt_shape(b)
            ),
        )),
        _ => Ok(()),
    }
}

/// The window of the kernel `weight[2..]` (weight `(C, C', *k)`) at the given stride, dilation
/// and padding; convolutions have no ceil mode.
pub(crate) fn kernel_window(
    weight: &[usize],
    stride: &[usize],
    dilation: &[usize],
    padding: &PaddingSpec,
) -> WindowSpec {
    WindowSpec {
        kernel: weight[2..].to_vec(),
        stride: stride.to_vec(),
        dilation: dilation.to_vec(),
        padding: padding.clone(),
        ceil_mode: false,
    }
}

fn spatial_names(nd: usize) -> &'static str {
    ["L", "H, W", "D, H, W"][nd - 1]
}

/// Picks the algorithm `Auto` stands for.
pub fn choose_algo(s: &ConvShape) -> ConvAlgo {
    // Measured on the standard shapes (2 threads): 1×1 is a plain GEMM with no copy. With 16
    // or more output channels per group the channel-blocked kernel runs at 190–210 GFLOP/s
    // (LeNet's second layer 1.45× the row kernel, 3×3 with 64 channels 1.15×, 3×3 with 256
    // channels 1.07× im2col, the strided 7×7 stem 1.5× im2col), except where the row kernel
    // fills all 16 lanes (width a multiple of 16: the 1-D and 3-D shapes, ~1.08×) or the
    // reduction is too short to pay for the blocked kernel's transposed stores (Cin/g·taps <
    // 64: a 3×3 or 5×5 first layer on one channel runs 1.5–2× faster by rows). The row
    // kernel takes the rest while the reduction Cin/g·taps is small (LeNet's first layer,
    // depthwise); beyond that, im2col. Winograd stays opt-in: on 3×3 with 64 input channels
    // its rounding error is ~5e-6 of the output scale, 10× im2col's, too close to float32
    // comparison tolerances to pick silently.
    let rows_fit = rows::suits(s) && s.k_len() <= 1024;
    if im2col::is_pointwise(s) {
        ConvAlgo::Im2col
    } else if blocked::suits(s)
        && s.cout_g() >= 16
        && !(rows_fit
            && (s.window.axes[2].output.is_multiple_of(16) || s.k_len() < blocked::MIN_REDUCTION))
    {
        ConvAlgo::Blocked
    } else if rows_fit {
        ConvAlgo::Rows
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
    match resolve_algo(s, algo) {
        ConvAlgo::Direct | ConvAlgo::Auto => direct::forward(s, x, w, bias, y),
        ConvAlgo::Im2col => im2col::forward(s, x, w, bias, y),
        ConvAlgo::Toeplitz => toeplitz::forward(s, x, w, bias, y)?,
        ConvAlgo::Rows if rows::suits(s) => rows::forward(s, x, w, bias, y),
        // outside its domain the row kernel defers to im2col
        ConvAlgo::Rows => im2col::forward(s, x, w, bias, y),
        ConvAlgo::Blocked if blocked::suits(s) => blocked::forward(s, x, w, bias, as_uninit(y)),
        // outside its domain the blocked kernel defers to im2col
        ConvAlgo::Blocked => im2col::forward(s, x, w, bias, y),
        ConvAlgo::Winograd if winograd::suits(s) => winograd::forward(s, x, w, bias, y),
        // outside its domain Winograd defers to im2col
        ConvAlgo::Winograd => im2col::forward(s, x, w, bias, y),
    }
    Ok(())
}

/// `y` viewed as possibly uninitialised values, for a kernel that only writes (initialised
/// floats) into it.
fn as_uninit(y: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; the callee only stores initialised f32 values, so `y` stays valid.
    unsafe { &mut *(y as *mut [f32] as *mut [MaybeUninit<f32>]) }
}

/// Forward into a new buffer `(N, Cout, od, oh, ow)`. The blocked kernel writes every output
/// value, so its buffer skips the zero fill (for big outputs the fill costs 3–10% of the
/// convolution); the other algorithms get zeros.
pub fn forward_new(
    s: &ConvShape,
    algo: ConvAlgo,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let len = s.batch * s.cout * s.window.out_len();
    if resolve_algo(s, algo) == ConvAlgo::Blocked && blocked::suits(s) {
        let mut y = Box::<[f32]>::new_uninit_slice(len);
        // debug builds (the tests) poison the buffer: a value the kernel missed shows as NaN
        #[cfg(debug_assertions)]
        y.iter_mut().for_each(|v| {
            v.write(f32::NAN);
        });
        blocked::forward(s, x, w, bias, &mut y);
        // SAFETY: blocked::forward writes every value of `y`
        return Ok(unsafe { y.assume_init() }.into_vec());
    }
    let mut y = Tensor::zeros(&[len]).into_data();
    forward_slices(s, algo, x, w, bias, &mut y)?;
    Ok(y)
}

/// Convolution forward: `y = conv(x, w) + b` with PyTorch semantics.
pub fn conv(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    p: &ConvParams,
    algo: ConvAlgo,
) -> Result<Tensor> {
    let s = ConvShape::new(x.shape(), w.shape(), b.map(|b| b.shape()), p)?;
    let flipped;
    let w = if p.flip {
        flipped = w.flip_spatial();
        &flipped
    } else {
        w
    };
    let y = forward_new(&s, algo, x.data(), w.data(), b.map(|b| b.data()))?;
    Tensor::new(s.out_shape(), y)
}
