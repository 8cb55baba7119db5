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

    #[inline]
    fn f(self, x: f32) -> f32 {
        match self {
            Activation::Relu => x.max(0.0),
            // 1/(1+e^-x): e^-x saturates at e^±88, giving 0 and 1 at the ends.
            Activation::Sigmoid => 1.0 / (1.0 + exp_fast(-x)),
            Activation::Tanh => x.tanh(),
        }
    }

    #[inline]
    fn df_from_y(self, y: f32) -> f32 {
        match self {
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
        }
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
    let x = x.clamp(-87.3, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 5.000_000_1e-1;
    let er = p * r * r + r + 1.0;
    f32::from_bits(((n as i32 + 127) as u32) << 23) * er
}

/// Forward, in place: `x[i] ← f(x[i])`.
pub fn forward_inplace(act: Activation, x: &mut [f32]) {
    let body = |c: &mut [f32]| c.iter_mut().for_each(|v| *v = act.f(*v));
    if x.len() >= 2 * CHUNK {
        x.par_chunks_mut(CHUNK).for_each(body);
    } else {
        body(x);
    }
}

/// Forward in place that also keeps a copy of the output: `x[i] ← f(x[i])`, `keep[i] = x[i]`
/// (one pass over memory instead of two, for layers that cache their output).
pub fn forward_inplace_keep(act: Activation, x: &mut [f32], keep: &mut [f32]) {
    debug_assert_eq!(x.len(), keep.len());
    let body = |(xc, kc): (&mut [f32], &mut [f32])| {
        for (v, k) in xc.iter_mut().zip(kc) {
            *v = act.f(*v);
            *k = *v;
        }
    };
    if x.len() >= 2 * CHUNK {
        x.par_chunks_mut(CHUNK)
            .zip(keep.par_chunks_mut(CHUNK))
            .for_each(body);
    } else {
        body((x, keep));
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
    let body = |(gc, yc): (&mut [f32], &[f32])| {
        gc.iter_mut()
            .zip(yc)
            .for_each(|(g, &y)| *g *= act.df_from_y(y));
    };
    if g.len() >= 2 * CHUNK {
        g.par_chunks_mut(CHUNK)
            .zip(y.par_chunks(CHUNK))
            .for_each(body);
    } else {
        body((g, y));
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
}
