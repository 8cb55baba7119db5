//! The channel-lanes direct kernel (`--algo channel-lanes`, formerly `blocked`) against the direct reference on random
//! shapes that exercise its own cases: 16 or more output channels per group (whole and partial
//! 16-channel blocks, one or two blocks per register block), output rows wider than one
//! 14-column register block (the last block shifted back), width stride 1, 2 and 3 (3 defers
//! to im2col), dilation, groups, 1-D/2-D/3-D, bias; and the input gradient, which at stride 1
//! runs the same kernel on the adjoint problem, and the weight gradient (output channels in
//! the lanes, runs of up to 12 (input channel, tap) pairs).

mod common;
use stride::geometry::PaddingSpec;
use stride::ops::conv::{conv, ConvAlgo, ConvParams};
use stride::rng::Rng;
use stride::Tensor;

fn random_blocked_case(rng: &mut Rng) -> (Tensor, Tensor, Option<Tensor>, ConvParams) {
    let nd = 1 + rng.below(3);
    let groups = [1, 1, 2][rng.below(3)];
    let cout_g = [16, 20, 32, 40, 48, 7][rng.below(6)];
    let cin_g = 1 + rng.below(5);
    let n = 1 + rng.below(2);
    let (mut k, mut stride, mut dil, mut inp, mut pads) = (vec![], vec![], vec![], vec![], vec![]);
    for axis in 0..nd {
        let kk = 1 + rng.below(if nd == 3 { 3 } else { 5 });
        let d = 1 + rng.below(2);
        let s = 1 + rng.below(3);
        let span = d * (kk - 1) + 1;
        // the last axis (width) up to ~45 wide: several column blocks
        let extra = if axis == nd - 1 {
            rng.below(40)
        } else {
            rng.below(6)
        };
        k.push(kk);
        stride.push(s);
        dil.push(d);
        inp.push(span + extra);
        pads.push((rng.below(3), rng.below(3)));
    }
    common::RandomProblem {
        batch: n,
        cin_g,
        cout_g,
        groups,
        input: inp,
        kernel: k,
        stride,
        pads,
        dil,
    }
    .draw(rng)
}

#[test]
fn long_reductions_run_in_weight_chunks() {
    // reductions Cin/g·taps past the 24 KiB weight chunk (192 steps with two 16-channel
    // blocks, 384 with one): the sums cross chunks, tiles of register blocks span rows, and
    // the row-reuse block (one block, 5 taps, stride 1) sees chunks of whole kernel rows
    let mut rng = Rng::new(4242);
    let cases: [(&[usize], &[usize], usize, usize); 4] = [
        (&[2, 30, 9, 23], &[32, 30, 3, 3], 1, 1),
        (&[1, 48, 11, 17], &[20, 48, 3, 3], 2, 1),
        (&[2, 17, 12, 20], &[16, 17, 5, 5], 1, 2),
        (&[1, 24, 6, 9, 9], &[48, 24, 3, 2, 3], 1, 1),
    ];
    for (case, (xs, ws, stride, pad)) in cases.into_iter().enumerate() {
        let x = common::rand_tensor(&mut rng, xs);
        let w = common::rand_tensor(&mut rng, ws);
        let b = common::rand_tensor(&mut rng, &[ws[0]]);
        let p = ConvParams {
            stride: vec![stride],
            padding: PaddingSpec::Explicit(vec![(pad, pad); xs.len() - 2]),
            ..ConvParams::default()
        };
        let what = format!("chunked case {case}");
        let problem = (&x, &w, Some(&b), &p);
        assert!(common::assert_passes_match_direct(
            &mut rng,
            problem,
            ConvAlgo::ChannelLanes,
            1e-5,
            &what
        ));
    }
}

#[test]
fn blocked_matches_direct_on_random_shapes() {
    common::check_random_problems(77, 250, 150, ConvAlgo::ChannelLanes, random_blocked_case);
}

#[test]
fn auto_picks_the_kernels_the_readme_names() {
    // (input shape, weight shape, padding, stride) → (forward, input gradient, weight gradient)
    use stride::ops::conv::{auto_algos, ConvShape};
    let case = |x: &[usize], w: &[usize], pad: usize, stride: usize, groups: usize| {
        let p = ConvParams {
            padding: PaddingSpec::Explicit(vec![(pad, pad); x.len() - 2]),
            stride: vec![stride],
            groups,
            ..ConvParams::default()
        };
        auto_algos(&ConvShape::new(x, w, None, &p).unwrap())
    };
    // LeNet's second layer: 16 output channels, reduction 150 → channel-lanes; its adjoint has 6
    // output channels and spreads 10-column rows to 14 (a full convolution) → batch-lanes'
    // scatter blocks
    assert_eq!(
        case(&[256, 6, 14, 14], &[16, 6, 5, 5], 0, 1, 1),
        ["channel-lanes", "adj-batch-lanes", "channel-lanes"]
    );
    // the same layer on fewer than 16 images keeps the width-lanes adjoint
    assert_eq!(
        case(&[8, 6, 14, 14], &[16, 6, 5, 5], 0, 1, 1),
        ["channel-lanes", "adj-width-lanes", "channel-lanes"]
    );
    // one input channel: reduction 9 < 64 → width-lanes for every pass
    assert_eq!(
        case(&[8, 1, 28, 28], &[32, 1, 3, 3], 1, 1, 1),
        ["width-lanes", "adj-width-lanes", "width-lanes"]
    );
    // 1×1: one GEMM forward and input gradient; the weight gradient's reduction over every
    // position runs faster in the channel-lanes correlation
    assert_eq!(
        case(&[8, 256, 56, 56], &[64, 256, 1, 1], 0, 1, 1),
        ["im2col", "adj-im2col", "channel-lanes"]
    );
    // 1-D and 3-D with 16 or more output channels and kernels other than 3 taps on every axis
    // (those run Winograd, tests/conv_winograd.rs): channel-lanes, even where the width is a
    // multiple of 16
    assert_eq!(
        case(&[32, 64, 1024], &[64, 64, 5], 2, 1, 1),
        ["channel-lanes", "adj-channel-lanes", "channel-lanes"]
    );
    assert_eq!(
        case(&[2, 16, 16, 32, 32], &[32, 16, 3, 3, 5], 1, 1, 1),
        ["channel-lanes", "adj-channel-lanes", "channel-lanes"]
    );
    // depthwise: one output channel per group
    assert_eq!(
        case(&[8, 256, 28, 28], &[256, 1, 3, 3], 1, 1, 256),
        ["width-lanes", "adj-width-lanes", "width-lanes"]
    );
    // stride 2: channel-lanes forward and weight gradient, the sub-pixel input gradient
    assert_eq!(
        case(&[8, 128, 28, 28], &[256, 128, 3, 3], 1, 2, 1),
        ["channel-lanes", "subpixel", "channel-lanes"]
    );
    // the strided stem on 3 channels: its input gradient gathered row by row (AVX-512)
    let stem_in = if stride::ops::simd::avx512() {
        "strided-rows"
    } else {
        "col2im"
    };
    assert_eq!(
        case(&[8, 3, 224, 224], &[64, 3, 7, 7], 3, 2, 1),
        ["channel-lanes", stem_in, "channel-lanes"]
    );
}

#[test]
fn algo_names_round_trip_and_old_names_stay_accepted() {
    for a in common::ALGOS {
        assert_eq!(a.name().parse::<ConvAlgo>().unwrap(), a);
    }
    assert_eq!("rows".parse::<ConvAlgo>().unwrap(), ConvAlgo::WidthLanes);
    assert_eq!(
        "blocked".parse::<ConvAlgo>().unwrap(),
        ConvAlgo::ChannelLanes
    );
    assert!("fft".parse::<ConvAlgo>().is_err());
}

#[test]
fn row_reuse_block_matches_direct() {
    // one channel block (16 or 48 output channels: the last block alone), width stride 1,
    // dilation 1, kernel rows of 3, 5 and 7 taps: the row-reuse register block, with its column
    // blocks (one to three) and rows of padding, forward and the input gradient's adjoint
    let mut rng = Rng::new(3577);
    for (case, &kw) in [3usize, 5, 7].iter().cycle().take(12).enumerate() {
        let cout = [16, 48][case % 2];
        let (cin, h, w) = (1 + rng.below(4), kw + rng.below(5), kw + rng.below(36));
        let x = common::rand_tensor(&mut rng, &[2, cin, h, w]);
        let kh = 1 + rng.below(3);
        let wt = common::rand_tensor(&mut rng, &[cout, cin, kh, kw]);
        let b = common::rand_tensor(&mut rng, &[cout]);
        let p = ConvParams {
            padding: PaddingSpec::Explicit(vec![(rng.below(3), rng.below(3)); 2]),
            ..ConvParams::default()
        };
        let Ok(want) = conv(&x, &wt, Some(&b), &p, ConvAlgo::Direct) else {
            continue;
        };
        let got = conv(&x, &wt, Some(&b), &p, ConvAlgo::ChannelLanes).unwrap();
        let err = got.max_abs_diff(&want) / (1.0 + want.max_abs());
        assert!(
            err < 1e-5,
            "case {case} kw {kw} x{:?}: err {err}",
            x.shape()
        );
    }
}
