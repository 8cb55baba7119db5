//! Checkpoints (`.safetensors` + stride metadata): load, rebuild the optimiser, or fail
//! cleanly. Seeds with valid checkpoints reach the metadata and tensor checks.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::init();
    let p = common::scratch("checkpoint.safetensors", data);
    if let Ok(loaded) = stride::checkpoint::load(&p) {
        let _ = loaded.optimizer();
    }
});
