//! Dilated stride-1 2-D convolutions as d² undilated ones (`ops::conv::dilated`): the
//! decomposition against the direct reference on random shapes (dilation 2 and 3, begin
//! paddings that are multiples of it, odd and even sizes so the classes differ in size and run
//! as separate groups, groups, bias), `auto` choosing it where its class problems run Winograd
//! (and reporting so), the input gradient through the adjoint problem, and the weight
//! gradient as the sum over the classes.

mod common;
use stride::geometry::PaddingSpec;
use stride::ops::conv::{
    auto_algos, conv, conv_backward, dilated, ConvAlgo, ConvParams, ConvShape, GradRequest,
};
use stride::rng::Rng;

#[test]
fn decomposition_matches_direct_on_random_shapes() {
    let mut rng = Rng::new(2024);
    let mut checked = 0;
    for case in 0..60 {
        let d = 2 + rng.below(2);
        let groups = [1, 1, 2][rng.below(3)];
        let (cin, cout) = (groups * (1 + rng.below(3)), groups * (1 + rng.below(3)));
        let (kh, kw) = (1 + rng.below(3), 1 + rng.below(3));
        let (h, w) = (d * kh + rng.below(9), d * kw + rng.below(9));
        let pads = vec![
            (d * rng.below(2), rng.below(4)),
            (d * rng.below(2), rng.below(4)),
        ];
        let n = 1 + rng.below(3);
        let x = common::rand_tensor(&mut rng, &[n, cin, h, w]);
        let wt = common::rand_tensor(&mut rng, &[cout, cin / groups, kh, kw]);
        let b = common::rand_tensor(&mut rng, &[cout]);
        let p = ConvParams {
            padding: PaddingSpec::Explicit(pads),
            dilation: vec![d],
            groups,
            ..ConvParams::default()
        };
        let Ok(want) = conv(&x, &wt, Some(&b), &p, ConvAlgo::Direct) else {
            continue;
        };
        let s = ConvShape::new(x.shape(), wt.shape(), Some(b.shape()), &p).unwrap();
        if !dilated::applies(&s) {
            continue; // a class without inputs or outputs
        }
        checked += 1;
        // NaN-poisoned: a value the scatter missed stays NaN (and `f32::max` below would skip it)
        let mut y = vec![std::mem::MaybeUninit::new(f32::NAN); want.numel()];
        dilated::forward(&s, x.data(), wt.data(), Some(b.data()), &mut y).unwrap();
        // SAFETY: initialised above (NaN), then overwritten
        let y: Vec<f32> = y.iter().map(|v| unsafe { v.assume_init() }).collect();
        assert!(
            y.iter().all(|v| v.is_finite()),
            "case {case}: a value not written"
        );
        let err = y
            .iter()
            .zip(want.data())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            err < 1e-5 * (1.0 + want.max_abs()),
            "case {case} {p:?} x{:?}: err {err}",
            x.shape()
        );
        // the weight gradient as the sum over the class groups
        let gy = common::rand_tensor(&mut rng, want.shape());
        let mut gw = vec![f32::NAN; wt.numel()];
        dilated::backward_weight(&s, x.data(), gy.data(), &mut gw).unwrap();
        let only_weight = GradRequest {
            input: false,
            weight: true,
            bias: false,
        };
        let r = conv_backward(&x, &wt, &gy, &p, ConvAlgo::Direct, only_weight).unwrap();
        let rw = r.weight.unwrap();
        assert!(
            gw.iter().all(|v| v.is_finite()),
            "case {case}: a weight gradient not written"
        );
        let err = gw
            .iter()
            .zip(rw.data())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            err < 1e-5 * (1.0 + rw.max_abs()),
            "case {case} {p:?} x{:?}: weight gradient err {err}",
            x.shape()
        );
    }
    assert!(checked > 25, "only {checked} cases applied");
}

#[test]
fn auto_runs_dilated_3x3_as_winograd_classes() {
    // dil3x3's layer at a smaller size: 32 channels, 24×24, dilation 2, padding 2
    let mut rng = Rng::new(7);
    let x = common::rand_tensor(&mut rng, &[2, 32, 24, 24]);
    let w = common::rand_tensor(&mut rng, &[32, 32, 3, 3]);
    let p = ConvParams {
        padding: PaddingSpec::Explicit(vec![(2, 2)]),
        dilation: vec![2],
        ..ConvParams::default()
    };
    let s = ConvShape::new(x.shape(), w.shape(), None, &p).unwrap();
    assert_eq!(
        auto_algos(&s),
        ["phases-winograd", "adj-phases-winograd", "phases-winograd"]
    );
    let want = conv(&x, &w, None, &p, ConvAlgo::Direct).unwrap();
    let got = conv(&x, &w, None, &p, ConvAlgo::Auto).unwrap();
    assert!(got.max_abs_diff(&want) < 1e-5 * want.max_abs());
    let gy = common::rand_tensor(&mut rng, want.shape());
    let only_input = GradRequest {
        input: true,
        weight: false,
        bias: false,
    };
    let r = conv_backward(&x, &w, &gy, &p, ConvAlgo::Direct, only_input).unwrap();
    let f = conv_backward(&x, &w, &gy, &p, ConvAlgo::Auto, only_input).unwrap();
    let (ri, fi) = (r.input.unwrap(), f.input.unwrap());
    assert!(fi.max_abs_diff(&ri) < 1e-5 * ri.max_abs());
    // the weight gradient: auto's choice (through the classes' Winograd weight gradients) and
    // the classes called directly
    let only_weight = GradRequest {
        input: false,
        weight: true,
        bias: false,
    };
    let r = conv_backward(&x, &w, &gy, &p, ConvAlgo::Direct, only_weight).unwrap();
    let f = conv_backward(&x, &w, &gy, &p, ConvAlgo::Auto, only_weight).unwrap();
    let (rw, fw) = (r.weight.unwrap(), f.weight.unwrap());
    assert!(fw.max_abs_diff(&rw) < 1e-5 * rw.max_abs());
    let mut gw = vec![f32::NAN; w.numel()];
    dilated::backward_weight(&s, x.data(), gy.data(), &mut gw).unwrap();
    let err = gw
        .iter()
        .zip(rw.data())
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-5 * rw.max_abs(), "classes: {err}");
}
