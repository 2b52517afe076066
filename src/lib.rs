//! # tickwatch
//!
//! A low-latency, single-node stream-processing engine for market data. The **feed spine**:
//! NASDAQ TotalView-ITCH 5.0 files are memory-mapped, every message is decoded without copying,
//! and every stock's full-depth order book is rebuilt exactly. The **pipeline** runs that work on
//! pinned threads joined by lock-free SPSC rings, sharded by stock, and times every event.
//!
//! ## Guarantees
//! - **Zero-copy decoding.** [`itch::decode`] returns a view (`&AddOrder`, …) laid over the mapped
//!   bytes; fields are big-endian wrappers read on demand. No message is copied or allocated.
//! - **Allocates on construction; after that, none.** [`book::Books`] takes every table from a
//!   [`book::BookConfig`] up front (huge-page backed); the decode + book loop allocates nothing
//!   (`tests/no_alloc.rs` proves it with a counting allocator). A full table is a counted
//!   overflow, never a reallocation.
//! - **Bad input never panics and is never silently lost.** Truncation, bad length prefixes,
//!   lengths that disagree with the spec, and empty or non-ITCH files are errors that name the byte
//!   offset; unknown types and references to orders never added are counted skips, reported.
//! - **`unsafe` is confined** to a few places, each block justified where it stands: the file
//!   mapping, the construction of a [`itch::Message`] from its validated type byte (checked
//!   against the safe [`itch::decode_checked`] for every type), the CPU prefetch hint, the TSC
//!   read, the page-cache eviction of `tickwatch bench --cold`, and the slot accesses of the
//!   [`ring`] (whose atomics each name the ordering they pair with; model-checked with loom).
//!
//! ## Pipeline (this stage)
//! ```text
//!  file.itch(.gz) ──gz::resolve──▶ MappedFile (MAP_POPULATE, MADV_SEQUENTIAL)
//!        │
//!        ▼
//!  Frames: 2-byte BE length │ message   (offset of every frame known; prefetch 1 KiB ahead)
//!        │                      split::par_walk — proven resync, one chunk per core
//!        ▼
//!  itch::decode ──▶ Message<'_> (borrowed #[repr(C)] Pod view, size checked against the spec)
//!        │
//!        ├──▶ inspect::Summary   (counts by type, directory, time span, skips)
//!        ▼
//!  replay: look-ahead cursors prefetch order slots (16 ahead) and ladder touches (4 ahead)
//!        │
//!        ▼
//!  book::Books ── OrderTable (open addressing, fixed capacity)
//!             └── LevelArena (per stock/side sorted ladders, best last, fixed arena)
//! ```
//!
//! ## The engine (`tickwatch run`, [`engine`])
//! ```text
//!                   ┌─ ring<S::Event> ─▶ worker 0: ShardOp (e.g. BookOp: Books of locates ≡ 0 mod N) ─┐
//!  Source ─▶ reader ┼─ ring<S::Event> ─▶ worker 1: ShardOp (… ≡ 1 mod N)                            ─┼─▶ output
//!  (read, stamp,    └─ …  events built in place, batched publish            ring<Done> ──────────────┘   (latency, counters,
//!   marks, route)                                                                                        the job's Collector)
//!  each stage on a pinned thread (or packed several to a core); latency per stage per thread and
//!  host hiccups per thread, merged after the run → percentile table, .hgrm, SVG
//! ```
//! [`engine`] knows nothing of markets: [`pipeline`] plugs in the ITCH source and the book
//! operator with its hooks (bars, surveillance, or both), [`stream`] plugs in record and CSV
//! sources and keyed jobs, and a user's own job plugs in the same way.
//!
//! ## Stream processing in the workers (`tickwatch bars`, [`stream::Job`])
//! ```text
//!  reader ── events + watermark marks (feed max ts − out-of-orderness; one per window end) ──┐
//!                                                                                            ▼
//!  worker i: Books ─▶ agg::BarInput (trade priced by the book, touch change) ─▶ window::TimeWindows
//!            (panes per stock in fixed arrays; fire at marks; late firings within the lateness;
//!             a ledger of what came too late)  ─▶ rows sorted by (mark, start, stock) ─┐
//!                                                                                       ▼
//!  output: k-way merge of the workers' rows ─▶ CSV / JSONL (identical for any worker count)
//! ```
//! The same parts stand alone: [`window`] (tumbling, sliding, session, count windows and
//! watermarks), [`state`] (dense and open-addressing keyed state with TTL), [`join`] (as-of,
//! interval and window joins), [`agg`] (bars, Welford, touch statistics), and [`stream`], a
//! builder for keyed windowed jobs over any fixed-layout record stream. None allocates after
//! construction; a full table is a counted overflow.
//!
//! ## Surveillance (`tickwatch run --alerts`, [`surv`])
//! ```text
//!  worker i: message ─▶ surv::SurvEvent (classified before the book applies it) ─▶ Books
//!            ─▶ detectors of its stocks (spoofing, layering, stuffing, OTR, ignition, close,
//!               abnormal, locked/crossed, wash)  ◀── participant flow (firm's accounts, by time)
//!            ─▶ records keyed (epoch, phase, seq, stock, detector) ─┐
//!                                                                   ▼
//!  output: k-way merge ─▶ surv::RiskBook (participants across stocks, kill switch) ─▶ alerts JSONL
//! ```
//! [`scenario`] injects labelled manipulation into generated feeds; [`surv::eval`] scores
//! alerts against it. A firm's own detectors run beside the built-in ones through the public
//! [`surv::custom::UserDetector`] trait.
//!
//! ## Example
//! ```
//! use tickwatch::{book::{BookConfig, Books}, gen::{generate, GenConfig}, itch::Side, replay::replay};
//! let mut feed = Vec::new();
//! generate(&GenConfig { messages: 20_000, symbols: 10, live_orders: 2_000, seed: 1 }, &mut feed)?;
//! let mut books = Books::new(BookConfig::small());
//! let report = replay(&feed, &mut books, None, false)?;
//! assert_eq!(report.messages, 20_000);
//! let (bid, ask) = (books.best(1, Side::Buy).unwrap(), books.best(1, Side::Sell).unwrap());
//! assert!(bid.price < ask.price);
//! books.check()?; // every level equals the sum of its orders
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs, missing_debug_implementations)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks, clippy::unnecessary_safety_comment)]

pub mod agg;
pub mod bench;
pub mod book;
pub mod capture;
pub mod clock;
pub mod engine;
pub mod export;
pub mod feed;
pub mod filebench;
pub mod gen;
pub mod indep;
pub mod inspect;
pub mod itch;
pub mod join;
pub mod latency;
pub mod lobster;
pub mod mem;
pub mod mold;
pub mod net;
pub mod pipeline;
pub mod policy;
pub mod replay;
pub mod ring;
pub mod rng;
pub mod scenario;
pub mod sink;
pub mod state;
pub mod stream;
pub mod surv;
pub mod truth;
pub mod window;
