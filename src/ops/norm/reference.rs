//! The slow reference for [`super`]: batch normalisation written straight from its formulas,
//! one channel at a time, every sum in f64 in index order. Tests hold the fast path to it.

use super::BnDims;

/// Index of `x[i, c, j]` in an `(N, C, L)` buffer.
fn at(d: BnDims, i: usize, c: usize, j: usize) -> usize {
    (i * d.c + c) * d.l + j
}

/// Per channel: the mean and `1/√(var + ε)` used — the batch's (biased variance) in training,
/// the running ones in eval.
#[allow(clippy::too_many_arguments)]
fn stats(
    d: BnDims,
    x: &[f32],
    eps: f32,
    running_mean: &[f32],
    running_var: &[f32],
    train: bool,
    c: usize,
) -> (f64, f64, f64) {
    if !train {
        let v = running_var[c] as f64;
        return (running_mean[c] as f64, 1.0 / (v + eps as f64).sqrt(), v);
    }
    let m = (d.n * d.l) as f64;
    let mut s = 0.0;
    for i in 0..d.n {
        for j in 0..d.l {
            s += x[at(d, i, c, j)] as f64;
        }
    }
    let mean = s / m;
    let mut ss = 0.0;
    for i in 0..d.n {
        for j in 0..d.l {
            ss += (x[at(d, i, c, j)] as f64 - mean).powi(2);
        }
    }
    let var = ss / m;
    (mean, 1.0 / (var + eps as f64).sqrt(), var)
}

/// Forward: `y = γ (x - μ)/√(σ² + ε) + β` (then `max(·, 0)` when `relu`); in training the
/// running statistics move by `momentum` towards the batch mean and unbiased variance.
#[allow(clippy::too_many_arguments)]
pub fn forward(
    d: BnDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    momentum: f32,
    running_mean: &mut [f32],
    running_var: &mut [f32],
    train: bool,
    relu: bool,
) -> Vec<f32> {
    let mut y = vec![0.0; x.len()];
    for c in 0..d.c {
        let (mean, invstd, var) = stats(d, x, eps, running_mean, running_var, train, c);
        for i in 0..d.n {
            for j in 0..d.l {
                let k = at(d, i, c, j);
                let v = gamma[c] as f64 * (x[k] as f64 - mean) * invstd + beta[c] as f64;
                y[k] = if relu { v.max(0.0) } else { v } as f32;
            }
        }
        if train {
            let (mo, m) = (momentum as f64, (d.n * d.l) as f64);
            let unbiased = var * m / (m - 1.0);
            running_mean[c] = ((1.0 - mo) * running_mean[c] as f64 + mo * mean) as f32;
            running_var[c] = ((1.0 - mo) * running_var[c] as f64 + mo * unbiased) as f32;
        }
    }
    y
}

/// Backward: `(gx, gγ, gβ)` from `gy`, the statistics recomputed as the forward used them
/// (running statistics as they were *before* a training forward moved them). The fused ReLU
/// masks `gy` where the pre-activation is `<= 0`.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    d: BnDims,
    x: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    running_mean: &[f32],
    running_var: &[f32],
    train: bool,
    relu: bool,
    gy: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mut gx, mut gg, mut gb) = (vec![0.0; x.len()], vec![0.0; d.c], vec![0.0; d.c]);
    let m = (d.n * d.l) as f64;
    for c in 0..d.c {
        let (mean, invstd, _) = stats(d, x, eps, running_mean, running_var, train, c);
        let xhat = |k: usize| (x[k] as f64 - mean) * invstd;
        let g = |k: usize| {
            let pre = gamma[c] as f64 * xhat(k) + beta[c] as f64;
            if relu && pre <= 0.0 {
                0.0
            } else {
                gy[k] as f64
            }
        };
        let (mut sg, mut sgx) = (0.0, 0.0);
        for i in 0..d.n {
            for j in 0..d.l {
                let k = at(d, i, c, j);
                sg += g(k);
                sgx += g(k) * xhat(k);
            }
        }
        gb[c] = sg as f32;
        gg[c] = sgx as f32;
        let kc = gamma[c] as f64 * invstd;
        for i in 0..d.n {
            for j in 0..d.l {
                let k = at(d, i, c, j);
                gx[k] = if train {
                    kc * (g(k) - sg / m - xhat(k) * sgx / m)
                } else {
                    kc * g(k)
                } as f32;
            }
        }
    }
    (gx, gg, gb)
}
