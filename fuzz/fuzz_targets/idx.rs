//! IDX files (MNIST format), raw or gzipped: parse or fail cleanly; reads are bounded.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::init();
    let _ = stride::data::idx::parse(std::path::Path::new("x"), data);
    let p = common::scratch("x-idx3-ubyte", data);
    let _ = stride::data::idx::read(&p);
});
