//! The fast batch norm (`stride::ops::norm`, two vectorised passes per direction, images in
//! parallel) against its f64 reference (`ops::norm::reference`), with and without the fused
//! ReLU, train and eval, on shapes whose planes are and are not multiples of 16 values; and the
//! same bits for 1, 2 and 3 threads (fixed summation order).

use stride::ops::norm::{backward, forward_eval, forward_train, reference, BnDims};
use stride::rng::Rng;

/// Six vectors: what one forward + backward produces (y, running mean/var, gx, gγ, gβ), or
/// its inputs.
type Outputs = [Vec<f32>; 6];

/// Fast forward + backward on fixed data.
#[allow(clippy::too_many_arguments)]
fn fast(
    d: BnDims,
    x: &[f32],
    gy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    (rm0, rv0): (&[f32], &[f32]),
    train: bool,
    relu: bool,
) -> Outputs {
    let (mut rm, mut rv) = (rm0.to_vec(), rv0.to_vec());
    let mut y = vec![f32::NAN; x.len()];
    let stats = if train {
        forward_train(d, x, gamma, beta, 1e-5, 0.1, &mut rm, &mut rv, relu, &mut y).unwrap()
    } else {
        forward_eval(d, Some(x), gamma, beta, 1e-5, &rm, &rv, relu, &mut y)
    };
    let (mut g, mut gg, mut gb) = (gy.to_vec(), vec![f32::NAN; d.c], vec![f32::NAN; d.c]);
    backward(d, x, gamma, &stats, train, true, &mut g, &mut gg, &mut gb);
    [y, rm, rv, g, gg, gb]
}

/// max |a - b| / (1 + max |b|)
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = 1.0 + b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()))
        / scale
}

/// x, gy, γ, β, running mean, running var.
fn data(rng: &mut Rng, d: BnDims) -> Outputs {
    let len = d.n * d.c * d.l;
    // an offset per channel, so the shifted sums matter
    let x: Vec<f32> = (0..len)
        .map(|i| rng.range(-2.0, 2.0) + ((i / d.l) % d.c) as f32 * 3.0)
        .collect();
    [
        x,
        rng.vec(len, -1.0, 1.0),
        rng.vec(d.c, 0.5, 1.5),
        rng.vec(d.c, -1.0, 1.0),
        rng.vec(d.c, -0.5, 0.5),
        rng.vec(d.c, 0.5, 2.0),
    ]
}

#[test]
fn fast_batch_norm_matches_the_f64_reference() {
    let mut rng = Rng::new(11);
    let shapes = [
        (6, 3, 1),
        (4, 2, 5),
        (3, 4, 16),
        (5, 3, 49),
        (2, 2, 784),
        (8, 5, 37),
    ];
    for (n, c, l) in shapes {
        let d = BnDims { n, c, l };
        let [x, gy, gamma, beta, rm, rv] = data(&mut rng, d);
        for train in [true, false] {
            for relu in [false, true] {
                let got = fast(d, &x, &gy, &gamma, &beta, (&rm, &rv), train, relu);
                let (mut rm1, mut rv1) = (rm.clone(), rv.clone());
                let y = reference::forward(
                    d, &x, &gamma, &beta, 1e-5, 0.1, &mut rm1, &mut rv1, train, relu,
                );
                let (gx, gg, gb) =
                    reference::backward(d, &x, &gamma, &beta, 1e-5, &rm, &rv, train, relu, &gy);
                let want = [y, rm1, rv1, gx, gg, gb];
                let names = ["y", "running_mean", "running_var", "gx", "gγ", "gβ"];
                for ((g, w), name) in got.iter().zip(&want).zip(names) {
                    let e = rel_err(g, w);
                    assert!(
                        e < 2e-5,
                        "{d:?} train={train} relu={relu}: {name} differs by {e}"
                    );
                }
            }
        }
    }
}

#[test]
fn same_bits_for_any_thread_count() {
    let mut rng = Rng::new(12);
    // 40 images of 3×900 values: several parallel tasks
    let d = BnDims {
        n: 40,
        c: 3,
        l: 900,
    };
    let [x, gy, gamma, beta, rm, rv] = data(&mut rng, d);
    for relu in [false, true] {
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| fast(d, &x, &gy, &gamma, &beta, (&rm, &rv), true, relu))
        };
        let one = run(1);
        assert!(one[3].iter().all(|v| v.is_finite()));
        for t in [2, 3] {
            for (a, b) in one.iter().zip(run(t)) {
                let same = a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits());
                assert!(same, "relu={relu}: {t} threads differ from 1");
            }
        }
    }
}

#[test]
fn in_place_eval_matches_the_separate_output() {
    let mut rng = Rng::new(13);
    let d = BnDims { n: 3, c: 4, l: 21 };
    let [x, _, gamma, beta, rm, rv] = data(&mut rng, d);
    for relu in [false, true] {
        let mut y = vec![0.0; x.len()];
        forward_eval(d, Some(&x), &gamma, &beta, 1e-5, &rm, &rv, relu, &mut y);
        let mut z = x.clone();
        forward_eval(d, None, &gamma, &beta, 1e-5, &rm, &rv, relu, &mut z);
        assert_eq!(y, z);
        assert_ne!(y, x);
    }
}
