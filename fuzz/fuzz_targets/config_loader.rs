//! The config parser and its validation on arbitrary text, as `lollipop
//! config check` and a reload read a file; a parsed config is also
//! compared with the embedded default, as a reload does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lollipop::config::{Config, ConfigOrigin};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text, ConfigOrigin::default()) {
        Ok(config) => {
            if let Ok(default) = Config::embedded_default() {
                let _ = default.changed_sections(&config);
            }
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
});
