//! The rules TOML: any text parsed; rules that parse must build every detector.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwatch::surv::{Rules, Surveillance};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rules) = Rules::from_toml(text, "rules.toml") {
        let _ = Surveillance::new(rules, &[]);
    }
});
