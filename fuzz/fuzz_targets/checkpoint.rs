//! Checkpoints (`.safetensors` + stride metadata): load, rebuild the optimiser, or fail
//! cleanly. Seeds with valid checkpoints reach the metadata and tensor checks.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
#[path = "../exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    common::init();
    exercise::run("checkpoint", data, &common::dir());
});
