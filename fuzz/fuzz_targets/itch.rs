//! The ITCH framer and decoder: any bytes as a BinaryFILE, every frame decoded (the unchecked
//! and checked decoders must agree) and applied to small books; then the pipelined replay.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwatch::book::{BookConfig, Books};
use tickwatch::feed::Frames;
use tickwatch::itch::{decode, decode_checked};

fuzz_target!(|data: &[u8]| {
    let cfg = BookConfig::for_orders(1024, 64);
    let mut books = Books::new(cfg);
    for frame in Frames::new(data) {
        let Ok(f) = frame else { break };
        let fast = decode(f.body, f.offset);
        let checked = decode_checked(f.body, f.offset);
        assert_eq!(
            fast.is_ok(),
            checked.is_ok(),
            "decoders disagree at {}",
            f.offset
        );
        if let Ok(m) = fast {
            books.apply(&m);
        }
    }
    for lenient in [false, true] {
        let mut books = Books::new(cfg);
        let _ = tickwatch::replay::replay(data, &mut books, None, lenient);
    }
});
