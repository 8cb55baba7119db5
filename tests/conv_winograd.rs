//! Winograd F(4×4, 3×3) (`--algo winograd`, the 2-D fast path) against a float64 direct
//! reference: random shapes (odd sizes, tiles clipped at the bottom and right edges, several
//! tile rows in one vector, groups, bias, batch > 1), 256 input channels for the error bound;
//! the same path on 1-D (F(4, 3)) and 3-D problems (per depth slice) on random shapes and the
//! benchmark classes, and `auto`'s choice of it there with the input gradients it then runs;
//! the input gradient through the adjoint problem, and the weight gradient (F(4×4, 3×3) run
//! backwards) against a float64 reference: random shapes, the long sums of the benchmark
//! layers (every tile of 56×56 images, 256 channels) and independence of the thread count. The
//! bound is the issue's: max |error| ≤ 1e-5 · max |y| (or max |dW|) against float64. CI
//! reruns this file with `STRIDE_SIMD=portable`.

use stride::geometry::PaddingSpec;
use stride::ops::conv::winograd::plane;
use stride::ops::conv::{conv, conv_backward, ConvAlgo, ConvParams, ConvShape, GradRequest};
use stride::rng::Rng;
use stride::Tensor;

/// `y = conv(x, w) + b` in float64 on 1, 2 or 3 spatial axes: x (N, Cin, *in), w (Cout,
/// Cin/g, 3, …), zero padding `pad` per axis (before, after), stride 1. Lower-dimensional
/// problems get leading axes of one value and one tap.
fn reference_nd(
    x: &Tensor,
    w: &Tensor,
    b: &[f32],
    groups: usize,
    pad: &[(usize, usize)],
) -> Vec<f64> {
    let (n, cin, cout) = (x.shape()[0], x.shape()[1], w.shape()[0]);
    let nd = x.shape().len() - 2;
    assert_eq!(pad.len(), nd);
    let (mut size, mut k, mut before, mut out) = ([1; 3], [1; 3], [0; 3], [1; 3]);
    for (a, &(b, e)) in pad.iter().enumerate() {
        let at = 3 - nd + a;
        size[at] = x.shape()[2 + a];
        k[at] = w.shape()[2 + a];
        before[at] = b;
        out[at] = size[at] + b + e + 1 - k[at];
    }
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let (xd, wdat) = (x.data(), w.data());
    let [od, oh, ow] = out;
    let mut y = vec![0.0f64; n * cout * od * oh * ow];
    for img in 0..n {
        for oc in 0..cout {
            let g = oc / cout_g;
            for o in 0..od * oh * ow {
                let pos = [o / (oh * ow), o / ow % oh, o % ow];
                let mut acc = b[oc] as f64;
                for icg in 0..cin_g {
                    let ic = g * cin_g + icg;
                    for tap in 0..k[0] * k[1] * k[2] {
                        let t = [tap / (k[1] * k[2]), tap / k[2] % k[1], tap % k[2]];
                        let i: [isize; 3] =
                            std::array::from_fn(|a| (pos[a] + t[a]) as isize - before[a] as isize);
                        if (0..3).any(|a| i[a] < 0 || i[a] >= size[a] as isize) {
                            continue;
                        }
                        let at =
                            (i[0] as usize * size[1] + i[1] as usize) * size[2] + i[2] as usize;
                        let xv = xd[(img * cin + ic) * size.iter().product::<usize>() + at];
                        let wv = wdat[(oc * cin_g + icg) * k.iter().product::<usize>() + tap];
                        acc += xv as f64 * wv as f64;
                    }
                }
                y[(img * cout + oc) * od * oh * ow + o] = acc;
            }
        }
    }
    y
}

fn normal(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape.to_vec(), (0..n).map(|_| rng.normal()).collect()).unwrap()
}

/// Random inputs `|normal|` (as after a ReLU: every patch sum has a large common part).
fn rectified(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let t = normal(rng, shape);
    Tensor::new(shape.to_vec(), t.data().iter().map(|v| v.abs()).collect()).unwrap()
}

/// max |got − want| / max |want|.
fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let err = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()));
    err / scale.max(f64::MIN_POSITIVE)
}

#[test]
fn winograd_2d_matches_the_float64_reference_on_random_shapes() {
    let mut rng = Rng::new(15);
    for _ in 0..40 {
        let (n, cin, cout, groups, [h, w], pad) = random_2d(&mut rng, 9);
        check_nd(&mut rng, normal, &[n, cin, h, w], cout, groups, &pad);
    }
}

/// A random 2-D problem for the Winograd path: (N, Cin, Cout, groups, [H, W], paddings), up
/// to `cin_g_max` input and 20 output channels per group, 1–3 groups and images; sizes from 1
/// (padding makes the output) to 23: tiles clipped at the edges, and images narrower than 16
/// tiles share a vector between tile rows and images.
#[allow(clippy::type_complexity)]
fn random_2d(
    rng: &mut Rng,
    cin_g_max: usize,
) -> (usize, usize, usize, usize, [usize; 2], [(usize, usize); 2]) {
    let groups = [1, 1, 2, 3][rng.below(4)];
    let (cin, cout) = (
        groups * (1 + rng.below(cin_g_max)),
        groups * (1 + rng.below(20)),
    );
    let n = 1 + rng.below(3);
    let hw = [1 + rng.below(23), 1 + rng.below(23)];
    let pad = hw.map(|e| {
        let need = 3usize.saturating_sub(e);
        (need.max(rng.below(3)), rng.below(3))
    });
    (n, cin, cout, groups, hw, pad)
}

#[test]
fn winograd_2d_error_stays_within_1e_5_on_256_channels() {
    // the r3x3-256 class (256 → 256, 14×14, pad 1), fewer output channels and one image to
    // stay fast in debug builds: the error per output does not depend on Cout or N
    let mut rng = Rng::new(256);
    let err = check_nd(&mut rng, normal, &[1, 256, 14, 14], 8, 1, &[(1, 1); 2]);
    let err64 = check_nd(&mut rng, normal, &[2, 64, 21, 19], 8, 1, &[(1, 1); 2]);
    let relu = check_nd(&mut rng, rectified, &[1, 256, 14, 14], 8, 1, &[(1, 1); 2]);
    eprintln!(
        "relative error: 256 channels {err:e}, 64 channels {err64:e}, 256 rectified {relu:e}"
    );
}

/// The input gradient of `algo` for a random output gradient, against the direct scatter's:
/// max |error| / max |gx|.
fn input_grad_error(rng: &mut Rng, x: &Tensor, wt: &Tensor, p: &ConvParams, algo: ConvAlgo) -> f64 {
    let s = ConvShape::new(x.shape(), wt.shape(), None, p).unwrap();
    let gy = normal(rng, &s.out_shape());
    let want = GradRequest {
        input: true,
        weight: false,
        bias: false,
    };
    let grad = |algo| {
        conv_backward(x, wt, &gy, p, algo, want)
            .unwrap()
            .input
            .unwrap()
    };
    let direct: Vec<f64> = grad(ConvAlgo::Direct)
        .data()
        .iter()
        .map(|v| *v as f64)
        .collect();
    rel_err(grad(algo).data(), &direct)
}

#[test]
fn winograd_input_gradient_through_the_adjoint_matches_direct() {
    let mut rng = Rng::new(7);
    for case in 0..6 {
        let groups = [1, 2][case % 2];
        let (cin, cout) = (groups * (1 + rng.below(12)), groups * (1 + rng.below(12)));
        let (h, w) = (2 + rng.below(17), 2 + rng.below(17));
        let n = 1 + rng.below(2);
        let x = normal(&mut rng, &[n, cin, h, w]);
        let wt = normal(&mut rng, &[cout, cin / groups, 3, 3]);
        let p = ConvParams {
            padding: PaddingSpec::Explicit(vec![(1, rng.below(3)), (rng.below(3), 1)]),
            groups,
            ..Default::default()
        };
        let err = input_grad_error(&mut rng, &x, &wt, &p, ConvAlgo::Winograd);
        assert!(
            err <= 2e-5,
            "case {case}: x{:?} w{:?} {p:?}: {err:e}",
            x.shape(),
            wt.shape()
        );
    }
}

/// `dW = Σ_n Σ_pos gy[n, oc, pos] · x[n, ic, pos + tap − pad]` in float64 on 1, 2 or 3 spatial
/// axes: x (N, Cin, *in), gy (N, Cout, *out), the weight gradient (Cout, Cin/g, 3, …) of a
/// stride-1 3-tap convolution with zero padding `pad` before each axis.
fn reference_weight_grad(x: &Tensor, gy: &Tensor, groups: usize, pad: &[usize]) -> Vec<f64> {
    let (n, cin, cout) = (x.shape()[0], x.shape()[1], gy.shape()[1]);
    let nd = x.shape().len() - 2;
    let (mut size, mut out, mut k, mut before) = ([1; 3], [1; 3], [1; 3], [0; 3]);
    for (a, &b) in pad.iter().enumerate() {
        let at = 3 - nd + a;
        (size[at], out[at], k[at], before[at]) = (x.shape()[2 + a], gy.shape()[2 + a], 3, b);
    }
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let (xd, gd) = (x.data(), gy.data());
    let (taps, outs, ins) = (
        k[0] * k[1] * k[2],
        out.iter().product::<usize>(),
        size.iter().product::<usize>(),
    );
    let mut gw = vec![0.0f64; cout * cin_g * taps];
    for oc in 0..cout {
        let g = oc / cout_g;
        for icg in 0..cin_g {
            let ic = g * cin_g + icg;
            for tap in 0..taps {
                let t = [tap / (k[1] * k[2]), tap / k[2] % k[1], tap % k[2]];
                let mut acc = 0.0f64;
                for img in 0..n {
                    for o in 0..outs {
                        let pos = [o / (out[1] * out[2]), o / out[2] % out[1], o % out[2]];
                        let i: [isize; 3] =
                            std::array::from_fn(|a| (pos[a] + t[a]) as isize - before[a] as isize);
                        if (0..3).any(|a| i[a] < 0 || i[a] >= size[a] as isize) {
                            continue;
                        }
                        let at =
                            (i[0] as usize * size[1] + i[1] as usize) * size[2] + i[2] as usize;
                        let xv = xd[(img * cin + ic) * ins + at];
                        acc += gd[(img * cout + oc) * outs + o] as f64 * xv as f64;
                    }
                }
                gw[(oc * cin_g + icg) * taps + tap] = acc;
            }
        }
    }
    gw
}

/// A random problem for the fast path: x of shape `xs` (drawn by `input`), a normal 3-tap
/// kernel for `cout` output channels, zero padding `pad`, `groups`.
fn problem(
    rng: &mut Rng,
    input: fn(&mut Rng, &[usize]) -> Tensor,
    xs: &[usize],
    cout: usize,
    groups: usize,
    pad: &[(usize, usize)],
) -> (Tensor, Tensor, ConvParams, ConvShape) {
    let x = input(rng, xs);
    let mut ws = vec![cout, xs[1] / groups];
    ws.extend(vec![3; xs.len() - 2]);
    let wt = normal(rng, &ws);
    let p = ConvParams {
        padding: PaddingSpec::Explicit(pad.to_vec()),
        groups,
        ..Default::default()
    };
    let s = ConvShape::new(x.shape(), wt.shape(), None, &p).unwrap();
    assert!(plane::applies(&s), "{xs:?} {ws:?} {p:?}");
    (x, wt, p, s)
}

/// One weight-gradient case (2-D or 3-D, x of shape `xs`): Winograd against the float64
/// reference; returns the error relative to max |dW|.
fn check_weight_grad_nd(
    rng: &mut Rng,
    input: fn(&mut Rng, &[usize]) -> Tensor,
    xs: &[usize],
    cout: usize,
    groups: usize,
    pad: &[(usize, usize)],
) -> f64 {
    let (x, wt, p, s) = problem(rng, input, xs, cout, groups, pad);
    let gy = normal(rng, &s.out_shape());
    let want = GradRequest {
        input: false,
        weight: true,
        bias: false,
    };
    let got = conv_backward(&x, &wt, &gy, &p, ConvAlgo::Winograd, want).unwrap();
    let before: Vec<usize> = pad.iter().map(|p| p.0).collect();
    let reference = reference_weight_grad(&x, &gy, groups, &before);
    let err = rel_err(got.weight.unwrap().data(), &reference);
    let what = format!("x{:?} w{:?} {p:?}", x.shape(), wt.shape());
    assert!(
        err <= 1e-5,
        "{what}: weight gradient error {err:e} of max |dW|"
    );
    err
}

#[test]
fn winograd_weight_gradient_matches_the_float64_reference_on_random_shapes() {
    let mut rng = Rng::new(33);
    for _ in 0..30 {
        let (n, cin, cout, groups, hw, pad) = random_2d(&mut rng, 20);
        check_weight_grad_nd(
            &mut rng,
            normal,
            &[n, cin, hw[0], hw[1]],
            cout,
            groups,
            &pad,
        );
    }
}

#[test]
fn winograd_weight_gradient_error_stays_within_1e_5_on_long_sums() {
    // the benchmark classes with fewer output channels and images (the error per weight
    // depends on the channels only through the transforms, not on Cout): r3x3-64's 56×56
    // (196 tiles per image), r3x3-256's 256 channels, rectified inputs (as after a ReLU)
    let mut rng = Rng::new(64);
    let one = [(1, 1), (1, 1)];
    let e64 = check_weight_grad_nd(&mut rng, normal, &[2, 64, 56, 56], 16, 1, &one);
    let e256 = check_weight_grad_nd(&mut rng, normal, &[4, 256, 14, 14], 16, 1, &one);
    let relu = check_weight_grad_nd(&mut rng, rectified, &[2, 64, 56, 56], 16, 1, &one);
    eprintln!(
        "weight gradient error: 64 channels {e64:e}, 256 channels {e256:e}, rectified {relu:e}"
    );
}

#[test]
fn auto_picks_winograd_on_big_3x3_stride_1_convolutions_only() {
    use stride::ops::conv::auto_algos;
    let case = |x: &[usize], w: &[usize]| {
        let p = ConvParams {
            padding: PaddingSpec::Explicit(vec![(1, 1); 2]),
            ..ConvParams::default()
        };
        auto_algos(&ConvShape::new(x, w, None, &p).unwrap())
    };
    // r3x3-64 and r3x3-256: forward and the adjoint input gradient
    for (x, w) in [
        ([8, 64, 56, 56], [64, 64, 3, 3]),
        ([8, 256, 14, 14], [256, 256, 3, 3]),
    ] {
        assert_eq!(case(&x, &w), ["winograd", "adj-winograd", "winograd"]);
    }
    // 16 channels (a tie forward, the weight gradient wins), 512 input channels (U and dU
    // outgrow the caches), 3 input channels (padded to 16 lanes): the direct kernels
    assert_eq!(
        case(&[8, 16, 56, 56], &[16, 16, 3, 3]),
        ["channel-lanes", "adj-channel-lanes", "winograd"]
    );
    assert_eq!(case(&[8, 512, 7, 7], &[512, 512, 3, 3])[0], "channel-lanes");
    assert_eq!(case(&[8, 512, 7, 7], &[512, 512, 3, 3])[2], "channel-lanes");
    assert_ne!(case(&[2, 3, 112, 112], &[64, 3, 3, 3])[2], "winograd");
}

#[test]
fn winograd_weight_gradient_does_not_depend_on_the_thread_count() {
    // several runs of tile rows (56×56, 64 channels) and groups: every dU value is summed by
    // one task in a fixed order, so 1 and 3 threads give the same bits
    let mut rng = Rng::new(5);
    let x = normal(&mut rng, &[2, 64, 56, 56]);
    let wt = normal(&mut rng, &[32, 32, 3, 3]);
    let p = ConvParams {
        padding: PaddingSpec::Explicit(vec![(1, 1); 2]),
        groups: 2,
        ..Default::default()
    };
    let s = ConvShape::new(x.shape(), wt.shape(), None, &p).unwrap();
    let gy = normal(&mut rng, &s.out_shape());
    let want = GradRequest {
        input: false,
        weight: true,
        bias: false,
    };
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| conv_backward(&x, &wt, &gy, &p, ConvAlgo::Winograd, want))
            .unwrap()
            .weight
            .unwrap()
    };
    let one = run(1);
    assert_eq!(one.data(), run(3).data());
    let reference = reference_weight_grad(&x, &gy, 2, &[1, 1]);
    assert!(rel_err(one.data(), &reference) <= 1e-5);
}

/// One random problem on 1, 2 or 3 spatial axes (x of shape `xs`, drawn by `input`) through
/// `--algo winograd` (the fast path: F(4, 3) on lines, F(4×4, 3×3) in the plane and per depth
/// slice with the depth taps summed directly) against the float64 reference and against
/// `Direct`; returns the error relative to max |y|.
fn check_nd(
    rng: &mut Rng,
    input: fn(&mut Rng, &[usize]) -> Tensor,
    xs: &[usize],
    cout: usize,
    groups: usize,
    pad: &[(usize, usize)],
) -> f64 {
    let (x, wt, p, _) = problem(rng, input, xs, cout, groups, pad);
    let b: Vec<f32> = (0..cout).map(|_| rng.normal()).collect();
    let bt = Tensor::new(vec![cout], b.clone()).unwrap();
    let got = conv(&x, &wt, Some(&bt), &p, ConvAlgo::Winograd).unwrap();
    let err = rel_err(got.data(), &reference_nd(&x, &wt, &b, groups, pad));
    let what = format!("x{xs:?} w{:?} {p:?}", wt.shape());
    assert!(err <= 1e-5, "{what}: error {err:e} of max |y|");
    let direct = conv(&x, &wt, Some(&bt), &p, ConvAlgo::Direct).unwrap();
    let direct64: Vec<f64> = direct.data().iter().map(|v| *v as f64).collect();
    assert!(
        rel_err(got.data(), &direct64) <= 2e-5,
        "{what}: against Direct"
    );
    err
}

#[test]
fn winograd_1d_and_3d_match_the_float64_reference_on_random_shapes() {
    // lengths from 1 to 70 (several tiles per vector, runs broken by images and, in 3-D, by
    // depth slices and tile rows), depth slices reaching into the padding, groups
    let mut rng = Rng::new(31);
    for case in 0..40 {
        let nd = [1, 3][case % 2];
        let groups = [1, 1, 2, 3][rng.below(4)];
        let (cin, cout) = (groups * (1 + rng.below(12)), groups * (1 + rng.below(20)));
        let n = 1 + rng.below(3);
        let size: Vec<usize> = (0..nd)
            .map(|_| 1 + rng.below(if nd == 3 { 11 } else { 70 }))
            .collect();
        let pad: Vec<(usize, usize)> = size
            .iter()
            .map(|&e| (3usize.saturating_sub(e).max(rng.below(3)), rng.below(3)))
            .collect();
        let mut xs = vec![n, cin];
        xs.extend(&size);
        check_nd(&mut rng, normal, &xs, cout, groups, &pad);
    }
}

#[test]
fn winograd_1d_and_3d_error_stays_within_1e_5_on_the_benchmark_classes() {
    // conv1d (64 → 64, length 1024) and conv3d (16 → 32, 16×32×32), shortened for debug builds:
    // the error per output depends on the reduction (Cin/g · taps), not on the extents
    let mut rng = Rng::new(13);
    let e1 = check_nd(&mut rng, normal, &[2, 64, 150], 8, 1, &[(1, 1)]);
    let e3 = check_nd(&mut rng, normal, &[1, 16, 6, 9, 21], 8, 1, &[(1, 1); 3]);
    let e1w = check_nd(&mut rng, rectified, &[1, 256, 40], 4, 1, &[(1, 1)]);
    eprintln!("relative error: conv1d class {e1:e}, conv3d class {e3:e}, 256 channels 1-D {e1w:e}");
}

#[test]
fn auto_picks_winograd_on_the_1d_and_3d_benchmark_shapes_and_their_input_gradients() {
    use stride::ops::conv::auto_algos;
    let shape = |x: &[usize], w: &[usize]| {
        let p = ConvParams {
            padding: PaddingSpec::Same,
            ..ConvParams::default()
        };
        ConvShape::new(x, w, None, &p).unwrap()
    };
    // the weight gradient too: F(4, 3) backwards in 1-D, one dU per depth tap in 3-D
    let conv1d = shape(&[32, 64, 1024], &[64, 64, 3]);
    assert_eq!(
        auto_algos(&conv1d),
        ["winograd", "adj-winograd", "winograd"]
    );
    let conv3d = shape(&[2, 16, 16, 32, 32], &[32, 16, 3, 3, 3]);
    assert_eq!(
        auto_algos(&conv3d),
        ["winograd", "adj-winograd", "winograd"]
    );
    // the input gradients through them against the direct scatter
    let mut rng = Rng::new(3);
    for (xs, ws) in [
        (vec![2, 32, 300], vec![48, 32, 3]),
        (vec![1, 16, 5, 12, 20], vec![32, 16, 3, 3, 3]),
    ] {
        let (x, wt) = (normal(&mut rng, &xs), normal(&mut rng, &ws));
        let p = ConvParams {
            padding: PaddingSpec::Same,
            ..Default::default()
        };
        let s = ConvShape::new(x.shape(), wt.shape(), None, &p).unwrap();
        assert_eq!(auto_algos(&s)[1], "adj-winograd", "{xs:?}");
        let err = input_grad_error(&mut rng, &x, &wt, &p, ConvAlgo::Auto);
        assert!(err <= 2e-5, "{xs:?}: {err:e}");
    }
}

#[test]
fn winograd_1d_weight_gradient_matches_the_float64_reference() {
    // random lengths (several images per run, tiles clipped at the end), groups, then the
    // conv1d class (64 → 64) shortened and 256 channels
    let mut rng = Rng::new(29);
    for _ in 0..20 {
        let groups = [1, 2, 3][rng.below(3)];
        let (cin, cout) = (groups * (1 + rng.below(20)), groups * (1 + rng.below(20)));
        let len = 1 + rng.below(90);
        let pad = [(3usize.saturating_sub(len).max(rng.below(3)), rng.below(3))];
        let xs = [1 + rng.below(3), cin, len];
        check_weight_grad_nd(&mut rng, normal, &xs, cout, groups, &pad);
    }
    let e64 = check_weight_grad_nd(&mut rng, normal, &[4, 64, 300], 64, 1, &[(1, 1)]);
    let e256 = check_weight_grad_nd(&mut rng, rectified, &[2, 256, 200], 16, 1, &[(1, 1)]);
    eprintln!("1-D weight gradient error: conv1d class {e64:e}, 256 rectified {e256:e}");
}

#[test]
fn winograd_3d_weight_gradient_matches_the_float64_reference() {
    // random 3-D shapes (depth taps reaching into the padding, groups, several runs of tile
    // rows), then the conv3d class (16 → 32) shortened: one dU per depth tap
    let mut rng = Rng::new(27);
    for _ in 0..12 {
        let groups = [1, 2][rng.below(2)];
        let (cin, cout) = (groups * (1 + rng.below(20)), groups * (1 + rng.below(20)));
        let size = [1 + rng.below(7), 1 + rng.below(12), 1 + rng.below(12)];
        let pad: Vec<(usize, usize)> = size
            .iter()
            .map(|&e| (3usize.saturating_sub(e).max(rng.below(3)), rng.below(3)))
            .collect();
        let xs = [1 + rng.below(2), cin, size[0], size[1], size[2]];
        check_weight_grad_nd(&mut rng, normal, &xs, cout, groups, &pad);
    }
    let err = check_weight_grad_nd(&mut rng, normal, &[1, 16, 6, 16, 20], 32, 1, &[(1, 1); 3]);
    eprintln!("3-D weight gradient error: conv3d class {err:e}");
}
