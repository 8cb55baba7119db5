//! Inline tensor literals (`[[1,2],[3,4]]`): any text parses or fails cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;
#[path = "../exercise.rs"]
mod exercise;

fuzz_target!(|data: &[u8]| {
    common::init();
    exercise::run("literal", data, &common::dir());
});
