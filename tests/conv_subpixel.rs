//! The sub-pixel input gradient of strided convolutions (`ops::conv::subpixel`) against the
//! direct scatter: 1-D to 3-D, groups, strides 2 to 4 (above the kernel too, so some phases have
//! no taps), uneven padding, inputs the last window leaves out; and the benchmark's strided
//! layers (s2-3x3, stem 7×7) at reduced size.

mod common;

use stride::geometry::PaddingSpec;
use stride::ops::conv::{subpixel, ConvParams, ConvShape};
use stride::rng::Rng;

fn check(xs: &[usize], ws: &[usize], p: &ConvParams, rng: &mut Rng, what: &str) {
    let s = ConvShape::new(xs, ws, None, p).unwrap();
    assert!(subpixel::applies(&s), "{what}");
    let what = format!("{what} {xs:?} {ws:?} {p:?}");
    common::check_input_grad(&s, ws, rng, &what, |gy, w, gx| {
        subpixel::backward_input(&s, gy, w, gx).unwrap()
    });
}

#[test]
fn subpixel_matches_the_direct_scatter() {
    let mut rng = Rng::new(21);
    for case in 0..150 {
        let (xs, ws, mut p) = common::strided_case(&mut rng, 3, |rng, _, nd| {
            (
                1 + rng.below(if nd == 3 { 3 } else { 5 }),
                1 + rng.below(4),
                9,
            )
        });
        if p.stride.iter().all(|&s| s == 1) {
            p.stride[0] = 2;
        }
        if ConvShape::new(&xs, &ws, None, &p).is_err() {
            continue;
        }
        check(&xs, &ws, &p, &mut rng, &format!("case {case}"));
    }
}

#[test]
fn subpixel_on_the_benchmark_strided_layers() {
    let mut rng = Rng::new(2);
    let s2 = ConvParams {
        stride: vec![2],
        padding: PaddingSpec::Explicit(vec![(1, 1); 2]),
        ..ConvParams::default()
    };
    check(&[2, 16, 28, 28], &[32, 16, 3, 3], &s2, &mut rng, "s2-3x3");
    let stem = ConvParams {
        stride: vec![2],
        padding: PaddingSpec::Explicit(vec![(3, 3); 2]),
        ..ConvParams::default()
    };
    check(&[2, 3, 33, 32], &[16, 3, 7, 7], &stem, &mut rng, "stem7x7");
}
