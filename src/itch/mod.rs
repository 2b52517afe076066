//! NASDAQ TotalView-ITCH 5.0: zero-copy message views and the decoder that makes them.
//!
//! [`decode`] takes the bytes of one message (type byte first, framing already removed) and returns a
//! [`Message`] that *borrows* them: each variant is a reference to a `#[repr(C)]` struct from
//! [`wire`] laid over the input, so decoding is a table lookup, a length check and a pointer cast —
//! no copy, no allocation. Fields are read on demand through the big-endian wrappers of [`be`].
//!
//! An unknown type letter is reported as [`DecodeErrorKind::UnknownType`], which callers may count and
//! skip (the framing still says where the next message starts); a known type whose length disagrees
//! with the specification is [`DecodeErrorKind::BadLength`]. Both carry the message's byte offset.

pub mod be;
pub mod encode;
pub mod wire;

use thiserror::Error;
pub use wire::*;

/// One decoded ITCH 5.0 message, borrowing the bytes it was decoded from.
///
/// `#[repr(u8)]` with the specification's type letters as discriminants: the tag of a message *is*
/// its type byte, which lets [`decode`] build it without a per-type branch (see there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
#[allow(missing_docs)] // each variant is documented on its struct
pub enum Message<'a> {
    SystemEvent(&'a SystemEvent) = b'S',
    StockDirectory(&'a StockDirectory) = b'R',
    StockTradingAction(&'a StockTradingAction) = b'H',
    RegShoRestriction(&'a RegShoRestriction) = b'Y',
    MarketParticipantPosition(&'a MarketParticipantPosition) = b'L',
    MwcbDeclineLevel(&'a MwcbDeclineLevel) = b'V',
    MwcbStatus(&'a MwcbStatus) = b'W',
    IpoQuotingPeriod(&'a IpoQuotingPeriod) = b'K',
    LuldAuctionCollar(&'a LuldAuctionCollar) = b'J',
    OperationalHalt(&'a OperationalHalt) = b'h',
    AddOrder(&'a AddOrder) = b'A',
    AddOrderMpid(&'a AddOrderMpid) = b'F',
    OrderExecuted(&'a OrderExecuted) = b'E',
    OrderExecutedWithPrice(&'a OrderExecutedWithPrice) = b'C',
    OrderCancel(&'a OrderCancel) = b'X',
    OrderDelete(&'a OrderDelete) = b'D',
    OrderReplace(&'a OrderReplace) = b'U',
    Trade(&'a Trade) = b'P',
    CrossTrade(&'a CrossTrade) = b'Q',
    BrokenTrade(&'a BrokenTrade) = b'B',
    Noii(&'a Noii) = b'I',
    RetailInterest(&'a RetailInterest) = b'N',
    DirectListingCapitalRaise(&'a DirectListingCapitalRaise) = b'O',
}

/// The layout every variant of [`Message`] has (RFC 2195: a `#[repr(u8)]` enum with fields is a
/// `#[repr(C)]` union of `#[repr(C)] struct { tag: u8, field }`), with the reference as a raw
/// pointer that keeps the provenance of the whole message slice.
#[repr(C)]
struct RawMessage {
    tag: u8,
    ptr: *const u8,
}

/// Why a message could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum DecodeErrorKind {
    /// The message is empty: the frame's length prefix was zero.
    #[error("empty message (length 0)")]
    Empty,
    /// The type letter is not one ITCH 5.0 defines. Recoverable: skip it by its frame length.
    #[error("unknown message type {0:#04x} ({p})", p = printable(*.0))]
    UnknownType(u8),
    /// A known type whose length is not the specification's.
    #[error("message type '{}' must be {expected} bytes, frame holds {got}", *.msg_type as char)]
    BadLength {
        /// Type letter.
        msg_type: u8,
        /// Length from the specification.
        expected: usize,
        /// Length the frame gave.
        got: usize,
    },
}

fn printable(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        "non-printable".to_string()
    }
}

/// A decoding failure at a byte offset of the input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("at byte offset {offset}: {kind}")]
pub struct DecodeError {
    /// Byte offset of the message's length prefix in the file.
    pub offset: u64,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// Decodes one message (type byte first, no length prefix) found at file offset `offset`.
///
/// # Errors
/// [`DecodeErrorKind::Empty`], [`DecodeErrorKind::UnknownType`] or [`DecodeErrorKind::BadLength`],
/// each with `offset`.
///
/// # Examples
/// ```
/// use tickwatch::itch::{decode, Message};
/// let mut bytes = [0u8; 19];
/// bytes[0] = b'D';
/// bytes[11..19].copy_from_slice(&42u64.to_be_bytes());
/// match decode(&bytes, 0)? {
///     Message::OrderDelete(d) => assert_eq!(d.order_ref.get(), 42),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[inline(always)]
pub fn decode(bytes: &[u8], offset: u64) -> Result<Message<'_>, DecodeError> {
    let err = |kind| DecodeError { offset, kind };
    let Some(&t) = bytes.first() else {
        return Err(err(DecodeErrorKind::Empty));
    };
    let expected = wire::LEN_TABLE[t as usize] as usize;
    if expected == 0 {
        return Err(err(DecodeErrorKind::UnknownType(t)));
    }
    if bytes.len() != expected {
        return Err(err(DecodeErrorKind::BadLength {
            msg_type: t,
            expected,
            got: bytes.len(),
        }));
    }
    let raw = RawMessage {
        tag: t,
        ptr: bytes.as_ptr(),
    };
    // SAFETY: `LEN_TABLE[t]` is non-zero exactly for the 23 letters that are `Message`'s
    // discriminants, and equals `size_of` of that variant's struct (both built from the same
    // `LEN` constants, which `wire` asserts against `size_of`; `tests::decode_matches_checked`
    // compares every type with the safe `decode_checked`). So `t` is a valid tag, `ptr` points to
    // `expected` initialized bytes that live for `'a` (borrowed from `bytes`), every struct is
    // `Pod` with alignment 1 (any bytes, any address), and `RawMessage` has the variants' layout.
    Ok(unsafe { core::mem::transmute::<RawMessage, Message<'_>>(raw) })
}

/// [`decode`] written with one safe, checked cast per type: the reference the fast path is tested
/// against. Same results, a per-type branch slower.
///
/// # Errors
/// As [`decode`].
pub fn decode_checked(bytes: &[u8], offset: u64) -> Result<Message<'_>, DecodeError> {
    let err = |kind| DecodeError { offset, kind };
    let Some(&t) = bytes.first() else {
        return Err(err(DecodeErrorKind::Empty));
    };
    let expected = wire::spec_len(t).ok_or(err(DecodeErrorKind::UnknownType(t)))?;
    if bytes.len() != expected {
        return Err(err(DecodeErrorKind::BadLength {
            msg_type: t,
            expected,
            got: bytes.len(),
        }));
    }
    macro_rules! view {
        ($v:ident) => {
            Message::$v(bytemuck::try_from_bytes(bytes).map_err(|_| {
                err(DecodeErrorKind::BadLength {
                    msg_type: t,
                    expected,
                    got: bytes.len(),
                })
            })?)
        };
    }
    Ok(match t {
        b'S' => view!(SystemEvent),
        b'R' => view!(StockDirectory),
        b'H' => view!(StockTradingAction),
        b'Y' => view!(RegShoRestriction),
        b'L' => view!(MarketParticipantPosition),
        b'V' => view!(MwcbDeclineLevel),
        b'W' => view!(MwcbStatus),
        b'K' => view!(IpoQuotingPeriod),
        b'J' => view!(LuldAuctionCollar),
        b'h' => view!(OperationalHalt),
        b'A' => view!(AddOrder),
        b'F' => view!(AddOrderMpid),
        b'E' => view!(OrderExecuted),
        b'C' => view!(OrderExecutedWithPrice),
        b'X' => view!(OrderCancel),
        b'D' => view!(OrderDelete),
        b'U' => view!(OrderReplace),
        b'P' => view!(Trade),
        b'Q' => view!(CrossTrade),
        b'B' => view!(BrokenTrade),
        b'I' => view!(Noii),
        b'N' => view!(RetailInterest),
        b'O' => view!(DirectListingCapitalRaise),
        _ => return Err(err(DecodeErrorKind::UnknownType(t))),
    })
}

impl<'a> Message<'a> {
    /// The common header (type, locate, tracking number, timestamp).
    #[inline(always)]
    pub fn header(&self) -> &'a Header {
        macro_rules! h {
            ($($v:ident),*) => {
                match *self { $(Message::$v(m) => &m.hdr,)* }
            };
        }
        h!(
            SystemEvent,
            StockDirectory,
            StockTradingAction,
            RegShoRestriction,
            MarketParticipantPosition,
            MwcbDeclineLevel,
            MwcbStatus,
            IpoQuotingPeriod,
            LuldAuctionCollar,
            OperationalHalt,
            AddOrder,
            AddOrderMpid,
            OrderExecuted,
            OrderExecutedWithPrice,
            OrderCancel,
            OrderDelete,
            OrderReplace,
            Trade,
            CrossTrade,
            BrokenTrade,
            Noii,
            RetailInterest,
            DirectListingCapitalRaise
        )
    }

    /// The type letter.
    #[inline(always)]
    pub fn msg_type(&self) -> u8 {
        self.header().msg_type
    }

    /// Nanoseconds since midnight.
    #[inline(always)]
    pub fn timestamp(&self) -> u64 {
        self.header().timestamp.get()
    }

    /// The stock locate code.
    #[inline(always)]
    pub fn stock_locate(&self) -> u16 {
        self.header().stock_locate.get()
    }

    /// The symbol field, for the message types that carry one.
    pub fn stock(&self) -> Option<&'a [u8; 8]> {
        Some(match *self {
            Message::StockDirectory(m) => &m.stock,
            Message::StockTradingAction(m) => &m.stock,
            Message::RegShoRestriction(m) => &m.stock,
            Message::MarketParticipantPosition(m) => &m.stock,
            Message::IpoQuotingPeriod(m) => &m.stock,
            Message::LuldAuctionCollar(m) => &m.stock,
            Message::OperationalHalt(m) => &m.stock,
            Message::AddOrder(m) => &m.stock,
            Message::AddOrderMpid(m) => &m.stock,
            Message::Trade(m) => &m.stock,
            Message::CrossTrade(m) => &m.stock,
            Message::Noii(m) => &m.stock,
            Message::RetailInterest(m) => &m.stock,
            Message::DirectListingCapitalRaise(m) => &m.stock,
            _ => return None,
        })
    }
}

/// Order side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Side {
    /// `B`
    Buy,
    /// `S`
    Sell,
}

impl Side {
    /// Parses the ITCH side byte; anything other than `B`/`S` is `None`.
    #[inline(always)]
    pub fn from_byte(b: u8) -> Option<Side> {
        match b {
            b'B' => Some(Side::Buy),
            b'S' => Some(Side::Sell),
            _ => None,
        }
    }

    /// The ITCH side byte.
    pub fn as_byte(self) -> u8 {
        match self {
            Side::Buy => b'B',
            Side::Sell => b'S',
        }
    }
}

/// A symbol with its right-padding spaces removed (lossy for non-UTF-8 bytes).
pub fn symbol_str(stock: &[u8; 8]) -> String {
    String::from_utf8_lossy(stock).trim_end().to_string()
}

/// Pads a symbol to the 8-byte ITCH alpha field.
///
/// Returns `None` when it is longer than 8 bytes.
pub fn symbol_field(sym: &str) -> Option<[u8; 8]> {
    let b = sym.as_bytes();
    if b.len() > 8 || b.is_empty() {
        return None;
    }
    let mut out = [b' '; 8];
    out[..b.len()].copy_from_slice(b);
    Some(out)
}

/// Formats an ITCH Price(4) integer as a decimal (`2133000` → `"213.3000"`).
pub fn price4(p: u32) -> String {
    format!("{}.{:04}", p / 10_000, p % 10_000)
}

/// Formats nanoseconds since midnight as `HH:MM:SS.fffffffff`.
pub fn fmt_time(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:09}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        ns % 1_000_000_000
    )
}

/// Parses `HH:MM:SS[.fffffffff]` into nanoseconds since midnight.
pub fn parse_time(s: &str) -> Option<u64> {
    let (hms, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let mut parts = hms.split(':');
    let h: u64 = parts.next()?.parse().ok()?;
    let m: u64 = parts.next()?.parse().ok()?;
    let sec: u64 = parts.next()?.parse().ok()?;
    if parts.next().is_some() || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    let mut ns = 0u64;
    if let Some(f) = frac {
        if f.is_empty() || f.len() > 9 || !f.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        ns = f.parse::<u64>().ok()? * 10u64.pow(9 - f.len() as u32);
    }
    Some(((h * 60 + m) * 60 + sec) * 1_000_000_000 + ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_matches_checked() {
        // Every byte value as a type, at its spec length (when known) and at wrong lengths, with
        // varied contents: the fast and the checked decoder agree on the variant, the view's
        // address and bytes, and every error.
        for t in 0..=255u8 {
            for len in [0usize, 1, 11, 19, 20, 36, 40, 50, 51] {
                let n = wire::spec_len(t).filter(|_| len == 0).unwrap_or(len);
                let bytes: Vec<u8> = (0..n)
                    .map(|i| {
                        if i == 0 {
                            t
                        } else {
                            (i * 37 + t as usize) as u8
                        }
                    })
                    .collect();
                let fast = decode(&bytes, 7);
                let safe = decode_checked(&bytes, 7);
                assert_eq!(fast, safe, "type {t:#04x} len {n}");
                if let (Ok(f), Ok(s)) = (fast, safe) {
                    assert_eq!(f.msg_type(), t);
                    assert!(
                        core::ptr::eq(f.header(), s.header()),
                        "type {t:#04x} views the same bytes"
                    );
                    assert_eq!(f.stock(), s.stock());
                }
            }
        }
    }

    #[test]
    fn time_round_trip() {
        assert_eq!(parse_time("09:30:00"), Some(34_200_000_000_000));
        assert_eq!(parse_time("09:30:00.5"), Some(34_200_500_000_000));
        assert_eq!(fmt_time(34_200_000_000_123), "09:30:00.000000123");
        assert_eq!(parse_time("24:00:00"), None);
        assert_eq!(parse_time("9:30"), None);
        assert_eq!(parse_time("09:30:00.1234567890"), None);
    }

    #[test]
    fn prices_and_symbols() {
        assert_eq!(price4(213_300), "21.3300");
        assert_eq!(symbol_str(b"AAPL    "), "AAPL");
        assert_eq!(symbol_field("AAPL"), Some(*b"AAPL    "));
        assert_eq!(symbol_field("TOOLONGSYM"), None);
    }
}
