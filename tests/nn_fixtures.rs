//! Optimiser steps, batch norm and cross-entropy against PyTorch golden values
//! (`scripts/gen_nn_fixtures.py` → `tests/fixtures/nn.json`).

mod common;
use common::{assert_close_each, TensorJson as T};
use serde::Deserialize;
use stride::nn::batchnorm::BatchNorm;
use stride::nn::{Layer, Param};
use stride::ops::loss::{cross_entropy, cross_entropy_backward};
use stride::optim::OptimConfig;
use stride::Tensor;

#[derive(Deserialize)]
struct OptimCase {
    kind: String,
    params: serde_json::Map<String, serde_json::Value>,
    p0: T,
    grads: Vec<T>,
    after: Vec<T>,
}

#[derive(Deserialize)]
struct BnCase {
    x: T,
    gamma: T,
    beta: T,
    y_train: T,
    gy: T,
    gx: T,
    ggamma: T,
    gbeta: T,
    running_mean: T,
    running_var: T,
    y_eval: T,
}

#[derive(Deserialize)]
struct CeCase {
    z: T,
    target: Vec<usize>,
    loss: f32,
    grad: T,
}

#[derive(Deserialize)]
struct Fixtures {
    optim: Vec<OptimCase>,
    batchnorm: Vec<BnCase>,
    cross_entropy: Vec<CeCase>,
}

fn fixtures() -> Fixtures {
    let text = include_str!("fixtures/nn.json");
    serde_json::from_str(text).unwrap()
}

fn close(got: &Tensor, want: &T, tol: f32, what: &str) {
    assert_close_each(got, &want.tensor(), tol, what);
}

#[test]
fn optimiser_steps_match_pytorch() {
    for case in fixtures().optim {
        let f = |k: &str| case.params.get(k).and_then(|v| v.as_f64());
        let mut cfg = OptimConfig::new(&case.kind, f("lr").unwrap()).unwrap();
        cfg.momentum = f("momentum").unwrap_or(0.0);
        cfg.dampening = f("dampening").unwrap_or(0.0);
        cfg.weight_decay = f("weight_decay").unwrap_or(0.0);
        cfg.nesterov = case.params.get("nesterov").is_some_and(|v| v == true);
        if let Some(b) = case.params.get("betas").and_then(|v| v.as_array()) {
            cfg.betas = (b[0].as_f64().unwrap(), b[1].as_f64().unwrap());
        }
        if let Some(e) = f("eps") {
            cfg.eps = e;
        }
        let mut opt = cfg.build();
        let mut p = Param::new("weight", case.p0.tensor());
        for (step, (g, want)) in case.grads.iter().zip(&case.after).enumerate() {
            p.grad = g.tensor();
            opt.step(vec![("w".into(), &mut p)]);
            close(
                &p.value,
                want,
                2e-6,
                &format!("{} {:?} step {}", case.kind, case.params, step + 1),
            );
        }
        assert_eq!(opt.steps(), case.grads.len() as u64);
    }
}

#[test]
fn batch_norm_matches_pytorch() {
    for (k, case) in fixtures().batchnorm.iter().enumerate() {
        let x = case.x.tensor();
        let spatial = if x.rank() <= 3 { 1 } else { x.rank() - 2 };
        let mut bn = BatchNorm::new(spatial, x.shape()[1]);
        bn.weight.value = case.gamma.tensor();
        bn.bias.value = case.beta.tensor();
        let y = bn.forward(x.clone(), true).unwrap();
        close(&y, &case.y_train, 2e-5, &format!("case {k} train y"));
        close(&bn.running_mean, &case.running_mean, 2e-6, "running_mean");
        close(&bn.running_var, &case.running_var, 2e-6, "running_var");
        let gx = bn.backward(case.gy.tensor(), true).unwrap().unwrap();
        close(&gx, &case.gx, 5e-5, &format!("case {k} gx"));
        close(&bn.weight.grad, &case.ggamma, 2e-5, "ggamma");
        close(&bn.bias.grad, &case.gbeta, 2e-5, "gbeta");
        let y = bn.forward(x, false).unwrap();
        close(&y, &case.y_eval, 2e-5, &format!("case {k} eval y"));
    }
}

#[test]
fn cross_entropy_matches_pytorch() {
    for case in fixtures().cross_entropy {
        let z = case.z.tensor();
        let c = z.shape()[1];
        let ce = cross_entropy(z.data(), c, &case.target).unwrap();
        assert!(
            (ce.loss - case.loss).abs() <= 2e-6 * (1.0 + case.loss.abs()),
            "{} vs {}",
            ce.loss,
            case.loss
        );
        let mut g = Tensor::zeros(z.shape());
        cross_entropy_backward(&ce, c, &case.target, g.data_mut());
        close(&g, &case.grad, 2e-6, "grad");
    }
}
