//! PNG images for `stride predict`: decode, convert, resize to 28×28, or fail cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::init();
    let p = common::scratch("x.png", data);
    let _ = stride::data::image::load(&p, 28, 28);
});
