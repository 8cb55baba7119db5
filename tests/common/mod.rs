//! Helpers shared by the integration tests: fixture loading and running the binary.
#![allow(dead_code)]

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use stride::Tensor;

/// A tensor as the fixture scripts write it.
#[derive(Deserialize, Clone, Debug)]
pub struct TensorJson {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl TensorJson {
    pub fn tensor(&self) -> Tensor {
        Tensor::new(self.shape.clone(), self.data.clone()).unwrap()
    }
}

/// Reads `tests/fixtures/<name>`.
pub fn fixture<T: for<'de> Deserialize<'de>>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Runs the `stride` binary with `args`.
pub fn stride(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stride"))
        .args(args)
        .output()
        .unwrap()
}

/// Stdout of a successful run (panics with stderr otherwise).
pub fn ok(args: &[&str]) -> String {
    let out = stride(args);
    assert!(
        out.status.success(),
        "stride {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Stderr of a run that must fail with exit code 2 and a one-line message without a panic.
pub fn usage_error(args: &[&str]) -> String {
    let out = stride(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "stride {args:?}: expected exit 2, stderr: {err}"
    );
    assert!(!err.contains("panicked"), "stride {args:?} panicked: {err}");
    assert!(out.stdout.is_empty() || !String::from_utf8_lossy(&out.stdout).contains("wrote"));
    err
}

/// Writes `t` as `.npy` in `dir` and returns the path as a string.
pub fn npy(dir: &Path, name: &str, t: &Tensor) -> String {
    let p: PathBuf = dir.join(name);
    stride::io::npy::write(&p, t).unwrap();
    p.to_string_lossy().into_owned()
}

/// Asserts `a ≈ b` element-wise with a tolerance relative to the magnitude of `b`.
pub fn assert_close(a: &Tensor, b: &Tensor, rel: f32, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes differ");
    let scale = b.max_abs().max(1.0);
    let err = a.max_abs_diff(b);
    assert!(
        err <= rel * scale,
        "{what}: max error {err} (scale {scale})"
    );
}
