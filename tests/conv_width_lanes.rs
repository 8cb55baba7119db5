//! The width-lanes direct kernel (`--algo width-lanes`: output columns in the vector lanes)
//! against the direct reference on random shapes that exercise its register blocks: every
//! block size of C = 1..8 output channels (and more than one block: up to 20 channels per
//! group) × R output rows (heights that leave partial row blocks), height stride 1–3,
//! dilation, padding, groups, bias, 1-D to 3-D, widths across one and several 16-column
//! blocks; forward, input gradient (its adjoint problem) and weight gradient.

mod common;
use stride::ops::conv::{ConvAlgo, ConvParams};
use stride::rng::Rng;
use stride::Tensor;

fn random_width_case(rng: &mut Rng) -> (Tensor, Tensor, Option<Tensor>, ConvParams) {
    let nd = 1 + rng.below(3);
    let groups = 1 + rng.below(3);
    let (cin_g, cout_g) = (1 + rng.below(4), 1 + rng.below(20));
    let n = 1 + rng.below(3);
    let (mut k, mut stride, mut dil, mut inp, mut pads) = (vec![], vec![], vec![], vec![], vec![]);
    for axis in 0..nd {
        let last = axis == nd - 1;
        let kk = 1 + rng.below(5);
        let d = 1 + rng.below(2);
        // the width at stride 1 (the kernel's domain), the other axes at 1–3
        let s = if last { 1 } else { 1 + rng.below(3) };
        let span = d * (kk - 1) + 1;
        let extra = match (last, nd) {
            (true, _) => 40,
            (false, 3) => 5,
            _ => 24,
        };
        inp.push(span + rng.below(extra));
        k.push(kk);
        stride.push(s);
        dil.push(d);
        pads.push((rng.below(kk), rng.below(kk)));
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
fn width_lanes_matches_direct_on_random_shapes() {
    common::check_random_problems(1717, 160, 100, ConvAlgo::WidthLanes, random_width_case);
}
