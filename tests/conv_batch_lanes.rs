//! The batch-lanes direct kernel (`--algo batch-lanes`: 16 images in the vector lanes) against
//! the direct reference on random shapes that exercise its own cases: batches that fill one
//! block, several, and a partial last block (1, 15, 16, 17, 40 images); one or two output
//! channels in the last task (odd and even Cout); output rows wider than one 14-column register
//! block; padding on every side (rows above/below skipped, columns padded), dilation, height
//! stride 1–3, 1-D and 2-D, bias; the weight gradient (kernel rows up to 7 wide) and the input
//! gradient's adjoint problem (full padding: the rows it skips are the zero rows).

mod common;
use stride::ops::conv::{conv, ConvAlgo, ConvParams};
use stride::rng::Rng;
use stride::Tensor;

fn random_batch_case(rng: &mut Rng) -> (Tensor, Tensor, Option<Tensor>, ConvParams) {
    let nd = 1 + rng.below(2);
    let n = [1, 15, 16, 17, 40][rng.below(5)];
    let (cin, cout) = (1 + rng.below(6), 1 + rng.below(9));
    let (mut k, mut stride, mut dil, mut inp, mut pads) = (vec![], vec![], vec![], vec![], vec![]);
    for axis in 0..nd {
        let kk = 1 + rng.below(7);
        let d = 1 + rng.below(2);
        // the width at stride 1 (the kernel's domain), the height at 1–3
        let s = if axis == nd - 1 { 1 } else { 1 + rng.below(3) };
        let span = d * (kk - 1) + 1;
        inp.push(span + rng.below(if axis == nd - 1 { 30 } else { 8 }));
        k.push(kk);
        stride.push(s);
        dil.push(d);
        // sometimes full padding (the adjoint problem's)
        let full = span - 1;
        pads.push(if rng.below(4) == 0 {
            (full, full)
        } else {
            (rng.below(3), rng.below(3))
        });
    }
    common::RandomProblem {
        batch: n,
        cin_g: cin,
        cout_g: cout,
        groups: 1,
        input: inp,
        kernel: k,
        stride,
        pads,
        dil,
    }
    .draw(rng)
}

#[test]
fn batch_lanes_matches_direct_on_random_shapes() {
    common::check_random_problems(1616, 200, 120, ConvAlgo::BatchLanes, random_batch_case);
}

#[test]
fn batch_lanes_defers_outside_its_domain() {
    // groups, width stride 2 and 3-D are outside the kernel: the results still agree (im2col)
    let mut rng = Rng::new(5);
    let cases: [(&[usize], &[usize], ConvParams); 3] = [
        (
            &[17, 4, 9, 9],
            &[6, 2, 3, 3],
            ConvParams {
                groups: 2,
                ..ConvParams::default()
            },
        ),
        (
            &[17, 2, 9, 9],
            &[3, 2, 3, 3],
            ConvParams {
                stride: vec![2],
                ..ConvParams::default()
            },
        ),
        (&[17, 2, 4, 5, 6], &[3, 2, 2, 2, 2], ConvParams::default()),
    ];
    for (xs, ws, p) in cases {
        let x = common::rand_tensor(&mut rng, xs);
        let w = common::rand_tensor(&mut rng, ws);
        let want = conv(&x, &w, None, &p, ConvAlgo::Direct).unwrap();
        let got = conv(&x, &w, None, &p, ConvAlgo::BatchLanes).unwrap();
        assert!(got.max_abs_diff(&want) < 1e-4, "{xs:?} {p:?}");
    }
}
