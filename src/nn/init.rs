//! Weight initialisation, as `torch.nn.init`: Xavier/Glorot (uniform and normal), He/Kaiming
//! (uniform and normal, for ReLU), and PyTorch's default for `Linear` and `ConvNd`.
//!
//! Fans of a weight `(out, in, *k)`: `fan_in = in · Πk`, `fan_out = out · Πk`.
//! - default (PyTorch `reset_parameters`): `kaiming_uniform_(a=√5)` = U(±1/√fan_in) for the weight
//!   and U(±1/√fan_in) for the bias;
//! - `xavier_uniform_`: U(±√(6/(fan_in + fan_out))); `xavier_normal_`: N(0, 2/(fan_in + fan_out));
//! - `kaiming_uniform_(nonlinearity='relu')`: U(±√(6/fan_in)); `kaiming_normal_`: N(0, 2/fan_in).
//!
//! Whatever the weight scheme, biases keep PyTorch's default (as d2l's `init_cnn` does).

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// A weight-initialisation scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Init {
    /// PyTorch's default for `Linear` / `ConvNd`.
    #[default]
    Default,
    XavierUniform,
    XavierNormal,
    KaimingUniform,
    KaimingNormal,
}

impl Init {
    /// The CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Init::Default => "default",
            Init::XavierUniform => "xavier",
            Init::XavierNormal => "xavier-normal",
            Init::KaimingUniform => "kaiming",
            Init::KaimingNormal => "kaiming-normal",
        }
    }
}

impl std::str::FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "default" | "pytorch" => Init::Default,
            "xavier" | "xavier-uniform" | "glorot" => Init::XavierUniform,
            "xavier-normal" => Init::XavierNormal,
            "kaiming" | "kaiming-uniform" | "he" => Init::KaimingUniform,
            "kaiming-normal" | "he-normal" => Init::KaimingNormal,
            _ => {
                return Err(Error::arg(
                    "init",
                    format!(
                        "unknown initialisation '{s}'; use default, xavier, xavier-normal, \
                         kaiming or kaiming-normal"
                    ),
                ))
            }
        })
    }
}

/// `(fan_in, fan_out)` of a weight shaped `(out, in, *k)`.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    let receptive: usize = shape.iter().skip(2).product();
    let fan_in = shape.get(1).copied().unwrap_or(1) * receptive;
    let fan_out = shape.first().copied().unwrap_or(1) * receptive;
    (fan_in, fan_out)
}

/// Fills a weight `(out, in, *k)` according to `init`.
pub fn init_weight(init: Init, w: &mut Tensor, rng: &mut Rng) {
    let (fi, fo) = fans(w.shape());
    let (fi, fo) = (fi.max(1) as f32, fo.max(1) as f32);
    let uniform = |b: f32, rng: &mut Rng, w: &mut Tensor| {
        w.data_mut().iter_mut().for_each(|v| *v = rng.range(-b, b));
    };
    let normal = |std: f32, rng: &mut Rng, w: &mut Tensor| {
        w.data_mut()
            .iter_mut()
            .for_each(|v| *v = std * rng.normal());
    };
    match init {
        Init::Default => uniform(1.0 / fi.sqrt(), rng, w),
        Init::XavierUniform => uniform((6.0 / (fi + fo)).sqrt(), rng, w),
        Init::XavierNormal => normal((2.0 / (fi + fo)).sqrt(), rng, w),
        Init::KaimingUniform => uniform((6.0 / fi).sqrt(), rng, w),
        Init::KaimingNormal => normal((2.0 / fi).sqrt(), rng, w),
    }
}

/// Fills a bias with PyTorch's default, U(±1/√fan_in).
pub fn init_bias(b: &mut Tensor, fan_in: usize, rng: &mut Rng) {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    b.data_mut()
        .iter_mut()
        .for_each(|v| *v = rng.range(-bound, bound));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_and_bounds() {
        assert_eq!(fans(&[6, 1, 5, 5]), (25, 150));
        assert_eq!(fans(&[120, 400]), (400, 120));
        let mut w = Tensor::zeros(&[120, 400]);
        init_weight(Init::XavierUniform, &mut w, &mut Rng::new(0));
        let b = (6.0f32 / 520.0).sqrt();
        assert!(w.max_abs() <= b && w.max_abs() > 0.9 * b);
    }
}
