//! `.npy` files: any bytes read as a tensor or fail cleanly, within the memory limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
#[path = "../exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    common::init();
    exercise::run("npy", data, &common::dir());
});
