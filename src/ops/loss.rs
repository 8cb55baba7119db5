//! Softmax cross-entropy (PyTorch `nn.CrossEntropyLoss`, mean reduction), forward next to backward.
//!
//! Logits `z: (N, C)`, integer targets `t: (N)` in `0..C`.
//! - log-softmax, numerically stable: `log p[n, c] = z[n, c] - m - log Σ_k e^(z[n, k] - m)`,
//!   `m = max_k z[n, k]` (so no `exp` overflows);
//! - loss: `L = -(1/N) Σ_n log p[n, t_n]`;
//! - gradient: `∂L/∂z[n, c] = (p[n, c] - [c = t_n]) / N`.

use crate::error::{Error, Result};

/// Row-wise softmax of `z: (N, C)` into `p` (stable: subtracts the row maximum). Returns, per row,
/// `log Σ_k e^(z_k - m) + m` (the log-partition), so `log p[c] = z[c] - lse`.
pub fn softmax_rows(z: &[f32], classes: usize, p: &mut [f32]) -> Vec<f64> {
    let mut lse = Vec::with_capacity(z.len() / classes.max(1));
    // for each row
    for (zr, pr) in z.chunks(classes).zip(p.chunks_mut(classes)) {
        let m = zr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut s = 0.0f64;
        for (pv, &zv) in pr.iter_mut().zip(zr) {
            let e = ((zv - m) as f64).exp();
            *pv = e as f32;
            s += e;
        }
        pr.iter_mut().for_each(|v| *v = (*v as f64 / s) as f32);
        lse.push(s.ln() + m as f64);
    }
    lse
}

/// Checks the targets against the number of classes.
fn check_targets(targets: &[usize], n: usize, classes: usize) -> Result<()> {
    if targets.len() != n {
        return Err(Error::arg(
            "target",
            format!(
                "{} targets for {n} rows of logits; give one class index per row",
                targets.len()
            ),
        ));
    }
    if let Some(&t) = targets.iter().find(|&&t| t >= classes) {
        return Err(Error::arg(
            "target",
            format!("class index {t} is out of range for {classes} classes (0..{classes})"),
        ));
    }
    Ok(())
}

/// The loss value and what backward needs.
#[derive(Clone, Debug)]
pub struct CrossEntropy {
    /// Mean loss over the batch.
    pub loss: f32,
    /// Softmax probabilities `(N, C)`.
    pub probs: Vec<f32>,
    /// Number of rows whose arg-max equals the target.
    pub correct: usize,
}

/// Forward: mean cross-entropy of logits `z: (N, C)` against `targets`.
pub fn cross_entropy(z: &[f32], classes: usize, targets: &[usize]) -> Result<CrossEntropy> {
    if classes == 0 || !z.len().is_multiple_of(classes) {
        return Err(Error::arg(
            "input",
            format!("{} logits do not form rows of {classes} classes", z.len()),
        ));
    }
    let n = z.len() / classes;
    check_targets(targets, n, classes)?;
    let mut probs = vec![0.0; z.len()];
    let lse = softmax_rows(z, classes, &mut probs);
    let mut total = 0.0f64;
    let mut correct = 0;
    // for each row: -log p[t] = lse - z[t]
    for (r, &t) in targets.iter().enumerate() {
        let zr = &z[r * classes..][..classes];
        total += lse[r] - zr[t] as f64;
        if argmax(zr) == t {
            correct += 1;
        }
    }
    Ok(CrossEntropy {
        loss: (total / n.max(1) as f64) as f32,
        probs,
        correct,
    })
}

/// Backward: `gz = (p - onehot(t)) / N`, written into `gz` (N, C).
pub fn cross_entropy_backward(
    ce: &CrossEntropy,
    classes: usize,
    targets: &[usize],
    gz: &mut [f32],
) {
    cross_entropy_backward_over(ce, classes, targets, targets.len(), gz)
}

/// [`cross_entropy_backward`] for rows that are part of a batch of `total`: `gz = (p -
/// onehot(t)) / total`, this part's share of the gradient of the batch's mean loss.
pub fn cross_entropy_backward_over(
    ce: &CrossEntropy,
    classes: usize,
    targets: &[usize],
    total: usize,
    gz: &mut [f32],
) {
    let n = total.max(1) as f32;
    gz.copy_from_slice(&ce.probs);
    for (r, &t) in targets.iter().enumerate() {
        gz[r * classes + t] -= 1.0;
    }
    gz.iter_mut().for_each(|v| *v /= n);
}

/// Index of the largest value (the first one on ties, like PyTorch's `argmax`).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_logits_give_log_c() {
        let ce = cross_entropy(&[0.0; 10], 10, &[3]).unwrap();
        assert!((ce.loss - 10f32.ln()).abs() < 1e-6);
        // huge logits stay finite
        let ce = cross_entropy(&[1000.0, -1000.0], 2, &[1]).unwrap();
        assert!((ce.loss - 2000.0).abs() < 1e-3);
        assert!(cross_entropy(&[0.0; 4], 2, &[0, 2]).is_err());
    }
}
