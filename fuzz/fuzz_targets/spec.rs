//! Model specs (`conv(6,k=5) relu flatten linear(10)`): parse, then the shape pass, the
//! parameter count and building the model, all within the memory limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
#[path = "../exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    common::init();
    exercise::run("spec", data, &common::dir());
});
