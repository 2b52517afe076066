//! The capture reader: any bytes as a pcap/pcapng file, its datagrams walked, then the whole
//! extraction (MoldUDP64 packets, the arbiter, the image); every message of the image must be
//! framed, decodable or a typed error, and placed in the capture.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwatch::capture::{extract, Datagrams, ExtractOptions};
use tickwatch::feed::Frames;
use tickwatch::itch::decode;

fuzz_target!(|data: &[u8]| {
    if let Ok(datagrams) = Datagrams::new(data) {
        for d in datagrams {
            if d.is_err() {
                break;
            }
        }
    }
    let Ok(x) = extract(data, &ExtractOptions::default()) else {
        return;
    };
    for frame in Frames::new(&x.image) {
        let f = frame.expect("the image is framed");
        assert!(
            x.place(f.offset).is_some(),
            "image offset {} unplaced",
            f.offset
        );
        let _ = decode(f.body, f.offset);
    }
});
