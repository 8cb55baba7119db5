#![allow(dead_code)]
//! Shared by the fuzz targets: a small memory limit (libFuzzer stops at 2 GiB of RSS) and a
//! per-process scratch folder for parsers that read from a path.

use std::path::PathBuf;

/// Sets `STRIDE_MAX_MEMORY` once, so inputs may not ask for more than the fuzzer allows.
pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::env::set_var("STRIDE_MAX_MEMORY", "256M"));
}

/// This process's scratch folder (created on first use).
pub fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stride-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
