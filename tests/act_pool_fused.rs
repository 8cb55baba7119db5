//! An activation fused into the pooling after it (`ops::pool::activated`, `Act::pooled`,
//! `Pool::act`) against the two run separately: the fast kernel against the reference (the
//! separate ops) bit for bit — forward values and indices, backward — on random shapes with
//! ties, saturation and odd sizes; the layer pair in training, evaluation and inference; and
//! `Model::build` fusing exactly the activation–pooling pairs of the presets (and the
//! activation into the convolution before such a pair: `Conv::act`, `Pool::act_applied`)
//! against the same model with plain layers.

mod common;

use stride::nn::activation::Act;
use stride::nn::conv::Conv;
use stride::nn::models::{resolve, Model};
use stride::nn::pool::Pool;
use stride::nn::spec::ModelSpec;
use stride::nn::{Layer, Sequential};
use stride::ops::activation::{forward as act_forward, Activation};
use stride::ops::pool::activated::{
    backward, backward_ref, fast_applies, forward, forward_keep, forward_ref,
};
use stride::ops::pool::{PoolKind, PoolParams};
use stride::rng::Rng;
use stride::Tensor;

const ACTS: [Activation; 3] = [Activation::Relu, Activation::Sigmoid, Activation::Tanh];

/// Values with what makes pooling after an activation delicate: ties (repeated values), zeros
/// and negatives (ReLU's flat part), large values (sigmoid and tanh saturated), neighbours one
/// ulp apart (that the activation rounds to the same value).
fn awkward(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    let mut v: Vec<f32> = Vec::with_capacity(n);
    for i in 0..n {
        let x = match rng.below(8) {
            0 if i > 0 => v[i - 1],
            1 if i > 0 => f32::from_bits(v[i - 1].to_bits() + 1),
            2 => 0.0,
            3 => rng.range(-40.0, 40.0),
            4 => [12.0, 17.0, 30.0, -30.0, 1e3][rng.below(5)],
            _ => 3.0 * rng.normal(),
        };
        v.push(x);
    }
    Tensor::new(shape.to_vec(), v).unwrap()
}

fn params(kind: PoolKind) -> PoolParams {
    PoolParams::new(kind, &[2])
}

fn same(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shape");
    for (i, (x, y)) in a.data().iter().zip(b.data()).enumerate() {
        assert!(x == y, "{what}: cell {i}: {x} vs {y}");
    }
}

#[test]
fn fast_path_matches_the_separate_ops_bit_for_bit() {
    let mut rng = Rng::new(7);
    for case in 0..36 {
        let (act, kind) = (ACTS[case % 3], [PoolKind::Avg, PoolKind::Max][case / 3 % 2]);
        let shape = [
            1 + rng.below(3),
            1 + rng.below(4),
            2 + rng.below(12),
            2 + rng.below(40),
        ];
        let mut p = params(kind);
        if case % 5 == 0 {
            p.divisor_override = Some(3);
        }
        assert!(fast_applies(&shape, &p), "case {case}: {shape:?}");
        let z = awkward(&mut rng, &shape);
        let what = format!("case {case} {act:?} {kind:?} {shape:?}");
        let (mut a, slow) = (z.clone(), forward_ref(act, &z, &p, true).unwrap());
        let fast = forward_keep(act, &mut a, &p, true).unwrap();
        same(&fast.y, &slow.y, &format!("{what}: y"));
        assert_eq!(fast.indices, slow.indices, "{what}: indices");
        assert_eq!(fast.indices.is_some(), kind == PoolKind::Max);
        // forward_keep leaves a = f(z)
        let mut want = Tensor::zeros(z.shape());
        act_forward(act, z.data(), want.data_mut());
        same(&a, &want, &format!("{what}: a"));
        let plain = forward(act, &z, &p, false).unwrap();
        same(&plain.y, &slow.y, &format!("{what}: y without indices"));
        assert!(plain.indices.is_none());
        let gy = common::rand_tensor(&mut rng, fast.y.shape());
        let idx = slow.indices.as_deref();
        let (gf, gs) = (
            backward(act, &a, idx, &gy, &p).unwrap(),
            backward_ref(act, &a, idx, &gy, &p).unwrap(),
        );
        same(&gf, &gs, &format!("{what}: gz"));
    }
}

/// Where the activation maps two different inputs of a window to the same value, the first of
/// them in window order gets the gradient (the separate layers' rule), not the larger input.
#[test]
fn ties_made_by_the_activation_go_to_the_first_cell() {
    let z1 = 12.0f32;
    let z2 = f32::from_bits(z1.to_bits() + 1);
    let mut a = [0.0; 2];
    act_forward(Activation::Sigmoid, &[z1, z2], &mut a);
    assert_eq!(
        a[0], a[1],
        "sigmoid({z1}) and sigmoid({z2}) should round alike"
    );
    assert!(a[0] < 1.0);
    // one 2×2 window: z1 first, the larger z2 second; ReLU ties at 0 in the second window
    let z = Tensor::new(
        vec![1, 1, 2, 4],
        vec![z1, z2, -1.0, 0.0, -3.0, -4.0, -2.0, -5.0],
    )
    .unwrap();
    let gy = Tensor::new(vec![1, 1, 1, 2], vec![1.0, 1.0]).unwrap();
    // first window: sigmoid's tie goes to z1 (0), ReLU keeps z1 < z2 apart (1); second window:
    // sigmoid takes the larger 0 (index 3), ReLU's tie at 0 the first cell (2)
    for (act, want) in [(Activation::Sigmoid, [0u32, 3]), (Activation::Relu, [1, 2])] {
        let p = params(PoolKind::Max);
        let mut a = z.clone();
        let out = forward_keep(act, &mut a, &p, true).unwrap();
        assert_eq!(out.indices.as_deref(), Some(&want[..]), "{act:?}");
        let idx = out.indices.as_deref();
        let g = backward(act, &a, idx, &gy, &p).unwrap();
        same(&g, &backward_ref(act, &a, idx, &gy, &p).unwrap(), "gz");
        if act == Activation::Sigmoid {
            assert!(g.data()[0] > 0.0 && g.data()[1] == 0.0, "{:?}", g.data());
        }
    }
}

#[test]
fn other_poolings_fall_back_to_the_separate_ops() {
    let mut rng = Rng::new(3);
    let z = awkward(&mut rng, &[2, 3, 7, 9]);
    let mut three = params(PoolKind::Avg);
    three.kernel = vec![3];
    let mut overlap = params(PoolKind::Max);
    overlap.stride = vec![1];
    let mut ceil = params(PoolKind::Avg);
    ceil.ceil_mode = true;
    for p in [three, overlap, ceil, params(PoolKind::Lp)] {
        assert!(!fast_applies(z.shape(), &p), "{p:?}");
        let out = forward(Activation::Tanh, &z, &p, true).unwrap();
        same(
            &out.y,
            &forward_ref(Activation::Tanh, &z, &p, true).unwrap().y,
            "y",
        );
        let gy = common::rand_tensor(&mut rng, out.y.shape());
        let g = backward(Activation::Tanh, &z, out.indices.as_deref(), &gy, &p).unwrap();
        assert_eq!(g.shape(), z.shape());
    }
    // max pooling backward without the forward's indices is refused
    let p = params(PoolKind::Max);
    let gy = Tensor::zeros(&[2, 3, 3, 4]);
    assert!(backward(Activation::Relu, &z, None, &gy, &p).is_err());
}

fn pair(act: Activation, kind: PoolKind, fused: bool) -> Sequential {
    let mut pool = Pool::new(params(kind));
    let a: Box<dyn Layer> = if fused {
        pool.act = Some(act);
        Box::new(Act::pooled(act))
    } else {
        Box::new(Act::new(act))
    };
    Sequential::new(vec![a, Box::new(pool)])
}

/// Backward through both layers by hand (a Sequential returns no input gradient for a network
/// without parameters).
fn back(net: &mut Sequential, gy: &Tensor) -> Tensor {
    let g = net.layers[1].backward(gy.clone(), true).unwrap().unwrap();
    net.layers[0].backward(g, true).unwrap().unwrap()
}

#[test]
fn fused_layers_match_the_separate_layers() {
    let mut rng = Rng::new(11);
    for (case, (act, kind)) in ACTS
        .iter()
        .flat_map(|a| [PoolKind::Avg, PoolKind::Max].map(|k| (*a, k)))
        .enumerate()
    {
        let z = awkward(&mut rng, &[3, 2, 6, 10]);
        let gy = common::rand_tensor(&mut rng, &[3, 2, 3, 5]);
        let (mut plain, mut fused) = (pair(act, kind, false), pair(act, kind, true));
        for train in [true, false] {
            let what = format!("case {case} {act:?} {kind:?} train={train}");
            same(
                &plain.forward(z.clone(), train).unwrap(),
                &fused.forward(z.clone(), train).unwrap(),
                &format!("{what}: y"),
            );
            // training: the activation layer keeps nothing, the pooling keeps z (+ indices)
            assert_eq!(fused.layers[0].cached() == 0, train, "{what}: cache");
            same(
                &back(&mut plain, &gy),
                &back(&mut fused, &gy),
                &format!("{what}: gz"),
            );
        }
        same(
            &plain.infer(z.clone()).unwrap(),
            &fused.infer(z.clone()).unwrap(),
            "infer",
        );
        // evaluation one layer at a time (`stride serve`, `stride features`): each layer's own output
        let a1 = plain.layers[0].forward(z.clone(), false).unwrap();
        let a2 = fused.layers[0].forward(z.clone(), false).unwrap();
        same(&a1, &a2, "the activation layer's own output");
    }
}

/// Forward and backward of a whole model against the same model with plain layers.
fn check_model(spec: &ModelSpec, x: &Tensor) -> Vec<usize> {
    let mut fused = Model::build(spec, Default::default(), 0).unwrap();
    let mut plain = Model::build(spec, Default::default(), 0).unwrap();
    for (i, l) in spec.layers.iter().enumerate() {
        if let stride::nn::spec::LayerSpec::Act(a) = l {
            if !(i > 0
                && matches!(
                    spec.layers[i - 1],
                    stride::nn::spec::LayerSpec::BatchNorm { .. }
                ))
            {
                plain.net.layers[i] = Box::new(Act::new(*a));
            }
        }
        if let Some(p) = l.pool_params(2) {
            plain.net.layers[i] = Box::new(Pool::new(p));
        }
        // a convolution before an activation–pooling pair applies the activation: the plain
        // model's leaves it to the activation layer (same weights: both models from seed 0)
        if let Some(params) = l.conv_params() {
            let old = &plain.net.layers[i];
            let w = old.params()[0].value.clone();
            let mut conv = Conv::new(w.shape(), old.params().len() > 1, params);
            for (dst, src) in conv.params_mut().into_iter().zip(old.params()) {
                dst.value = src.value.clone();
            }
            plain.net.layers[i] = Box::new(conv);
        }
    }
    let y1 = fused.net.forward(x.clone(), true).unwrap();
    let y2 = plain.net.forward(x.clone(), true).unwrap();
    same(&y1, &y2, "logits");
    // the activations handed to a pooling keep nothing in training
    let passed: Vec<usize> = (0..spec.layers.len())
        .filter(|&i| {
            matches!(spec.layers[i], stride::nn::spec::LayerSpec::Act(_))
                && fused.net.layers[i].cached() == 0
        })
        .collect();
    fused.net.backward(y1.clone()).unwrap();
    plain.net.backward(y2).unwrap();
    assert_eq!(fused.net.param_names(), plain.net.param_names());
    for ((n, a), (_, b)) in fused
        .net
        .named_params()
        .iter()
        .zip(plain.net.named_params())
    {
        let d = a.grad.max_abs_diff(&b.grad);
        assert!(
            d <= 1e-6 * a.grad.max_abs().max(1e-6),
            "{n}: grad differs by {d}"
        );
    }
    same(
        &fused.net.infer(x.clone()).unwrap(),
        &plain.net.infer(x.clone()).unwrap(),
        "infer",
    );
    passed
}

#[test]
fn model_build_fuses_exactly_the_activation_pooling_pairs() {
    let mut rng = Rng::new(2);
    let x = common::rand_tensor(&mut rng, &[4, 1, 28, 28]);
    let preset = |name: &str| resolve(name).unwrap().0;
    // lenet5: the sigmoids before the average poolings, not those between the linear layers
    assert_eq!(check_model(&preset("lenet5"), &x), [1, 4]);
    assert_eq!(check_model(&preset("lenet5-relu"), &x), [1, 4]);
    // convnet: its ReLUs belong to the BatchNorms (whose ReLU keeps nothing either)
    assert_eq!(check_model(&preset("convnet"), &x), [2, 6, 10]);
    let custom = |s: &str| ModelSpec::parse(s, &[1, 28, 28]).unwrap();
    // 3×3 and overlapping windows stay separate; tanh with 2×2 max pooling fuses
    let spec = custom(
        "conv(4,k=3,p=1) sigmoid avgpool(3) conv(4,k=3,p=1) relu maxpool(2,s=1) \
         tanh maxpool(2) flatten linear(10)",
    );
    assert_eq!(check_model(&spec, &x), [6]);
}

/// The same bits for any thread count (1 and 3 threads: different task splits).
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut rng = Rng::new(4);
    let z = awkward(&mut rng, &[9, 5, 14, 12]);
    let gy = common::rand_tensor(&mut rng, &[9, 5, 7, 6]);
    let run = |threads: usize, act: Activation, kind: PoolKind| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let (mut a, p) = (z.clone(), params(kind));
            let out = forward_keep(act, &mut a, &p, true).unwrap();
            let g = backward(act, &a, out.indices.as_deref(), &gy, &p).unwrap();
            (out.y, g)
        })
    };
    for act in ACTS {
        for kind in [PoolKind::Avg, PoolKind::Max] {
            let ((y1, g1), (y3, g3)) = (run(1, act, kind), run(3, act, kind));
            same(&y1, &y3, "y");
            same(&g1, &g3, "gz");
        }
    }
}

/// `conv_act` (the activation applied per work item by the direct kernels, after the output
/// by the others) gives `act(conv(x))` bit for bit on every algorithm, with a dilated problem
/// that `auto` splits into classes among them.
#[test]
fn conv_act_is_the_convolution_then_the_activation() {
    use stride::geometry::PaddingSpec;
    use stride::ops::conv::{conv, conv_act, ConvParams};
    let mut rng = Rng::new(5);
    // (Cin, Cout, size, kernel, padding, dilation)
    for (cin, cout, n, k, pad, dil) in [
        (1, 6, 12, 5, 2, 1),
        (6, 16, 7, 3, 0, 1),
        (32, 32, 9, 3, 1, 1),
        (4, 18, 11, 3, 2, 2),
    ] {
        let x = common::rand_tensor(&mut rng, &[2, cin, n, n]);
        let w = common::rand_tensor(&mut rng, &[cout, cin, k, k]);
        let b = common::rand_tensor(&mut rng, &[cout]);
        let p = ConvParams {
            padding: PaddingSpec::Explicit(vec![(pad, pad); 2]),
            dilation: vec![dil; 2],
            ..Default::default()
        };
        for algo in common::ALGOS {
            for act in ACTS {
                let what = format!("{algo:?} {act:?} Cin {cin} Cout {cout} k {k} d {dil}");
                let mut want = conv(&x, &w, Some(&b), &p, algo).unwrap();
                let z = want.clone();
                act_forward(act, z.data(), want.data_mut());
                let got = conv_act(&x, &w, Some(&b), &p, algo, Some(act)).unwrap();
                same(&got, &want, &what);
            }
        }
    }
}
