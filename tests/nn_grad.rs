//! Finite-difference gradient checks for every layer and the loss: the analytic input and
//! parameter gradients of `f = Σ r ⊙ layer(x)` (r random) against central differences.

mod common;
use common::rand_tensor;
use stride::nn::activation::{Act, Dropout};
use stride::nn::batchnorm::BatchNorm;
use stride::nn::linear::{Flatten, Linear};
use stride::nn::models::Model;
use stride::nn::spec::ModelSpec;
use stride::nn::Layer;
use stride::ops::activation::Activation;
use stride::ops::loss::{cross_entropy, cross_entropy_backward};
use stride::rng::Rng;
use stride::Tensor;

/// `Σ r ⊙ layer(x)` in f64.
fn objective(layer: &mut dyn Layer, x: &Tensor, r: &Tensor, train: bool) -> f64 {
    let y = layer.forward(x.clone(), train).unwrap();
    y.dot(r)
}

fn assert_close(analytic: f32, numeric: f64, what: &str) {
    let tol = 2e-3 + 2e-2 * numeric.abs();
    assert!(
        (analytic as f64 - numeric).abs() <= tol,
        "{what}: analytic {analytic}, numeric {numeric}"
    );
}

/// Checks input and parameter gradients of `layer` at `x`. `reseed` re-seeds the layer before
/// every forward (dropout masks), so the function being differentiated stays fixed.
fn check(layer: &mut dyn Layer, x: &Tensor, train: bool, name: &str) {
    let mut rng = Rng::new(99);
    let eps = 1e-2f32;
    layer.reseed(5);
    let y = layer.forward(x.clone(), train).unwrap();
    let r = rand_tensor(&mut rng, y.shape());
    let gx = layer.backward(r.clone(), true).unwrap().unwrap();
    let pgrads: Vec<Tensor> = layer.params().iter().map(|p| p.grad.clone()).collect();
    // input gradient: a few coordinates spread over the tensor
    let step = (x.numel() / 17).max(1);
    for i in (0..x.numel()).step_by(step) {
        let mut f = |d: f32| {
            let mut xp = x.clone();
            xp.data_mut()[i] += d;
            layer.reseed(5);
            objective(layer, &xp, &r, train)
        };
        let num = (f(eps) - f(-eps)) / (2.0 * eps as f64);
        assert_close(gx.data()[i], num, &format!("{name} dx[{i}]"));
    }
    // parameter gradients
    for (k, g) in pgrads.iter().enumerate() {
        let step = (g.numel() / 11).max(1);
        for i in (0..g.numel()).step_by(step) {
            let mut f = |d: f32| {
                layer.params_mut()[k].value.data_mut()[i] += d;
                layer.reseed(5);
                let v = objective(layer, x, &r, train);
                layer.params_mut()[k].value.data_mut()[i] -= d;
                v
            };
            let num = (f(eps) - f(-eps)) / (2.0 * eps as f64);
            assert_close(g.data()[i], num, &format!("{name} param {k} [{i}]"));
        }
    }
}

#[test]
fn linear_gradients() {
    let mut rng = Rng::new(1);
    let mut l = Linear::new(7, 5, true);
    l.weight.value = rand_tensor(&mut rng, &[5, 7]);
    l.bias.as_mut().unwrap().value = rand_tensor(&mut rng, &[5]);
    check(&mut l, &rand_tensor(&mut rng, &[4, 7]), true, "linear");
    let mut l = Linear::new(3, 2, false);
    l.weight.value = rand_tensor(&mut rng, &[2, 3]);
    check(
        &mut l,
        &rand_tensor(&mut rng, &[2, 3]),
        true,
        "linear no bias",
    );
}

#[test]
fn activation_gradients() {
    let mut rng = Rng::new(2);
    // ReLU away from the kink at 0
    let mut x = rand_tensor(&mut rng, &[3, 4, 5]);
    x.data_mut().iter_mut().for_each(|v| {
        if v.abs() < 0.05 {
            *v = 0.3
        }
    });
    for a in [Activation::Relu, Activation::Sigmoid, Activation::Tanh] {
        check(&mut Act::new(a), &x, true, a.torch_name());
    }
}

#[test]
fn dropout_and_flatten_gradients() {
    let mut rng = Rng::new(3);
    let x = rand_tensor(&mut rng, &[4, 2, 3, 3]);
    check(&mut Dropout::new(0.4).unwrap(), &x, true, "dropout");
    check(&mut Dropout::new(0.4).unwrap(), &x, false, "dropout eval");
    check(&mut Flatten::default(), &x, true, "flatten");
}

#[test]
fn dropout_is_seeded_and_scales() {
    let x = Tensor::full(&[1000], 1.0);
    let mut d = Dropout::new(0.25).unwrap();
    d.reseed(1);
    let a = d.forward(x.clone(), true).unwrap();
    d.reseed(1);
    assert_eq!(a, d.forward(x.clone(), true).unwrap());
    let zeros = a.data().iter().filter(|&&v| v == 0.0).count();
    assert!((200..300).contains(&zeros), "{zeros}");
    assert!(a
        .data()
        .iter()
        .all(|&v| v == 0.0 || (v - 4.0 / 3.0).abs() < 1e-6));
    assert_eq!(d.forward(x.clone(), false).unwrap(), x);
}

#[test]
fn batch_norm_gradients_train_and_eval() {
    let mut rng = Rng::new(4);
    for (spatial, shape) in [(1, vec![6, 3]), (1, vec![4, 3, 5]), (2, vec![3, 2, 3, 3])] {
        let mut bn = BatchNorm::new(spatial, shape[1]);
        bn.weight.value = Tensor::new(vec![shape[1]], rng.vec(shape[1], 0.5, 1.5)).unwrap();
        bn.bias.value = rand_tensor(&mut rng, &[shape[1]]);
        let x = rand_tensor(&mut rng, &shape);
        check(
            &mut bn,
            &x,
            true,
            &format!("batchnorm{spatial}d train {shape:?}"),
        );
        bn.running_var = Tensor::new(vec![shape[1]], rng.vec(shape[1], 0.5, 2.0)).unwrap();
        check(
            &mut bn,
            &x,
            false,
            &format!("batchnorm{spatial}d eval {shape:?}"),
        );
    }
    // one value per channel cannot be normalised in training mode
    let mut bn = BatchNorm::new(1, 3);
    assert!(bn.forward(Tensor::zeros(&[1, 3]), true).is_err());
}

#[test]
fn cross_entropy_gradient() {
    let mut rng = Rng::new(5);
    let z = rand_tensor(&mut rng, &[6, 4]);
    let t = [0, 3, 1, 1, 2, 0];
    let ce = cross_entropy(z.data(), 4, &t).unwrap();
    let mut g = vec![0.0; z.numel()];
    cross_entropy_backward(&ce, 4, &t, &mut g);
    let eps = 1e-2;
    for i in 0..z.numel() {
        let f = |d: f32| {
            let mut zz = z.data().to_vec();
            zz[i] += d;
            cross_entropy(&zz, 4, &t).unwrap().loss as f64
        };
        let num = (f(eps) - f(-eps)) / (2.0 * eps as f64);
        assert_close(g[i], num, &format!("ce dz[{i}]"));
    }
}

#[test]
fn sequential_mlp_gradient_through_the_loss() {
    let spec = ModelSpec::parse(
        "input(12) linear(8) tanh linear(6) batchnorm sigmoid linear(3)",
        &[12],
    )
    .unwrap();
    let mut m = Model::build(&spec, stride::nn::init::Init::XavierUniform, 3).unwrap();
    let mut rng = Rng::new(6);
    let x = rand_tensor(&mut rng, &[5, 12]);
    let t = [0, 1, 2, 1, 0];
    let loss = |m: &mut Model| {
        let z = m.net.forward(x.clone(), true).unwrap();
        cross_entropy(z.data(), 3, &t).unwrap()
    };
    let ce = loss(&mut m);
    let mut g = Tensor::zeros(&[5, 3]);
    cross_entropy_backward(&ce, 3, &t, g.data_mut());
    m.net.backward(g).unwrap();
    let grads: Vec<Tensor> = m
        .net
        .named_params()
        .iter()
        .map(|(_, p)| p.grad.clone())
        .collect();
    let eps = 1e-2;
    for (k, gk) in grads.iter().enumerate() {
        for i in (0..gk.numel()).step_by(5) {
            let mut f = |d: f32| {
                m.net.named_params_mut()[k].1.value.data_mut()[i] += d;
                let v = loss(&mut m).loss as f64;
                m.net.named_params_mut()[k].1.value.data_mut()[i] -= d;
                v
            };
            let num = (f(eps) - f(-eps)) / (2.0 * eps as f64);
            assert_close(gk.data()[i], num, &format!("mlp param {k} [{i}]"));
        }
    }
}

#[test]
fn conv_layer_gradients_1d_2d_3d() {
    use stride::geometry::PaddingSpec;
    use stride::nn::conv::Conv;
    use stride::ops::conv::ConvParams;
    let mut rng = Rng::new(7);
    let cases: [(Vec<usize>, Vec<usize>, ConvParams); 3] = [
        (
            vec![2, 2, 9],
            vec![4, 2, 3],
            ConvParams {
                stride: vec![2],
                ..Default::default()
            },
        ),
        (
            vec![2, 4, 6, 5],
            vec![6, 2, 3, 3],
            ConvParams {
                padding: PaddingSpec::Explicit(vec![(1, 1)]),
                groups: 2,
                ..Default::default()
            },
        ),
        (
            vec![1, 2, 4, 4, 4],
            vec![3, 2, 2, 2, 2],
            ConvParams {
                dilation: vec![2],
                ..Default::default()
            },
        ),
    ];
    for (xs, ws, p) in cases {
        let mut c = Conv::new(&ws, true, p);
        c.weight.value = rand_tensor(&mut rng, &ws);
        c.bias.as_mut().unwrap().value = rand_tensor(&mut rng, &[ws[0]]);
        check(
            &mut c,
            &rand_tensor(&mut rng, &xs),
            true,
            &format!("conv {ws:?}"),
        );
    }
}

#[test]
fn pooling_layer_gradients() {
    use stride::nn::models::Model;
    use stride::nn::spec::ModelSpec;
    let mut rng = Rng::new(8);
    // distinct values (a shuffled ramp) keep max/min pooling away from ties
    let mut vals: Vec<f32> = (0..2 * 3 * 6 * 6).map(|i| i as f32 * 0.05 - 3.0).collect();
    rng.shuffle(&mut vals);
    let x = Tensor::new(vec![2, 3, 6, 6], vals).unwrap();
    for spec in [
        "maxpool(2)",
        "avgpool(3,s=2,p=1)",
        "avgpool(2,count_include_pad=false,p=1)",
        "minpool(2)",
        "maxpool(3,s=1,d=2)",
        "adaptiveavgpool(4)",
        "adaptivemaxpool(3)",
        "globalavgpool",
        "globalmaxpool",
    ] {
        let s = ModelSpec::parse(&format!("input(3,6,6) {spec}"), &[3, 6, 6]).unwrap();
        let mut m = Model::build(&s, stride::nn::init::Init::Default, 0).unwrap();
        check(m.net.layers[0].as_mut(), &x, true, spec);
    }
}
