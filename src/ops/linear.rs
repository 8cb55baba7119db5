//! The fully connected (affine) map, forward next to backward, on the GEMM of [`crate::ops::gemm`].
//!
//! Shapes: `x: (N, in)`, `w: (out, in)` (PyTorch's layout), `b: (out)`, `y: (N, out)`.
//! - forward:  `y = x · wᵀ + b`
//! - backward: `gx = gy · w`, `gw = gyᵀ · x`, `gb = Σ_n gy[n, :]`

use crate::ops::gemm::{matmul, MatRef};
use rayon::prelude::*;

/// Sizes of one affine map: batch `n`, `inf` input and `outf` output features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearDims {
    pub n: usize,
    pub inf: usize,
    pub outf: usize,
}

/// Multiply-adds per backward GEMM from which the two run side by side on two threads; below
/// it, waking a second thread costs about what it saves (Linear(84, 10) at batch 256 slowed;
/// Linear(400, 120) at batch 256, 12 M, gains).
const SIDE_BY_SIDE: usize = 1 << 22;

fn threads() -> usize {
    rayon::current_num_threads()
}

/// Forward: `y (N, out) = x (N, in) · wᵀ (in, out) + b`.
pub fn forward(d: LinearDims, x: &[f32], w: &[f32], b: Option<&[f32]>, y: &mut [f32]) {
    let LinearDims { n, inf, outf } = d;
    if let Some(b) = b {
        // y starts as the bias broadcast over rows, then the GEMM accumulates onto it
        for row in y.chunks_mut(outf) {
            row.copy_from_slice(b);
        }
    }
    let accumulate = b.is_some();
    let wt = MatRef::row_major(w, outf, inf).t();
    let t = threads();
    if t == 1 || n * inf * outf < SIDE_BY_SIDE {
        return matmul(y, outf, MatRef::row_major(x, n, inf), wt, accumulate, t);
    }
    // big enough: rows of the batch split across the threads, one single-threaded GEMM each
    // (small GEMMs split poorly inside the GEMM); every dimension is non-zero here
    let rows = n.div_ceil(t);
    y.par_chunks_mut(rows * outf)
        .zip(x.par_chunks(rows * inf))
        .for_each(|(y, x)| {
            let m = y.len() / outf;
            matmul(y, outf, MatRef::row_major(x, m, inf), wt, accumulate, 1)
        });
}

/// Backward. `gx` (N, in) = gy · w, when wanted; `gw` (out, in) = gyᵀ · x; `gb` (out) = Σ_n gy.
/// Gradients are overwritten, not accumulated.
pub fn backward(
    d: LinearDims,
    x: &[f32],
    w: &[f32],
    gy: &[f32],
    gx: Option<&mut [f32]>,
    gw: &mut [f32],
    gb: Option<&mut [f32]>,
) {
    let LinearDims { n, inf, outf } = d;
    let gym = MatRef::row_major(gy, n, outf);
    // (out, N) · (N, in)
    let weight_grad = |gw: &mut [f32], threads: usize| {
        matmul(
            gw,
            inf,
            gym.t(),
            MatRef::row_major(x, n, inf),
            false,
            threads,
        )
    };
    // (N, out) · (out, in)
    let input_grad = |gx: &mut [f32], threads: usize| {
        matmul(
            gx,
            inf,
            gym,
            MatRef::row_major(w, outf, inf),
            false,
            threads,
        )
    };
    match gx {
        // two GEMMs of about the same size (N·out·in multiply-adds each): one per thread, side
        // by side, rather than each split across the threads (small GEMMs split poorly)
        Some(gx) if threads() > 1 && n * inf * outf >= SIDE_BY_SIDE => {
            rayon::join(|| input_grad(gx, 1), || weight_grad(gw, 1));
        }
        Some(gx) => {
            input_grad(gx, threads());
            weight_grad(gw, threads());
        }
        None => weight_grad(gw, threads()),
    }
    if let Some(gb) = gb {
        // for each output feature: sum its column of gy (rows in order: deterministic)
        gb.fill(0.0);
        for row in gy.chunks(outf) {
            gb.iter_mut().zip(row).for_each(|(g, &v)| *g += v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_affine_map() {
        // x = [[1, 2]], w = [[1, 0], [0, 1], [1, 1]], b = [0, 1, 2]  →  y = [[1, 3, 5]]
        let d = LinearDims {
            n: 1,
            inf: 2,
            outf: 3,
        };
        let (x, w, b) = ([1.0, 2.0], [1.0, 0.0, 0.0, 1.0, 1.0, 1.0], [0.0, 1.0, 2.0]);
        let mut y = [0.0; 3];
        forward(d, &x, &w, Some(&b), &mut y);
        assert_eq!(y, [1.0, 3.0, 5.0]);
        let (mut gx, mut gw, mut gb) = ([0.0; 2], [0.0; 6], [0.0; 3]);
        backward(
            d,
            &x,
            &w,
            &[1.0, 1.0, 1.0],
            Some(&mut gx),
            &mut gw,
            Some(&mut gb),
        );
        assert_eq!(gx, [2.0, 2.0]);
        assert_eq!(gw, [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
        assert_eq!(gb, [1.0, 1.0, 1.0]);
    }

    #[test]
    fn forward_split_across_threads_matches_naive() {
        // 67 × 400 × 200 ≥ SIDE_BY_SIDE: the batch rows split across 3 threads (uneven parts)
        let d = LinearDims {
            n: 67,
            inf: 400,
            outf: 200,
        };
        assert!(d.n * d.inf * d.outf >= SIDE_BY_SIDE);
        let v = |len: usize, seed: usize| -> Vec<f32> {
            (0..len)
                .map(|i| ((i * 7919 + seed) % 23) as f32 / 11.0 - 1.0)
                .collect()
        };
        let (x, w, b) = (v(d.n * d.inf, 1), v(d.outf * d.inf, 2), v(d.outf, 3));
        let mut y = vec![0.0; d.n * d.outf];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| forward(d, &x, &w, Some(&b), &mut y));
        let mut expected: Vec<f32> = (0..d.n).flat_map(|_| b.iter().copied()).collect();
        crate::ops::gemm::matmul_naive(
            &mut expected,
            d.outf,
            MatRef::row_major(&x, d.n, d.inf),
            MatRef::row_major(&w, d.outf, d.inf).t(),
            true,
        );
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (a, e) in y.iter().zip(&expected) {
            assert!((a - e).abs() <= 1e-5 * scale, "{a} vs {e}");
        }
    }
}
