//! The row-gather input gradient of width-stride-2 convolutions (`ops::conv::strided_rows`)
//! against the direct scatter: 1-D to 3-D, groups, 1 to 8 width taps, any depth and height
//! stride, uneven padding, inputs the last window leaves out; the benchmark's stem at reduced
//! size; and `auto` choosing it (and the same values) for few input channels.

mod common;

use common::rand_tensor;
use stride::geometry::PaddingSpec;
use stride::ops::conv::{
    auto, conv_backward, strided_rows, ConvAlgo, ConvParams, ConvShape, GradRequest,
};
use stride::rng::Rng;

fn check(xs: &[usize], ws: &[usize], p: &ConvParams, rng: &mut Rng, what: &str) {
    let s = ConvShape::new(xs, ws, None, p).unwrap();
    if !stride::ops::simd::avx512() {
        // the kernel runs under AVX-512 only; elsewhere `auto` keeps col2im
        assert!(!strided_rows::applies(&s));
        return;
    }
    assert!(strided_rows::applies(&s), "{what}");
    let what = format!("{what} {xs:?} {ws:?} {p:?}");
    common::check_input_grad(&s, ws, rng, &what, |gy, w, gx| {
        strided_rows::backward_input(&s, gy, w, gx)
    });
}

#[test]
fn strided_rows_matches_the_direct_scatter() {
    let mut rng = Rng::new(33);
    let mut checked = 0;
    for case in 0..300 {
        let (xs, ws, p) = common::strided_case(&mut rng, 20, |rng, axis, nd| {
            let last = axis == nd - 1;
            // the width (last axis) strided by 2, up to 8 taps, wide enough for blocks of
            // several vectors; the others 1 to 4 taps, strides 1 to 3
            if last {
                (1 + rng.below(8), 2, 90)
            } else {
                (1 + rng.below(4), 1 + rng.below(3), 9)
            }
        });
        if ConvShape::new(&xs, &ws, None, &p).is_err() {
            continue;
        }
        check(&xs, &ws, &p, &mut rng, &format!("case {case}"));
        checked += 1;
    }
    assert!(checked > 200, "only {checked} valid cases");
}

fn stem() -> ConvParams {
    ConvParams {
        stride: vec![2],
        padding: PaddingSpec::Explicit(vec![(3, 3); 2]),
        ..ConvParams::default()
    }
}

#[test]
fn strided_rows_on_the_benchmark_stem() {
    let mut rng = Rng::new(4);
    check(
        &[2, 3, 40, 37],
        &[64, 3, 7, 7],
        &stem(),
        &mut rng,
        "stem7x7",
    );
}

#[test]
fn auto_gathers_rows_for_few_input_channels_and_agrees() {
    let mut rng = Rng::new(5);
    let (xs, ws) = ([2, 3, 36, 34], [16, 3, 7, 7]);
    let s = ConvShape::new(&xs, &ws, None, &stem()).unwrap();
    let want = if stride::ops::simd::avx512() {
        "strided-rows"
    } else {
        "col2im"
    };
    assert_eq!(auto::auto_algos(&s)[1], want);
    let x = rand_tensor(&mut rng, &xs);
    let w = rand_tensor(&mut rng, &ws);
    let gy = rand_tensor(&mut rng, &s.out_shape());
    let only_input = GradRequest {
        input: true,
        weight: false,
        bias: false,
    };
    let fast = conv_backward(&x, &w, &gy, &stem(), ConvAlgo::Auto, only_input).unwrap();
    let slow = conv_backward(&x, &w, &gy, &stem(), ConvAlgo::Direct, only_input).unwrap();
    let (a, b) = (fast.input.unwrap(), slow.input.unwrap());
    let top = b.data().iter().fold(1e-3f32, |m, v| m.max(v.abs()));
    for (u, v) in a.data().iter().zip(b.data()) {
        assert!((u - v).abs() <= 1e-5 * top, "{u} vs {v}");
    }
}
