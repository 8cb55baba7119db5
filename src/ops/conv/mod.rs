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

pub mod direct;
pub mod im2col;
pub mod rows;
pub mod toeplitz;
pub mod unfold;
pub mod winograd;

use crate::error::{Error, Result};
use crate::geometry::{PaddingMode, PaddingSpec, Window3, WindowSpec};
use crate::tensor::{fmt_shape, Tensor};

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
            "winograd" => Ok(ConvAlgo::Winograd),
            _ => Err(Error::arg(
                "algo",
                format!(
                    "unknown algorithm '{s}'; use auto, direct, im2col, toeplitz, rows or winograd"
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
        if !(3..=5).contains(&weight.len()) {
            return Err(Error::arg(
                "weight",
                format!(
                    "has shape {}; a convolution weight is (Cout, Cin/groups, k1[, k2[, k3]]) with 1 to 3 kernel axes",
                    fmt_shape(weight)
                ),
            ));
        }
        let nd = weight.len() - 2;
        let batched = match input.len() {
            r if r == nd + 2 => true,
            r if r == nd + 1 => false,
            _ => {
                return Err(Error::arg(
                    "input",
                    format!(
                        "has shape {}, but a {nd}-D convolution (weight {}) takes (N, Cin, {s}) or (Cin, {s})",
                        fmt_shape(input),
                        fmt_shape(weight),
                        s = spatial_names(nd)
                    ),
                ))
            }
        };
        let (batch, cin, spatial) = if batched {
            (input[0], input[1], &input[2..])
        } else {
            (1, input[0], &input[1..])
        };
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
        if let Some(b) = bias {
            if b != [cout] {
                return Err(Error::arg(
                    "bias",
                    format!(
                        "has shape {} but must be ({cout}), one value per output channel",
                        fmt_shape(b)
                    ),
                ));
            }
        }
        let spec = WindowSpec {
            kernel: weight[2..].to_vec(),
            stride: p.stride.clone(),
            dilation: p.dilation.clone(),
            padding: p.padding.clone(),
            ceil_mode: false,
        };
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
    /// builds) or output `N·Cout·out` would hold more than [`MAX_ELEMENTS`] values; `arg` and
    /// `fix` name the argument to change and how.
    pub fn check_size(&self, arg: &str, fix: &str) -> Result<()> {
        let count = |c: usize, lens: [usize; 3]| {
            lens.iter()
                .try_fold(self.batch.checked_mul(c)?, |n, &l| n.checked_mul(l))
                .filter(|&n| n <= MAX_ELEMENTS)
        };
        let axes = &self.window.axes;
        if count(self.cin, axes.map(|a| a.padded())).is_none()
            || count(self.cout, axes.map(|a| a.output)).is_none()
        {
            return Err(Error::TooLarge {
                what: arg.into(),
                msg: format!(
                    "needs a tensor of more than {MAX_ELEMENTS} values (16 GiB of f32); {fix}"
                ),
            });
        }
        Ok(())
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

fn spatial_names(nd: usize) -> &'static str {
    ["L", "H, W", "D, H, W"][nd - 1]
}

/// Picks the algorithm `Auto` stands for.
pub fn choose_algo(s: &ConvShape) -> ConvAlgo {
    // Measured on the standard shapes (CPU time, one thread): the register-blocked row kernel
    // beats im2col + GEMM while the reduction Cin/g·taps is small (LeNet 2×, depthwise 2.7×,
    // 3×3 with 64 channels 1.2×, 3-D 1.8×); from Cin/g·taps ≈ 2304 (3×3, 256 channels) and for
    // 1×1 (a plain GEMM, no copy) the GEMM wins. Winograd stays opt-in: on 3×3 with 64 input
    // channels its rounding error is ~5e-6 of the output scale, 10× im2col's, too close to
    // float32 comparison tolerances to pick silently.
    if rows::suits(s) && !im2col::is_pointwise(s) && s.k_len() <= 1024 {
        ConvAlgo::Rows
    } else {
        ConvAlgo::Im2col
    }
}

/// The adjoint problem that `Auto` uses for the input gradient: wherever it exists (stride 1,
/// zero padding), since the forward kernels it reaches beat col2im on every standard shape.
fn auto_adjoint(s: &ConvShape) -> Option<ConvShape> {
    adjoint_problem(s)
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
        ConvAlgo::Winograd if winograd::suits(s) => winograd::forward(s, x, w, bias, y),
        // outside its domain Winograd defers to im2col
        ConvAlgo::Winograd => im2col::forward(s, x, w, bias, y),
    }
    Ok(())
}

/// Input gradient on flat buffers: `gy: (N, Cout, od, oh, ow)`, `w` as the forward used it,
/// `gx: (N, Cin, D, H, W)` (overwritten). `Rows` and `Winograd` compute it as a forward
/// convolution ([`adjoint_problem`]) where that applies, so it gets the forward's fast kernels,
/// `Auto` where that is measured to win ([`auto_adjoint`]); otherwise col2im.
pub fn backward_input_slices(
    s: &ConvShape,
    algo: ConvAlgo,
    gy: &[f32],
    w: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    match algo {
        ConvAlgo::Direct => direct::backward_input(s, gy, w, gx),
        ConvAlgo::Auto => match auto_adjoint(s) {
            Some(t) => forward_slices(&t, ConvAlgo::Auto, gy, &adjoint_weight(s, w), None, gx)?,
            None => im2col::backward_input(s, gy, w, gx),
        },
        ConvAlgo::Rows | ConvAlgo::Winograd => match adjoint_problem(s) {
            Some(t) => forward_slices(&t, ConvAlgo::Auto, gy, &adjoint_weight(s, w), None, gx)?,
            None => im2col::backward_input(s, gy, w, gx),
        },
        ConvAlgo::Im2col => im2col::backward_input(s, gy, w, gx),
        ConvAlgo::Toeplitz => toeplitz::backward_input(s, gy, w, gx)?,
    }
    Ok(())
}

/// Names the kernels `Auto` uses for each pass of `s`: (forward, input gradient, weight gradient).
pub fn auto_algos(s: &ConvShape) -> [String; 3] {
    let name = |a: ConvAlgo| format!("{a:?}").to_lowercase();
    let bwd_in = match auto_adjoint(s) {
        Some(t) => format!("adj-{}", name(choose_algo(&t))),
        None => "col2im".into(),
    };
    let bwd_w = match choose_algo(s) {
        ConvAlgo::Rows => "rows",
        _ => "im2col",
    };
    [name(choose_algo(s)), bwd_in, bwd_w.into()]
}

/// At stride 1 with zero padding, the input gradient is itself a convolution: the output
/// gradient `gy: (N, Cout, *out)`, padded by `d·(k-1) - p` on each side, correlated with the
/// kernel flipped on every axis and with input and output channels swapped
/// ([`adjoint_weight`]) gives `gx: (N, Cin, *in)` — the "full convolution with the flipped
/// kernel" of the course. `None` when stride ≠ 1, another padding mode, or padding wider than
/// `d·(k-1)` (negative padding).
pub fn adjoint_problem(s: &ConvShape) -> Option<ConvShape> {
    if s.mode != PaddingMode::Zeros {
        return None;
    }
    let mut pads = vec![];
    for a in s.window.real_axes() {
        let span = a.dilation * (a.kernel - 1);
        if a.stride != 1 || a.pad_begin > span || a.pad_end > span {
            return None;
        }
        pads.push((span - a.pad_begin, span - a.pad_end));
    }
    let real = s.window.real_axes();
    let mut gy_shape = vec![s.batch, s.cout];
    gy_shape.extend(real.iter().map(|a| a.output));
    let mut wt_shape = vec![s.cin, s.cout_g()];
    wt_shape.extend(real.iter().map(|a| a.kernel));
    let p = ConvParams {
        stride: vec![1],
        padding: PaddingSpec::Explicit(pads),
        dilation: real.iter().map(|a| a.dilation).collect(),
        groups: s.groups,
        padding_mode: PaddingMode::Zeros,
        flip: false,
    };
    let t = ConvShape::new(&gy_shape, &wt_shape, None, &p).ok()?;
    // input pixels no window reads (possible when the caller sized the input freely, as
    // transposed convolution's output_padding does) get no value from this form
    (t.window.output_shape() == real.iter().map(|a| a.input).collect::<Vec<_>>()).then_some(t)
}

/// The weight of [`adjoint_problem`]: `wt[g·Cin/g + ic, oc, t] = w[g·Cout/g + oc, ic, taps-1-t]`
/// (channels swapped within each group, taps reversed = flipped on every axis).
pub fn adjoint_weight(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let (cin_g, cout_g, taps) = (s.cin_g(), s.cout_g(), s.window.taps());
    let mut wt = vec![0.0; w.len()];
    for g in 0..s.groups {
        for oc in 0..cout_g {
            for ic in 0..cin_g {
                let src = &w[((g * cout_g + oc) * cin_g + ic) * taps..][..taps];
                let dst = &mut wt[((g * cin_g + ic) * cout_g + oc) * taps..][..taps];
                for (d, v) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *v;
                }
            }
        }
    }
    wt
}

/// Weight gradient on flat buffers: `x: (N, Cin, D, H, W)`, `gy: (N, Cout, od, oh, ow)`,
/// `gw: (Cout, Cin/g, kd, kh, kw)` (overwritten; the gradient of the weight as the forward used
/// it). Toeplitz and the forward-only row kernel have no weight-gradient form of their own and
/// use im2col.
pub fn backward_weight_slices(
    s: &ConvShape,
    algo: ConvAlgo,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) -> Result<()> {
    match resolve_algo(s, algo) {
        ConvAlgo::Direct => direct::backward_weight(s, x, gy, gw),
        ConvAlgo::Rows if rows::suits(s) => rows::backward_weight(s, x, gy, gw),
        // Toeplitz and Winograd have no weight-gradient form of their own
        ConvAlgo::Im2col
        | ConvAlgo::Toeplitz
        | ConvAlgo::Rows
        | ConvAlgo::Winograd
        | ConvAlgo::Auto => im2col::backward_weight(s, x, gy, gw),
    }
    Ok(())
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
    let mut y = Tensor::zeros(&s.out_shape());
    forward_slices(
        &s,
        algo,
        x.data(),
        w.data(),
        b.map(|b| b.data()),
        y.data_mut(),
    )?;
    Ok(y)
}

/// Which gradients [`conv_backward`] computes.
#[derive(Clone, Copy, Debug, Default)]
pub struct GradRequest {
    pub input: bool,
    pub weight: bool,
    pub bias: bool,
}

impl GradRequest {
    /// All three gradients.
    pub fn all() -> Self {
        GradRequest {
            input: true,
            weight: true,
            bias: true,
        }
    }
}

/// Gradients of a loss with respect to input, weight and bias (those requested).
#[derive(Clone, Debug, Default)]
pub struct ConvGrads {
    /// Same shape as the input.
    pub input: Option<Tensor>,
    /// Same shape as the weight (for `--flip`, the gradient of the unflipped weight).
    pub weight: Option<Tensor>,
    /// `(Cout)`: the output gradient summed over batch and space (defined with or without a bias).
    pub bias: Option<Tensor>,
}

/// Checks that an output gradient has the forward output's shape.
pub fn check_grad_output(gy: &[usize], expected: &[usize]) -> Result<()> {
    if gy != expected {
        return Err(Error::arg(
            "grad-output",
            format!(
                "has shape {} but the forward output has shape {}; the output gradient must match it",
                fmt_shape(gy),
                fmt_shape(expected)
            ),
        ));
    }
    Ok(())
}

/// Convolution backward: given `gy = ∂E/∂y` (the forward output's shape), the gradients
/// `∂E/∂x`, `∂E/∂w` and `∂E/∂b` that `want` asks for. With `p.flip` the weight gradient is with
/// respect to the weight as given (the flipped weight's gradient, flipped back).
/// PyTorch: `torch.nn.grad.conv{1,2,3}d_input/_weight`, or `y.backward(gy)`.
pub fn conv_backward(
    x: &Tensor,
    w: &Tensor,
    gy: &Tensor,
    p: &ConvParams,
    algo: ConvAlgo,
    want: GradRequest,
) -> Result<ConvGrads> {
    let s = ConvShape::new(x.shape(), w.shape(), None, p)?;
    check_grad_output(gy.shape(), &s.out_shape())?;
    let flipped;
    let w_used = if p.flip {
        flipped = w.flip_spatial();
        &flipped
    } else {
        w
    };
    let mut grads = ConvGrads::default();
    if want.input {
        let mut gx = Tensor::zeros(x.shape());
        backward_input_slices(&s, algo, gy.data(), w_used.data(), gx.data_mut())?;
        grads.input = Some(gx);
    }
    if want.weight {
        let mut gw = Tensor::zeros(w.shape());
        backward_weight_slices(&s, algo, x.data(), gy.data(), gw.data_mut())?;
        grads.weight = Some(if p.flip { gw.flip_spatial() } else { gw });
    }
    if want.bias {
        let mut gb = Tensor::zeros(&[s.cout]);
        direct::backward_bias(gy.data(), s.batch, s.cout, gb.data_mut());
        grads.bias = Some(gb);
    }
    Ok(grads)
}
