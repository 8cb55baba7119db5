//! `.onnx` files: any bytes imported as a model (and built into stride's layers) or refused
//! cleanly, within the memory limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::init();
    if let Ok(imported) = stride::onnx::import(data) {
        let _ = imported.into_model();
    }
});
