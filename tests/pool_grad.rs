//! Pooling backward against central finite differences of `L = Σ gy·y`, for every kind,
//! on inputs whose values are at least 1/8 apart (so a 1e-2 step never changes an argmax).

use stride::geometry::PaddingSpec;
use stride::ops::pool::{
    max_unpool, max_unpool_backward, pool_backward, pool_forward, PoolKind, PoolParams,
};
use stride::rng::Rng;
use stride::Tensor;

/// Distinct values `(perm - n/2)/8` (or positive `(perm + 4)/8`), shuffled by `seed`.
fn distinct(shape: &[usize], positive: bool, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = (0..n)
        .map(|i| {
            if positive {
                (i as f32 + 4.0) / 8.0
            } else {
                (i as f32 - n as f32 / 2.0) / 8.0
            }
        })
        .collect();
    Rng::new(seed).shuffle(&mut v);
    Tensor::new(shape.to_vec(), v).unwrap()
}

fn random(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape.to_vec(), Rng::new(seed).vec(n, -1.0, 1.0)).unwrap()
}

/// Compares `pool_backward` with finite differences for one parameter set.
fn check_pool(name: &str, x: &Tensor, p: &PoolParams) {
    let out = pool_forward(x, p).unwrap_or_else(|e| panic!("{name}: {e}"));
    let gy = random(out.y.shape(), 7);
    let gx = pool_backward(x, &out, &gy, p).unwrap();
    let loss = |x: &Tensor| pool_forward(x, p).unwrap().y.dot(&gy);
    finite_diff(name, x, &gx, loss);
}

fn finite_diff(name: &str, x: &Tensor, gx: &Tensor, loss: impl Fn(&Tensor) -> f64) {
    let eps = 1e-2f32;
    for j in 0..x.numel() {
        let mut xp = x.clone();
        xp.data_mut()[j] += eps;
        let mut xm = x.clone();
        xm.data_mut()[j] -= eps;
        let fd = (loss(&xp) - loss(&xm)) / (2.0 * eps as f64);
        let g = gx.data()[j] as f64;
        assert!(
            (fd - g).abs() <= 2e-3 * (1.0 + g.abs()),
            "{name}: d/dx[{j}] finite difference {fd}, backward {g}"
        );
    }
}

fn sliding(
    kind: PoolKind,
    k: &[usize],
    s: &[usize],
    pad: usize,
    d: usize,
    ceil: bool,
) -> PoolParams {
    let mut p = PoolParams::new(kind, k);
    p.stride = s.to_vec();
    p.padding = PaddingSpec::Explicit(vec![(pad, pad)]);
    p.dilation = vec![d];
    p.ceil_mode = ceil;
    p
}

#[test]
fn max_and_min_gradients() {
    for kind in [PoolKind::Max, PoolKind::Min] {
        let x = distinct(&[2, 2, 7, 6], false, 1);
        check_pool("k3 s2 p1 ceil", &x, &sliding(kind, &[3], &[2], 1, 1, true));
        check_pool("k2 s1 d2", &x, &sliding(kind, &[2], &[1], 0, 2, false));
        let x1 = distinct(&[1, 3, 11], false, 2);
        check_pool("1-D k3 s2 p1", &x1, &sliding(kind, &[3], &[2], 1, 1, false));
        let x3 = distinct(&[1, 1, 4, 5, 4], false, 3);
        check_pool("3-D k2 s1", &x3, &sliding(kind, &[2], &[1], 1, 1, false));
    }
}

#[test]
fn avg_gradients() {
    let x = random(&[1, 2, 7, 8], 4);
    for (cip, div, ceil) in [
        (true, None, true),
        (false, None, true),
        (true, Some(5), false),
    ] {
        let mut p = sliding(PoolKind::Avg, &[3], &[2], 1, 1, ceil);
        p.count_include_pad = cip;
        p.divisor_override = div;
        check_pool("avg 2-D", &x, &p);
    }
    let x3 = random(&[1, 1, 5, 4, 5], 5);
    let mut p = sliding(PoolKind::Avg, &[2], &[2], 1, 1, true);
    p.count_include_pad = false;
    check_pool("avg 3-D", &x3, &p);
}

#[test]
fn lp_gradients() {
    let x = distinct(&[1, 2, 7, 7], true, 6);
    for pn in [1.0, 1.5, 2.0, 3.0] {
        let mut p = sliding(PoolKind::Lp, &[2], &[2], 0, 1, true);
        p.norm_type = pn;
        check_pool("lp 2-D", &x, &p);
    }
    let x1 = distinct(&[2, 1, 9], true, 7);
    let mut p = sliding(PoolKind::Lp, &[3], &[2], 1, 1, false);
    p.norm_type = 2.0;
    check_pool("lp 1-D padded", &x1, &p);
}

#[test]
fn soft_gradients() {
    let x = random(&[1, 2, 6, 7], 8);
    check_pool(
        "soft k3 s2 p1",
        &x,
        &sliding(PoolKind::Soft, &[3], &[2], 1, 1, true),
    );
    check_pool(
        "soft k2 d2",
        &x,
        &sliding(PoolKind::Soft, &[2], &[1], 0, 2, false),
    );
    let x3 = random(&[1, 1, 4, 4, 4], 9);
    check_pool(
        "soft 3-D",
        &x3,
        &sliding(PoolKind::Soft, &[2], &[2], 0, 1, false),
    );
}

#[test]
fn adaptive_and_global_gradients() {
    let x = distinct(&[2, 2, 7, 5], false, 10);
    for kind in [PoolKind::AdaptiveMax, PoolKind::AdaptiveAvg] {
        let mut p = PoolParams::new(kind, &[]);
        p.output_size = vec![3, 4];
        check_pool("adaptive 2-D", &x, &p);
        p.output_size = vec![9, 2];
        check_pool("adaptive upsampling", &x, &p);
    }
    for kind in [PoolKind::GlobalMax, PoolKind::GlobalAvg] {
        check_pool("global", &x, &PoolParams::new(kind, &[]));
    }
    let x1 = distinct(&[1, 2, 10], false, 11);
    let mut p = PoolParams::new(PoolKind::AdaptiveAvg, &[]);
    p.output_size = vec![4];
    check_pool("adaptive 1-D", &x1, &p);
}

#[test]
fn fractional_and_kmax_gradients() {
    let x = distinct(&[1, 2, 9, 8], false, 12);
    let mut p = PoolParams::new(PoolKind::FractionalMax, &[2]);
    p.output_size = vec![5, 4];
    p.seed = 3;
    check_pool("fractional 2-D", &x, &p);
    let x3 = distinct(&[1, 1, 6, 5, 7], false, 13);
    p.output_size = vec![3, 3, 4];
    check_pool("fractional 3-D", &x3, &p);
    let mut p = PoolParams::new(PoolKind::KMax, &[]);
    p.k = 3;
    check_pool("kmax", &distinct(&[2, 2, 7], false, 14), &p);
}

#[test]
fn max_unpool_gradient() {
    let x = random(&[1, 2, 3, 3], 15);
    let idx: Vec<u32> = (0..18)
        .map(|i| ((i % 9) / 3 * 12 + (i % 3) * 2 + 7 * (i % 2)) as u32)
        .collect();
    let p = sliding(PoolKind::Max, &[2], &[2], 0, 1, false);
    let y = max_unpool(&x, &idx, &p).unwrap();
    assert_eq!(y.shape(), &[1, 2, 6, 6]);
    let gy = random(y.shape(), 16);
    let gx = max_unpool_backward(&x, &idx, &gy, &p).unwrap();
    finite_diff("unpool", &x, &gx, |x| {
        max_unpool(x, &idx, &p).unwrap().dot(&gy)
    });
}
