//! Live MoldUDP64 on loopback multicast: `net::Sender` → `net::Recorder` (or a live
//! `net::Receiver` + `mold::Arbiter`), and the messages that come out, in sequence order, equal
//! the file's ITCH messages. Faults are injected per line by the sender; A/B arbitration and the
//! re-request client make up for them. Each test uses its own groups and ports, so they run in
//! parallel; every wait is bounded. Multicast on `lo` is set up if missing (root); when the
//! kernel refuses, the tests print why and return.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tickwatch::capture::{write_capture, Datagrams, WriteOptions};
use tickwatch::feed::Frames;
use tickwatch::gen::{generate, GenConfig};
use tickwatch::mold::{Arbiter, ArbiterConfig, Delivered};
use tickwatch::net::{
    Faults, PackOptions, PacketList, Receiver, RecordOptions, RecordReport, Recorder, RecvOptions,
    RerequestServer, Rerequester, SendOptions, SendReport, Sender, TimestampSource,
};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/data/12302019_SNIPPET.NASDAQ_ITCH50"
);
const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn sample() -> Vec<u8> {
    std::fs::read(SAMPLE).expect("the real sample")
}

fn generated(messages: u64) -> Vec<u8> {
    let mut f = Vec::new();
    let cfg = GenConfig {
        messages,
        symbols: 20,
        live_orders: 500,
        seed: 21,
    };
    generate(&cfg, &mut f).unwrap();
    f
}

fn bodies(itch: &[u8]) -> Vec<Vec<u8>> {
    Frames::new(itch)
        .map(|f| f.unwrap().body.to_vec())
        .collect()
}

fn group(n: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(239, 255, 77, n), port)
}

/// Turns multicast on for `lo` (and routes 224.0.0.0/4 there) if needed, then checks that a
/// datagram sent to a group comes back; the reason when it does not.
fn multicast() -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY.get_or_init(set_up_lo).clone()
}

fn set_up_lo() -> Result<(), String> {
    let ip = |args: &[&str]| std::process::Command::new("ip").args(args).output();
    let _ = ip(&["link", "set", "lo", "multicast", "on"]);
    let _ = ip(&["route", "add", "224.0.0.0/4", "dev", "lo"]);
    let g = group(1, 30_001);
    let mut rx = Receiver::new(&opts(vec![g])).map_err(|e| format!("{e:#?}"))?;
    let tx = std::net::UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        tx.send_to(b"probe", g)
            .map_err(|e| format!("sending to {g}: {e}"))?;
        let n = rx
            .poll(Duration::from_millis(50), |_| {})
            .map_err(|e| e.to_string())?;
        if n > 0 {
            return Ok(());
        }
    }
    Err(format!("no multicast datagram came back on lo from {g}"))
}

macro_rules! need_multicast {
    () => {
        if let Err(why) = multicast() {
            eprintln!("skipped: loopback multicast unavailable: {why}");
            return;
        }
    };
}

fn opts(lines: Vec<SocketAddrV4>) -> RecvOptions {
    RecvOptions {
        iface: Some(LO),
        ..RecvOptions::new(lines)
    }
}

fn send(
    list: &PacketList,
    lines: &[SocketAddrV4],
    speed: Option<f64>,
    faults: [Faults; 2],
) -> SendReport {
    let o = SendOptions {
        lines: lines.to_vec(),
        speed,
        iface: Some(LO),
        faults,
        ..SendOptions::default()
    };
    Sender::new(list, o)
        .unwrap()
        .run(&AtomicBool::new(false))
        .unwrap()
}

/// Records `lines` while `list` is sent; the recording's report and files.
fn record(
    list: &PacketList,
    lines: &[SocketAddrV4],
    faults: [Faults; 2],
    out: &Path,
    rotate_size: Option<u64>,
) -> (SendReport, RecordReport) {
    let rx = Receiver::new(&opts(lines.to_vec())).unwrap();
    let ro = RecordOptions {
        out: out.to_path_buf(),
        pcapng: false,
        rotate_size,
        rotate_time: None,
    };
    let rec = std::thread::spawn(move || {
        Recorder::new(rx, ro)
            .run(&AtomicBool::new(false), Some(Duration::from_secs(5)))
            .unwrap()
    });
    let s = send(list, lines, None, faults);
    (s, rec.join().unwrap())
}

/// The messages of recorded files, merged by an arbiter with `lines` as A/B: (seq, bytes).
fn replay(files: &[PathBuf], lines: &[SocketAddrV4]) -> (Vec<(u64, Vec<u8>)>, Arbiter) {
    let mut cfg = ArbiterConfig::default();
    if let [a, b] = lines {
        cfg.ab = vec![(*a, *b)];
    }
    let mut arb = Arbiter::new(cfg);
    let mut got = Vec::new();
    let mut sink = |m: Delivered<'_>| got.push((m.seq, m.bytes.to_vec()));
    let mut last = 0;
    for f in files {
        let bytes = std::fs::read(f).unwrap();
        for d in Datagrams::new(&bytes).unwrap() {
            let d = d.unwrap();
            last = d.ts_ns;
            let md = tickwatch::mold::Datagram {
                ts_ns: d.ts_ns,
                src: d.src,
                dst: d.dst,
                payload: d.payload,
                offset: d.offset,
            };
            arb.push(&md, &mut sink);
        }
    }
    arb.finish(last, &mut sink);
    (got, arb)
}

fn assert_same(got: &[(u64, Vec<u8>)], want: &[Vec<u8>]) {
    assert_eq!(got.len(), want.len(), "message count");
    for (i, ((seq, m), w)) in got.iter().zip(want).enumerate() {
        assert_eq!(*seq, i as u64 + 1);
        assert_eq!(m, w, "message {seq}");
    }
}

#[test]
fn sample_and_generated_feed_round_trip_through_a_recording() {
    need_multicast!();
    let dir = tempfile::tempdir().unwrap();
    for (n, itch) in [(10u8, sample()), (11, generated(20_000))] {
        let list = PacketList::from_itch(&itch, &PackOptions::default()).unwrap();
        let line = [group(n, 30_010)];
        let out = dir.path().join(format!("feed{n}.pcap"));
        let (s, r) = record(&list, &line, [Faults::default(); 2], &out, None);
        assert!(r.end_of_session, "{r:?}");
        assert_eq!(r.kernel_drops, 0);
        assert_eq!(r.timestamps, Some(TimestampSource::Software));
        assert_eq!(r.packets, s.lines[0].datagrams);
        let (got, arb) = replay(&r.files, &line);
        assert_same(&got, &bodies(&itch));
        let rep = arb.report();
        assert_eq!(rep.sessions[0].gaps.len(), 0);
        assert!(rep.sessions[0].end_of_session);
    }
}

#[test]
fn a_capture_is_sent_as_captured_and_rotation_splits_the_recording() {
    need_multicast!();
    let itch = generated(5_000);
    let mut cap = Vec::new();
    write_capture(&itch, &WriteOptions::default(), &mut cap).unwrap();
    let list = PacketList::from_capture(&cap, &PackOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let line = [group(20, 30_020)];
    let (_, r) = record(
        &list,
        &line,
        [Faults::default(); 2],
        dir.path(),
        Some(64 << 10),
    );
    assert!(r.files.len() > 1, "rotated: {:?}", r.files);
    let (got, _) = replay(&r.files, &line);
    assert_same(&got, &bodies(&itch));
    // Same payloads as the capture.
    let captured: Vec<Vec<u8>> = Datagrams::new(&cap)
        .unwrap()
        .map(|d| d.unwrap().payload.to_vec())
        .collect();
    let sent: Vec<Vec<u8>> = list
        .packets()
        .iter()
        .map(|p| list.bytes(p).to_vec())
        .collect();
    assert_eq!(sent[..], captured[..captured.len() - 1]); // the sender makes its own end of session
}

#[test]
fn a_b_lines_with_independent_drops_lose_nothing() {
    need_multicast!();
    let itch = sample();
    let list = PacketList::from_itch(&itch, &PackOptions::default()).unwrap();
    let p3 = &list.packets()[2]; // line A drops even packets; B drops the 3rd and reorders
    let a = Faults {
        drop_every: Some(2),
        ..Faults::default()
    };
    let b = Faults {
        drop_seq: Some((p3.seq, p3.seq + u64::from(p3.count) - 1)),
        reorder: true,
        ..Faults::default()
    };
    let lines = [group(30, 30_030), group(31, 30_030)];
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = record(&list, &lines, [a, b], &dir.path().join("ab.pcap"), None);
    assert!(s.lines[0].dropped > 0 && s.lines[1].dropped == 1 && s.lines[1].reordered > 0);
    let (got, arb) = replay(&r.files, &lines);
    assert_same(&got, &bodies(&itch));
    let rep = arb.report();
    let sess = &rep.sessions[0];
    assert_eq!(sess.gaps.iter().map(|g| g.lost).sum::<u64>(), 0);
    assert!(sess.lines[0].stats.gaps > 0 && sess.lines[1].stats.gaps > 0);
}

#[test]
fn duplicates_are_dropped() {
    need_multicast!();
    let itch = generated(3_000);
    let list = PacketList::from_itch(&itch, &PackOptions::default()).unwrap();
    let dup = Faults {
        duplicate_every: Some(3),
        ..Faults::default()
    };
    let line = [group(40, 30_040)];
    let dir = tempfile::tempdir().unwrap();
    let (s, r) = record(
        &list,
        &line,
        [dup, Faults::default()],
        &dir.path().join("d.pcap"),
        None,
    );
    assert!(s.lines[0].duplicated > 0);
    let (got, arb) = replay(&r.files, &line);
    assert_same(&got, &bodies(&itch));
    assert!(arb.report().sessions[0].counters.duplicates > 0);
}

/// A live receiver, arbiter and re-request client until end of session with no open gap (or
/// the deadline): the messages delivered.
fn live_with_rerequests(
    mut rx: Receiver,
    server: SocketAddrV4,
    line_a: SocketAddrV4,
) -> (Vec<(u64, Vec<u8>)>, Arbiter, u64) {
    // Holes held up to 5 s, so that a stalled test thread on a busy host does not give one up
    // before its re-request is answered.
    let mut cfg = ArbiterConfig::default();
    cfg.stream.hold_ns = 5_000_000_000;
    let mut arb = Arbiter::new(cfg);
    let mut rq = Rerequester::new(server).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut sink = |m: Delivered<'_>| got.push((m.seq, m.bytes.to_vec()));
        rx.poll(Duration::from_millis(5), |d| {
            arb.push(d, &mut sink);
        })
        .unwrap();
        rq.poll(line_a, |d| {
            arb.push(d, &mut sink);
        })
        .unwrap();
        rq.request_gaps(&arb).unwrap();
        let s = arb.stream(0);
        let open = s.is_some_and(|s| s.gaps().iter().any(|g| g.closed_ns.is_none()));
        if s.is_some_and(|s| s.end_of_session()) && !open {
            break;
        }
    }
    (got, arb, rq.stats().requests)
}

#[test]
fn a_dropped_range_is_filled_by_re_request() {
    need_multicast!();
    let itch = sample();
    let list = Arc::new(PacketList::from_itch(&itch, &PackOptions::default()).unwrap());
    let server =
        RerequestServer::spawn(Arc::clone(&list), SocketAddrV4::new(LO, 0), 1_400).unwrap();
    let line = group(50, 30_050);
    let rx = Receiver::new(&opts(vec![line])).unwrap();
    let addr = server.addr();
    let live = std::thread::spawn(move || live_with_rerequests(rx, addr, line));
    let drop = Faults {
        drop_seq: Some((100, 180)),
        ..Faults::default()
    };
    let s = send(&list, &[line], Some(1.0), [drop, Faults::default()]);
    assert!(s.lines[0].dropped > 0);
    let (got, arb, requests) = live.join().unwrap();
    let served = server.stop();
    assert!(requests > 0 && served.messages >= 81, "{served:?}");
    assert_same(&got, &bodies(&itch));
    let gaps = &arb.report().sessions[0].gaps;
    assert!(
        !gaps.is_empty() && gaps.iter().all(|g| g.lost == 0),
        "{gaps:?}"
    );
}

#[test]
fn pacing_at_1x_takes_at_least_the_feeds_span() {
    need_multicast!();
    let itch = sample();
    let list = PacketList::from_itch(&itch, &PackOptions::default()).unwrap();
    let line = [group(60, 30_060)];
    let t = Instant::now();
    let s = send(&list, &line, Some(1.0), [Faults::default(); 2]);
    let first = list.packets()[0].ts_ns;
    let span = list.packets().last().unwrap().ts_ns - first;
    assert!(span > 1_000_000, "the sample spans {span} ns");
    assert_eq!(s.feed_span_ns, span);
    assert!(t.elapsed() >= Duration::from_nanos(span));
    assert!(s.elapsed_ns >= span);
    assert_eq!(s.pacing.samples, s.packets);
}

#[test]
fn from_and_until_take_a_slice() {
    let itch = sample();
    let all = bodies(&itch);
    let t = |b: &[u8]| b[5..11].iter().fold(0u64, |a, &x| a << 8 | u64::from(x));
    let (from, until) = (t(&all[200]), t(&all[600]));
    let o = PackOptions {
        from_ns: Some(from),
        until_ns: Some(until),
        ..PackOptions::default()
    };
    let list = PacketList::from_itch(&itch, &o).unwrap();
    let want = all
        .iter()
        .filter(|b| (from..=until).contains(&t(b)))
        .count() as u64;
    assert_eq!(list.messages(), want);
    assert!((401..1_000).contains(&want));
}

#[test]
fn heartbeats_go_out_while_idle() {
    need_multicast!();
    let itch = sample();
    let all = bodies(&itch);
    let t = |b: &[u8]| b[5..11].iter().fold(0u64, |a, &x| a << 8 | u64::from(x));
    let o = PackOptions {
        until_ns: Some(t(&all[30])),
        ..PackOptions::default()
    };
    let list = PacketList::from_itch(&itch, &o).unwrap();
    let span = list.packets().last().unwrap().ts_ns - list.packets()[0].ts_ns;
    // Slowed so that the gaps between packets last several heartbeat intervals (≈ 0.3 s in all).
    let speed = span as f64 / 300e6;
    let line = group(70, 30_070);
    let rx = Receiver::new(&opts(vec![line])).unwrap();
    let (mut beats, mut ended) = (0, false);
    let watch = std::thread::spawn(move || {
        let mut rx = rx;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ended && Instant::now() < deadline {
            rx.poll(Duration::from_millis(20), |d| {
                beats += u64::from(d.payload.len() == 20 && d.payload[18..20] == [0, 0]);
                ended |= d.payload.len() == 20 && d.payload[18..20] == [0xFF, 0xFF];
            })
            .unwrap();
        }
        (beats, ended)
    });
    let so = SendOptions {
        lines: vec![line],
        speed: Some(speed),
        iface: Some(LO),
        heartbeat: Duration::from_millis(5),
        ..SendOptions::default()
    };
    let s = Sender::new(&list, so)
        .unwrap()
        .run(&AtomicBool::new(false))
        .unwrap();
    let (seen, ended) = watch.join().unwrap();
    assert!(s.heartbeats >= 5, "{s:?}");
    assert!(ended && seen == s.heartbeats, "{seen} of {}", s.heartbeats);
}

#[test]
fn kernel_drops_are_counted_when_the_buffer_overflows() {
    need_multicast!();
    let itch = generated(20_000);
    let o = PackOptions {
        window_ns: 0,
        ..PackOptions::default()
    };
    let list = PacketList::from_itch(&itch, &o).unwrap();
    let line = group(80, 30_080);
    let mut ro = opts(vec![line]);
    ro.rcvbuf = 4_096; // the smallest the kernel grants: overflows unless read at once
    let mut rx = Receiver::new(&ro).unwrap();
    let s = send(&list, &[line], None, [Faults::default(); 2]); // not read while sending
    let mut got = 0;
    while rx.poll(Duration::from_millis(100), |_| got += 1).unwrap() > 0 {}
    let st = rx.stats();
    assert_eq!(st.datagrams, got);
    assert!(st.kernel_drops > 0, "{st:?}");
    assert_eq!(got + st.kernel_drops, s.lines[0].datagrams, "{st:?}");
}

#[test]
fn recording_rotates_by_time_and_writes_pcapng() {
    need_multicast!();
    let itch = sample();
    let list = PacketList::from_itch(&itch, &PackOptions::default()).unwrap();
    let span = list.packets().last().unwrap().ts_ns - list.packets()[0].ts_ns;
    let line = group(90, 30_090);
    let rx = Receiver::new(&opts(vec![line])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ro = RecordOptions {
        out: dir.path().join("t.pcapng"),
        pcapng: true,
        rotate_size: None,
        rotate_time: Some(Duration::from_millis(60)),
    };
    let rec = std::thread::spawn(move || {
        Recorder::new(rx, ro)
            .run(&AtomicBool::new(false), Some(Duration::from_secs(5)))
            .unwrap()
    });
    // About 0.3 s of sending, so several 60 ms files.
    send(
        &list,
        &[line],
        Some(span as f64 / 300e6),
        [Faults::default(); 2],
    );
    let r = rec.join().unwrap();
    assert!(r.files.len() >= 3, "{:?}", r.files);
    assert_eq!(r.files[1], dir.path().join("t-1.pcapng"));
    let (got, _) = replay(&r.files, &[line]);
    assert_same(&got, &bodies(&itch));
}

#[test]
fn a_recording_with_re_requests_has_no_gap() {
    need_multicast!();
    let itch = sample();
    let list = Arc::new(PacketList::from_itch(&itch, &PackOptions::default()).unwrap());
    let server =
        RerequestServer::spawn(Arc::clone(&list), SocketAddrV4::new(LO, 0), 1_400).unwrap();
    let line = group(95, 30_095);
    let rx = Receiver::new(&opts(vec![line])).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ro = RecordOptions {
        out: dir.path().join("filled.pcap"),
        pcapng: false,
        rotate_size: None,
        rotate_time: None,
    };
    let rec = Recorder::new(rx, ro).with_rerequest(server.addr()).unwrap();
    let rec = std::thread::spawn(move || {
        rec.run(&AtomicBool::new(false), Some(Duration::from_secs(5)))
            .unwrap()
    });
    let drop = Faults {
        drop_seq: Some((500, 520)),
        drop_every: Some(25),
        ..Faults::default()
    };
    let s = send(&list, &[line], Some(1.0), [drop, Faults::default()]);
    let r = rec.join().unwrap();
    server.stop();
    assert!(s.lines[0].dropped > 5, "{s:?}");
    assert_eq!(r.lost, Some(0), "{r:?}");
    assert!(r.rerequests.unwrap().replies > 0);
    let (got, _) = replay(&r.files, &[line]);
    assert_same(&got, &bodies(&itch));
}

#[test]
fn bad_send_options_are_errors() {
    let list = PacketList::from_itch(&sample(), &PackOptions::default()).unwrap();
    let line = vec![group(99, 30_099)];
    for o in [
        SendOptions {
            lines: vec![],
            ..SendOptions::default()
        },
        SendOptions {
            lines: vec![line[0]; 3],
            ..SendOptions::default()
        },
        SendOptions {
            lines: line.clone(),
            speed: Some(0.0),
            ..SendOptions::default()
        },
        SendOptions {
            lines: line.clone(),
            speed: Some(f64::NAN),
            ..SendOptions::default()
        },
        SendOptions {
            lines: line.clone(),
            heartbeat: Duration::ZERO,
            ..SendOptions::default()
        },
    ] {
        assert!(Sender::new(&list, o).is_err());
    }
    let small = PackOptions {
        max_payload: 10,
        ..PackOptions::default()
    };
    assert!(PacketList::from_itch(&sample(), &small).is_err());
    assert!(PacketList::from_itch(&[0, 5, 1], &PackOptions::default()).is_err());
    assert!(PacketList::from_capture(b"not a capture", &PackOptions::default()).is_err());
}
