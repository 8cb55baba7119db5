//! `.npy` files: any bytes read as a tensor or fail cleanly, within the memory limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::init();
    let p = common::scratch("x.npy", data);
    let _ = stride::io::npy::read(&p);
});
