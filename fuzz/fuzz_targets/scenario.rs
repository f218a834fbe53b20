//! The scenario parser on arbitrary text: an error or a scenario, never a
//! panic, a hang or an allocation the parse cannot justify.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = marlin::scenario::World::parse(text, std::path::Path::new("fuzz.toml"));
    }
});
