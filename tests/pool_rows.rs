//! The row-vectorised fast path of sliding max / min / avg pooling (`ops::pool::rows`) against
//! the tap-by-tap reference: values, argmax indices (ties: the first in row-major order wins;
//! NaN wins and the last NaN wins, as PyTorch) and the average backward, on random 1-D and 2-D
//! shapes with padding, dilation, ceil mode, stride above and below the kernel.

mod common;

use stride::geometry::PaddingSpec;
use stride::ops::pool::shape::PoolShape;
use stride::ops::pool::{reduce, rows, PoolKind, PoolParams};
use stride::rng::Rng;

/// A random sliding pooling over 1 or 2 spatial axes and its input shape.
fn random_case(rng: &mut Rng) -> (PoolParams, Vec<usize>) {
    let nd = 1 + rng.below(2);
    let mut p =
        common::random_pool_window(rng, nd, &[PoolKind::Max, PoolKind::Min, PoolKind::Avg], 4);
    let kind = p.kind;
    if kind == PoolKind::Avg {
        p.count_include_pad = rng.below(2) == 0;
        if rng.below(5) == 0 {
            p.divisor_override = Some(1 + rng.below(5));
        }
    } else {
        p.dilation = (0..nd).map(|_| 1 + rng.below(2)).collect();
    }
    p.ceil_mode = rng.below(2) == 0;
    let mut shape = vec![1 + rng.below(2), 1 + rng.below(3)];
    // widths past one 16-lane vector, to exercise the loop tails
    shape.extend((0..nd).map(|_| 3 + rng.below(38)));
    (p, shape)
}

#[test]
fn rows_match_reference() {
    let mut rng = Rng::new(15);
    let mut checked = [0usize; 3];
    for case in 0..500 {
        let (p, shape) = random_case(&mut rng);
        let numel: usize = shape.iter().product();
        // few distinct values (many ties), sometimes NaNs, sometimes continuous values
        let nan = rng.below(4) == 0;
        let ties = rng.below(3) != 0;
        let data: Vec<f32> = (0..numel)
            .map(|_| match () {
                _ if nan && rng.below(8) == 0 => f32::NAN,
                _ if ties => rng.below(4) as f32 - 1.5,
                _ => rng.range(-2.0, 2.0),
            })
            .collect();
        let Ok(s) = PoolShape::new(&shape, &p) else {
            continue;
        };
        assert!(
            rows::applies(&s),
            "case {case}: {p:?} should take the fast path"
        );
        checked[p.kind as usize % 3] += 1;
        let n_out = s.planes * s.out_len();
        let with_idx = p.kind != PoolKind::Avg;
        let (mut y1, mut y2) = (vec![0.0; n_out], vec![0.0; n_out]);
        let (mut i1, mut i2) = (vec![0u32; n_out], vec![0u32; n_out]);
        rows::forward(&s, &data, &mut y1, with_idx.then_some(&mut i1[..]));
        reduce::forward_reference(&s, &data, &mut y2, with_idx.then_some(&mut i2[..]));
        let top = y2
            .iter()
            .filter(|v| v.is_finite())
            .fold(1.0f32, |m, v| m.max(v.abs()));
        for (o, (a, b)) in y1.iter().zip(&y2).enumerate() {
            let same = (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-5 * top;
            assert!(same, "case {case} {p:?} {shape:?}: y[{o}] {a} vs {b}");
        }
        assert_eq!(i1, i2, "case {case} {p:?} {shape:?}: indices");
        // into new buffers (no zero fill): the same values, bit for bit
        let (y3, i3) = rows::forward_new(&s, &data, with_idx);
        let same = y1.iter().zip(&y3).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same && y3.len() == n_out, "case {case}: forward_new");
        assert_eq!(i3.as_deref(), with_idx.then_some(&i1[..]), "case {case}");
        if !with_idx {
            let in_total = s.planes * s.in_len();
            let gy: Vec<f32> = (0..n_out).map(|_| rng.range(-1.0, 1.0)).collect();
            let (mut g1, mut g2) = (vec![0.0; in_total], vec![0.0; in_total]);
            rows::backward(&s, &gy, &mut g1);
            reduce::backward_reference(&s, &data, &y2, &gy, &mut g2);
            for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5,
                    "case {case} {p:?} {shape:?}: gx[{i}] {a} vs {b}"
                );
            }
        }
    }
    assert!(
        checked.iter().all(|&c| c > 80),
        "too few cases per kind: {checked:?}"
    );
}

/// The common layers at their real sizes: max k3 s2 p1, max k2 s2, avg k2 s2 (LeNet).
#[test]
fn rows_common_layers() {
    let mut rng = Rng::new(3);
    let layers: [(PoolKind, usize, usize, usize, usize); 3] = [
        (PoolKind::Max, 3, 2, 1, 56),
        (PoolKind::Max, 2, 2, 0, 28),
        (PoolKind::Avg, 2, 2, 0, 28),
    ];
    for (kind, k, st, pad, hw) in layers {
        let mut p = PoolParams::new(kind, &[k, k]);
        p.stride = vec![st, st];
        p.padding = PaddingSpec::Explicit(vec![(pad, pad); 2]);
        let shape = [2, 3, hw, hw];
        let data: Vec<f32> = (0..shape.iter().product::<usize>())
            .map(|_| rng.range(-1.0, 1.0))
            .collect();
        let s = PoolShape::new(&shape, &p).unwrap();
        assert!(rows::applies(&s));
        let n_out = s.planes * s.out_len();
        let (mut y1, mut y2) = (vec![0.0; n_out], vec![0.0; n_out]);
        let (mut i1, mut i2) = (vec![0u32; n_out], vec![0u32; n_out]);
        rows::forward(&s, &data, &mut y1, Some(&mut i1));
        reduce::forward_reference(&s, &data, &mut y2, Some(&mut i2));
        for (a, b) in y1.iter().zip(&y2) {
            assert!((a - b).abs() <= 1e-6, "{kind:?} k{k}: {a} vs {b}");
        }
        if kind == PoolKind::Max {
            assert_eq!(i1, i2, "{kind:?} k{k} s{st} p{pad}: indices");
        }
    }
}

/// Random data with ties and sometimes NaNs (as `rows_match_reference`).
fn tricky_data(rng: &mut Rng, n: usize) -> Vec<f32> {
    let (nan, ties) = (rng.below(4) == 0, rng.below(2) == 0);
    (0..n)
        .map(|_| match () {
            _ if nan && rng.below(8) == 0 => f32::NAN,
            _ if ties => rng.below(3) as f32 - 1.0,
            _ => rng.range(-2.0, 2.0),
        })
        .collect()
}

/// Non-overlapping windows 2 wide (the per-row expansion of the backward) and narrow planes
/// with many rows (several output rows per vector in the forward): `pool_forward` and
/// `pool_backward` against the reference forward and the reference backward / index scatter,
/// on odd sizes, ceil mode, heights pooled by 1 to 3.
#[test]
fn expansion_and_narrow_planes_match_reference() {
    use stride::ops::pool::{pool_backward, pool_forward, select, PoolOutput};
    use stride::Tensor;
    let mut rng = Rng::new(77);
    for case in 0..300 {
        let kind = [PoolKind::Max, PoolKind::Min, PoolKind::Avg][rng.below(3)];
        let nd = 1 + rng.below(2);
        let kh = 1 + rng.below(3);
        let (mut p, mut shape) = if nd == 2 {
            let mut p = PoolParams::new(kind, &[kh, 2]);
            p.stride = vec![kh, 2];
            (
                p,
                vec![1 + rng.below(3), 1 + rng.below(9), 1 + rng.below(12)],
            )
        } else {
            (PoolParams::new(kind, &[2]), vec![1 + rng.below(5), 2])
        };
        // overlapping windows or padding now and then: the other paths, same answers
        if rng.below(6) == 0 {
            p.stride = vec![1; nd];
        }
        if rng.below(6) == 0 {
            p.padding = PaddingSpec::Explicit(vec![(1, 1); nd]);
        }
        p.ceil_mode = rng.below(2) == 0;
        if kind == PoolKind::Avg {
            p.count_include_pad = rng.below(2) == 0;
        }
        shape.push(2 + rng.below(40));
        let numel: usize = shape.iter().product();
        let x = Tensor::new(shape.clone(), tricky_data(&mut rng, numel)).unwrap();
        let Ok(s) = PoolShape::new(&shape, &p) else {
            continue;
        };
        let out = pool_forward(&x, &p).unwrap();
        let n_out = s.planes * s.out_len();
        let with_idx = kind != PoolKind::Avg;
        let (mut y2, mut i2) = (vec![0.0; n_out], vec![0u32; n_out]);
        reduce::forward_reference(&s, x.data(), &mut y2, with_idx.then_some(&mut i2[..]));
        for (o, (a, b)) in out.y.data().iter().zip(&y2).enumerate() {
            let same = (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-5 * b.abs().max(1.0);
            assert!(same, "case {case} {p:?} {shape:?}: y[{o}] {a} vs {b}");
        }
        if with_idx {
            assert_eq!(out.indices.as_deref(), Some(&i2[..]), "case {case}");
        }
        let gy: Vec<f32> = (0..n_out).map(|_| rng.range(-1.0, 1.0)).collect();
        let gyt = Tensor::new(out.y.shape().to_vec(), gy.clone()).unwrap();
        let gx = pool_backward(&x, &out, &gyt, &p).unwrap();
        let want = if with_idx {
            select::scatter(s.in_len(), s.out_len(), &i2, &gy).unwrap()
        } else {
            let mut g = vec![0.0; numel];
            reduce::backward_reference(&s, x.data(), &y2, &gy, &mut g);
            g
        };
        for (i, (a, b)) in gx.data().iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6,
                "case {case} {p:?} {shape:?}: gx[{i}] {a} vs {b}"
            );
        }
        // indices inside the plane but outside their window (not from the forward): the
        // result is still the scatter's
        if with_idx && s.in_len() > 1 {
            let moved: Vec<u32> = i2.iter().map(|&i| (i + 1) % s.in_len() as u32).collect();
            let odd = PoolOutput {
                y: out.y.clone(),
                indices: Some(moved.clone()),
            };
            let gx = pool_backward(&x, &odd, &gyt, &p).unwrap();
            let want = select::scatter(s.in_len(), s.out_len(), &moved, &gy).unwrap();
            assert_eq!(gx.data(), &want[..], "case {case}: moved indices");
        }
    }
}
