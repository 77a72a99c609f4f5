//! The TOML configuration parser and validator on arbitrary text. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = tollgate::config::load_str(text, tollgate::config::Source::Embedded("fuzz.toml"), 1);
    }
});
