//! BatchNorm with a fused ReLU (`BatchNorm::relu`, `Act::fused`) against the two layers run
//! separately: same output, input gradient and parameter gradients, in train and eval mode
//! (and the cache-free inference path);
//! and `Model::build` fuses exactly the BatchNorm–ReLU pairs.

mod common;

use common::rand_tensor;
use stride::nn::activation::Act;
use stride::nn::batchnorm::BatchNorm;
use stride::nn::models::Model;
use stride::nn::spec::ModelSpec;
use stride::nn::Sequential;
use stride::ops::activation::Activation;
use stride::rng::Rng;

fn pair(c: usize, fused: bool) -> Sequential {
    let mut bn = BatchNorm::new(2, c);
    bn.relu = fused;
    let act = if fused {
        Act::fused(Activation::Relu)
    } else {
        Act::new(Activation::Relu)
    };
    Sequential::new(vec![Box::new(bn), Box::new(act)])
}

#[test]
fn fused_batchnorm_relu_matches_the_two_layers() {
    let mut rng = Rng::new(5);
    let mut cut = 0;
    for case in 0..6 {
        let shape = [
            2 + rng.below(3),
            1 + rng.below(4),
            1 + rng.below(5),
            2 + rng.below(6),
        ];
        let (mut plain, mut fused) = (pair(shape[1], false), pair(shape[1], true));
        // distinct γ and β so some channels are mostly cut by the ReLU
        for net in [&mut plain, &mut fused] {
            let mut r = Rng::new(case);
            for p in net.layers[0].params_mut() {
                p.value
                    .data_mut()
                    .iter_mut()
                    .for_each(|v| *v = r.range(-1.5, 1.5));
            }
        }
        let x = rand_tensor(&mut rng, &shape);
        let gy = rand_tensor(&mut rng, &shape);
        for train in [true, false] {
            let y1 = plain.forward(x.clone(), train).unwrap();
            let y2 = fused.forward(x.clone(), train).unwrap();
            cut += y1.data().contains(&0.0) as usize;
            assert!(y1.max_abs_diff(&y2) == 0.0, "case {case} train={train}: y");
            if !train {
                // the inference path (no caches) of both agrees with the eval forward
                let y3 = plain.infer(x.clone()).unwrap();
                let y4 = fused.infer(x.clone()).unwrap();
                assert!(y1.max_abs_diff(&y3) == 0.0, "case {case}: plain infer");
                assert!(y1.max_abs_diff(&y4) == 0.0, "case {case}: fused infer");
            }
            // a Sequential's first layer returns no input gradient: compare through a copy of
            // the BatchNorm's backward by hand
            let g1 = plain.layers[1].backward(gy.clone(), true).unwrap().unwrap();
            let g1 = plain.layers[0].backward(g1, true).unwrap().unwrap();
            let g2 = fused.layers[1].backward(gy.clone(), true).unwrap().unwrap();
            let g2 = fused.layers[0].backward(g2, true).unwrap().unwrap();
            let tol = 1e-5 * g1.max_abs().max(1.0);
            assert!(
                g1.max_abs_diff(&g2) <= tol,
                "case {case} train={train}: gx differs by {}",
                g1.max_abs_diff(&g2)
            );
            for (a, b) in plain.layers[0]
                .params()
                .iter()
                .zip(fused.layers[0].params())
            {
                let d = a.grad.max_abs_diff(&b.grad);
                assert!(
                    d <= 1e-5 * a.grad.max_abs().max(1.0),
                    "case {case}: {} grad {d}",
                    a.name
                );
            }
        }
    }
    assert!(cut >= 8, "the ReLU cut values in only {cut} of 12 runs");
}

#[test]
fn model_build_fuses_batchnorm_relu_pairs_only() {
    let spec = ModelSpec::parse(
        "conv(4,k=3,p=1) batchnorm relu relu maxpool(2) batchnorm sigmoid flatten linear(10)",
        &[1, 28, 28],
    )
    .unwrap();
    let mut m = Model::build(&spec, Default::default(), 0).unwrap();
    // the layer descriptions stay PyTorch's
    let names: Vec<String> = m.net.layers.iter().map(|l| l.describe()).collect();
    assert_eq!(names[2], "ReLU()");
    // the fused model computes the same as layers built one by one
    let mut rng = Rng::new(1);
    let x = rand_tensor(&mut rng, &[3, 1, 28, 28]);
    let y = m.net.forward(x.clone(), true).unwrap();
    let mut plain = Model::build(&spec, Default::default(), 0).unwrap();
    plain.net.layers[1] = Box::new(BatchNorm::new(2, 4));
    plain.net.layers[2] = Box::new(Act::new(Activation::Relu));
    let y2 = plain.net.forward(x, true).unwrap();
    assert!(y.max_abs_diff(&y2) == 0.0);
}
