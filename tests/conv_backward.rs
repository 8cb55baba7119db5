//! Convolution backward: the seed exercises, finite differences over randomized configurations
//! (1-D/2-D/3-D, strides, every padding form and mode, dilation, groups, bias, flip), the fast
//! paths against the direct reference, and PyTorch's gradients (tests/fixtures/conv_grad.json).

mod common;
mod grad_common;

use common::{fast_algos, rand_tensor, random_conv, t, ALGOS, IMAGE_A, KERNEL_B};
use grad_common::{assert_grads_match, assert_torch_close, fd_check_grads, fixtures};
use stride::geometry::{parse_per_axis, PaddingSpec};
use stride::ops::conv::{conv, conv_backward, ConvAlgo, ConvParams, GradRequest};
use stride::rng::Rng;
use stride::Tensor;

#[test]
fn seed_004_d_input_gradient_of_all_ones() {
    // 5×5 image A, 3×3 kernel B, ∂E/∂C = ones(3×3): each input pixel collects the kernel taps
    // whose windows cover it (checked against PyTorch).
    let (a, b) = (t(&[1, 1, 5, 5], &IMAGE_A), t(&[1, 1, 3, 3], &KERNEL_B));
    let gy = Tensor::full(&[1, 1, 3, 3], 1.0);
    let want = [
        4., 7., 10., 6., 3., 9., 17., 25., 16., 8., 11., 23., 34., 23., 11., 7., 16., 24., 17., 8.,
        2., 6., 9., 7., 3.,
    ];
    for algo in ALGOS {
        let g = conv_backward(
            &a,
            &b,
            &gy,
            &ConvParams::default(),
            algo,
            GradRequest::all(),
        )
        .unwrap();
        assert_eq!(g.input.unwrap().data(), &want, "{algo:?}");
        assert_eq!(g.bias.unwrap().data(), &[9.0]);
    }
}

#[test]
fn seed_000_c_kernel_gradient_stride_2() {
    // ∂(I*K)/∂K with stride 2 and ∂E/∂(I*K) = ones(2×2): K'[m,n] = Σ_ij I[2i+m, 2j+n].
    let i = t(
        &[1, 1, 5, 5],
        &[
            1., 1., -2., 0., 1., 1., 0., 0., 2., 1., 0., 1., 0., 5., -1., -2., 1., 0., -1., 1., 0.,
            1., 0., 5., -1.,
        ],
    );
    let k = t(&[1, 1, 3, 3], &[0., 1., 1., 1., 0., 0., 0., 1., 0.]);
    let p = ConvParams {
        stride: vec![2],
        ..Default::default()
    };
    let gy = Tensor::full(&[1, 1, 2, 2], 1.0);
    for algo in ALGOS {
        let g = conv_backward(&i, &k, &gy, &p, algo, GradRequest::all()).unwrap();
        assert_eq!(
            g.weight.unwrap().data(),
            &[-1., 7., -2., -1., 2., 2., 0., 12., -2.],
            "{algo:?}"
        );
    }
}

/// `⟨gy, conv(x, w) + b⟩` in f64 (from the direct reference).
fn loss(x: &Tensor, w: &Tensor, b: Option<&Tensor>, gy: &Tensor, p: &ConvParams) -> f64 {
    conv(x, w, b, p, ConvAlgo::Direct).unwrap().dot(gy)
}

#[test]
fn gradients_match_finite_differences() {
    let mut rng = Rng::new(31);
    for case in 0..160 {
        let (x, w, b, p) = random_conv(&mut rng);
        let y = match conv(&x, &w, b.as_ref(), &p, ConvAlgo::Direct) {
            Ok(y) => y,
            Err(e) => panic!("case {case}: {e}"),
        };
        let gy = rand_tensor(&mut rng, y.shape());
        let g = conv_backward(&x, &w, &gy, &p, ConvAlgo::Direct, GradRequest::all()).unwrap();
        let what = format!("case {case} {p:?} x{:?} w{:?}", x.shape(), w.shape());
        fd_check_grads(
            &what,
            &x,
            &w,
            b.as_ref(),
            w.shape()[0],
            &g,
            &mut rng,
            |x, w, b| loss(x, w, b, &gy, &p),
        );
    }
}

#[test]
fn fast_paths_match_the_reference() {
    let mut rng = Rng::new(77);
    for case in 0..300 {
        let (x, w, b, p) = random_conv(&mut rng);
        let y = conv(&x, &w, b.as_ref(), &p, ConvAlgo::Direct).unwrap();
        let gy = rand_tensor(&mut rng, y.shape());
        let r = conv_backward(&x, &w, &gy, &p, ConvAlgo::Direct, GradRequest::all()).unwrap();
        for algo in fast_algos() {
            let f = conv_backward(&x, &w, &gy, &p, algo, GradRequest::all()).unwrap();
            let what = format!(
                "case {case} {algo:?} {p:?} x{:?} w{:?}",
                x.shape(),
                w.shape()
            );
            assert_grads_match(&what, f, &r);
        }
    }
}

#[test]
fn depthwise_with_many_groups_matches_the_reference() {
    // Many groups (≥ 4 per thread) take the row kernel's per-group weight-gradient path and its
    // single-channel forward blocks (8 output rows at a time); heights up to 21 leave partial
    // row blocks, a channel multiplier of 2 leaves two channels per group.
    let mut rng = Rng::new(8);
    for case in 0..40 {
        let groups = 8 + rng.below(33);
        let mult = 1 + rng.below(2);
        let (h, wd) = (3 + rng.below(19), 3 + rng.below(40));
        let k = 1 + rng.below(3);
        let n = 1 + rng.below(3);
        let x = rand_tensor(&mut rng, &[n, groups, h, wd]);
        let w = rand_tensor(&mut rng, &[groups * mult, 1, k, k]);
        let p = ConvParams {
            padding: PaddingSpec::Explicit(vec![(rng.below(2), rng.below(2)); 2]),
            stride: vec![1 + rng.below(2), 1],
            groups,
            ..ConvParams::default()
        };
        let y = conv(&x, &w, None, &p, ConvAlgo::Direct).unwrap();
        let gy = rand_tensor(&mut rng, y.shape());
        let r = conv_backward(&x, &w, &gy, &p, ConvAlgo::Direct, GradRequest::all()).unwrap();
        for algo in [ConvAlgo::WidthLanes, ConvAlgo::Auto] {
            let what = format!(
                "case {case} {algo:?} {p:?} x{:?} w{:?}",
                x.shape(),
                w.shape()
            );
            let yf = conv(&x, &w, None, &p, algo).unwrap();
            assert!(yf.max_abs_diff(&y) < 1e-4, "{what}: forward");
            let f = conv_backward(&x, &w, &gy, &p, algo, GradRequest::all()).unwrap();
            let (fi, ri) = (f.input.unwrap(), r.input.as_ref().unwrap());
            assert!(fi.max_abs_diff(ri) < 1e-4, "{what}: input");
            let (fw, rw) = (f.weight.unwrap(), r.weight.as_ref().unwrap());
            assert!(fw.max_abs_diff(rw) < 1e-4, "{what}: weight");
        }
    }
}

#[test]
fn only_requested_gradients_are_computed() {
    let mut rng = Rng::new(1);
    let x = rand_tensor(&mut rng, &[2, 3, 6]);
    let w = rand_tensor(&mut rng, &[4, 3, 3]);
    let gy = rand_tensor(&mut rng, &[2, 4, 4]);
    let want = GradRequest {
        weight: true,
        ..Default::default()
    };
    let g = conv_backward(&x, &w, &gy, &ConvParams::default(), ConvAlgo::Auto, want).unwrap();
    assert!(g.input.is_none() && g.bias.is_none());
    assert_eq!(g.weight.unwrap().shape(), &[4, 3, 3]);
}

#[test]
fn wrong_output_gradient_shape_is_an_error() {
    let x = Tensor::zeros(&[1, 1, 5, 5]);
    let w = Tensor::zeros(&[1, 1, 3, 3]);
    let gy = Tensor::zeros(&[1, 1, 5, 5]);
    let e = conv_backward(
        &x,
        &w,
        &gy,
        &ConvParams::default(),
        ConvAlgo::Auto,
        GradRequest::all(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("grad-output") && e.contains("(1, 1, 5, 5)") && e.contains("(1, 1, 3, 3)"),
        "{e}"
    );
}

#[test]
fn im2col_backward_tiles_and_parallel_batches() {
    // One tile is smaller than the output (tiled col2im / im2col), a batch larger than the
    // thread count (per-thread partial weight gradients), and 1×1 kernels (the weight gradient
    // as one GEMM over the input planes), grouped and on one image.
    let mut rng = Rng::new(9);
    for (xs, ws) in [
        (vec![1, 64, 30, 30], vec![2, 64, 7, 7]),
        (vec![5, 4, 9, 9], vec![6, 2, 3, 3]),
        (vec![3, 8, 5, 7], vec![6, 8, 1, 1]),
        (vec![2, 6, 4, 4], vec![9, 2, 1, 1]),
        (vec![1, 16, 6, 6], vec![4, 16, 1, 1]),
    ] {
        let x = rand_tensor(&mut rng, &xs);
        let w = rand_tensor(&mut rng, &ws);
        let p = ConvParams {
            padding: PaddingSpec::Same,
            groups: xs[1] / ws[1],
            ..Default::default()
        };
        let y = conv(&x, &w, None, &p, ConvAlgo::Direct).unwrap();
        let gy = rand_tensor(&mut rng, y.shape());
        let r = conv_backward(&x, &w, &gy, &p, ConvAlgo::Direct, GradRequest::all()).unwrap();
        let f = conv_backward(&x, &w, &gy, &p, ConvAlgo::Im2col, GradRequest::all()).unwrap();
        assert!(f.input.unwrap().max_abs_diff(r.input.as_ref().unwrap()) < 1e-3);
        assert!(f.weight.unwrap().max_abs_diff(r.weight.as_ref().unwrap()) < 1e-2);
    }
}

#[test]
fn pytorch_golden_gradients() {
    let fx = fixtures();
    for (i, c) in fx.conv.iter().enumerate() {
        let p = ConvParams {
            stride: parse_per_axis("stride", &c.s("stride")).unwrap(),
            padding: c.s("padding").parse().unwrap(),
            dilation: parse_per_axis("dilation", &c.s("dilation")).unwrap(),
            groups: c.u("groups"),
            padding_mode: c.s("padding_mode").parse().unwrap(),
            flip: c.params["flip"].as_bool().unwrap(),
        };
        let (x, w, gy) = (c.x.tensor(), c.w.tensor(), c.gy.tensor());
        let b = c.b.as_ref().map(|b| b.tensor());
        let what = format!("fixture {i} {:?}", c.params);
        for algo in ALGOS {
            let y = conv(&x, &w, b.as_ref(), &p, algo).unwrap();
            assert_torch_close(&format!("{what} {algo:?} y"), &y, &c.y.tensor());
            let g = conv_backward(&x, &w, &gy, &p, algo, GradRequest::all()).unwrap();
            assert_torch_close(
                &format!("{what} {algo:?} gx"),
                &g.input.unwrap(),
                &c.gx.tensor(),
            );
            assert_torch_close(
                &format!("{what} {algo:?} gw"),
                &g.weight.unwrap(),
                &c.gw.tensor(),
            );
            if let Some(gb) = &c.gb {
                assert_torch_close(&format!("{what} gb"), &g.bias.unwrap(), &gb.tensor());
            }
        }
    }
}

#[test]
fn fast_bias_gradient_matches_the_reference() {
    // planes whose length is and is not a multiple of the 16 lanes, one to many channels
    let mut rng = Rng::new(12);
    for case in 0..30 {
        let (n, c, plane) = (1 + rng.below(5), 1 + rng.below(20), 1 + rng.below(100));
        let gy = rng.vec(n * c * plane, -1.0, 1.0);
        let (mut fast, mut reference) = (vec![0.0; c], vec![0.0; c]);
        stride::ops::conv::backward::bias_grad(&gy, n, c, &mut fast);
        stride::ops::conv::direct::backward_bias(&gy, n, c, &mut reference);
        for (f, r) in fast.iter().zip(&reference) {
            assert!((f - r).abs() < 1e-5, "case {case}: {f} vs {r}");
        }
    }
}
