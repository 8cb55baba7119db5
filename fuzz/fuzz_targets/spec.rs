//! Model specs (`conv(6,k=5) relu flatten linear(10)`): parse, then the shape pass, the
//! parameter count and building the model, all within the memory limit.
#![no_main]
use libfuzzer_sys::fuzz_target;
#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    common::init();
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(spec) = stride::nn::spec::ModelSpec::parse(text, &[1, 28, 28]) {
            let _ = spec.param_count();
            let _ = spec.to_string();
            if let Ok(m) = stride::nn::models::Model::build(&spec, Default::default(), 0) {
                let _ = m.classes();
            }
        }
    }
});
