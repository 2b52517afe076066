//! The recorder: what a [`Receiver`] takes in, written as pcap or pcapng with nanosecond
//! timestamps (the kernel's receive stamps), each datagram in synthesised Ethernet/IPv4/UDP
//! headers (`capture::PacketWriter`), rotated by size or time. It ends when every line has
//! sent its end of session (a line that lost its own gets [`END_GRACE`] of silence after the
//! first), or when told to stop.

use std::fs::File;
use std::io::BufWriter;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::hwstamp::HwStamping;
use super::recv::{Receiver, RecvStats, TimestampSource};
use super::rerequest::{RequestStats, Rerequester};
use super::{now_ns, NetError};
use crate::capture::{CaptureFormat, PacketWriter, TsResolution, WriteOptions};
use crate::mold::{Arbiter, ArbiterConfig, Datagram, Delivered, Packet, PacketKind};

/// Where and how to record.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// A file, or a directory for numbered files.
    pub out: PathBuf,
    /// pcapng instead of pcap.
    pub pcapng: bool,
    /// Start a new file past this many bytes.
    pub rotate_size: Option<u64>,
    /// Start a new file after this long.
    pub rotate_time: Option<Duration>,
}

/// What was recorded.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RecordReport {
    /// Datagrams written.
    pub packets: u64,
    /// UDP payload bytes in them.
    pub bytes: u64,
    /// Files written, in order.
    pub files: Vec<PathBuf>,
    /// Bytes of the files.
    pub file_bytes: u64,
    /// Datagrams the kernel dropped before we read them.
    pub kernel_drops: u64,
    /// Which clock stamped the packets.
    pub timestamps: Option<TimestampSource>,
    /// Datagrams stamped by the NIC, by the kernel in software, and not at all (the realtime
    /// clock when read).
    pub stamped: StampCounts,
    /// What `--hw-timestamps` did: the NIC told to stamp, or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_timestamps: Option<HwStamping>,
    /// Set when the NIC's stamps are in a clock not kept to the system's (the recording's
    /// times are then off by the difference).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hw_clock_warning: Option<String>,
    /// A line carried the end of session.
    pub end_of_session: bool,
    /// Lines listened to.
    pub lines: usize,
    /// Lines that carried it (the others lost it, or went silent).
    pub lines_ended: usize,
    /// With a re-request server: what was asked.
    pub rerequests: Option<RequestStats>,
    /// With a re-request server: messages missed on every line and not filled in time.
    pub lost: Option<u64>,
}

/// Datagrams by the clock that stamped them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StampCounts {
    /// By the NIC.
    pub hardware: u64,
    /// By the kernel, in software.
    pub software: u64,
    /// Not at all: the realtime clock when read.
    pub none: u64,
}

impl StampCounts {
    /// The receiver's counts.
    pub fn of(s: &RecvStats) -> StampCounts {
        StampCounts {
            hardware: s.hw_stamped,
            software: s.sw_stamped,
            none: s.unstamped,
        }
    }
}

type Writer = PacketWriter<BufWriter<File>>;

/// The files being written.
#[derive(Debug)]
struct Files {
    opts: RecordOptions,
    current: Option<(Writer, Instant)>,
    report: RecordReport,
}

impl Files {
    fn path(&self, index: usize) -> PathBuf {
        let ext = if self.opts.pcapng { "pcapng" } else { "pcap" };
        if self.opts.out.is_dir() {
            return self.opts.out.join(format!("tickwatch-{index:05}.{ext}"));
        }
        if index == 0 {
            return self.opts.out.clone();
        }
        numbered(&self.opts.out, index)
    }

    fn open(&mut self) -> Result<(), NetError> {
        let path = self.path(self.report.files.len());
        let werr = |source| NetError::Write {
            path: path.display().to_string(),
            source,
        };
        let file = File::create(&path).map_err(werr)?;
        let wo = WriteOptions {
            format: match self.opts.pcapng {
                true => CaptureFormat::PcapNg,
                false => CaptureFormat::Pcap,
            },
            resolution: TsResolution::Nano,
            max_payload: 8_972,
            ..WriteOptions::default()
        };
        let w = PacketWriter::new(&wo, BufWriter::with_capacity(1 << 20, file)).map_err(werr)?;
        self.report.files.push(path);
        self.current = Some((w, Instant::now()));
        Ok(())
    }

    fn close(&mut self) -> Result<(), NetError> {
        if let Some((w, _)) = self.current.take() {
            self.report.file_bytes += w.bytes();
            w.finish().map_err(|source| self.write_err(source))?;
        }
        Ok(())
    }

    fn write_err(&self, source: std::io::Error) -> NetError {
        let path = self.report.files.last().map(|p| p.display().to_string());
        NetError::Write {
            path: path.unwrap_or_default(),
            source,
        }
    }

    fn write(&mut self, d: &Datagram<'_>) -> Result<(), NetError> {
        if self.due_rotation() {
            self.close()?;
        }
        if self.current.is_none() {
            self.open()?;
        }
        let (w, _) = self.current.as_mut().expect("opened");
        let r = w.datagram(d.src, d.dst, d.payload, d.ts_ns);
        r.map_err(|source| self.write_err(source))?;
        self.report.packets += 1;
        self.report.bytes += d.payload.len() as u64;
        Ok(())
    }

    fn due_rotation(&self) -> bool {
        let Some((w, opened)) = &self.current else {
            return false;
        };
        self.opts.rotate_size.is_some_and(|s| w.bytes() >= s)
            || self.opts.rotate_time.is_some_and(|t| opened.elapsed() >= t)
    }
}

/// `feed.pcap` → `feed-1.pcap`.
fn numbered(p: &Path, index: usize) -> PathBuf {
    let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = match (stem, p.extension()) {
        (Some(s), Some(e)) => format!("{s}-{index}.{}", e.to_string_lossy()),
        (Some(s), None) => format!("{s}-{index}"),
        _ => format!("tickwatch-{index}"),
    };
    p.with_file_name(name)
}

/// Gap filling while recording: an arbiter over the lines finds the gaps, a re-request client
/// asks for them, and the replies are recorded as datagrams of line A.
#[derive(Debug)]
struct Refill {
    arb: Arbiter,
    rq: Rerequester,
    line_a: SocketAddrV4,
}

impl Refill {
    fn open_gaps(&self) -> bool {
        let open = |id| {
            self.arb
                .stream(id)
                .is_some_and(|s| s.gaps().iter().any(|g| g.closed_ns.is_none()))
        };
        (0..self.arb.streams() as u32).any(open)
    }

    /// Messages given up (gaps not filled in time).
    fn lost(&self) -> u64 {
        let lost = |id| {
            self.arb
                .stream(id)
                .map_or(0, |s| s.gaps().iter().map(|g| g.lost).sum())
        };
        (0..self.arb.streams() as u32).map(lost).sum()
    }
}

/// The arbiter's deliveries are not needed: the recording keeps datagrams.
fn discard(_: Delivered<'_>) {}

/// How long a line that has not ended its session may stay silent once another line has.
/// An end of session is one datagram: a line can lose it like any other.
pub const END_GRACE: Duration = Duration::from_secs(1);

/// Records a receiver's lines.
#[derive(Debug)]
pub struct Recorder {
    rx: Receiver,
    files: Files,
    ended: Vec<bool>,
    /// When each line last delivered a datagram.
    heard: Vec<Instant>,
    refill: Option<Refill>,
}

impl Recorder {
    /// A recorder of `rx`'s lines into `opts.out` (nothing is created before the first packet).
    pub fn new(rx: Receiver, opts: RecordOptions) -> Recorder {
        let ended = vec![false; rx.lines().len()];
        let heard = vec![Instant::now(); ended.len()];
        let files = Files {
            opts,
            current: None,
            report: RecordReport::default(),
        };
        Recorder {
            rx,
            files,
            ended,
            heard,
            refill: None,
        }
    }

    /// Also asks `server` for every gap (missed on every line) and records its replies; the
    /// recording then ends once the gaps are filled or given up (after the arbiter's hold time).
    ///
    /// # Errors
    /// Creating the request socket.
    pub fn with_rerequest(mut self, server: SocketAddrV4) -> Result<Recorder, NetError> {
        let lines = self.rx.lines();
        let mut cfg = ArbiterConfig::default();
        match lines[..] {
            [a, b] => cfg.ab = vec![(a, b)],
            _ => cfg.channels = lines.clone(),
        }
        self.refill = Some(Refill {
            arb: Arbiter::new(cfg),
            rq: Rerequester::new(server)?,
            line_a: lines[0],
        });
        Ok(self)
    }

    /// Some line ended, and every other line ended too or has been silent for [`END_GRACE`].
    fn done(&self) -> bool {
        let over = |(&e, t): (&bool, &Instant)| e || t.elapsed() >= END_GRACE;
        self.ended.iter().any(|&e| e)
            && self.ended.iter().zip(&self.heard).all(over)
            && !self.refill.as_ref().is_some_and(Refill::open_gaps)
    }

    /// Records until every line has ended its session (and no gap is waiting for a re-request),
    /// `stop` is set, or (if given) nothing arrives for `idle`.
    ///
    /// # Errors
    /// Receiving, re-requesting or writing.
    pub fn run(
        mut self,
        stop: &AtomicBool,
        idle: Option<Duration>,
    ) -> Result<RecordReport, NetError> {
        let mut last = Instant::now();
        while !stop.load(Ordering::Relaxed) && !self.done() {
            if self.step()? > 0 {
                last = Instant::now();
            } else if idle.is_some_and(|t| last.elapsed() >= t) {
                break;
            }
        }
        self.files.close()?;
        let mut r = self.files.report;
        let st = self.rx.stats();
        r.kernel_drops = st.kernel_drops;
        r.timestamps = Some(st.timestamps());
        r.stamped = StampCounts::of(&st);
        r.hw_timestamps = self.rx.hw_stamping().cloned();
        r.hw_clock_warning = st.hw_clock_warning();
        r.lines = self.ended.len();
        r.lines_ended = self.ended.iter().filter(|&&e| e).count();
        r.end_of_session = r.lines_ended > 0;
        r.rerequests = self.refill.as_ref().map(|f| f.rq.stats());
        r.lost = self.refill.as_ref().map(Refill::lost);
        Ok(r)
    }

    /// One poll of the lines, then of the re-request replies; datagrams taken.
    fn step(&mut self) -> Result<usize, NetError> {
        let groups = self.rx.lines();
        let Recorder {
            rx,
            files,
            ended,
            heard,
            refill,
            ..
        } = self;
        let mut failed = None;
        let mut n = rx.poll(Duration::from_millis(20), |d| {
            if failed.is_none() {
                failed = files.write(d).err();
            }
            if let Some(r) = refill.as_mut() {
                r.arb.push(d, &mut discard);
            }
            if let Some(i) = groups.iter().position(|&g| g == d.dst) {
                heard[i] = Instant::now();
                ended[i] |= ends_session(d);
            }
        })?;
        if let Some(Refill { arb, rq, line_a }) = refill.as_mut() {
            n += rq.poll(*line_a, |d| {
                if failed.is_none() {
                    failed = files.write(d).err();
                }
                arb.push(d, &mut discard);
            })?;
            arb.expire(now_ns(), &mut discard);
            rq.request_gaps(arb)?;
        }
        failed.map_or(Ok(n), Err)
    }
}

fn ends_session(d: &Datagram<'_>) -> bool {
    Packet::parse(d.payload, 0).is_ok_and(|p| p.kind() == PacketKind::EndOfSession)
}
