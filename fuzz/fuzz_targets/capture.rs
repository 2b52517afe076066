//! The capture reader: any bytes as a pcap/pcapng file, its datagrams walked, then the whole
//! extraction (MoldUDP64 packets, the arbiter, the image); every message of the image must be
//! framed, decodable or a typed error, and placed in the capture. The capture streamed in place
//! must give the image's messages, in order, each found in the capture where it says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tickwatch::capture::{extract, place_of, CaptureStream, Datagrams, ExtractOptions};
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
    let mut stream = CaptureStream::new(data, &x.options, None)
        .expect("a capture that extracted streams");
    let mut image = Vec::with_capacity(x.image.len());
    while let Some(r) = stream.advance() {
        r.expect("a capture that extracted streams to the end");
        let m = stream.message();
        image.extend_from_slice(&(m.len() as u16).to_be_bytes());
        image.extend_from_slice(m);
        let at = stream.offset() as usize;
        if stream.copied() == 0 {
            assert!(data[at..at + m.len()] == *m, "message not at its offset {at}");
        }
        let _ = place_of(data, at as u64);
    }
    assert!(image == x.image, "streamed messages differ from the image");
});
