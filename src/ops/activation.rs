//! Element-wise activations (ReLU, sigmoid, tanh), forward next to backward, one loop per
//! direction through the [`Activation`] strategy enum. Large tensors are split across the rayon
//! pool in fixed chunks (element-wise work, so the result does not depend on the thread count).
//!
//! Backward passes use the *output* `y` (all three derivatives are cheap functions of it):
//! - ReLU:    `y = max(x, 0)`,          `dy/dx = [y > 0]` (PyTorch: gradient 0 at x = 0);
//! - sigmoid: `y = 1 / (1 + e^-x)`,     `dy/dx = y (1 - y)`;
//! - tanh:    `y = tanh x`,             `dy/dx = 1 - y²`.

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
            // 1/(1+e^-x) overflows gracefully: e^-x = inf gives 0, e^-x = 0 gives 1.
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
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

/// Forward, in place: `x[i] ← f(x[i])`.
pub fn forward_inplace(act: Activation, x: &mut [f32]) {
    let body = |c: &mut [f32]| c.iter_mut().for_each(|v| *v = act.f(*v));
    if x.len() >= 2 * CHUNK {
        x.par_chunks_mut(CHUNK).for_each(body);
    } else {
        body(x);
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
        assert_eq!(&y[..2], &[0.0, 1.0]);
        forward(Activation::Tanh, &x, &mut y);
        assert!((y[2] - 3f32.tanh()).abs() < 1e-7);
    }
}
