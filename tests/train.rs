//! Training end to end on tiny synthetic data: the loss falls and accuracy beats chance, a tiny
//! batch is overfit, checkpoints round-trip, a resumed run equals the uninterrupted one bit for
//! bit, and corrupt or mismatched checkpoints are clear errors.

mod synth;

use std::path::Path;
use stride::checkpoint;
use stride::data::{Dataset, Split};
use stride::nn::init::Init;
use stride::nn::spec::ModelSpec;
use stride::optim::OptimConfig;
use stride::train::{self, Event, RunConfig, Session};

const NET: &str = "conv(4,k=5,s=3) relu batchnorm flatten dropout(0.1) linear(10)";

fn data(dir: &Path, n: usize) -> (Dataset, Dataset) {
    synth::write_dataset(dir, n, 100);
    (
        Dataset::load(dir, Split::Train, 10).unwrap(),
        Dataset::load(dir, Split::Test, 10).unwrap(),
    )
}

fn session(spec: &str, optim: &str, lr: f64, epochs: usize, batch: usize) -> Session {
    let spec = ModelSpec::parse(spec, &[1, 28, 28]).unwrap();
    let cfg = RunConfig {
        name: "test".into(),
        init: Init::Default,
        optim: OptimConfig::new(optim, lr).unwrap(),
        epochs,
        batch_size: batch,
        seed: 3,
        limit: None,
    };
    Session::new(&spec, &cfg).unwrap()
}

fn weights(s: &Session) -> Vec<Vec<f32>> {
    s.model
        .net
        .named_params()
        .iter()
        .map(|(_, p)| p.value.data().to_vec())
        .collect()
}

#[test]
fn loss_falls_and_accuracy_beats_chance() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = data(dir.path(), 300);
    let mut s = session(NET, "adam", 1e-2, 3, 25);
    let mut steps = 0;
    train::run(&mut s, &tr, &te, None, &mut |e| {
        if let Event::Step { .. } = e {
            steps += 1
        }
    })
    .unwrap();
    assert_eq!(steps, 3 * 12);
    let h = &s.meta.history;
    assert!(h[2].train_loss < 0.5 * h[0].train_loss, "{h:?}");
    assert!(h[2].test_acc > 0.8, "{h:?}");
}

#[test]
fn overfits_a_tiny_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, _) = data(dir.path(), 16);
    let mut s = session("flatten linear(32) tanh linear(10)", "sgd", 0.5, 1, 16);
    let idx: Vec<usize> = (0..16).collect();
    let mut last = (0.0, 0);
    for _ in 0..60 {
        let (x, y) = tr.batch(&idx);
        last = train::train_step(&mut s.model, s.optim.as_mut(), x, &y).unwrap();
    }
    assert_eq!(last.1, 16, "loss {}", last.0);
    assert!(last.0 < 0.05, "loss {}", last.0);
}

#[test]
fn checkpoint_round_trip_and_bit_exact_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = data(dir.path(), 120);
    // uninterrupted: 2 epochs
    let mut full = session(NET, "adam", 1e-2, 2, 32);
    let full_dir = dir.path().join("full");
    train::run(&mut full, &tr, &te, Some(&full_dir), &mut |_| {}).unwrap();
    // interrupted after epoch 1, then resumed from the folder
    let mut half = session(NET, "adam", 1e-2, 1, 32);
    let half_dir = dir.path().join("half");
    train::run(&mut half, &tr, &te, Some(&half_dir), &mut |_| {}).unwrap();
    let loaded = checkpoint::load(&half_dir).unwrap();
    assert_eq!(loaded.meta.epoch, 1);
    assert_eq!(weights(&half), {
        let s = Session::resume(&half_dir, None).unwrap();
        weights(&s)
    });
    let mut resumed = Session::resume(&half_dir, Some(2)).unwrap();
    assert_eq!(resumed.optim.steps(), 4);
    train::run(&mut resumed, &tr, &te, Some(&half_dir), &mut |_| {}).unwrap();
    assert_eq!(
        weights(&resumed),
        weights(&full),
        "resume must continue exactly"
    );
    let (a, b) = (&resumed.meta.history, &full.meta.history);
    assert_eq!(a.len(), 2);
    for (x, y) in a.iter().zip(b) {
        // (the first epoch's metrics went through the JSON metadata: equal to ~1e-15)
        assert!((x.train_loss - y.train_loss).abs() < 1e-12 && x.test_acc == y.test_acc);
    }
    // the run folder has the metrics table and the chart
    let csv = std::fs::read_to_string(half_dir.join("metrics.csv")).unwrap();
    assert!(csv.starts_with("epoch,train_loss,train_acc,test_loss,test_acc,seconds,images_per_s\n"));
    assert_eq!(csv.lines().count(), 3);
    let png = std::fs::read(half_dir.join("chart.png")).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    // running statistics travel too: eval-mode outputs agree
    let mut a = checkpoint::load(&full_dir).unwrap();
    let (x, _) = te.batch(&[0, 1, 2]);
    let ya = train::predict(&mut a.model, x.clone()).unwrap();
    let yb = train::predict(&mut full.model, x).unwrap();
    assert_eq!(ya, yb);
}

#[test]
fn corrupt_and_mismatched_checkpoints_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = data(dir.path(), 40);
    let mut s = session(NET, "sgd", 0.1, 1, 20);
    let run = dir.path().join("run");
    train::run(&mut s, &tr, &te, Some(&run), &mut |_| {}).unwrap();
    let file = run.join(checkpoint::FILE);
    let bytes = std::fs::read(&file).unwrap();
    // truncated
    let bad = dir.path().join("truncated.safetensors");
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let e = checkpoint::load(&bad).err().unwrap().to_string();
    assert!(e.contains("not a valid checkpoint"), "{e}");
    // not a checkpoint at all
    std::fs::write(&bad, b"hello").unwrap();
    let e = checkpoint::load(&bad).err().unwrap().to_string();
    assert!(e.contains("not a valid checkpoint"), "{e}");
    // weights of another model under this spec
    let mut meta = s.meta.clone();
    meta.spec = "input(1,28,28) flatten linear(10)".into();
    checkpoint::save(&bad, &s.model, s.optim.as_ref(), &meta).unwrap();
    let e = checkpoint::load(&bad).err().unwrap().to_string();
    assert!(
        e.contains("tensor `1.weight`") || e.contains("needs"),
        "{e}"
    );
    // missing file
    let e = checkpoint::load(&dir.path().join("nope"))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("nope"), "{e}");
    // no temporary files left behind by the atomic writes
    let names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[test]
fn same_seed_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let (tr, te) = data(dir.path(), 64);
    let mut a = session(NET, "adam", 1e-2, 1, 16);
    let mut b = session(NET, "adam", 1e-2, 1, 16);
    train::run(&mut a, &tr, &te, None, &mut |_| {}).unwrap();
    train::run(&mut b, &tr, &te, None, &mut |_| {}).unwrap();
    assert_eq!(weights(&a), weights(&b));
}
