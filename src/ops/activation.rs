//! Element-wise activations (ReLU, sigmoid, tanh), forward next to backward, one loop per
//! direction through the [`Activation`] strategy enum. Large tensors are split across the rayon
//! pool in fixed chunks (element-wise work, so the result does not depend on the thread count).
//!
//! Backward passes use the *output* `y` (all three derivatives are cheap functions of it):
//! - ReLU:    `y = max(x, 0)`,          `dy/dx = [y > 0]` (PyTorch: gradient 0 at x = 0);
//! - sigmoid: `y = 1 / (1 + e^-x)`,     `dy/dx = y (1 - y)`;
//! - tanh:    `y = tanh x`,             `dy/dx = 1 - y²`.
//!
//! The sigmoid uses [`exp_fast`], a branch-free `e^x` (Cephes' range reduction and polynomial,
//! within 2 ulp of `f32::exp`) that the compiler vectorises; libm's scalar `expf` made the
//! sigmoid the slowest element-wise op of LeNet.

use rayon::prelude::*;

/// Elements per parallel chunk; below two chunks the loop stays on the calling thread.
const CHUNK: usize = 1 << 15;

/// Which element-wise non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
}

impl Activation {
    /// PyTorch's module name (`ReLU`, `Sigmoid`, `Tanh`).
    pub fn torch_name(self) -> &'static str {
        match self {
            Activation::Relu => "ReLU",
            Activation::Sigmoid => "Sigmoid",
            Activation::Tanh => "Tanh",
        }
    }
}

#[inline(always)]
pub(crate) fn relu(x: f32) -> f32 {
    x.max(0.0)
}

#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    // 1/(1+e^-x): e^-x saturates at e^±88, giving ~0 and 1 at the ends
    1.0 / (1.0 + exp_fast(-x))
}

#[inline(always)]
pub(crate) fn relu_grad(y: f32) -> f32 {
    if y > 0.0 {
        1.0
    } else {
        0.0
    }
}

#[inline(always)]
pub(crate) fn sigmoid_grad(y: f32) -> f32 {
    y * (1.0 - y)
}

#[inline(always)]
pub(crate) fn tanh_grad(y: f32) -> f32 {
    1.0 - y * y
}

/// Runs `f` compiled for AVX-512 when the CPU has it (the loops inside are inlined into the
/// wrapper and vectorised 16 wide), else as is. Same operations either way (Rust never fuses
/// `a * b + c`), so results are bit-identical on both paths.
#[inline(always)]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        /// `f` compiled for AVX-512.
        ///
        /// # Safety
        /// The CPU must support AVX-512F; checked by [`crate::ops::simd::avx512`] below.
        #[target_feature(enable = "avx512f")]
        unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if crate::ops::simd::avx512() {
            // SAFETY: the CPU supports AVX-512 (checked just above).
            return unsafe { avx512(f) };
        }
    }
    f()
}

/// Runs `body` over matching chunks of `a` and `b`, in parallel when large. Chunks are fixed,
/// so results never depend on the thread count.
fn chunked<B: Sync + ?Sized>(
    a: &mut [f32],
    b: &mut [f32],
    extra: &B,
    body: impl Fn(&mut [f32], &mut [f32], &B) + Sync,
) {
    if a.len() >= 2 * CHUNK {
        a.par_chunks_mut(CHUNK)
            .zip(b.par_chunks_mut(CHUNK))
            .for_each(|(ac, bc)| body(ac, bc, extra));
    } else {
        body(a, b, extra);
    }
}

/// One element-wise loop per function (monomorphised, so each one vectorises).
fn map_keep(x: &mut [f32], keep: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    chunked(x, keep, &(), |xc, kc, _| {
        wide(|| {
            for (v, k) in xc.iter_mut().zip(kc.iter_mut()) {
                *v = f(*v);
                *k = *v;
            }
        })
    });
}

fn map_inplace(x: &mut [f32], f: impl Fn(f32) -> f32 + Sync) {
    let body = |c: &mut [f32]| wide(|| c.iter_mut().for_each(|v| *v = f(*v)));
    if x.len() >= 2 * CHUNK {
        x.par_chunks_mut(CHUNK).for_each(body);
    } else {
        body(x);
    }
}

fn scale_by(g: &mut [f32], y: &[f32], df: impl Fn(f32) -> f32 + Sync) {
    let body = |(gc, yc): (&mut [f32], &[f32])| {
        wide(|| gc.iter_mut().zip(yc).for_each(|(g, &y)| *g *= df(y)));
    };
    if g.len() >= 2 * CHUNK {
        g.par_chunks_mut(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .for_each(body);
    } else {
        body((g, y));
    }
}

/// `e^x` without branches or table lookups, so loops over it vectorise. Cody–Waite range
/// reduction `x = n·ln2 + r`, `|r| ≤ ln2/2`, then Cephes' degree-6 polynomial for `e^r`, scaled
/// by `2^n` through the exponent bits. The input is clamped to `[-87.3, 88]` (the normal range).
#[inline(always)]
pub fn exp_fast(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2^23: adding and subtracting it rounds to the nearest integer in any SIMD width
    const ROUND: f32 = 12_582_912.0;
    #[allow(clippy::manual_clamp)] // max/min (not clamp) so the loop vectorises
    let x = x.max(-87.3).min(88.0);
    // fused multiply-adds (`mul_add`: one rounding each, the same bits on every path: the
    // AVX-512 build issues `vfmadd`, a build without FMA calls libm's exactly rounded `fmaf`);
    // half the instructions of separate multiplies and adds, 1.5× the sigmoid's speed
    let t = x.mul_add(LOG2E, ROUND);
    let n = t - ROUND;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let p = 1.987_569_2e-4f32
        .mul_add(r, 1.398_2e-3)
        .mul_add(r, 8.333_452e-3)
        .mul_add(r, 4.166_579_6e-2)
        .mul_add(r, 1.666_666_5e-1)
        .mul_add(r, 0.5);
    let er = (p * r).mul_add(r, r) + 1.0;
    // 2^n from the bits of t, whose low mantissa bits hold n (no float → int conversion, which
    // would not vectorise)
    let e = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32) + 127;
    f32::from_bits((e as u32) << 23) * er
}

/// Forward, in place: `x[i] ← f(x[i])`.
pub fn forward_inplace(act: Activation, x: &mut [f32]) {
    match act {
        Activation::Relu => map_inplace(x, relu),
        Activation::Sigmoid => map_inplace(x, sigmoid),
        Activation::Tanh => map_inplace(x, f32::tanh),
    }
}

/// Forward in place that also keeps a copy of the output: `x[i] ← f(x[i])`, `keep[i] = x[i]`
/// (one pass over memory instead of two, for layers that cache their output).
pub fn forward_inplace_keep(act: Activation, x: &mut [f32], keep: &mut [f32]) {
    debug_assert_eq!(x.len(), keep.len());
    match act {
        Activation::Relu => map_keep(x, keep, relu),
        Activation::Sigmoid => map_keep(x, keep, sigmoid),
        Activation::Tanh => map_keep(x, keep, f32::tanh),
    }
}

/// Forward into a separate buffer: `y[i] = f(x[i])`.
pub fn forward(act: Activation, x: &[f32], y: &mut [f32]) {
    y.copy_from_slice(x);
    forward_inplace(act, y);
}

/// Backward, in place on the incoming gradient: `g[i] ← g[i] · f'(x[i])`, with `f'` computed from
/// the forward output `y`.
pub fn backward_inplace(act: Activation, y: &[f32], g: &mut [f32]) {
    debug_assert_eq!(y.len(), g.len());
    match act {
        Activation::Relu => scale_by(g, y, relu_grad),
        Activation::Sigmoid => scale_by(g, y, sigmoid_grad),
        Activation::Tanh => scale_by(g, y, tanh_grad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives() {
        let x = [-2.0f32, 0.0, 3.0];
        let mut y = [0.0; 3];
        forward(Activation::Relu, &x, &mut y);
        assert_eq!(y, [0.0, 0.0, 3.0]);
        forward(Activation::Sigmoid, &x, &mut y);
        assert!((y[1] - 0.5).abs() < 1e-7);
        let mut g = [1.0; 3];
        backward_inplace(Activation::Sigmoid, &y, &mut g);
        assert!((g[1] - 0.25).abs() < 1e-7);
        forward(Activation::Sigmoid, &[-100.0, 100.0], &mut y[..2]);
        assert!(y[0] >= 0.0 && y[0] < 1e-37 && y[1] == 1.0, "{y:?}");
        forward(Activation::Tanh, &x, &mut y);
        assert!((y[2] - 3f32.tanh()).abs() < 1e-7);
    }

    #[test]
    fn exp_fast_is_within_two_ulp() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp_fast(x), x.exp());
            assert!((a - b).abs() <= 2.5e-7 * b, "x={x}: {a} vs {b}");
            x += 0.0137;
        }
        assert_eq!(exp_fast(-1000.0), (-87.3f32).exp());
        assert!(exp_fast(1000.0).is_finite());
    }

    /// The vectorised sigmoid against `1/(1+e^-x)` in f64 on a dense range (every 1/1024 in
    /// [-100, 100], through the AVX-512 path when the CPU has it, in parallel chunks): within
    /// 3 ulp (of 2^-23 relative) where the result is normal, within 2^-126 absolutely below,
    /// never NaN.
    #[test]
    fn sigmoid_is_within_float32_rounding_of_f64() {
        let mut x: Vec<f32> = (-102_400..=102_400).map(|i| i as f32 / 1024.0).collect();
        x.extend([
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MAX,
            f32::MIN,
            1e30,
            -1e30,
        ]);
        let mut y = vec![0.0; x.len()];
        forward(Activation::Sigmoid, &x, &mut y);
        for (&xv, &yv) in x.iter().zip(&y) {
            let want = 1.0 / (1.0 + (-(xv as f64)).exp());
            let err = (yv as f64 - want).abs();
            // below the normal range (x < -87.3, where e^-x is clamped) any value under 2^-126
            let tol = if want < f32::MIN_POSITIVE as f64 {
                f32::MIN_POSITIVE as f64
            } else {
                3.0 * want * f32::EPSILON as f64
            };
            assert!(
                !yv.is_nan() && err <= tol,
                "sigmoid({xv}) = {yv}, want {want}"
            );
        }
        // the derivative from the output: y (1 - y) at 0 and in the tails
        let mut g = vec![1.0; 3];
        backward_inplace(Activation::Sigmoid, &[0.5, 0.0, 1.0], &mut g);
        assert_eq!(g, [0.25, 0.0, 0.0]);
    }
}
