//! The participant flow CSV: any text parsed; records that parse write back as CSV that parses
//! to the same records.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwatch::surv::flow::{parse_flow, FLOW_HEADER};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(recs) = parse_flow(text, "flow.csv") else {
        return;
    };
    let mut out = format!("{FLOW_HEADER}\n").into_bytes();
    for r in &recs {
        r.write_csv(&mut out).unwrap();
    }
    let again = parse_flow(std::str::from_utf8(&out).unwrap(), "again.csv");
    assert_eq!(again.expect("written flow parses"), recs);
});
