//! PNG images for `stride predict`: decode, convert, resize to 28×28, or fail cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
#[path = "../exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    common::init();
    exercise::run("png", data, &common::dir());
});
