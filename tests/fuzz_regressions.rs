//! Replays the fuzz targets' inputs through the same calls (`fuzz/exercise.rs`), on the
//! stable toolchain: the committed seeds (`fuzz/seeds/<target>/`) and every input that once
//! crashed a target (`tests/fixtures/fuzz/<target>/`, named after what it found). Each must
//! parse or fail with an error — never panic (nor abort: a test process that aborts fails).
//! Under `cfg(fuzzing)` the png crate skips CRC checks, so a PNG crash input is committed with
//! its CRCs recomputed (otherwise the stable build would stop at the CRC and never reach the bug).

use std::path::{Path, PathBuf};

#[path = "../fuzz/exercise.rs"]
mod exercise;

use exercise::TARGETS;

/// Files of `dir` (none when it does not exist), sorted.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn seeds_and_past_crashes_replay_without_panics() {
    std::env::set_var("STRIDE_MAX_MEMORY", "256M");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = tempfile::tempdir().unwrap();
    let mut seen = 0;
    for t in TARGETS {
        let seeds = inputs(&root.join("fuzz/seeds").join(t));
        assert!(!seeds.is_empty(), "no seeds for {t}");
        for p in seeds
            .iter()
            .chain(&inputs(&root.join("tests/fixtures/fuzz").join(t)))
        {
            let data = std::fs::read(p).unwrap();
            let r = std::panic::catch_unwind(|| exercise::run(t, &data, scratch.path()));
            assert!(r.is_ok(), "{t}: {} panicked", p.display());
            seen += 1;
        }
    }
    assert!(seen >= TARGETS.len());
}

#[test]
fn seeds_are_valid_inputs() {
    // the seeds reach the deep code paths only if they parse: check a few
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    assert!(stride::io::npy::read(&root.join("npy/f4")).is_ok());
    assert!(stride::checkpoint::load(&root.join("checkpoint/adam"))
        .unwrap()
        .optimizer()
        .is_ok());
    let text = std::fs::read_to_string(root.join("spec/lenet")).unwrap();
    assert!(stride::nn::spec::ModelSpec::parse(&text, &[1, 28, 28]).is_ok());
}
