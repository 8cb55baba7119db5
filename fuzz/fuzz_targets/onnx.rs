//! `.onnx` files: any bytes imported as a model (and built into stride's layers) or refused
//! cleanly, within the memory limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
#[path = "../exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    common::init();
    exercise::run("onnx", data, &common::dir());
});
