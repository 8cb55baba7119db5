//! Same seed + same thread count = the same bits, at 2 threads: two runs agree, and a run
//! resumed after its first epoch ends with the weights of the uninterrupted one. Before the
//! parallel weight-gradient sums had a fixed order, 2-thread runs differed from run to run.

mod common;
mod synth;

use common::ok;
use std::path::Path;

/// Conv layers whose weight gradients take the row kernel (one input channel) and the
/// reductions over image chunks, then a linear head.
const NET: &str = "conv(6,k=5,p=2) relu maxpool(2) conv(8,k=3) relu maxpool(2) flatten linear(10)";

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Every tensor of the checkpoint in `run`, as raw bits, by name.
fn bits(run: &Path) -> Vec<(String, Vec<u32>)> {
    let loaded = stride::checkpoint::load(run).unwrap();
    let mut out: Vec<(String, Vec<u32>)> = loaded
        .model
        .net
        .named_params()
        .into_iter()
        .map(|(n, p)| (n, p.value.data().iter().map(|v| v.to_bits()).collect()))
        .collect();
    out.sort();
    out
}

fn train(data: &Path, run: &Path, epochs: &str) {
    ok(&[
        "train",
        NET,
        "--data",
        &s(data),
        "--limit",
        "192",
        "--batch-size",
        "96",
        "--epochs",
        epochs,
        "--lr",
        "0.05",
        "--threads",
        "2",
        "--out",
        &s(run),
    ]);
}

#[test]
fn two_thread_runs_and_resume_repeat_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth::write_dataset(&data, 192, 20);
    let (a, b, r) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("r"),
    );
    train(&data, &a, "2");
    train(&data, &b, "2");
    let wa = bits(&a);
    assert!(!wa.is_empty());
    assert_eq!(wa, bits(&b), "two identical 2-thread runs differ");
    train(&data, &r, "1");
    ok(&[
        "train",
        "--resume",
        &s(&r),
        "--epochs",
        "2",
        "--threads",
        "2",
        "--data",
        &s(&data),
    ]);
    assert_eq!(wa, bits(&r), "a resumed 2-thread run differs");
}

/// The weight gradient of `x` (N, Cin, 28, 28) and a 3×3 kernel with `cout` outputs, `algo`.
fn weight_grad(cin: usize, cout: usize, algo: stride::ops::conv::ConvAlgo) -> Vec<u32> {
    use stride::ops::conv::{conv_backward, ConvParams, GradRequest};
    let mut rng = stride::rng::Rng::new(7);
    let n = 64;
    let x = stride::Tensor::new(vec![n, cin, 28, 28], rng.vec(n * cin * 784, -1.0, 1.0)).unwrap();
    let w = stride::Tensor::new(vec![cout, cin, 3, 3], rng.vec(cout * cin * 9, -1.0, 1.0)).unwrap();
    let gy =
        stride::Tensor::new(vec![n, cout, 26, 26], rng.vec(n * cout * 676, -1.0, 1.0)).unwrap();
    let want = GradRequest {
        input: false,
        weight: true,
        bias: false,
    };
    let g = conv_backward(&x, &w, &gy, &ConvParams::default(), algo, want).unwrap();
    g.weight
        .unwrap()
        .data()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn parallel_weight_gradients_have_a_fixed_order() {
    use stride::ops::conv::ConvAlgo;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // one input channel (the row kernel by Auto), then many (im2col), then each named kernel
    for (cin, cout, algo) in [
        (1, 6, ConvAlgo::Auto),
        (120, 4, ConvAlgo::Auto),
        (3, 8, ConvAlgo::WidthLanes),
        (3, 8, ConvAlgo::Im2col),
        (3, 32, ConvAlgo::ChannelLanes),
    ] {
        // the second thread joins the work after a varying delay, so the work is split
        // differently from run to run, as under a busy machine
        let run = |delay_us: u64| {
            pool.install(|| {
                let sleep = || std::thread::sleep(std::time::Duration::from_micros(delay_us));
                rayon::join(sleep, || weight_grad(cin, cout, algo)).1
            })
        };
        let first = run(0);
        for delay in [
            50, 200, 500, 1000, 2000, 4000, 8000, 100, 300, 700, 1500, 3000,
        ] {
            let again = run(delay);
            assert!(
                again == first,
                "{algo:?} Cin {cin}: the weight gradient changed between runs"
            );
        }
    }
}
