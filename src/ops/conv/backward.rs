//! Convolution backward: the gradients with respect to input, weight and bias, dispatched to
//! the algorithms beside this file (direct reference, col2im / im2col GEMM, Toeplitz, the
//! width-lanes and channel-lanes kernels; which one `auto` picks is [`super::auto`]'s), and the
//! adjoint problem that turns a stride-1 input gradient into a forward
//! convolution of the output gradient with the flipped kernel.

use super::auto::{adjoint_for, strided_rows_for, subpixel_for, weight_algo};
use super::*;
use crate::geometry::{PaddingMode, PaddingSpec};
use crate::tensor::fmt_shape;

/// Input gradient on flat buffers: `gy: (N, Cout, od, oh, ow)`, `w` as the forward used it,
/// `gx: (N, Cin, D, H, W)` (overwritten): the adjoint forward problem where `adjoint_for`
/// gives one, the sub-pixel decomposition where `subpixel_for` says, the row gather where
/// `strided_rows_for` says, otherwise the
/// algorithm's own form (direct scatter, `Tᵀ gy`, col2im).
pub fn backward_input_slices(
    s: &ConvShape,
    algo: ConvAlgo,
    gy: &[f32],
    w: &[f32],
    gx: &mut [f32],
) -> Result<()> {
    backward_input_uninit(s, algo, gy, w, as_uninit(gx))
}

/// [`backward_input_slices`] into `gx` that need not be initialised: every value is written,
/// and zeroed only where the chosen form accumulates (each col2im image and sub-pixel plane
/// zeroes itself in its own task; the direct and Toeplitz forms get one fill first).
pub fn backward_input_uninit(
    s: &ConvShape,
    algo: ConvAlgo,
    gy: &[f32],
    w: &[f32],
    gx: &mut [MaybeUninit<f32>],
) -> Result<()> {
    if let Some(t) = adjoint_for(s, algo) {
        // the flipped weight in a reused buffer (a fresh 2.4 MB one on 256 channels costs its
        // page faults on every call)
        return crate::ops::scratch::with(&ADJOINT_W, w.len(), |wt| {
            adjoint_weight_into(s, w, wt);
            forward_uninit(&t, ConvAlgo::Auto, gy, wt, None, gx)
        });
    }
    if subpixel_for(s, algo) {
        return subpixel::backward_input(s, gy, w, gx);
    }
    if strided_rows_for(s, algo) {
        strided_rows::backward_input(s, gy, w, gx);
        return Ok(());
    }
    if !matches!(algo, ConvAlgo::Direct | ConvAlgo::Toeplitz) {
        im2col::backward_input_uninit(s, gy, w, gx);
        return Ok(());
    }
    let gx = zeroed(gx);
    match algo {
        ConvAlgo::Direct => direct::backward_input(s, gy, w, gx),
        _ => toeplitz::backward_input(s, gy, w, gx)?,
    }
    Ok(())
}

/// Input gradient into a new buffer `(N, Cin, D, H, W)` ([`backward_input_uninit`]: no zero
/// fill of its own).
pub fn backward_input_new(
    s: &ConvShape,
    algo: ConvAlgo,
    gy: &[f32],
    w: &[f32],
) -> Result<Vec<f32>> {
    let mut gx = Box::<[f32]>::new_uninit_slice(s.batch * s.cin * s.window.in_len());
    // debug builds (the tests) poison the buffer: a value the kernel missed shows as NaN
    #[cfg(debug_assertions)]
    gx.iter_mut().for_each(|v| {
        v.write(f32::NAN);
    });
    backward_input_uninit(s, algo, gy, w, &mut gx)?;
    // SAFETY: backward_input_uninit writes every value of `gx`
    Ok(unsafe { gx.assume_init() }.into_vec())
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
    let pads = s
        .window
        .real_axes()
        .iter()
        .map(|a| a.adjoint_padding())
        .collect::<Option<Vec<_>>>()?;
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
    let mut wt = vec![0.0; w.len()];
    adjoint_weight_into(s, w, &mut wt);
    wt
}

/// [`adjoint_weight`] into `wt` (every value written): [`adjoint_weight_taps`] of every tap.
pub fn adjoint_weight_into(s: &ConvShape, w: &[f32], wt: &mut [f32]) {
    let taps: Vec<usize> = (0..s.window.taps()).collect();
    adjoint_weight_taps(s, w, &taps, wt)
}

/// The adjoint weight of a sub-kernel of `w`: the kernel of taps `taps` (kernel tap indices, in
/// the sub-kernel's order), flipped with its channels swapped, `wt[g·Cin/g + ic, oc, t] =
/// w[g·Cout/g + oc, ic, taps[len − 1 − t]]` (every value written; [`adjoint_weight`] with all
/// taps, and the sub-pixel phases' kernels with some). Each (group, input channel) row of `wt`
/// in parallel, written in order. (Element by element in the order of `w`, one thread, it took
/// 0.66 ms on 256 → 256 channels: 13% of that layer's input gradient.)
pub fn adjoint_weight_taps(s: &ConvShape, w: &[f32], taps: &[usize], wt: &mut [f32]) {
    use rayon::prelude::*;
    let (cin_g, cout_g, all) = (s.cin_g(), s.cout_g(), s.window.taps());
    let sub = taps.len();
    assert_eq!(w.len(), s.cout * cin_g * all);
    assert_eq!(wt.len(), s.cout * cin_g * sub);
    let fill = |(gi, row): (usize, &mut [f32])| {
        let (g, ic) = (gi / cin_g, gi % cin_g);
        for (oc, dst) in row.chunks_exact_mut(sub).enumerate() {
            let src = &w[((g * cout_g + oc) * cin_g + ic) * all..][..all];
            for (d, &t) in dst.iter_mut().zip(taps.iter().rev()) {
                *d = src[t];
            }
        }
    };
    // small weights (LeNet's) on this thread: a parallel dispatch would cost more
    if wt.len() < 1 << 15 {
        wt.chunks_mut(cout_g * sub).enumerate().for_each(fill);
    } else {
        wt.par_chunks_mut(cout_g * sub).enumerate().for_each(fill);
    }
}

thread_local! {
    /// Per-thread flipped weight of the adjoint input gradient, reused across calls.
    static ADJOINT_W: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Weight gradient on flat buffers: `x: (N, Cin, D, H, W)`, `gy: (N, Cout, od, oh, ow)`,
/// `gw: (Cout, Cin/g, kd, kh, kw)` (overwritten; the gradient of the weight as the forward used
/// it). Toeplitz has no weight-gradient form of its own and uses im2col, as Winograd does
/// outside its 3-tap stride-1 path; `Auto` picks by [`weight_algo`].
pub fn backward_weight_slices(
    s: &ConvShape,
    algo: ConvAlgo,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
) -> Result<()> {
    backward_weight_bias_slices(s, algo, x, gy, gw, None)
}

/// [`backward_weight_slices`], and the bias gradient `gb: (Cout)` when given: by the width-lanes
/// weight gradient in its own pass over `gy` (the output gradient read once, not twice), by
/// [`bias_grad`] on the other paths.
pub fn backward_weight_bias_slices(
    s: &ConvShape,
    algo: ConvAlgo,
    x: &[f32],
    gy: &[f32],
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
) -> Result<()> {
    if algo == ConvAlgo::Auto && dilated::weight_wins(s) {
        dilated::backward_weight(s, x, gy, gw)?;
        if let Some(gb) = gb {
            bias_grad(gy, s.batch, s.cout, gb);
        }
        return Ok(());
    }
    let algo = if algo == ConvAlgo::Auto {
        weight_algo(s)
    } else {
        algo
    };
    if algo == ConvAlgo::WidthLanes && width_lanes::suits(s) {
        width_lanes::backward_weight_bias(s, x, gy, gw, gb);
        return Ok(());
    }
    if let Some(gb) = gb {
        bias_grad(gy, s.batch, s.cout, gb);
    }
    match algo {
        ConvAlgo::Direct => direct::backward_weight(s, x, gy, gw),
        ConvAlgo::ChannelLanes if channel_lanes::suits(s) => {
            channel_lanes::backward_weight(s, x, gy, gw)
        }
        ConvAlgo::BatchLanes if batch_lanes::suits(s) => batch_lanes::backward_weight(s, x, gy, gw),
        ConvAlgo::Winograd if winograd::wgrad::applies(s) => {
            winograd::check_size(s)?;
            winograd::wgrad::backward_weight(s, x, gy, gw)
        }
        // Toeplitz has no weight-gradient form of its own, Winograd only on its 3-tap path
        ConvAlgo::Im2col
        | ConvAlgo::Toeplitz
        | ConvAlgo::WidthLanes
        | ConvAlgo::ChannelLanes
        | ConvAlgo::BatchLanes
        | ConvAlgo::Winograd
        | ConvAlgo::Auto => im2col::backward_weight(s, x, gy, gw),
    }
    Ok(())
}

/// Bias gradient, the fast path of [`direct::backward_bias`]: `gb[c] = Σ_n Σ_pos gy[n, c, pos]`,
/// channels in parallel; each plane summed in float32 over 16 lanes (vectorised), the plane
/// sums in float64. `gy`: (N, C, *out).
pub fn bias_grad(gy: &[f32], batch: usize, channels: usize, gb: &mut [f32]) {
    use rayon::prelude::*;
    let plane = gy.len() / (batch * channels).max(1);
    gb.par_iter_mut()
        .enumerate()
        .take(channels)
        .for_each(|(c, out)| {
            let mut acc = 0.0f64;
            for n in 0..batch {
                let p = &gy[(n * channels + c) * plane..][..plane];
                let mut lanes = [0.0f32; 16];
                let chunks = p.chunks_exact(16);
                let tail: f32 = chunks.remainder().iter().sum();
                for ch in chunks {
                    for (l, v) in lanes.iter_mut().zip(ch) {
                        *l += v;
                    }
                }
                acc += lanes.iter().map(|&v| v as f64).sum::<f64>() + tail as f64;
            }
            *out = acc as f32;
        });
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

/// Checks that an output gradient has the forward output's shape (error on `grad-output`);
/// the one check of convolution, transposed convolution and pooling backward passes.
pub fn check_grad_output(gy: &[usize], expected: &[usize]) -> Result<()> {
    if gy != expected {
        return Err(Error::arg(
            "grad-output",
            format!(
                "has shape {} but the forward output has shape {}; give one gradient per output value",
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
        let gx = backward_input_new(&s, algo, gy.data(), w_used.data())?;
        grads.input = Some(Tensor::new(x.shape().to_vec(), gx)?);
    }
    if want.weight {
        let mut gw = Tensor::zeros(w.shape());
        let mut gb = want.bias.then(|| Tensor::zeros(&[s.cout]));
        let gbd = gb.as_mut().map(|g| g.data_mut());
        backward_weight_bias_slices(&s, algo, x.data(), gy.data(), gw.data_mut(), gbd)?;
        grads.weight = Some(if p.flip { gw.flip_spatial() } else { gw });
        grads.bias = gb;
    } else if want.bias {
        let mut gb = Tensor::zeros(&[s.cout]);
        bias_grad(gy.data(), s.batch, s.cout, gb.data_mut());
        grads.bias = Some(gb);
    }
    Ok(grads)
}
