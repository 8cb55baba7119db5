//! What each fuzz target does with its input, in one place: the cargo-fuzz targets
//! (`fuzz_targets/*.rs`) and the stable replay of the seeds and past crashes
//! (`tests/fuzz_regressions.rs`) both call [`run`], so the two cannot drift apart.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Every target, as named in `fuzz/Cargo.toml`, `fuzz/seeds/` and `tests/fixtures/fuzz/`.
pub const TARGETS: [&str; 7] = ["literal", "npy", "spec", "idx", "checkpoint", "png", "onnx"];

/// Runs target `target` on `data`: each parser must return a value or an error, never panic
/// or abort. Parsers that read from a path get `data` as a file in `dir`.
pub fn run(target: &str, data: &[u8], dir: &Path) {
    let file = |name: &str| -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, data).expect("scratch file");
        p
    };
    match target {
        "literal" => {
            if let Ok(text) = std::str::from_utf8(data) {
                let _ = stride::io::literal::parse("input", text);
            }
        }
        "npy" => {
            let _ = stride::io::npy::read(&file("x.npy"));
        }
        "spec" => {
            if let Ok(text) = std::str::from_utf8(data) {
                if let Ok(spec) = stride::nn::spec::ModelSpec::parse(text, &[1, 28, 28]) {
                    let _ = spec.param_count();
                    let _ = spec.to_string();
                    if let Ok(m) = stride::nn::models::Model::build(&spec, Default::default(), 0) {
                        let _ = m.classes();
                    }
                }
            }
        }
        "idx" => {
            let _ = stride::data::idx::parse(Path::new("x"), data);
            let _ = stride::data::idx::read(&file("x-idx3-ubyte"));
        }
        "checkpoint" => {
            if let Ok(loaded) = stride::checkpoint::load(&file("checkpoint.safetensors")) {
                let _ = loaded.optimizer();
            }
        }
        "png" => {
            let _ = stride::data::image::load(&file("x.png"), 28, 28);
        }
        "onnx" => {
            if let Ok(imported) = stride::onnx::import(data) {
                let _ = imported.into_model();
            }
        }
        _ => unreachable!("unknown fuzz target {target}"),
    }
}
