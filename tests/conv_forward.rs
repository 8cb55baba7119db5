//! Convolution forward: the seed exercises, and the three algorithms agreeing on randomized
//! shapes that sweep every parameter (1-D/2-D/3-D, batch, channels, bias, stride, every padding
//! form and mode, dilation, groups, flip).

mod common;
use common::{fast_algos, random_conv, t, IMAGE_A, KERNEL_B};
use stride::geometry::PaddingSpec;
use stride::ops::conv::{conv, ConvAlgo, ConvParams};
use stride::rng::Rng;
use stride::Tensor;

#[test]
fn seed_004_worked_example_all_algorithms() {
    let x = t(&[1, 1, 5, 5], &IMAGE_A);
    let w = t(&[1, 1, 3, 3], &KERNEL_B);
    for algo in [
        ConvAlgo::Direct,
        ConvAlgo::Im2col,
        ConvAlgo::Toeplitz,
        ConvAlgo::Auto,
    ] {
        let y = conv(&x, &w, None, &ConvParams::default(), algo).unwrap();
        assert_eq!(y.shape(), &[1, 1, 3, 3]);
        assert_eq!(
            y.data(),
            &[109., 92., 72., 108., 85., 74., 110., 74., 79.],
            "{algo:?}"
        );
    }
}

#[test]
fn seed_000_exercise_b_stride_2() {
    // I * K with stride 2, no padding (cross-correlation as in the course's definition (1)).
    let x = t(
        &[1, 5, 5],
        &[
            1., 1., -2., 0., 1., 1., 0., 0., 2., 1., 0., 1., 0., 5., -1., -2., 1., 0., -1., 1., 0.,
            1., 0., 5., -1.,
        ],
    );
    let w = t(&[1, 1, 3, 3], &[0., 1., 1., 1., 0., 0., 0., 1., 0.]);
    let p = ConvParams {
        stride: vec![2],
        ..Default::default()
    };
    for algo in [ConvAlgo::Direct, ConvAlgo::Im2col, ConvAlgo::Toeplitz] {
        let y = conv(&x, &w, None, &p, algo).unwrap();
        assert_eq!(y.shape(), &[1, 2, 2]); // unbatched in, unbatched out
                                           // window (0,0): 1+(-2)+1+1 = 1 ... computed by hand:
                                           // (0,0): K·I[0:3,0:3] = I01+I02+I10+I21 = 1-2+1+1 = 1
                                           // (0,1): I03+I04+I12+I23 = 0+1+0+5 = 6
                                           // (1,0): I21+I22+I30+I41 = 1+0-2+1 = 0
                                           // (1,1): I23+I24+I32+I43 = 5-1+0+5 = 9
        assert_eq!(y.data(), &[1., 6., 0., 9.], "{algo:?}");
    }
}

#[test]
fn flip_is_true_convolution() {
    let x = t(&[1, 1, 5, 5], &IMAGE_A);
    let w = t(&[1, 1, 3, 3], &KERNEL_B);
    let flipped = w.flip_spatial();
    let p = ConvParams {
        flip: true,
        ..Default::default()
    };
    let a = conv(&x, &w, None, &p, ConvAlgo::Direct).unwrap();
    let b = conv(&x, &flipped, None, &ConvParams::default(), ConvAlgo::Direct).unwrap();
    assert_eq!(a, b);
}

#[test]
fn algorithms_agree_on_random_shapes() {
    let mut rng = Rng::new(2024);
    let mut checked = 0;
    for case in 0..400 {
        let (x, w, b, p) = random_conv(&mut rng);
        let reference = match conv(&x, &w, b.as_ref(), &p, ConvAlgo::Direct) {
            Ok(y) => y,
            Err(e) => {
                // only geometry that PyTorch also rejects (window larger than padded input)
                assert!(
                    e.to_string().contains("larger than the padded input"),
                    "case {case}: {e}"
                );
                continue;
            }
        };
        checked += 1;
        // Winograd has its own test (its rounding error is larger)
        for algo in fast_algos().filter(|a| *a != ConvAlgo::Winograd) {
            let y = conv(&x, &w, b.as_ref(), &p, algo).unwrap();
            assert_eq!(y.shape(), reference.shape());
            let err = y.max_abs_diff(&reference);
            assert!(
                err < 1e-4,
                "case {case} {algo:?} {p:?} x{:?} w{:?}: err {err}",
                x.shape(),
                w.shape()
            );
        }
    }
    assert!(checked > 300, "only {checked} cases were valid");
}

#[test]
fn im2col_tiles_large_inputs() {
    // A problem whose column matrix exceeds one tile: the tiled result must match direct.
    let mut rng = Rng::new(5);
    let x = Tensor::new(vec![1, 64, 40, 40], rng.vec(64 * 1600, -1.0, 1.0)).unwrap();
    let w = Tensor::new(vec![4, 64, 7, 7], rng.vec(4 * 64 * 49, -1.0, 1.0)).unwrap();
    let p = ConvParams {
        padding: PaddingSpec::Same,
        ..Default::default()
    };
    let s = stride::ops::conv::ConvShape::new(x.shape(), w.shape(), None, &p).unwrap();
    assert!(stride::ops::conv::im2col::tile_len(&s) < s.window.out_len());
    let a = conv(&x, &w, None, &p, ConvAlgo::Direct).unwrap();
    let b = conv(&x, &w, None, &p, ConvAlgo::Im2col).unwrap();
    assert!(a.max_abs_diff(&b) < 1e-3);
}

#[test]
fn toeplitz_refuses_huge_matrices() {
    let x = Tensor::zeros(&[1, 16, 64, 64]);
    let w = Tensor::zeros(&[16, 16, 3, 3]);
    let e = conv(&x, &w, None, &ConvParams::default(), ConvAlgo::Toeplitz)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Toeplitz matrix would be") && e.contains("--algo im2col"),
        "{e}"
    );
}

#[test]
fn fast_unfold_matches_reference_on_any_tile() {
    use stride::ops::conv::{im2col, ConvShape};
    let mut rng = Rng::new(77);
    for case in 0..200 {
        let (x, w, _, p) = random_conv(&mut rng);
        let Ok(s) = ConvShape::new(x.shape(), w.shape(), None, &p) else {
            continue;
        };
        let (k, l) = (s.reduction_len(), s.window.out_len());
        let x_g = &x.data()[..s.cin_g() * s.window.in_len()];
        let o0 = rng.below(l);
        let o1 = o0 + 1 + rng.below(l - o0);
        let mut fast = vec![f32::NAN; k * (o1 - o0)];
        let mut slow = vec![0.0; k * (o1 - o0)];
        im2col::unfold(&s, x_g, o0, o1, &mut fast);
        im2col::unfold_reference(&s, x_g, o0, o1, &mut slow, o1 - o0);
        assert_eq!(
            fast,
            slow,
            "case {case}: {p:?} x{:?} w{:?} tile {o0}..{o1}",
            x.shape(),
            w.shape()
        );
    }
}

#[test]
fn winograd_matches_direct_on_3_tap_kernels() {
    let mut rng = Rng::new(33);
    for case in 0..60 {
        let nd = 1 + case % 3;
        let groups = [1, 1, 2][rng.below(3)];
        let (cin, cout) = (groups * (1 + rng.below(4)), groups * (1 + rng.below(4)));
        let n = 1 + rng.below(3);
        let size: Vec<usize> = (0..nd)
            .map(|_| 1 + rng.below(if nd == 3 { 9 } else { 14 }))
            .collect();
        let pad: Vec<(usize, usize)> = (0..nd)
            .map(|a| {
                let need = 3usize.saturating_sub(size[a]);
                (need.max(rng.below(3)), rng.below(3))
            })
            .collect();
        let mut xs = vec![n, cin];
        xs.extend(&size);
        let mut ws = vec![cout, cin / groups];
        ws.extend(vec![3; nd]);
        let x = Tensor::new(xs.clone(), rng.vec(xs.iter().product(), -1.0, 1.0)).unwrap();
        let w = Tensor::new(ws.clone(), rng.vec(ws.iter().product(), -1.0, 1.0)).unwrap();
        let b = Tensor::new(vec![cout], rng.vec(cout, -1.0, 1.0)).unwrap();
        let p = ConvParams {
            padding: PaddingSpec::Explicit(pad),
            groups,
            ..Default::default()
        };
        let s = stride::ops::conv::ConvShape::new(x.shape(), w.shape(), None, &p).unwrap();
        assert!(stride::ops::conv::winograd::suits(&s));
        let want = conv(&x, &w, Some(&b), &p, ConvAlgo::Direct).unwrap();
        let got = conv(&x, &w, Some(&b), &p, ConvAlgo::Winograd).unwrap();
        // F(4,3) rounding: bounded relative to the sum of |terms| (≤ Cin/g · 3^nd for unit inputs)
        let bound = 1e-5 * ((cin / groups) * 3usize.pow(nd as u32)) as f32 * 8.0;
        let err = got.max_abs_diff(&want);
        assert!(
            err < bound,
            "case {case}: x{xs:?} w{ws:?} {p:?}: err {err} bound {bound}"
        );
    }
}

#[test]
fn fast_fold_matches_reference_on_any_tile() {
    // col2im (the adjoint of unfold, used by the input gradient) against the reference that
    // asks the geometry for every entry, on every padding mode and random tiles
    use stride::ops::conv::{im2col, ConvShape};
    let mut rng = Rng::new(78);
    for case in 0..200 {
        let (x, w, _, p) = random_conv(&mut rng);
        let Ok(s) = ConvShape::new(x.shape(), w.shape(), None, &p) else {
            continue;
        };
        let (k, l) = (s.reduction_len(), s.window.out_len());
        let o0 = rng.below(l);
        let o1 = o0 + 1 + rng.below(l - o0);
        let cols = rng.vec(k * (o1 - o0), -1.0, 1.0);
        let in_len = s.cin_g() * s.window.in_len();
        let (mut fast, mut slow) = (vec![0.5; in_len], vec![0.5; in_len]);
        im2col::fold(&s, &cols, o0, o1, &mut fast);
        im2col::fold_reference(&s, &cols, o0, o1, &mut slow);
        // the same sums in another order: equal to float32 rounding
        let err = fast
            .iter()
            .zip(&slow)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            err <= 1e-5 * (1 + k) as f32,
            "case {case}: {p:?} x{:?} w{:?} tile {o0}..{o1}: max error {err}",
            x.shape(),
            w.shape()
        );
    }
}
