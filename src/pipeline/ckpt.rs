//! Checkpoints of a surveillance run: what each worker and the output stage save at a cut, how
//! a checkpoint is completed, and how a run is restored from one (see [`crate::ckpt`] for the
//! files and [`crate::engine::cut`] for the cut).
//!
//! * The reader, at a flagged mark, writes `reader.bin` (its [`ReaderCut`]) into the
//!   checkpoint's staging directory, then sends the mark.
//! * Each worker, taking the mark, ends its epoch and runs its timers as at any mark, then
//!   writes `worker-<i>.bin` (its books, detectors, epoch) and sends a checkpoint record keyed
//!   just after the mark's own records.
//! * The output stage, once its merge has taken every worker's checkpoint record — so it has
//!   written every alert before the cut — syncs the alerts file, writes `output.bin` (risk book,
//!   alert count) and `manifest.json` (with the alerts file's length and CRC), and renames the
//!   directory into place.
//!
//! Only a checkpoint may allocate and block: the steady state between them is unchanged.

use crate::book::Books;
use crate::ckpt::manifest::{InputPos, OutputPos};
use crate::ckpt::{self, CkptDir, CkptError, FeedId, Given, Manifest, RunKey};
use crate::engine::{CkptEvery, ReaderCut, WorkerCut};
use crate::surv::{SurvOutput, Surveillance};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a run's checkpoints measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CkptReport {
    /// Checkpoints completed.
    pub written: u64,
    /// The last one's number.
    pub last: u64,
    /// Bytes of the last one (every file).
    pub bytes: u64,
    /// Each worker's stall per checkpoint, ns: from taking the mark to resuming (saving its
    /// state included).
    pub worker_stall_ns: Vec<u64>,
    /// The output stage's stall per checkpoint, ns: writing and syncing the alerts before the
    /// cut, copying its state.
    pub output_stall_ns: Vec<u64>,
    /// The writer thread's time per checkpoint commit, ns (off the pipeline): the output's
    /// files, the manifest, the checks, the rename and syncs — after the workers' files.
    pub commit_ns: Vec<u64>,
    /// Errors met (a checkpoint that failed is not completed; the run goes on).
    pub errors: Vec<String>,
    /// Where the run resumed from, and the newer checkpoints that could not be used.
    pub resumed_from: Option<String>,
    /// Messages read before the cut it resumed from: the report's counts cover the whole run,
    /// its time and rate only what this process read.
    pub resumed_at_message: Option<u64>,
    /// Newer checkpoints skipped on resume, with why.
    pub skipped: Vec<String>,
}

/// Shared between the stages.
pub type Log = Arc<Mutex<CkptReport>>;

/// The workers' counters at their checkpoint marks, until the checkpoint's commit takes them:
/// (the cut's feed position, worker, counters).
pub type Cuts = Arc<Mutex<Vec<(u32, usize, WorkerCut)>>>;

/// A file-system job of a checkpoint, run on the writer thread.
pub type Job = Box<dyn FnOnce() + Send>;

/// The checkpoint writer: one thread that packs, writes, fsyncs and commits, in the order the
/// stages hand it their parts (the reader's, each worker's, then the output's commit), so a
/// stage's stall is only the copy of its state. At most [`Writer::QUEUE`] jobs wait: a stage
/// that finds the queue full waits for room (checkpoints taken faster than the disk takes
/// them slow the run down rather than fill memory).
#[derive(Debug)]
pub struct Writer {
    tx: std::sync::mpsc::SyncSender<Job>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Jobs waiting at most.
    pub const QUEUE: usize = 8;

    /// Starts the writer thread.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start() -> std::io::Result<Writer> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(Self::QUEUE);
        let thread = std::thread::Builder::new()
            .name("tw-ckpt-writer".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })?;
        Ok(Writer {
            tx,
            thread: Some(thread),
        })
    }

    /// A handle to hand jobs to it.
    pub fn handle(&self) -> std::sync::mpsc::SyncSender<Job> {
        self.tx.clone()
    }

    /// Runs every job handed over so far, then stops the thread. Call after the run, once no
    /// stage sends any more.
    pub fn finish(mut self) {
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        if self
            .tx
            .send(Box::new(move || {
                let _ = done_tx.send(());
            }))
            .is_ok()
        {
            let _ = done_rx.recv();
        }
        // The stages' handles may outlive the run (in its outcome): the thread is detached,
        // idle, and ends with the process or when they drop.
        drop(self.thread.take());
    }
}

/// Hands `job` to the writer; logs it when the writer is gone.
pub fn submit(tx: &std::sync::mpsc::SyncSender<Job>, log_to: &Log, job: Job) {
    if tx.send(job).is_err() {
        log(log_to, |l| {
            l.errors.push("the checkpoint writer stopped".into())
        });
    }
}

fn log(l: &Log, f: impl FnOnce(&mut CkptReport)) {
    f(&mut l.lock().unwrap_or_else(|e| e.into_inner()));
}

/// Encode buffers kept between checkpoints: a stage encodes its snapshot into a buffer the
/// writer gave back after writing the last one (its pages faulted in, no regrowth), not into
/// a fresh one; a buffer not yet back is replaced by a new one with the last snapshot's room.
#[derive(Debug)]
struct Buffers {
    back_tx: std::sync::mpsc::Sender<Vec<u8>>,
    back: std::sync::mpsc::Receiver<Vec<u8>>,
    /// The last snapshot's bytes.
    last: usize,
}

impl Buffers {
    fn new() -> Buffers {
        let (back_tx, back) = std::sync::mpsc::channel();
        Buffers {
            back_tx,
            back,
            last: 0,
        }
    }

    /// An empty buffer to encode the next snapshot into.
    fn take(&mut self) -> Vec<u8> {
        // The newest given back is kept; any older one is dropped.
        let mut got = None;
        while let Ok(b) = self.back.try_recv() {
            got = Some(b);
        }
        got.unwrap_or_else(|| Vec::with_capacity(self.last + self.last / 8))
    }

    /// Encodes `v` into a buffer; the buffer (encoded) and how the writer gives it back.
    fn encode<T: Serialize>(
        &mut self,
        v: &T,
    ) -> (Result<Vec<u8>, CkptError>, std::sync::mpsc::Sender<Vec<u8>>) {
        let mut b = self.take();
        let r = ckpt::encode_into(&mut b, v);
        self.last = b.len();
        (r.map(|()| b), self.back_tx.clone())
    }
}

/// A worker's state at a cut (written borrowed, read owned: the same encoding).
#[derive(Serialize)]
struct WorkerSnap<'a> {
    books: &'a Books,
    s: &'a Surveillance,
    epoch: u64,
    mark_seq: u32,
}

/// [`WorkerSnap`], restored.
#[derive(Debug, Deserialize)]
pub struct WorkerState {
    /// Its books.
    pub books: Books,
    /// Its detectors.
    pub s: Surveillance,
    /// Marks taken.
    pub epoch: u64,
    /// Feed position of the last mark.
    pub mark_seq: u32,
}

/// The output stage's state at a cut.
#[derive(Serialize)]
struct OutputSnap<'a> {
    out: &'a SurvOutput,
    alerts: u64,
}

/// [`OutputSnap`], restored.
#[derive(Debug, Deserialize)]
pub struct OutputState {
    /// The risk book and alert counts.
    pub out: SurvOutput,
    /// Alerts written.
    pub alerts: u64,
}

/// Where the ITCH source stood at a cut.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct SourcePos {
    /// Byte offset of the next frame.
    pub offset: u64,
    /// Unknown types skipped before it.
    pub skipped_unknown: u64,
    /// Bad lengths skipped before it.
    pub skipped_bad_lengths: u64,
    /// Of a capture: where its MoldUDP64 stream stood.
    pub capture: Option<ckpt::CapturePos>,
}

/// A worker's checkpoint side.
#[derive(Debug)]
pub struct WorkerCkpt {
    dir: CkptDir,
    shard: usize,
    next: u64,
    log: Log,
    writer: std::sync::mpsc::SyncSender<Job>,
    bufs: Buffers,
}

impl WorkerCkpt {
    /// Worker `shard`'s, its next checkpoint numbered `next`, its files written by `run`'s
    /// writer.
    pub fn new(run: &CkptRun, writer: &Writer, shard: usize, next: u64) -> WorkerCkpt {
        WorkerCkpt {
            dir: run.dir.clone(),
            shard,
            next,
            log: run.log.clone(),
            writer: writer.handle(),
            bufs: Buffers::new(),
        }
    }

    /// Saves the worker's state at the cut; `t0` is when it took the mark.
    pub fn save(&mut self, books: &Books, s: &Surveillance, epoch: (u64, u32), t0: Instant) {
        let n = self.next;
        self.next += 1;
        let snap = WorkerSnap {
            books,
            s,
            epoch: epoch.0,
            mark_seq: epoch.1,
        };
        let (r, back) = self.bufs.encode(&snap);
        let stall = t0.elapsed().as_nanos() as u64;
        log(&self.log, |l| l.worker_stall_ns.push(stall));
        let (dir, shard, log_to) = (self.dir.clone(), self.shard, self.log.clone());
        let job = move || {
            let r = r.and_then(|b| {
                let d = dir.staging(n)?;
                let w = ckpt::write_blob(&d.join(format!("worker-{shard}.bin")), &b);
                let _ = back.send(b); // for the next checkpoint (gone if the run has ended)
                w
            });
            if let Err(e) = r {
                log(&log_to, |l| l.errors.push(e.to_string()));
            }
        };
        submit(&self.writer, &self.log, Box::new(job));
    }
}

/// The output stage's checkpoint side.
#[derive(Debug)]
pub struct OutputCkpt {
    dir: CkptDir,
    workers: usize,
    /// Checkpoint records taken for the next checkpoint.
    seen: usize,
    next: u64,
    feed: FeedId,
    key: RunKey,
    given: Given,
    every: CkptEvery,
    /// CRC of the alerts written so far.
    crc: crc32fast::Hasher,
    pause_ms: u64,
    log: Log,
    cuts: Cuts,
    writer: std::sync::mpsc::SyncSender<Job>,
    bufs: Buffers,
}

impl OutputCkpt {
    /// The output's side for `workers` workers; `crc` covers the alerts written before.
    pub fn new(run: &CkptRun, writer: &Writer, next: u64, crc: crc32fast::Hasher) -> OutputCkpt {
        OutputCkpt {
            dir: run.dir.clone(),
            workers: run.key.workers,
            seen: 0,
            next,
            feed: run.feed.clone(),
            key: run.key.clone(),
            given: run.given.clone(),
            every: run.every,
            crc,
            // A test hook: a pause between writing the files and the rename, so a kill lands
            // inside a checkpoint write.
            pause_ms: std::env::var("TICKWATCH_CKPT_PAUSE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            log: run.log.clone(),
            cuts: run.cuts.clone(),
            writer: writer.handle(),
            bufs: Buffers::new(),
        }
    }

    /// Alerts bytes written to the file.
    pub fn wrote(&mut self, b: &[u8]) {
        self.crc.update(b);
    }

    /// A worker's checkpoint record: true when it was the last one of the checkpoint (every
    /// record before the cut is now taken).
    pub fn record(&mut self) -> bool {
        self.seen += 1;
        if self.seen < self.workers {
            return false;
        }
        self.seen = 0;
        true
    }

    /// Completes the checkpoint: the alerts file stands at `len` bytes (synced), `count`
    /// alerts; `out` is the output's state. Its state is copied here; the files are written and
    /// the directory committed by the writer, after the workers' files.
    pub fn complete(&mut self, out: &SurvOutput, len: u64, count: u64, t0: Instant) {
        let n = self.next;
        self.next += 1;
        let (state, back) = self.bufs.encode(&OutputSnap { out, alerts: count });
        let stall = t0.elapsed().as_nanos() as u64;
        log(&self.log, |l| l.output_stall_ns.push(stall));
        let alerts = OutputPos {
            len,
            crc32: format!("{:08x}", self.crc.clone().finalize()),
            count,
        };
        let c = Commit {
            dir: self.dir.clone(),
            n,
            workers: self.workers,
            feed: self.feed.clone(),
            key: self.key.clone(),
            given: self.given.clone(),
            every: self.every,
            alerts,
            pause_ms: self.pause_ms,
            cuts: self.cuts.clone(),
        };
        let log_to = self.log.clone();
        let job = move || {
            let t = Instant::now();
            let r = state.and_then(|b| {
                let w = c.write(&b);
                let _ = back.send(b);
                w
            });
            let took = t.elapsed().as_nanos() as u64;
            log(&log_to, |l| match r {
                Ok(bytes) => {
                    l.written += 1;
                    l.last = n;
                    l.bytes = bytes;
                    l.commit_ns.push(took);
                }
                Err(e) => l.errors.push(e.to_string()),
            });
        };
        submit(&self.writer, &self.log, Box::new(job));
    }
}

/// The output's part of a checkpoint, completed on the writer thread.
struct Commit {
    dir: CkptDir,
    n: u64,
    workers: usize,
    feed: FeedId,
    key: RunKey,
    given: Given,
    every: CkptEvery,
    alerts: OutputPos,
    pause_ms: u64,
    cuts: Cuts,
}

impl Commit {
    /// Writes `output.bin` and the manifest, checks every part is there, then renames the
    /// staging directory into place; the checkpoint's size.
    fn write(self, state: &[u8]) -> Result<u64, CkptError> {
        let dir = self.dir.staging(self.n)?;
        ckpt::write_blob(&dir.join("output.bin"), state)?;
        let cut: ReaderCut = read_state(&dir.join("reader.bin"))?;
        let pos: SourcePos = ckpt::decode(&cut.source, "reader.bin")?;
        for i in 0..self.workers {
            let p = dir.join(format!("worker-{i}.bin"));
            if !p.exists() {
                return Err(CkptError::Corrupt {
                    path: p.display().to_string(),
                    why: "the worker did not save its state".into(),
                });
            }
        }
        let workers = self.take_cuts(cut.seq, &dir)?;
        let m = Manifest {
            format: ckpt::FORMAT_VERSION,
            checkpoint: self.n,
            feed: self.feed,
            run: self.key,
            given: self.given,
            every: self.every,
            input: InputPos {
                message: cut.messages,
                byte_offset: pos.offset,
                capture: pos.capture,
            },
            alerts: self.alerts,
            workers,
        };
        m.write(&dir)?;
        let bytes = dir_bytes(&dir);
        if self.pause_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.pause_ms));
        }
        self.dir.commit(self.n)?;
        Ok(bytes)
    }
}

impl Commit {
    /// Every worker's counters at the cut at feed position `seq` (those of earlier cuts, whose
    /// checkpoints failed, are dropped).
    fn take_cuts(&self, seq: u32, dir: &Path) -> Result<Vec<WorkerCut>, CkptError> {
        let mut all = self.cuts.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(usize, WorkerCut)> = all
            .iter()
            .filter(|c| c.0 == seq)
            .map(|c| (c.1, c.2))
            .collect();
        all.retain(|c| c.0 != seq);
        v.sort_by_key(|c| c.0);
        if v.len() != self.workers || v.iter().enumerate().any(|(i, c)| c.0 != i) {
            return Err(CkptError::Corrupt {
                path: dir.display().to_string(),
                why: format!(
                    "{} of {} workers reported their counters at the cut",
                    v.len(),
                    self.workers
                ),
            });
        }
        Ok(v.into_iter().map(|c| c.1).collect())
    }
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn read_state<T: serde::de::DeserializeOwned>(p: &Path) -> Result<T, CkptError> {
    ckpt::decode(&ckpt::read_blob(p)?, &p.display().to_string())
}

/// A run's checkpoint settings.
#[derive(Clone)]
pub struct CkptRun {
    /// The directory.
    pub dir: CkptDir,
    /// How often.
    pub every: CkptEvery,
    /// The feed.
    pub feed: FeedId,
    /// What changes results.
    pub key: RunKey,
    /// The files the run was given (recorded for a resume).
    pub given: Given,
    /// The alerts file.
    pub alerts: PathBuf,
    /// What happened.
    pub log: Log,
    /// The workers' counters at their cuts.
    pub cuts: Cuts,
}

/// A checkpoint read back for a resume.
pub struct Restored {
    /// Its manifest.
    pub manifest: Manifest,
    /// The reader's cut.
    pub cut: ReaderCut,
    /// The source's position.
    pub pos: SourcePos,
    /// Each worker's state.
    pub workers: Vec<WorkerState>,
    /// The output's.
    pub output: OutputState,
}

impl std::fmt::Debug for Restored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restored")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CkptRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CkptRun")
            .field("dir", &self.dir)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl CkptRun {
    /// The newest checkpoint that reads back whole (every file's CRC, the alerts file's
    /// bytes) and matches this run; newer ones that do not read back are skipped (and logged).
    ///
    /// # Errors
    /// No usable checkpoint; one of another format version, or made for another feed, rules
    /// or configuration (refused: resuming it would not give the same alerts).
    pub fn restore(&self) -> Result<Restored, CkptError> {
        for found in self.dir.complete()? {
            match self.load(&found.path) {
                Ok(r) => {
                    log(&self.log, |l| {
                        l.resumed_from = Some(found.path.display().to_string())
                    });
                    return Ok(r);
                }
                Err(e @ (CkptError::Version { .. } | CkptError::Mismatch { .. })) => return Err(e),
                Err(e) => log(&self.log, |l| l.skipped.push(e.to_string())),
            }
        }
        let skipped = self
            .log
            .lock()
            .map(|l| l.skipped.join("; "))
            .unwrap_or_default();
        let why = if skipped.is_empty() {
            String::new()
        } else {
            format!(" ({skipped})")
        };
        Err(CkptError::None(format!("{}{why}", self.dir.root.display())))
    }

    fn load(&self, dir: &Path) -> Result<Restored, CkptError> {
        let manifest = Manifest::read(dir)?;
        let path = dir.display().to_string();
        let mismatch = |key: &str, was: String, now: String| CkptError::Mismatch {
            path: path.clone(),
            key: key.into(),
            was,
            now,
        };
        let (f, g) = (&manifest.feed, &self.feed);
        if (f.size, &f.ends_crc32) != (g.size, &g.ends_crc32) {
            return Err(mismatch(
                "feed",
                format!("{} ({} bytes, ends {})", f.path, f.size, f.ends_crc32),
                format!("{} ({} bytes, ends {})", g.path, g.size, g.ends_crc32),
            ));
        }
        if let Some((k, was, now)) = manifest.run.differences(&self.key).into_iter().next() {
            return Err(mismatch(k, was, now));
        }
        let cut: ReaderCut = read_state(&dir.join("reader.bin"))?;
        let pos: SourcePos = ckpt::decode(&cut.source, "reader.bin")?;
        let workers = (0..self.key.workers)
            .map(|i| read_state(&dir.join(format!("worker-{i}.bin"))))
            .collect::<Result<Vec<WorkerState>, _>>()?;
        let output: OutputState = read_state(&dir.join("output.bin"))?;
        check_alerts(&self.alerts, &manifest.alerts)?;
        Ok(Restored {
            manifest,
            cut,
            pos,
            workers,
            output,
        })
    }
}

/// The alerts file holds at least the checkpoint's bytes, and they check out.
fn check_alerts(path: &Path, at: &OutputPos) -> Result<(), CkptError> {
    let mut f = std::fs::File::open(path).map_err(|e| CkptError::io(path, e))?;
    let mut h = crc32fast::Hasher::new();
    let mut left = at.len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = left.min(buf.len() as u64) as usize;
        let got =
            std::io::Read::read(&mut f, &mut buf[..want]).map_err(|e| CkptError::io(path, e))?;
        if got == 0 {
            return Err(CkptError::Corrupt {
                path: path.display().to_string(),
                why: format!("shorter than the checkpoint's {} bytes", at.len),
            });
        }
        h.update(&buf[..got]);
        left -= got as u64;
    }
    let crc = format!("{:08x}", h.finalize());
    if crc != at.crc32 {
        return Err(CkptError::Corrupt {
            path: path.display().to_string(),
            why: format!(
                "its first {} bytes have CRC {crc}, the checkpoint says {}",
                at.len, at.crc32
            ),
        });
    }
    Ok(())
}

/// The CRC state of an alerts file's first `len` bytes whose CRC is `crc` (hex).
pub fn crc_after(crc: &str, len: u64) -> crc32fast::Hasher {
    crc32fast::Hasher::new_with_initial_len(u32::from_str_radix(crc, 16).unwrap_or(0), len)
}
