//! Captures: `capture::write_capture` turns a BinaryFILE into MoldUDP64 packets in every link
//! type and file format, `capture::Datagrams` reads them back, and the MoldUDP64 payloads
//! (unpacked here, independently of the library) hold exactly the file's messages in sequence.
//! Hand-built files cover what the writer never writes (big-endian, several pcapng sections and
//! interfaces, QinQ, IPv4 options, fragments, other protocols), and every cut point and random
//! byte flips check that malformed captures give errors naming offsets, never panics.

use std::net::SocketAddrV4;
use std::path::Path;
use tickwatch::capture::{
    CaptureError, CaptureFormat, Datagram, Datagrams, LinkType, TsResolution, WriteOptions,
    WriteReport, END_OF_SESSION,
};
use tickwatch::feed::Frames;
use tickwatch::gen::{generate, GenConfig};
use tickwatch::rng::SplitMix64;

const SAMPLE: &str = "../shared/data/12302019_SNIPPET.NASDAQ_ITCH50";
const NS_PER_DAY: u64 = 86_400_000_000_000;

fn generated(messages: u64) -> Vec<u8> {
    let mut feed = Vec::new();
    let cfg = GenConfig {
        messages,
        symbols: 20,
        live_orders: 1_000,
        seed: 13,
    };
    generate(&cfg, &mut feed).unwrap();
    feed
}

fn feeds() -> Vec<(&'static str, Vec<u8>)> {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join(SAMPLE);
    vec![
        ("generated", generated(20_000)),
        ("sample", std::fs::read(sample).expect("the real sample")),
    ]
}

/// Every (link, vlan) × (format, resolution) the writer makes.
fn variants() -> Vec<WriteOptions> {
    let links = [
        (LinkType::Ethernet, None),
        (LinkType::Ethernet, Some(100)),
        (LinkType::Sll, None),
        (LinkType::Sll2, None),
        (LinkType::RawIpv4, None),
    ];
    let formats = [
        (CaptureFormat::Pcap, TsResolution::Nano),
        (CaptureFormat::Pcap, TsResolution::Micro),
        (CaptureFormat::PcapNg, TsResolution::Nano),
        (CaptureFormat::PcapNg, TsResolution::Micro),
    ];
    let mut v = Vec::new();
    for (link, vlan) in links {
        for (format, resolution) in formats {
            v.push(WriteOptions {
                link,
                vlan,
                format,
                resolution,
                session: "TESTSESS01".into(),
                ..WriteOptions::default()
            });
        }
    }
    v
}

fn write(feed: &[u8], o: &WriteOptions) -> (Vec<u8>, WriteReport) {
    let mut out = Vec::new();
    let r = tickwatch::capture::write_capture(feed, o, &mut out).unwrap();
    assert_eq!(r.bytes, out.len() as u64);
    (out, r)
}

fn read(cap: &[u8]) -> Vec<Datagram<'_>> {
    Datagrams::new(cap)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

/// A MoldUDP64 packet, unpacked by hand: session, sequence, count, messages.
struct Mold<'a> {
    session: &'a [u8],
    seq: u64,
    count: u16,
    msgs: Vec<&'a [u8]>,
}

fn unpack(p: &[u8]) -> Mold<'_> {
    assert!(p.len() >= 20, "short MoldUDP64 packet");
    let count = u16::from_be_bytes([p[18], p[19]]);
    let mut msgs = Vec::new();
    let mut at = 20;
    if count != END_OF_SESSION {
        for _ in 0..count {
            let len = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
            msgs.push(&p[at + 2..at + 2 + len]);
            at += 2 + len;
        }
    }
    assert_eq!(at, p.len(), "MoldUDP64 packet has bytes after its messages");
    Mold {
        session: &p[..10],
        seq: u64::from_be_bytes(p[10..18].try_into().unwrap()),
        count,
        msgs,
    }
}

fn itch_messages(feed: &[u8]) -> Vec<&[u8]> {
    Frames::new(feed).map(|f| f.unwrap().body).collect()
}

fn itch_time(m: &[u8]) -> u64 {
    m[5..11].iter().fold(0, |a, &b| a << 8 | u64::from(b))
}

#[test]
fn every_link_and_format_reads_back_the_binaryfile() {
    for (name, feed) in feeds() {
        let want = itch_messages(&feed);
        for o in variants() {
            let (cap, r) = write(&feed, &o);
            let ds = read(&cap);
            let what = format!(
                "{name} {:?} vlan {:?} {:?} {:?}",
                o.link, o.vlan, o.format, o.resolution
            );
            assert_eq!(ds.len() as u64, r.packets + 1, "{what}");
            let mut got = Vec::new();
            let mut next = 1;
            let mut last_ts = 0;
            for d in &ds {
                assert_eq!(d.dst, o.group, "{what}");
                assert_eq!(d.src, o.source, "{what}");
                assert!(d.ts_ns >= last_ts, "{what}: capture time goes back");
                last_ts = d.ts_ns;
                let m = unpack(d.payload);
                assert_eq!(m.session, b"TESTSESS01", "{what}");
                assert_eq!(m.seq, next, "{what}: sequence gap");
                if m.count == END_OF_SESSION {
                    continue;
                }
                // Stamped with its last message's time on the feed's day.
                let ns = o.date_ns + itch_time(m.msgs.last().unwrap());
                let ns = match o.resolution {
                    TsResolution::Nano => ns,
                    TsResolution::Micro => ns / 1_000 * 1_000,
                };
                assert_eq!(d.ts_ns, ns, "{what}");
                assert!(d.payload.len() <= o.max_payload, "{what}");
                let span = itch_time(m.msgs.last().unwrap()) - itch_time(m.msgs[0]);
                assert!(span <= o.max_gap_ns, "{what}: packet spans {span} ns");
                next += u64::from(m.count);
                got.extend(m.msgs);
            }
            assert_eq!(
                unpack(ds.last().unwrap().payload).count,
                END_OF_SESSION,
                "{what}"
            );
            assert_eq!(next, want.len() as u64 + 1, "{what}");
            assert_eq!(r.end_sequence, next, "{what}");
            assert!(got == want, "{what}: messages differ from the BinaryFILE");
        }
    }
}

#[test]
fn drop_every_leaves_gaps_where_expected() {
    let feed = generated(20_000);
    for n in [1, 2, 3, 7] {
        let full = WriteOptions::default();
        let (cap, all) = write(&feed, &full);
        let packets: Vec<(u64, u16)> = read(&cap)
            .iter()
            .map(|d| unpack(d.payload))
            .map(|m| (m.seq, m.count))
            .collect();
        let o = WriteOptions {
            drop_every: Some(n),
            ..full
        };
        let (cap, r) = write(&feed, &o);
        let got: Vec<(u64, u16)> = read(&cap)
            .iter()
            .map(|d| unpack(d.payload))
            .map(|m| (m.seq, m.count))
            .collect();
        let want: Vec<(u64, u16)> = packets
            .iter()
            .enumerate()
            .filter(|&(i, p)| p.1 == END_OF_SESSION || (i as u64 + 1) % n != 0)
            .map(|(_, &p)| p)
            .collect();
        assert_eq!(got, want, "drop every {n}");
        assert_eq!(r.dropped_packets, all.packets / n);
        let kept: u64 = got
            .iter()
            .filter(|p| p.1 != END_OF_SESSION)
            .map(|p| u64::from(p.1))
            .sum();
        assert_eq!(kept + r.dropped_messages, all.messages);
        assert_eq!(r.end_sequence, all.end_sequence);
    }
}

#[test]
fn options_out_of_range_are_refused() {
    let feed = generated(100);
    let bad = [
        WriteOptions {
            session: "ELEVENCHARS".into(),
            ..Default::default()
        },
        WriteOptions {
            max_payload: 63,
            ..Default::default()
        },
        WriteOptions {
            vlan: Some(4096),
            ..Default::default()
        },
        WriteOptions {
            vlan: Some(1),
            link: LinkType::Sll,
            ..Default::default()
        },
        WriteOptions {
            drop_every: Some(0),
            ..Default::default()
        },
    ];
    for o in bad {
        let e = tickwatch::capture::write_capture(&feed, &o, Vec::new()).unwrap_err();
        assert!(e.to_string().starts_with("invalid option"), "{e}");
    }
}

// ---- hand-built captures: what the writer never writes ----

const GROUP: [u8; 4] = [233, 54, 12, 111];

/// IPv4 (with `options` words, `frag` flags/offset field and protocol) + UDP + payload.
fn ipv4(payload: &[u8], proto: u8, frag: u16, options: usize) -> Vec<u8> {
    let ihl = 5 + options;
    let total = ihl * 4 + 8 + payload.len();
    let mut p = vec![0x40 | ihl as u8, 0];
    p.extend_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p.extend_from_slice(&frag.to_be_bytes());
    p.extend_from_slice(&[32, proto, 0, 0, 10, 0, 0, 2]);
    p.extend_from_slice(&GROUP);
    p.resize(p.len() + options * 4, 1); // NOP options
    p.extend_from_slice(&4000u16.to_be_bytes());
    p.extend_from_slice(&26477u16.to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

fn ethernet(tags: &[u16], ethertype: u16, inner: &[u8]) -> Vec<u8> {
    let mut f = vec![1, 0, 0x5e, 54, 12, 111, 2, 0, 0, 0, 0, 2];
    for &t in tags {
        f.extend_from_slice(&t.to_be_bytes());
        f.extend_from_slice(&7u16.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(inner);
    f.extend_from_slice(&[0; 4]); // trailing padding past the IP total length
    f
}

/// A classic pcap in the given byte order: header, then (sec, frac, frame) records.
fn pcap(be: bool, nano: bool, linktype: u32, recs: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let w32 = |v: &mut Vec<u8>, x: u32| {
        v.extend_from_slice(&if be { x.to_be_bytes() } else { x.to_le_bytes() })
    };
    let mut v = Vec::new();
    w32(&mut v, if nano { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    let (maj, min) = if be {
        ([0, 2], [0, 4])
    } else {
        ([2, 0], [4, 0])
    };
    v.extend_from_slice(&maj);
    v.extend_from_slice(&min);
    v.extend_from_slice(&[0; 8]);
    w32(&mut v, 65_535);
    w32(&mut v, linktype);
    for (s, f, data) in recs {
        w32(&mut v, *s);
        w32(&mut v, *f);
        w32(&mut v, data.len() as u32);
        w32(&mut v, data.len() as u32);
        v.extend_from_slice(data);
    }
    v
}

/// pcapng block builder in one byte order.
struct Ng {
    be: bool,
    out: Vec<u8>,
}

impl Ng {
    fn u32(&self, x: u32) -> [u8; 4] {
        if self.be {
            x.to_be_bytes()
        } else {
            x.to_le_bytes()
        }
    }
    fn block(&mut self, kind: u32, body: &[u8]) {
        let mut body = body.to_vec();
        body.resize(body.len().div_ceil(4) * 4, 0);
        let len = 12 + body.len() as u32;
        let (k, l) = (self.u32(kind), self.u32(len));
        self.out.extend_from_slice(&k);
        self.out.extend_from_slice(&l);
        self.out.extend_from_slice(&body);
        self.out.extend_from_slice(&l);
    }
    fn shb(&mut self) {
        let mut b = self.u32(0x1A2B_3C4D).to_vec();
        let v = if self.be { [0, 1, 0, 0] } else { [1, 0, 0, 0] };
        b.extend_from_slice(&v);
        b.extend_from_slice(&[0xff; 8]);
        self.block(0x0A0D_0D0A, &b);
    }
    fn option(&self, b: &mut Vec<u8>, code: u16, val: &[u8]) {
        let (c, l) = if self.be {
            (code.to_be_bytes(), (val.len() as u16).to_be_bytes())
        } else {
            (code.to_le_bytes(), (val.len() as u16).to_le_bytes())
        };
        b.extend_from_slice(&c);
        b.extend_from_slice(&l);
        b.extend_from_slice(val);
        b.resize(b.len().div_ceil(4) * 4, 0);
    }
    fn idb(&mut self, linktype: u16, tsresol: Option<u8>, tsoffset: Option<i64>) {
        let lt = if self.be {
            linktype.to_be_bytes()
        } else {
            linktype.to_le_bytes()
        };
        let mut b = lt.to_vec();
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&self.u32(65_535));
        if let Some(r) = tsresol {
            self.option(&mut b, 9, &[r]);
        }
        if let Some(o) = tsoffset {
            let v = if self.be {
                o.to_be_bytes()
            } else {
                o.to_le_bytes()
            };
            self.option(&mut b, 14, &v);
        }
        if tsresol.is_some() || tsoffset.is_some() {
            b.extend_from_slice(&[0; 4]);
        }
        self.block(1, &b);
    }
    fn epb(&mut self, iface: u32, ts: u64, frame: &[u8]) {
        let mut b = self.u32(iface).to_vec();
        b.extend_from_slice(&self.u32((ts >> 32) as u32));
        b.extend_from_slice(&self.u32(ts as u32));
        b.extend_from_slice(&self.u32(frame.len() as u32));
        b.extend_from_slice(&self.u32(frame.len() as u32));
        b.extend_from_slice(frame);
        self.block(6, &b);
    }
    fn spb(&mut self, frame: &[u8]) {
        let mut b = self.u32(frame.len() as u32).to_vec();
        b.extend_from_slice(frame);
        self.block(3, &b);
    }
}

#[test]
fn pcap_both_byte_orders_and_magics() {
    let frame = ethernet(&[], 0x0800, &ipv4(b"hello", 17, 0, 0));
    for be in [false, true] {
        for nano in [false, true] {
            let cap = pcap(be, nano, 1, &[(1_577_700_000, 123_456, frame.clone())]);
            let ds = read(&cap);
            assert_eq!(ds.len(), 1);
            let frac = if nano { 123_456 } else { 123_456_000 };
            assert_eq!(ds[0].ts_ns, 1_577_700_000 * 1_000_000_000 + frac);
            assert_eq!(ds[0].payload, b"hello");
            assert_eq!(ds[0].offset, 24);
            assert_eq!(ds[0].dst, SocketAddrV4::new(GROUP.into(), 26477));
        }
    }
}

#[test]
fn vlan_qinq_options_fragments_and_other_protocols_are_counted() {
    let udp = ipv4(b"x", 17, 0, 0);
    let recs = vec![
        ethernet(&[0x8100], 0x0800, &udp),
        ethernet(&[0x88A8, 0x8100], 0x0800, &udp),
        ethernet(&[0x9100, 0x8100], 0x0800, &udp),
        ethernet(&[], 0x0800, &ipv4(b"opts", 17, 0, 2)),
        ethernet(&[], 0x0800, &ipv4(b"frag", 17, 0x2000, 0)), // more fragments
        ethernet(&[], 0x0800, &ipv4(b"frag", 17, 0x0010, 0)), // a later fragment
        ethernet(&[], 0x0800, &ipv4(b"tcp", 6, 0, 0)),
        ethernet(&[], 0x0806, &[0; 28]),
        ethernet(&[0x8100], 0x86DD, &[0; 40]),
        vec![0; 10], // shorter than an Ethernet header
    ];
    let recs: Vec<_> = recs.into_iter().map(|f| (0, 0, f)).collect();
    let cap = pcap(false, true, 1, &recs);
    let mut it = Datagrams::new(&cap).unwrap();
    let payloads: Vec<Vec<u8>> = it.by_ref().map(|d| d.unwrap().payload.to_vec()).collect();
    assert_eq!(payloads, [&b"x"[..], b"x", b"x", b"opts"]);
    let c = it.counts();
    assert_eq!(it.packets(), 10);
    assert_eq!((c.datagrams, c.fragments, c.malformed), (4, 2, 1));
    assert_eq!(c.non_udp, [(6, 1)]);
    assert_eq!(c.non_ipv4, [(0x0806, 1), (0x86DD, 1)]);
}

#[test]
fn pcapng_sections_interfaces_resolutions_offsets_and_simple_packets() {
    let udp = ipv4(b"p", 17, 0, 0);
    let sll2 = [
        &[
            0x08, 0x00, 0, 0, 0, 0, 0, 1, 0, 1, 2, 6, 2, 0, 0, 0, 0, 1, 0, 0,
        ][..],
        &udp,
    ]
    .concat();
    let sll = [
        &[0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00][..],
        &udp,
    ]
    .concat();
    let mut ng = Ng {
        be: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.idb(1, None, None); // µs by default
    ng.idb(113, Some(3), Some(100)); // ms, +100 s
    ng.epb(0, 5_000_001, &ethernet(&[], 0x0800, &udp));
    ng.epb(1, 2_500, &sll);
    ng.spb(&ethernet(&[], 0x0800, &udp));
    let first_section = ng.out.len();
    ng.be = true; // a second section, big-endian: its interfaces start afresh
    ng.shb();
    ng.idb(276, Some(0x80 | 20), Some(-1)); // 2^-20 s, −1 s
    ng.idb(228, Some(9), None);
    ng.epb(1, 7, &udp);
    ng.epb(0, 3 << 20, &sll2);
    let ds = read(&ng.out);
    let ts: Vec<u64> = ds.iter().map(|d| d.ts_ns).collect();
    // The simple packet block has no time: it takes the packet's before it.
    assert_eq!(
        ts,
        [
            5_000_001_000,
            102_500_000_000,
            102_500_000_000,
            7,
            2_000_000_000
        ]
    );
    let ifaces: Vec<u32> = ds.iter().map(|d| d.interface).collect();
    assert_eq!(ifaces, [0, 1, 0, 3, 2]);
    assert!(ds.iter().all(|d| d.payload == b"p"));
    assert!(ds[3].offset > first_section as u64);
    // A packet on an interface the section did not describe.
    let mut ng = Ng {
        be: false,
        out: Vec::new(),
    };
    ng.shb();
    ng.idb(1, None, None);
    let at = ng.out.len() as u64;
    ng.epb(1, 0, &udp);
    let e = Datagrams::new(&ng.out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e, CaptureError::UnknownInterface { offset, .. } if offset == at),
        "{e}"
    );
}

// ---- malformed captures ----

/// The first `n` messages of a generated feed.
fn short_feed(n: usize) -> Vec<u8> {
    let feed = generated(n as u64 + 1_000);
    let end = Frames::new(&feed).nth(n).unwrap().unwrap().offset as usize;
    feed[..end].to_vec()
}

fn small_captures() -> Vec<(String, Vec<u8>)> {
    let feed = short_feed(40);
    let mut v = Vec::new();
    for o in variants() {
        let o = WriteOptions {
            max_payload: 200,
            ..o
        };
        let name = format!(
            "{:?} {:?} {:?} {:?}",
            o.link, o.vlan, o.format, o.resolution
        );
        v.push((name, write(&feed, &o).0));
    }
    v
}

/// Walks `cap` to its end or first error; the error must name an offset within the file.
fn walk(cap: &[u8]) -> (usize, Option<CaptureError>) {
    let mut it = match Datagrams::new(cap) {
        Ok(it) => it,
        Err(e) => return (0, Some(e)),
    };
    let mut n = 0;
    for d in it.by_ref() {
        match d {
            Ok(d) => {
                assert!(d.offset < cap.len() as u64);
                n += 1;
            }
            Err(e) => {
                assert!(
                    e.offset() <= cap.len() as u64,
                    "{e} past the end ({})",
                    cap.len()
                );
                return (n, Some(e));
            }
        }
    }
    (n, None)
}

#[test]
fn every_cut_point_is_an_error_naming_an_offset_or_a_clean_end() {
    for (name, cap) in small_captures() {
        let full = read(&cap);
        let mut ends: Vec<u64> = full.iter().map(|d| d.offset).collect();
        ends.push(cap.len() as u64);
        ends.push(24); // pcap: after the file header
        ends.push(28); // pcapng: after the section header
        for cut in 0..cap.len() {
            let (n, err) = walk(&cap[..cut]);
            assert!(n <= full.len(), "{name} cut at {cut}");
            match err {
                Some(e) => assert!(e.offset() <= cut as u64, "{name} cut at {cut}: {e}"),
                None => assert!(
                    ends.contains(&(cut as u64)),
                    "{name}: cut at {cut} ended cleanly"
                ),
            }
        }
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let mut rng = SplitMix64::new(13);
    for (_, cap) in small_captures() {
        for _ in 0..300 {
            let mut c = cap.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(c.len() as u64) as usize;
                c[i] ^= 1 << rng.below(8);
            }
            walk(&c);
        }
    }
}

#[test]
fn malformed_headers_name_their_offsets() {
    let feed = short_feed(100);
    let o = WriteOptions::default();
    let (cap, _) = write(&feed, &o);
    let first = read(&cap)[1].offset as usize;
    // Truncated file header.
    let e = Datagrams::new(&cap[..10]).unwrap_err();
    assert!(
        matches!(e, CaptureError::Truncated { offset: 0, .. }),
        "{e}"
    );
    // A bogus captured length in the second record.
    let mut c = cap.clone();
    c[first + 8..first + 12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let (_, e) = walk(&c);
    assert!(matches!(e, Some(CaptureError::PastEnd { offset, .. }) if offset == first as u64));
    // Not a capture at all: a BinaryFILE.
    assert!(matches!(
        Datagrams::new(&feed),
        Err(CaptureError::NotACapture)
    ));
    // pcapng: a block whose trailer disagrees with its length, and a length not a multiple of 4.
    let o = WriteOptions {
        format: CaptureFormat::PcapNg,
        ..o
    };
    let (cap, _) = write(&feed, &o);
    let at = read(&cap)[1].offset as usize;
    let len = u32::from_le_bytes(cap[at + 4..at + 8].try_into().unwrap()) as usize;
    let mut c = cap.clone();
    c[at + len - 4] ^= 4;
    let (_, e) = walk(&c);
    assert!(
        matches!(e, Some(CaptureError::BlockTrailer { offset, .. }) if offset == at as u64),
        "{e:?}"
    );
    let mut c = cap.clone();
    c[at + 4] ^= 1;
    let (_, e) = walk(&c);
    assert!(
        matches!(e, Some(CaptureError::BlockLength { offset, .. }) if offset == at as u64),
        "{e:?}"
    );
    // The message names the offset.
    assert!(e
        .unwrap()
        .to_string()
        .contains(&format!("at byte offset {at}")));
}

#[test]
fn convert_file_maps_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (itch, pcap) = (dir.path().join("f.itch"), dir.path().join("f.pcap"));
    let feed = generated(500);
    std::fs::write(&itch, &feed).unwrap();
    let o = WriteOptions {
        date_ns: 18_000 * NS_PER_DAY,
        ..Default::default()
    };
    let r = tickwatch::capture::convert_file(&itch, &pcap, &o).unwrap();
    let map = tickwatch::capture::open(&pcap).unwrap();
    let ds = read(map.bytes());
    assert_eq!(ds.len() as u64, r.packets + 1);
    assert!(ds.iter().all(|d| d.ts_ns / NS_PER_DAY == 18_000));
}

#[test]
fn frames_carry_correct_ipv4_checksums_and_link_headers() {
    let feed = short_feed(200);
    let links = [
        (LinkType::Ethernet, None, 14),
        (LinkType::Ethernet, Some(5), 18),
        (LinkType::Sll, None, 16),
        (LinkType::Sll2, None, 20),
        (LinkType::RawIpv4, None, 0),
    ];
    for (link, vlan, l2) in links {
        let o = WriteOptions {
            link,
            vlan,
            ..Default::default()
        };
        let (cap, r) = write(&feed, &o);
        assert_eq!(
            u32::from_le_bytes(cap[20..24].try_into().unwrap()),
            o.link.linktype()
        );
        let (mut at, mut n) = (24, 0);
        while at < cap.len() {
            let caplen = u32::from_le_bytes(cap[at + 8..at + 12].try_into().unwrap()) as usize;
            let frame = &cap[at + 16..at + 16 + caplen];
            let ip = &frame[l2..l2 + 20];
            let mut sum: u32 = ip
                .chunks(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                .sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            assert_eq!(sum, 0xffff, "{link:?}: IPv4 header checksum");
            assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), caplen - l2);
            if link == LinkType::Ethernet {
                assert_eq!(frame[..6], [0x01, 0x00, 0x5e, 54, 12, 111], "multicast MAC");
                if let Some(id) = vlan {
                    assert_eq!(frame[12..16], [0x81, 0x00, 0, id as u8]);
                }
            }
            at += 16 + caplen;
            n += 1;
        }
        assert_eq!(n, r.packets + 1);
    }
}

/// tshark (where installed) reads what the writer writes: every link type, both pcap magics and
/// pcapng; its IPv4 checksum check passes and its MoldUDP64 dissector finds our sequence
/// numbers and counts.
#[test]
fn tshark_reads_the_captures() {
    if std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipping the tshark cross-check: tshark is not installed");
        return;
    }
    let feed = short_feed(2_000);
    let dir = tempfile::tempdir().unwrap();
    let picks = variants().into_iter().filter(|o| {
        o.vlan.is_some() || (o.format, o.resolution) == (CaptureFormat::Pcap, TsResolution::Nano)
    });
    for (i, o) in picks.enumerate() {
        let what = format!(
            "{:?} vlan {:?} {:?} {:?}",
            o.link, o.vlan, o.format, o.resolution
        );
        let (cap, _) = write(&feed, &o);
        let want: Vec<String> = read(&cap)
            .iter()
            .map(|d| unpack(d.payload))
            .map(|m| format!("1\t{}\t{}", m.seq, m.count))
            .collect();
        let path = dir.path().join(format!("c{i}"));
        std::fs::write(&path, &cap).unwrap();
        let port = format!("udp.port=={},moldudp64", o.group.port());
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .args(["-o", "ip.check_checksum:TRUE", "-d", &port, "-T", "fields"])
            .args([
                "-e",
                "ip.checksum.status",
                "-e",
                "moldudp64.sequence",
                "-e",
                "moldudp64.count",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{what}: tshark failed: {err}");
        let got: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(
            got, want,
            "{what}: tshark's checksum status, sequence, count per packet"
        );
    }
}

/// Every message of `x`'s image: framed whole, and placed in a packet of the capture.
fn image_is_whole_and_placed(x: &tickwatch::capture::Extracted, cap_len: usize, what: &str) {
    let mut pos = 0u64;
    for f in Frames::new(&x.image) {
        let f = f.unwrap_or_else(|e| panic!("{what}: the image itself is broken: {e}"));
        let p = x
            .place(pos)
            .unwrap_or_else(|| panic!("{what}: message at image offset {pos} has no packet"));
        assert!(p.packet < cap_len as u64, "{what}: {p:?}");
        pos += 2 + f.body.len() as u64;
    }
    assert_eq!(pos, x.image.len() as u64, "{what}");
}

#[test]
fn every_cut_point_extracts_a_clean_prefix_or_names_an_offset() {
    use tickwatch::capture::{extract, ExtractError, ExtractOptions};
    for (name, cap) in small_captures() {
        let full = extract(&cap, &ExtractOptions::default()).unwrap();
        for cut in 0..cap.len() {
            match extract(&cap[..cut], &ExtractOptions::default()) {
                // A prefix of the messages, each whole and placed.
                Ok(x) => {
                    assert!(full.image.starts_with(&x.image), "{name} cut at {cut}");
                    image_is_whole_and_placed(&x, cut, &format!("{name} cut at {cut}"));
                }
                Err(ExtractError::Capture(e)) => {
                    assert!(e.offset() <= cut as u64, "{name} cut at {cut}: {e}")
                }
                // Too short to hold a MoldUDP64 packet: said so, not a framing error.
                Err(e @ ExtractError::NoMold { .. }) => assert!(
                    cut < cap.len() / 2 && !e.to_string().is_empty(),
                    "{name} cut at {cut}: {e}"
                ),
                Err(e) => panic!("{name} cut at {cut}: {e}"),
            }
        }
    }
}

#[test]
fn random_byte_flips_through_extraction_never_panic() {
    use tickwatch::capture::{extract, ExtractOptions};
    let mut rng = SplitMix64::new(29);
    for (name, cap) in small_captures() {
        for _ in 0..300 {
            let mut c = cap.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(c.len() as u64) as usize;
                c[i] ^= 1 << rng.below(8);
            }
            if let Ok(x) = extract(&c, &ExtractOptions::default()) {
                // Whatever survived is framed and placed (a flipped length can only shorten
                // or corrupt a message body, never the image's own framing).
                image_is_whole_and_placed(&x, c.len(), &name);
            }
        }
    }
}

#[test]
fn an_ipv4_total_length_inside_its_own_header_is_counted_malformed() {
    // Found by the byte flips: a total length of 5 (under the 20-byte header) once panicked.
    let o = WriteOptions {
        vlan: None,
        ..WriteOptions::default()
    };
    let (mut cap, _) = write(&short_feed(20), &o);
    let first = read(&cap)[0].offset as usize;
    let ip = first + 16 + 14; // pcap record header, Ethernet header
    assert_eq!(cap[ip] >> 4, 4, "an IPv4 header");
    cap[ip + 2..ip + 4].copy_from_slice(&5u16.to_be_bytes());
    let mut it = Datagrams::new(&cap).unwrap();
    let n = it.by_ref().filter(|d| d.is_ok()).count();
    assert_eq!(n, read(&write(&short_feed(20), &o).0).len() - 1);
    assert_eq!(it.counts().malformed, 1);
}
