//! The configuration file: any text gives a config or an error naming what is wrong, never a
//! panic (the agent reads it at every start, often edited by hand on site).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = kiosk_agent::config::Config::parse(text, "fuzz.toml") {
            assert!(!e.to_string().is_empty());
        }
    }
});
