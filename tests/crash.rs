//! Crash test: a small training run is killed with SIGKILL at random moments, again and again
//! (each time resumed from what the kill left). After every kill the run folder must be
//! consistent — the checkpoint loads and `metrics.csv` is exactly the checkpoint's history —
//! and a final `--resume` must complete and leave no temporary files behind.

mod synth;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NET: &str = "conv(4,k=5,s=3) relu flatten linear(10)";
const KILLS: usize = 20;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Checks the folder after a kill; returns the epochs the checkpoint holds (0: none yet).
fn check_consistent(run: &Path, seed: u64) -> usize {
    if !run.join("checkpoint.safetensors").exists() {
        // killed before the first save: nothing must pretend otherwise
        assert!(
            !run.join("metrics.csv").exists(),
            "seed {seed}: metrics without a checkpoint"
        );
        return 0;
    }
    let loaded = stride::checkpoint::load(run)
        .unwrap_or_else(|e| panic!("seed {seed}: the checkpoint does not load: {e}"));
    let csv = std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap_or_else(|e| panic!("seed {seed}: no metrics.csv beside the checkpoint: {e}"));
    assert_eq!(
        csv,
        stride::train::metrics_csv(&loaded.meta.history),
        "seed {seed}: metrics.csv disagrees with the checkpoint (epoch {})",
        loaded.meta.epoch
    );
    assert_eq!(loaded.meta.history.len(), loaded.meta.epoch, "seed {seed}");
    loaded.meta.epoch
}

fn train_cmd(data: &Path, run: &Path, resume: bool, epochs: usize) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stride"));
    c.args(["train"]);
    if resume {
        c.args(["--resume", &s(run)]);
    } else {
        c.args([NET, "--out", &s(run), "--limit", "60", "--batch-size", "20"]);
    }
    c.args([
        "--data",
        &s(data),
        "--epochs",
        &epochs.to_string(),
        "--threads",
        "1",
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

#[test]
fn killed_runs_leave_consistent_folders_and_resume() {
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    synth::write_dataset(&data, 60, 20);
    let run = dir.path().join("run");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let mut rng = stride::rng::Rng::new(seed);
    let mut epoch = 0;
    for _ in 0..KILLS {
        let mut child = train_cmd(&data, &run, epoch > 0, 1000).spawn().unwrap();
        // a random moment: start-up, mid-epoch, or during a save
        let ms = 5 + rng.below(400) as u64;
        std::thread::sleep(Duration::from_millis(ms));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "seed {seed}: {err}");
        let now = check_consistent(&run, seed);
        assert!(
            now >= epoch,
            "seed {seed}: the run went back from {epoch} to {now}"
        );
        epoch = now;
        eprintln!("killed after {ms} ms: epoch {epoch}");
    }
    // a last resume runs to completion
    let out = train_cmd(&data, &run, epoch > 0, epoch + 1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "seed {seed}: the final run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(check_consistent(&run, seed), epoch + 1, "seed {seed}");
    // nothing a killed run left behind survives the final run
    let names: Vec<String> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains(".tmp-")),
        "seed {seed}: temporary files left: {names:?}"
    );
    assert_eq!(
        names.iter().filter(|n| n.starts_with(".epoch-")).count(),
        1,
        "seed {seed}: {names:?}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(60),
        "the crash test must stay under a minute"
    );
}
