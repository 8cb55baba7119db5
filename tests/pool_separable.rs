//! The separable fast path of average pooling (forward and backward) against the tap-by-tap
//! reference.

mod common;

use stride::ops::pool::shape::PoolShape;
use stride::ops::pool::{reduce, separable, PoolKind};
use stride::rng::Rng;

#[test]
fn separable_matches_reference() {
    let mut rng = Rng::new(11);
    let mut checked = 0;
    for case in 0..400 {
        let nd = 1 + rng.below(3);
        let mut p = common::random_pool_window(
            &mut rng,
            nd,
            &[PoolKind::Max, PoolKind::Avg, PoolKind::Avg],
            3,
        );
        let kind = p.kind;
        if kind != PoolKind::Avg {
            p.dilation = (0..nd).map(|_| 1 + rng.below(2)).collect();
        } else {
            p.count_include_pad = rng.below(2) == 0;
        }
        p.ceil_mode = rng.below(2) == 0;
        let mut shape = vec![1 + rng.below(2), 1 + rng.below(3)];
        shape.extend((0..nd).map(|_| 3 + rng.below(6)));
        let numel: usize = shape.iter().product();
        // few distinct values: many ties; sometimes NaNs
        let nan = rng.below(4) == 0;
        let data: Vec<f32> = (0..numel)
            .map(|_| {
                if nan && rng.below(8) == 0 {
                    f32::NAN
                } else {
                    rng.below(4) as f32 - 1.5
                }
            })
            .collect();
        let Ok(s) = PoolShape::new(&shape, &p) else {
            continue;
        };
        if !separable::applies(&s) {
            continue;
        }
        checked += 1;
        let n_out = s.planes * s.out_len();
        let (mut y1, mut y2) = (vec![0.0; n_out], vec![0.0; n_out]);
        separable::forward(&s, &data, &mut y1);
        reduce::forward_reference(&s, &data, &mut y2, None);
        // backward: the separable adjoint against the reference spread
        let in_total = s.planes * s.in_len();
        let gy: Vec<f32> = (0..n_out).map(|_| rng.range(-1.0, 1.0)).collect();
        let (mut g1, mut g2) = (vec![0.0; in_total], vec![0.0; in_total]);
        separable::backward(&s, &gy, &mut g1);
        reduce::backward_reference(&s, &data, &y2, &gy, &mut g2);
        for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5,
                "case {case} {p:?} {shape:?}: gx[{i}] {a} vs {b}"
            );
        }
        for (o, (a, b)) in y1.iter().zip(&y2).enumerate() {
            let same = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-6 * b.abs().max(1.0);
            assert!(same, "case {case} {p:?} {shape:?}: y[{o}] {a} vs {b}");
        }
    }
    assert!(checked > 100, "only {checked} cases");
}
