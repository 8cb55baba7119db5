//! Learning a kernel from data (d2l 6.2.4, "Learning a Kernel"): given an input `X` and a
//! target `Y`, find the kernel `K` whose correlation with `X` gives `Y`, by gradient descent
//! on the squared error `L = Σ (X ⋆ K − Y)²`. Each step: `Ŷ = X ⋆ K`, `∂L/∂Ŷ = 2(Ŷ − Y)`,
//! `∂L/∂K = X ⋆ ∂L/∂Ŷ` (the convolution's kernel gradient), `K ← K − lr·∂L/∂K`.
//! Forward and gradient are the library's own convolution and its backward pass.

use crate::error::{Error, Result};
use crate::explain::{conv_grad, fmt_num, Explanation, Step};
use crate::ops::conv::{conv, conv_backward, ConvAlgo, ConvParams, ConvShape, GradRequest};
use crate::rng::Rng;
use crate::tensor::{fmt_shape, Tensor};

/// Settings of [`learn`]; the defaults are d2l's (learning rate 0.03, 10 steps).
#[derive(Clone, Debug)]
pub struct LearnConfig {
    /// Kernel size per spatial axis (`[1, 2]` for d2l's edge detector).
    pub kernel: Vec<usize>,
    pub lr: f32,
    pub steps: usize,
    /// Seed of the starting kernel, drawn uniformly from `±1/√(taps)` (PyTorch's default
    /// bound for a one-channel convolution without bias).
    pub seed: u64,
}

impl Default for LearnConfig {
    fn default() -> Self {
        LearnConfig {
            kernel: vec![1, 2],
            lr: 0.03,
            steps: 10,
            seed: 0,
        }
    }
}

/// The state after one step: its number (1-based), the loss before the update, and the kernel
/// after it.
#[derive(Clone, Debug)]
pub struct Record {
    pub step: usize,
    pub loss: f32,
    pub kernel: Tensor,
}

/// The run: the starting kernel, every step, and the final loss (of the learned kernel).
#[derive(Clone, Debug)]
pub struct Learned {
    pub start: Tensor,
    pub steps: Vec<Record>,
    pub final_loss: f32,
}

impl Learned {
    /// The learned kernel (the start when no step ran).
    pub fn kernel(&self) -> &Tensor {
        self.steps.last().map_or(&self.start, |r| &r.kernel)
    }
}

/// Checks shapes: `x` and `y` as `(1, 1, *spatial)` with `y` the shape of `x ⋆ K`.
fn check(x: &Tensor, y: &Tensor, cfg: &LearnConfig) -> Result<Vec<usize>> {
    let nd = cfg.kernel.len();
    if !(1..=3).contains(&nd) || cfg.kernel.contains(&0) {
        return Err(Error::arg(
            "kernel-size",
            "give one positive size per spatial axis, such as 1,2 (rows, columns)",
        ));
    }
    if !(cfg.lr.is_finite() && cfg.lr > 0.0) {
        return Err(Error::arg(
            "lr",
            "give a positive learning rate such as 0.03",
        ));
    }
    let mut w_shape = vec![1, 1];
    w_shape.extend(&cfg.kernel);
    if x.rank() != nd + 2 || x.shape()[..2] != [1, 1] {
        return Err(Error::arg(
            "input",
            format!(
                "is {}; give one single-channel image with {nd} spatial axes (a {nd}-D literal) to match --kernel-size",
                fmt_shape(x.shape())
            ),
        ));
    }
    let s = ConvShape::new(x.shape(), &w_shape, None, &params(nd))?;
    let out = s.out_shape();
    if y.shape() != out.as_slice() {
        return Err(Error::arg(
            "target",
            format!(
                "is {} but the correlation of the input {} with a {} kernel is {}; give a target of that shape",
                fmt_shape(&y.shape()[2.min(y.rank())..]),
                fmt_shape(&x.shape()[2..]),
                cfg.kernel.iter().map(|k| k.to_string()).collect::<Vec<_>>().join("×"),
                fmt_shape(&out[2..])
            ),
        ));
    }
    Ok(w_shape)
}

fn params(nd: usize) -> ConvParams {
    ConvParams {
        stride: vec![1; nd],
        dilation: vec![1; nd],
        ..ConvParams::default()
    }
}

/// `(L, ∂L/∂Ŷ)` for kernel `k`: the squared error and its output gradient `2(Ŷ − Y)`.
fn loss_and_grad(
    x: &Tensor,
    y: &Tensor,
    k: &Tensor,
    p: &ConvParams,
) -> Result<(f32, Tensor, Tensor)> {
    let y_hat = conv(x, k, None, p, ConvAlgo::Direct)?;
    let r: Vec<f32> = y_hat
        .data()
        .iter()
        .zip(y.data())
        .map(|(a, b)| a - b)
        .collect();
    let loss = r.iter().map(|v| (*v as f64) * (*v as f64)).sum::<f64>() as f32;
    let gy = Tensor::new(y.shape().to_vec(), r.iter().map(|v| 2.0 * v).collect())?;
    Ok((loss, y_hat, gy))
}

/// The starting kernel: uniform in `±1/√(taps)`, from `seed`.
pub fn start_kernel(kernel: &[usize], seed: u64) -> Tensor {
    let taps: usize = kernel.iter().product();
    let bound = 1.0 / (taps as f32).sqrt();
    let mut shape = vec![1, 1];
    shape.extend(kernel);
    Tensor::new(shape, Rng::new(seed).vec(taps, -bound, bound)).expect("kernel shape")
}

/// Learns a kernel: `cfg.steps` steps of gradient descent on `Σ (x ⋆ K − y)²`.
/// `x` and `y` are `(1, 1, *spatial)`.
pub fn learn(x: &Tensor, y: &Tensor, cfg: &LearnConfig) -> Result<Learned> {
    check(x, y, cfg)?;
    let p = params(cfg.kernel.len());
    let start = start_kernel(&cfg.kernel, cfg.seed);
    let mut k = start.clone();
    let mut steps = Vec::with_capacity(cfg.steps);
    let want = GradRequest {
        weight: true,
        ..GradRequest::default()
    };
    for step in 1..=cfg.steps {
        let (loss, _, gy) = loss_and_grad(x, y, &k, &p)?;
        let g = conv_backward(x, &k, &gy, &p, ConvAlgo::Direct, want)?
            .weight
            .expect("weight gradient requested");
        k.data_mut()
            .iter_mut()
            .zip(g.data())
            .for_each(|(kv, gv)| *kv -= cfg.lr * gv);
        steps.push(Record {
            step,
            loss,
            kernel: k.clone(),
        });
    }
    let (final_loss, _, _) = loss_and_grad(x, y, &k, &p)?;
    Ok(Learned {
        start,
        steps,
        final_loss,
    })
}

/// Works the first step out: the prediction, the residual, the loss, the kernel gradient as
/// the correlation of the input with `∂L/∂Ŷ` (every entry traced), and the update.
pub fn explain_first_step(x: &Tensor, y: &Tensor, cfg: &LearnConfig) -> Result<Explanation> {
    check(x, y, cfg)?;
    let nd = cfg.kernel.len();
    let p = params(nd);
    let k = start_kernel(&cfg.kernel, cfg.seed);
    let (loss, y_hat, gy) = loss_and_grad(x, y, &k, &p)?;
    let mut ex = Explanation {
        title: "Learning a kernel: the first gradient-descent step".into(),
        steps: vec![
            Step::new("Start")
                .line(format!(
                    "loss L = Σ (Ŷ − Y)² where Ŷ = X ⋆ K (cross-correlation, no padding, stride 1); start from K drawn uniformly in ±1/√{} (seed {})",
                    cfg.kernel.iter().product::<usize>(),
                    cfg.seed
                ))
                .show("X", x.clone(), nd)
                .show("Y (target)", y.clone(), nd)
                .show("K", k.clone(), nd),
            Step::new("Prediction and loss")
                .show("Ŷ = X ⋆ K", y_hat, nd)
                .show("∂L/∂Ŷ = 2(Ŷ − Y)", gy.clone(), nd)
                .conclude(format!("L = Σ (Ŷ − Y)² = {}", fmt_num(loss))),
        ],
    };
    let mut grad = conv_grad::explain_weight_grad(x, &k, &gy, &p)?.steps;
    if let Some(first) = grad.first_mut() {
        first.lines.insert(
            0,
            "the convolution's kernel gradient with E = L, y = Ŷ and g = ∂L/∂Ŷ; w is K".into(),
        );
    }
    ex.steps.extend(grad);
    let g = conv_backward(
        x,
        &k,
        &gy,
        &p,
        ConvAlgo::Direct,
        GradRequest {
            weight: true,
            ..Default::default()
        },
    )?
    .weight
    .expect("weight gradient requested");
    let new: Vec<f32> = k
        .data()
        .iter()
        .zip(g.data())
        .map(|(a, b)| a - cfg.lr * b)
        .collect();
    let terms: Vec<String> = k
        .data()
        .iter()
        .zip(g.data())
        .zip(&new)
        .map(|((a, b), c)| {
            format!(
                "{} − {}·{} = {}",
                fmt_num(*a),
                fmt_num(cfg.lr),
                paren(*b),
                fmt_num(*c)
            )
        })
        .collect();
    ex.steps.push(
        Step::new("Update")
            .line(format!("K ← K − lr·∂L/∂K with lr = {}", fmt_num(cfg.lr)))
            .line(terms.join("; "))
            .show(
                "K after one step",
                Tensor::new(k.shape().to_vec(), new)?,
                nd,
            ),
    );
    Ok(ex)
}

fn paren(v: f32) -> String {
    if v < 0.0 {
        format!("({})", fmt_num(v))
    } else {
        fmt_num(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// d2l 6.2.4: X is 6×8 ones with columns 2–5 zero; Y = X ⋆ [1, −1]; the defaults find it.
    #[test]
    fn d2l_edge_kernel() {
        let mut xv = vec![1.0f32; 48];
        for r in 0..6 {
            for c in 2..6 {
                xv[r * 8 + c] = 0.0;
            }
        }
        let x = Tensor::new(vec![1, 1, 6, 8], xv).unwrap();
        let k = Tensor::new(vec![1, 1, 1, 2], vec![1.0, -1.0]).unwrap();
        let y = conv(&x, &k, None, &params(2), ConvAlgo::Direct).unwrap();
        let out = learn(&x, &y, &LearnConfig::default()).unwrap();
        let got = out.kernel().data();
        assert!(
            (got[0] - 1.0).abs() < 0.1 && (got[1] + 1.0).abs() < 0.1,
            "{got:?}"
        );
        assert!(out.final_loss < out.steps[0].loss / 10.0);
    }
}
