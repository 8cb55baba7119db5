//! IDX files (MNIST format), raw or gzipped: parse or fail cleanly; reads are bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
#[path = "../exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    common::init();
    exercise::run("idx", data, &common::dir());
});
