//! Pooling: the seed exercises, identities between kinds (avg = convolution with a constant
//! kernel, min = −max(−x), LP p=1 = window sum, large p → max, global = adaptive 1), k-max,
//! fractional reproducibility, unpooling as the inverse of max pooling, the window rules of the
//! geometry module, and the bad-input policy.

mod common;
use common::t;
use stride::geometry::{adaptive_span, fractional_starts, PaddingSpec};
use stride::ops::conv::{conv, ConvAlgo, ConvParams};
use stride::ops::pool::{max_unpool, pool_backward, pool_forward, PoolKind, PoolParams};
use stride::rng::Rng;
use stride::Tensor;

fn random(shape: &[usize], seed: u64) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape.to_vec(), Rng::new(seed).vec(n, -2.0, 2.0)).unwrap()
}

fn params(kind: PoolKind, k: &[usize], s: &[usize], pad: usize) -> PoolParams {
    let mut p = PoolParams::new(kind, k);
    p.stride = s.to_vec();
    p.padding = PaddingSpec::Explicit(vec![(pad, pad)]);
    p
}

fn err(x: &Tensor, p: &PoolParams) -> String {
    pool_forward(x, p).unwrap_err().to_string()
}

const SEED_I: [f32; 25] = [
    1., 1., -2., 0., 1., 1., 0., 0., 2., 1., 0., 1., 0., 5., -1., -2., 1., 0., -1., 1., 0., 1., 0.,
    5., -1.,
];

#[test]
fn seed_000_max_pool_k3_s2() {
    let x = t(&[1, 1, 5, 5], &SEED_I);
    let out = pool_forward(&x, &params(PoolKind::Max, &[3], &[2], 0)).unwrap();
    assert_eq!(out.y.data(), &[1., 5., 1., 5.]);
    // first maximum in row-major order: (0,0), (2,3), (2,1), (2,3)
    assert_eq!(out.indices.unwrap(), vec![0, 13, 11, 13]);
}

#[test]
fn seed_004_max_pool_k2_s1() {
    let c = t(
        &[1, 1, 3, 3],
        &[109., 92., 72., 108., 85., 74., 110., 74., 79.],
    );
    let out = pool_forward(&c, &params(PoolKind::Max, &[2], &[1], 0)).unwrap();
    assert_eq!(out.y.shape(), &[1, 1, 2, 2]);
    assert_eq!(out.y.data(), &[109., 92., 110., 85.]);
}

#[test]
fn max_propagates_nan_like_pytorch() {
    let n = f32::NAN;
    let x = t(&[1, 1, 12], &[1., n, 3., 2., n, 5., n, 1., 4., 9., n, 2.]);
    for kind in [PoolKind::Max, PoolKind::Min] {
        let out = pool_forward(&x, &params(kind, &[4], &[], 0)).unwrap();
        assert!(out.y.data().iter().all(|v| v.is_nan()));
        // PyTorch: the last NaN of each window ([1, 6, 10])
        assert_eq!(out.indices.unwrap(), vec![1, 6, 10]);
    }
}

#[test]
fn avg_pool_is_convolution_with_constant_kernel() {
    let x = random(&[2, 3, 7, 8], 1);
    for (k, s, pad) in [(2, 2, 0), (3, 2, 1), (3, 1, 1)] {
        let y = pool_forward(&x, &params(PoolKind::Avg, &[k], &[s], pad))
            .unwrap()
            .y;
        // depthwise convolution, weight (C, 1, k, k) = 1/k² (zero padding = count_include_pad)
        let w = Tensor::full(&[3, 1, k, k], 1.0 / (k * k) as f32);
        let cp = ConvParams {
            stride: vec![s],
            padding: PaddingSpec::Explicit(vec![(pad, pad)]),
            groups: 3,
            ..Default::default()
        };
        let yc = conv(&x, &w, None, &cp, ConvAlgo::Direct).unwrap();
        assert!(y.max_abs_diff(&yc) < 1e-5, "k{k} s{s} p{pad}");
    }
}

#[test]
fn min_pool_is_minus_max_of_minus() {
    let x = random(&[2, 2, 6, 7], 2);
    let neg = Tensor::new(x.shape().to_vec(), x.data().iter().map(|v| -v).collect()).unwrap();
    for (k, s, pad, ceil) in [(2, 2, 0, false), (3, 2, 1, true)] {
        let mut pmin = params(PoolKind::Min, &[k], &[s], pad);
        pmin.ceil_mode = ceil;
        let mut pmax = pmin.clone();
        pmax.kind = PoolKind::Max;
        let a = pool_forward(&x, &pmin).unwrap();
        let b = pool_forward(&neg, &pmax).unwrap();
        let negb: Vec<f32> = b.y.data().iter().map(|v| -v).collect();
        assert_eq!(a.y.data(), negb.as_slice());
        assert_eq!(a.indices, b.indices);
    }
}

#[test]
fn lp_p1_is_window_sum_and_large_p_tends_to_max() {
    let x = Tensor::new(vec![1, 2, 6, 6], Rng::new(3).vec(72, 0.5, 3.0)).unwrap();
    let mut p = params(PoolKind::Lp, &[2], &[2], 0);
    p.norm_type = 1.0;
    let lp = pool_forward(&x, &p).unwrap().y;
    let w = Tensor::full(&[2, 1, 2, 2], 1.0);
    let cp = ConvParams {
        stride: vec![2],
        groups: 2,
        ..Default::default()
    };
    let sum = conv(&x, &w, None, &cp, ConvAlgo::Direct).unwrap();
    assert!(lp.max_abs_diff(&sum) < 1e-5);
    p.norm_type = 200.0;
    let lp = pool_forward(&x, &p).unwrap().y;
    let max = pool_forward(&x, &params(PoolKind::Max, &[2], &[2], 0))
        .unwrap()
        .y;
    for (a, b) in lp.data().iter().zip(max.data()) {
        assert!(a >= b && *a <= b * 1.01, "lp {a} vs max {b}");
    }
}

#[test]
fn global_is_adaptive_with_output_one() {
    let x = random(&[2, 3, 5, 4, 3], 4);
    for (g, a) in [
        (PoolKind::GlobalMax, PoolKind::AdaptiveMax),
        (PoolKind::GlobalAvg, PoolKind::AdaptiveAvg),
    ] {
        let yg = pool_forward(&x, &PoolParams::new(g, &[])).unwrap();
        let mut pa = PoolParams::new(a, &[]);
        pa.output_size = vec![1];
        let ya = pool_forward(&x, &pa).unwrap();
        assert_eq!(yg.y.shape(), &[2, 3, 1, 1, 1]);
        assert_eq!(yg, ya);
    }
}

#[test]
fn soft_pool_is_softmax_weighted_mean() {
    let x = t(&[1, 1, 2], &[0.0, (3.0f32).ln()]);
    let y = pool_forward(&x, &params(PoolKind::Soft, &[2], &[2], 0))
        .unwrap()
        .y;
    // weights 1/4, 3/4
    assert!((y.data()[0] - 0.75 * 3f32.ln()).abs() < 1e-6);
    // constant windows give the constant
    let c = Tensor::full(&[1, 1, 4, 4], 2.5);
    let y = pool_forward(&c, &params(PoolKind::Soft, &[3], &[1], 1))
        .unwrap()
        .y;
    assert!(y.data().iter().all(|v| (v - 2.5).abs() < 1e-6));
}

#[test]
fn kmax_keeps_the_k_largest_in_order() {
    let x = t(
        &[1, 2, 6],
        &[3., 1., 4., 1., 5., 9., 2., 6., 5., 3., 5., 8.],
    );
    let mut p = PoolParams::new(PoolKind::KMax, &[]);
    p.k = 3;
    let out = pool_forward(&x, &p).unwrap();
    assert_eq!(out.y.shape(), &[1, 2, 3]);
    // row 0: largest 9, 5, 4 in original order 4, 5, 9; row 1: 8, 6, then the first 5
    assert_eq!(out.y.data(), &[4., 5., 9., 6., 5., 8.]);
    assert_eq!(out.indices.unwrap(), vec![2, 4, 5, 1, 2, 5]);
    // a 2-D plane: rows along the last axis, indices flat in the plane
    let x2 = t(&[1, 1, 2, 3], &[1., 3., 2., 6., 5., 4.]);
    p.k = 2;
    let out = pool_forward(&x2, &p).unwrap();
    assert_eq!(out.y.data(), &[3., 2., 6., 5.]);
    assert_eq!(out.indices.unwrap(), vec![1, 2, 3, 4]);
}

#[test]
fn fractional_is_reproducible_from_its_seed() {
    let x = random(&[2, 3, 12, 11], 5);
    let mut p = PoolParams::new(PoolKind::FractionalMax, &[2]);
    p.output_size = vec![7, 6];
    p.seed = 42;
    let a = pool_forward(&x, &p).unwrap();
    assert_eq!(a, pool_forward(&x, &p).unwrap());
    p.seed = 43;
    assert_ne!(a.indices, pool_forward(&x, &p).unwrap().indices);
}

#[test]
fn unpool_inverts_max_pool() {
    let x = Tensor::new(vec![2, 2, 6, 8], Rng::new(6).vec(192, 0.5, 2.0)).unwrap();
    let p = params(PoolKind::Max, &[2], &[2], 0);
    let out = pool_forward(&x, &p).unwrap();
    let idx = out.indices.clone().unwrap();
    let up = max_unpool(&out.y, &idx, &p).unwrap();
    assert_eq!(up.shape(), x.shape());
    // every kept value sits where it came from, the rest is 0; pooling again gives y back
    for (u, v) in up.data().iter().zip(x.data()) {
        assert!(*u == 0.0 || u == v);
    }
    assert_eq!(pool_forward(&up, &p).unwrap().y, out.y);
}

#[test]
fn geometry_window_rules() {
    // PyTorch adaptive: [floor(o·i/O), ceil((o+1)·i/O))
    let spans: Vec<(usize, usize)> = (0..4)
        .map(|o| {
            let s = adaptive_span(o, 10, 4);
            (s.first, s.first + s.count)
        })
        .collect();
    assert_eq!(spans, vec![(0, 3), (2, 5), (5, 8), (7, 10)]);
    // fractional: alpha = (9-2)/3; starts int((o+u)·alpha) - int(u·alpha), last = i - k
    assert_eq!(fractional_starts(0.5, 9, 4, 2), vec![0, 2, 4, 7]);
    assert_eq!(fractional_starts(0.0, 9, 1, 2), vec![7]);
}

#[test]
fn unbatched_input_stays_unbatched() {
    let x = random(&[3, 6, 6], 7);
    let mut p = params(PoolKind::Max, &[2, 2], &[], 0);
    p.padding = PaddingSpec::default();
    let out = pool_forward(&x, &p).unwrap();
    assert_eq!(out.y.shape(), &[3, 3, 3]);
    let batched = pool_forward(&x.clone().unsqueeze0(), &p).unwrap();
    assert_eq!(out.y.data(), batched.y.data());
}

#[test]
fn bad_input_is_a_clear_error() {
    let x = random(&[1, 1, 4, 4], 8);
    let m = |k: &[usize], s: &[usize], pad: usize| params(PoolKind::Max, k, s, pad);
    assert!(err(&x, &m(&[5], &[], 0)).contains("larger than the padded input"));
    assert!(err(&x, &m(&[3], &[0], 0)).starts_with("stride"));
    assert!(err(&x, &m(&[3], &[1], 2)).contains("more than half the kernel"));
    assert!(err(&x, &m(&[], &[], 0)).contains("needs --kernel"));
    assert!(err(&x, &m(&[2, 2], &[1, 1, 1], 0)).contains("stride: has 3 values"));
    assert!(err(&random(&[4], 1), &m(&[2], &[], 0)).contains("takes (N, C, L) or (C, L)"));
    let mut p = params(PoolKind::Avg, &[2], &[], 0);
    p.dilation = vec![2];
    assert!(err(&x, &p).starts_with("dilation"));
    p.dilation = vec![1];
    p.divisor_override = Some(0);
    assert!(err(&x, &p).starts_with("divisor-override"));
    let mut p = params(PoolKind::Lp, &[2], &[], 0);
    p.norm_type = 0.0;
    assert!(err(&x, &p).starts_with("norm-type"));
    let mut p = PoolParams::new(PoolKind::KMax, &[]);
    p.k = 5;
    assert!(err(&x, &p).contains("larger than the last axis"));
    p.k = 0;
    assert!(err(&x, &p).contains("needs --k"));
    let mut p = PoolParams::new(PoolKind::AdaptiveAvg, &[]);
    assert!(err(&x, &p).contains("needs --output-size"));
    p.output_size = vec![0];
    assert!(err(&x, &p).contains("at least 1"));
    let mut p = PoolParams::new(PoolKind::FractionalMax, &[2]);
    p.output_size = vec![4];
    assert!(err(&x, &p).contains("do not fit"));
    p.output_size = vec![2];
    p.samples = Some(Tensor::full(&[1, 1, 2], 1.5));
    assert!(err(&x, &p).starts_with("samples"));
    // a dilated window wholly in the padding
    let mut p = params(PoolKind::Max, &[2], &[1], 1);
    p.dilation = vec![3];
    assert!(err(&random(&[1, 1, 2], 2), &p).contains("wholly in the padding"));
    // unpool: an index outside the output plane
    let p = params(PoolKind::Max, &[2], &[2], 0);
    let e = max_unpool(&random(&[1, 1, 2, 2], 3), &[0, 1, 2, 99], &p).unwrap_err();
    assert!(e.to_string().contains("index 99"));
}

#[test]
fn backward_refuses_indices_outside_the_plane() {
    // The scatter checks each index as it adds: one bad index in the last plane is an error
    // naming the argument, and nothing panics.
    let x = random(&[2, 3, 6, 6], 4);
    let p = params(PoolKind::Max, &[2, 2], &[2, 2], 0);
    let mut out = pool_forward(&x, &p).unwrap();
    let gy = Tensor::full(out.y.shape(), 1.0);
    let good = pool_backward(&x, &out, &gy, &p).unwrap();
    // every window's gradient lands once: the sum is the number of outputs
    assert_eq!(good.data().iter().sum::<f32>(), out.y.numel() as f32);
    let idx = out.indices.as_mut().unwrap();
    *idx.last_mut().unwrap() = 36;
    let e = pool_backward(&x, &out, &gy, &p).unwrap_err().to_string();
    assert!(
        e.contains("indices") && e.contains("outside a plane of 36"),
        "{e}"
    );
}
