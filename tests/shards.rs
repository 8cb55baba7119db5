//! The data-parallel training step (`stride::shards`): the shards' summed gradients and loss
//! against one pass over the whole batch (shards of one piece and of several), the same bits on 1 and 3 threads, and the models it
//! leaves alone (BatchNorm's batch statistics, Dropout's masks).

mod common;

use stride::nn::init::Init;
use stride::nn::models::{resolve, Model};
use stride::ops::loss::{cross_entropy, cross_entropy_backward};
use stride::rng::Rng;
use stride::shards;
use stride::Tensor;

fn grads(m: &Model) -> Vec<(String, Tensor)> {
    m.net
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.grad.clone()))
        .collect()
}

/// Loss and gradients of one pass over the whole batch.
fn one_pass(m: &mut Model, x: &Tensor, y: &[usize]) -> (f32, usize) {
    let out = m.net.forward(x.clone(), true).unwrap();
    let ce = cross_entropy(out.data(), 10, y).unwrap();
    let mut g = out;
    cross_entropy_backward(&ce, 10, y, g.data_mut());
    m.net.backward(g).unwrap();
    (ce.loss, ce.correct)
}

#[test]
fn shards_sum_to_the_whole_batch_gradient() {
    for (name, n) in [
        ("lenet5", 64),
        ("lenet5", 300),
        ("lenet5-relu", 97),
        ("conv(4,k=3) relu flatten linear(10)", 70),
    ] {
        let spec = resolve(name).unwrap().0;
        let mut rng = Rng::new(9);
        let x = common::rand_tensor(&mut rng, &[n, 1, 28, 28]);
        let y: Vec<usize> = (0..n).map(|_| rng.below(10)).collect();
        let mut sharded = Model::build(&spec, Init::Default, 4).unwrap();
        let mut whole = Model::build(&spec, Init::Default, 4).unwrap();
        assert!(shards::applies(&sharded, n), "{name}");
        let (l1, c1) = shards::forward_backward(&mut sharded, x.clone(), &y).unwrap();
        let (l2, c2) = one_pass(&mut whole, &x, &y);
        assert_eq!(c1, c2, "{name}: correct");
        assert!(
            (l1 - l2).abs() <= 1e-6 * l2.abs(),
            "{name}: loss {l1} vs {l2}"
        );
        for ((na, a), (_, b)) in grads(&sharded).iter().zip(grads(&whole)) {
            let d = a.max_abs_diff(&b);
            assert!(
                d <= 1e-5 * b.max_abs().max(1e-6),
                "{name} {na}: differs by {d}"
            );
        }
        // a second step reuses the replicas with the new weights: change them first
        for (_, p) in sharded.net.named_params_mut() {
            p.value.data_mut().iter_mut().for_each(|v| *v *= 0.5);
        }
        for (_, p) in whole.net.named_params_mut() {
            p.value.data_mut().iter_mut().for_each(|v| *v *= 0.5);
        }
        shards::forward_backward(&mut sharded, x.clone(), &y).unwrap();
        one_pass(&mut whole, &x, &y);
        for ((na, a), (_, b)) in grads(&sharded).iter().zip(grads(&whole)) {
            let d = a.max_abs_diff(&b);
            assert!(
                d <= 1e-5 * b.max_abs().max(1e-6),
                "{name} {na} (step 2): differs by {d}"
            );
        }
    }
}

/// The same bits run after run whatever the scheduling (the shards run on whichever worker
/// and their kernels' loops are stolen in any order), on 1 and on 3 threads; and within
/// rounding of each other (the kernels' sums are cut by the thread count, not the shards).
#[test]
fn the_same_bits_run_after_run() {
    let spec = resolve("lenet5").unwrap().0;
    let mut rng = Rng::new(2);
    let x = common::rand_tensor(&mut rng, &[80, 1, 28, 28]);
    let y: Vec<usize> = (0..80).map(|_| rng.below(10)).collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut m = Model::build(&spec, Init::Default, 1).unwrap();
            let (loss, _) = shards::forward_backward(&mut m, x.clone(), &y).unwrap();
            (loss, grads(&m))
        })
    };
    for threads in [1, 3] {
        let first = run(threads);
        for _ in 0..3 {
            let again = run(threads);
            assert_eq!(first.0, again.0);
            for ((n, a), (_, b)) in first.1.iter().zip(&again.1) {
                assert_eq!(a.data(), b.data(), "{n} on {threads} threads");
            }
        }
    }
    let (a, b) = (run(1), run(3));
    for ((n, ga), (_, gb)) in a.1.iter().zip(&b.1) {
        let d = ga.max_abs_diff(gb);
        assert!(d <= 1e-5 * gb.max_abs().max(1e-6), "{n}: differs by {d}");
    }
}

#[test]
fn batch_coupled_and_random_layers_and_small_batches_run_whole() {
    let build = |s: &str| Model::build(&resolve(s).unwrap().0, Init::Default, 0).unwrap();
    assert!(!shards::applies(&build("convnet"), 256));
    assert!(!shards::applies(
        &build("conv(4,k=3) flatten dropout(0.2) linear(10)"),
        256
    ));
    let lenet = build("lenet5");
    assert!(shards::applies(&lenet, 2 * shards::MIN_SHARD));
    assert!(!shards::applies(&lenet, 2 * shards::MIN_SHARD - 1));
}
