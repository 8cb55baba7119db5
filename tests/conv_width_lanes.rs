//! The width-lanes direct kernel (`--algo width-lanes`: output columns in the vector lanes)
//! against the direct reference on random shapes that exercise its register blocks: every
//! block size of C = 1..8 output channels (and more than one block: up to 20 channels per
//! group) × R output rows (heights that leave partial row blocks), height stride 1–3,
//! dilation, padding, groups, bias, 1-D to 3-D, widths across one and several 16-column
//! blocks; forward, input gradient (its adjoint problem) and weight gradient.

mod common;
use stride::geometry::PaddingSpec;
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
    let mut xs = vec![n, cin_g * groups];
    xs.extend(&inp);
    let cout = cout_g * groups;
    let mut ws = vec![cout, cin_g];
    ws.extend(&k);
    let numel = |s: &[usize]| s.iter().product::<usize>();
    let x = Tensor::new(xs.clone(), rng.vec(numel(&xs), -1.0, 1.0)).unwrap();
    let w = Tensor::new(ws.clone(), rng.vec(numel(&ws), -1.0, 1.0)).unwrap();
    let b = (rng.below(2) == 0).then(|| Tensor::new(vec![cout], rng.vec(cout, -1.0, 1.0)).unwrap());
    let p = ConvParams {
        stride,
        padding: PaddingSpec::Explicit(pads),
        dilation: dil,
        groups,
        ..ConvParams::default()
    };
    (x, w, b, p)
}

#[test]
fn width_lanes_matches_direct_on_random_shapes() {
    let mut rng = Rng::new(1717);
    let mut checked = 0;
    for case in 0..160 {
        let (x, w, b, p) = random_width_case(&mut rng);
        let problem = (&x, &w, b.as_ref(), &p);
        let what = format!("case {case}");
        if common::assert_passes_match_direct(&mut rng, problem, ConvAlgo::WidthLanes, 1e-5, &what)
        {
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} cases were valid");
}
