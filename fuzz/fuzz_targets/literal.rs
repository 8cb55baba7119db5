//! Inline tensor literals (`[[1,2],[3,4]]`): any text parses or fails cleanly.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = stride::io::literal::parse("input", text);
    }
});
