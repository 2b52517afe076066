//! Whole-file measurement kernels, shared by `tickwatch bench` and `benches/` (criterion).
//!
//! Four walks over the same mapped bytes, from the memory-bound floor up:
//! [`naive_walk`] follows only the length prefixes; [`prefetch_walk`] does the same with a software
//! prefetch ahead of the cursor; [`decode_fold`] decodes every message and folds **every field** into
//! a checksum (so the compiler cannot skip any read), and [`decode_fold_by_type`] does the same with
//! the per-type dispatch batched out of the serial walk; [`decode_book`] decodes and applies each
//! message to the full-depth books. [`par_decode_fold`] splits the file across cores with the
//! proven resynchronisation of [`split`](crate::feed::split). [`decode_book_latency`] times each
//! message's decode + book update with the TSC and records it in an HdrHistogram.

use crate::book::Books;
use crate::feed::frame::{prefetch, PREFETCH_DISTANCE};
use crate::feed::split::par_walk;
use crate::feed::Frames;
use crate::inspect::InspectError;
use crate::itch::{decode, DecodeErrorKind, Message};
use hdrhistogram::Histogram;

/// Messages seen and a checksum of what was read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Walked {
    /// Messages walked.
    pub messages: u64,
    /// Fold of what was read (compare across walks of the same kind only).
    pub checksum: u64,
}

/// Follows the length prefixes only: the serial floor every decoder pays.
pub fn naive_walk(buf: &[u8]) -> Walked {
    let mut pos = 0usize;
    let mut w = Walked::default();
    while let Some(p) = buf.get(pos..pos + 2) {
        let len = u16::from_be_bytes([p[0], p[1]]) as usize;
        pos += 2 + len;
        if pos > buf.len() {
            break;
        }
        w.messages += 1;
        w.checksum = w.checksum.wrapping_add(len as u64);
    }
    w
}

/// [`naive_walk`] with a software prefetch [`PREFETCH_DISTANCE`] bytes ahead.
pub fn prefetch_walk(buf: &[u8]) -> Walked {
    let mut pos = 0usize;
    let mut w = Walked::default();
    while let Some(p) = buf.get(pos..pos + 2) {
        let len = u16::from_be_bytes([p[0], p[1]]) as usize;
        prefetch(buf.as_ptr().wrapping_add(pos + PREFETCH_DISTANCE));
        pos += 2 + len;
        if pos > buf.len() {
            break;
        }
        w.messages += 1;
        w.checksum = w.checksum.wrapping_add(len as u64);
    }
    w
}

/// XORs every value, each rotated by a different amount so that equal fields do not cancel. The
/// rotations are independent of each other, so the fold's dependency chain is one XOR per field.
macro_rules! fold {
    ($($v:expr),+ $(,)?) => {{
        let mut acc = 0u64;
        let mut k = 0u32;
        $(
            acc ^= ($v as u64).rotate_left(k);
            k += 7;
        )+
        let _ = k;
        acc
    }};
}

/// Folds every field of a message into one value.
#[inline(always)]
pub fn fold(m: &Message<'_>) -> u64 {
    let h = m.header();
    let head = fold!(
        h.msg_type,
        h.stock_locate.get(),
        h.tracking_number.get(),
        h.timestamp.get()
    );
    let s = |x: &[u8; 8]| u64::from_ne_bytes(*x);
    let m4 = |x: &[u8; 4]| u32::from_ne_bytes(*x);
    let body = match *m {
        Message::SystemEvent(x) => fold!(x.event_code),
        Message::StockDirectory(x) => fold!(
            s(&x.stock),
            x.market_category,
            x.financial_status,
            x.round_lot_size.get(),
            x.round_lots_only,
            x.issue_classification,
            u16::from_ne_bytes(x.issue_subtype),
            x.authenticity,
            x.short_sale_threshold,
            x.ipo_flag,
            x.luld_tier,
            x.etp_flag,
            x.etp_leverage_factor.get(),
            x.inverse_indicator,
        ),
        Message::StockTradingAction(x) => {
            fold!(s(&x.stock), x.trading_state, x.reserved, m4(&x.reason))
        }
        Message::RegShoRestriction(x) => fold!(s(&x.stock), x.reg_sho_action),
        Message::MarketParticipantPosition(x) => fold!(
            m4(&x.mpid),
            s(&x.stock),
            x.primary_market_maker,
            x.market_maker_mode,
            x.market_participant_state,
        ),
        Message::MwcbDeclineLevel(x) => fold!(x.level1.get(), x.level2.get(), x.level3.get()),
        Message::MwcbStatus(x) => fold!(x.breached_level),
        Message::IpoQuotingPeriod(x) => fold!(
            s(&x.stock),
            x.ipo_quotation_release_time.get(),
            x.ipo_quotation_release_qualifier,
            x.ipo_price.get(),
        ),
        Message::LuldAuctionCollar(x) => fold!(
            s(&x.stock),
            x.auction_collar_reference_price.get(),
            x.upper_auction_collar_price.get(),
            x.lower_auction_collar_price.get(),
            x.auction_collar_extension.get(),
        ),
        Message::OperationalHalt(x) => fold!(s(&x.stock), x.market_code, x.operational_halt_action),
        Message::AddOrder(x) => fold!(
            x.order_ref.get(),
            x.side,
            x.shares.get(),
            s(&x.stock),
            x.price.get()
        ),
        Message::AddOrderMpid(x) => fold!(
            x.order_ref.get(),
            x.side,
            x.shares.get(),
            s(&x.stock),
            x.price.get(),
            m4(&x.attribution),
        ),
        Message::OrderExecuted(x) => fold!(
            x.order_ref.get(),
            x.executed_shares.get(),
            x.match_number.get()
        ),
        Message::OrderExecutedWithPrice(x) => fold!(
            x.order_ref.get(),
            x.executed_shares.get(),
            x.match_number.get(),
            x.printable,
            x.execution_price.get(),
        ),
        Message::OrderCancel(x) => fold!(x.order_ref.get(), x.cancelled_shares.get()),
        Message::OrderDelete(x) => fold!(x.order_ref.get()),
        Message::OrderReplace(x) => fold!(
            x.original_order_ref.get(),
            x.new_order_ref.get(),
            x.shares.get(),
            x.price.get(),
        ),
        Message::Trade(x) => fold!(
            x.order_ref.get(),
            x.side,
            x.shares.get(),
            s(&x.stock),
            x.price.get(),
            x.match_number.get(),
        ),
        Message::CrossTrade(x) => fold!(
            x.shares.get(),
            s(&x.stock),
            x.cross_price.get(),
            x.match_number.get(),
            x.cross_type,
        ),
        Message::BrokenTrade(x) => fold!(x.match_number.get()),
        Message::Noii(x) => fold!(
            x.paired_shares.get(),
            x.imbalance_shares.get(),
            x.imbalance_direction,
            s(&x.stock),
            x.far_price.get(),
            x.near_price.get(),
            x.current_reference_price.get(),
            x.cross_type,
            x.price_variation_indicator,
        ),
        Message::RetailInterest(x) => fold!(s(&x.stock), x.interest_flag),
        Message::DirectListingCapitalRaise(x) => fold!(
            s(&x.stock),
            x.open_eligibility_status,
            x.minimum_allowable_price.get(),
            x.maximum_allowable_price.get(),
            x.near_execution_price.get(),
            x.near_execution_time.get(),
            x.lower_price_range_collar.get(),
            x.upper_price_range_collar.get(),
        ),
    };
    head ^ body.rotate_left(32)
}

/// Decodes every message and folds every field; unknown types are counted in `checksum`'s stead
/// by being skipped (they are not messages).
///
/// # Errors
/// Framing errors and bad lengths, with their offsets.
pub fn decode_fold(buf: &[u8]) -> Result<Walked, InspectError> {
    let mut w = Walked::default();
    fold_frames(&mut w, Frames::new(buf))?;
    Ok(w)
}

#[inline(always)]
fn fold_frames(w: &mut Walked, frames: Frames<'_>) -> Result<(), InspectError> {
    for f in frames {
        let f = f?;
        fold_one(w, f.body, f.offset)?;
    }
    Ok(())
}

#[inline(always)]
fn fold_one(w: &mut Walked, body: &[u8], offset: u64) -> Result<(), InspectError> {
    match decode(body, offset) {
        Ok(m) => {
            w.messages += 1;
            w.checksum = w.checksum.wrapping_add(fold(&m));
            Ok(())
        }
        Err(e) if matches!(e.kind, DecodeErrorKind::UnknownType(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Messages held per block by [`decode_fold_by_type`] before they are folded type by type.
pub const TYPE_BATCH: usize = 64;

/// [`decode_fold`] with the per-type dispatch taken out of the serial walk: same messages, same
/// checksum (a wrapping sum does not depend on order), same errors at the same offsets.
///
/// Why: in a feed whose types arrive in random order, `match`ing on each message's type right
/// after framing it mispredicts about once a message (≈ 15–20 cycles), and that is all that
/// separates [`decode_fold`] from the prefetched walk. Here the walk frames and validates each
/// message (length against the type's spec length) and only appends its offset to a small
/// per-type list — an indexed store, no branch on the type. Every [`TYPE_BATCH`] messages the
/// lists are folded one type at a time, decoding each message again through [`decode`]; within a
/// list the type never changes, so the dispatch predicts perfectly and the bytes are still in L1.
/// This is for consumers that do not need messages in feed order (counting, per-type statistics,
/// checksums); a book must see them in order and uses [`decode_book`].
///
/// # Errors
/// As [`decode_fold`].
pub fn decode_fold_by_type(buf: &[u8]) -> Result<Walked, InspectError> {
    /// Offsets (from the block's first body) of the block's messages, per type (in the order of
    /// [`TYPES`](crate::itch::TYPES); 32 rows so the index can be masked), and how many each holds.
    struct Lists {
        at: [[u32; TYPE_BATCH]; 32],
        len: [u8; 32],
    }
    /// Type byte → index in `TYPES` (only read for validated, hence known, types).
    static INDEX: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut i = 0;
        while i < crate::itch::TYPES.len() {
            t[crate::itch::TYPES[i] as usize] = i as u8;
            i += 1;
        }
        t
    };
    fn flush(buf: &[u8], lists: &mut Lists, base: usize, w: &mut Walked) {
        for (i, &t) in crate::itch::TYPES.iter().enumerate() {
            let n = std::mem::take(&mut lists.len[i]) as usize;
            let len = crate::itch::spec_len(t).unwrap_or(0);
            for &off in &lists.at[i][..n] {
                let start = base + off as usize;
                // Validated when listed: cannot fail, and is not counted twice.
                if let Some(Ok(m)) = buf.get(start..start + len).map(|b| decode(b, 0)) {
                    w.checksum = w.checksum.wrapping_add(fold(&m));
                }
            }
        }
    }
    const _: () = assert!(TYPE_BATCH <= u8::MAX as usize);
    let mut lists = Lists {
        at: [[0; TYPE_BATCH]; 32],
        len: [0; 32],
    };
    let mut w = Walked::default();
    let (mut base, mut held) = (0usize, 0usize);
    for f in Frames::new(buf) {
        let f = f?;
        let start = f.offset as usize + 2;
        match decode(f.body, f.offset) {
            Ok(m) => {
                if held == 0 {
                    base = start;
                }
                let i = INDEX[m.msg_type() as usize] as usize & 31;
                let n = lists.len[i] as usize;
                // A block spans at most TYPE_BATCH frames of ≤ 65,537 bytes: fits in u32.
                lists.at[i][n % TYPE_BATCH] = (start - base) as u32;
                lists.len[i] = n as u8 + 1;
                w.messages += 1;
                held += 1;
                if held == TYPE_BATCH {
                    flush(buf, &mut lists, base, &mut w);
                    held = 0;
                }
            }
            Err(e) if matches!(e.kind, DecodeErrorKind::UnknownType(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    flush(buf, &mut lists, base, &mut w);
    Ok(w)
}

/// [`decode_fold`] on `threads` threads; the checksum is the sum of the chunks' (a wrapping sum, so
/// it equals the serial one).
///
/// # Errors
/// As [`decode_fold`].
pub fn par_decode_fold(buf: &[u8], threads: usize) -> Result<Walked, InspectError> {
    let (parts, _) = par_walk(buf, threads, Walked::default, |w: &mut Walked, f| {
        fold_one(w, f.body, f.offset)
    })?;
    Ok(parts.iter().fold(Walked::default(), |a, p| Walked {
        messages: a.messages + p.messages,
        checksum: a.checksum.wrapping_add(p.checksum),
    }))
}

/// Decodes every message and applies it to `books` (the pipelined [`replay`](crate::replay)).
///
/// # Errors
/// As [`decode_fold`].
pub fn decode_book(buf: &[u8], books: &mut Books) -> Result<u64, InspectError> {
    Ok(crate::replay::replay(buf, books, None, false)?.messages)
}

/// Decodes every message and applies it to `books` one at a time, with no look-ahead prefetch:
/// what a live feed handler that has only the current message in hand pays.
///
/// # Errors
/// As [`decode_fold`].
pub fn decode_book_unpipelined(buf: &[u8], books: &mut Books) -> Result<u64, InspectError> {
    let mut n = 0;
    for f in Frames::new(buf) {
        let f = f?;
        match decode(f.body, f.offset) {
            Ok(m) => {
                books.apply(&m);
                n += 1;
            }
            Err(e) if matches!(e.kind, DecodeErrorKind::UnknownType(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

pub use crate::clock::{ticks, ticks_per_ns};

/// Per-message decode + book-update latency, in TSC ticks, into `hist` (preallocated by the
/// caller with bounds; values past its top are saturated), measured on every `sample_every`-th
/// message of the pipelined replay; returns messages applied.
///
/// Why sampled: reading the TSC on *every* message was measured to add ≈ 32 ns/msg to this
/// memory-bound loop (it curtails the out-of-order overlap the look-ahead creates), inflating
/// exactly what it measures; at 1 in 16 the loop runs within a few percent of its untimed speed.
/// A sample covers the message's own decode and book update; the look-ahead stages' work for
/// later messages is amortized and shows in the throughput figure, which should be read beside
/// this. The timer's own cost is in every sample: see [`timer_overhead`].
///
/// # Errors
/// As [`decode_fold`].
pub fn decode_book_latency(
    buf: &[u8],
    books: &mut Books,
    hist: &mut Histogram<u64>,
    sample_every: u64,
) -> Result<u64, InspectError> {
    let every = sample_every.max(1);
    let mut n = 0u64;
    crate::replay::for_each_frame(buf, books, |books, f| {
        n += 1;
        let timed = n % every == 0;
        let t0 = if timed { ticks() } else { 0 };
        match decode(f.body, f.offset) {
            Ok(m) => books.apply(&m),
            Err(e) if matches!(e.kind, DecodeErrorKind::UnknownType(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if timed {
            hist.saturating_record(ticks().wrapping_sub(t0));
        }
        Ok(true)
    })?;
    Ok(n)
}

/// The cost of a back-to-back pair of [`ticks`] reads, recorded `n` times into `hist`.
pub fn timer_overhead(hist: &mut Histogram<u64>, n: usize) {
    for _ in 0..n {
        let t0 = ticks();
        let t1 = ticks();
        hist.saturating_record(t1.wrapping_sub(t0));
    }
}
