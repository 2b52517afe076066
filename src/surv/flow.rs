//! The participant order-flow input: a firm's own orders and executions, with account ids,
//! beside the public market feed.
//!
//! The public feed names a participant only on attributed ('F') adds, and never the account. A
//! firm that surveils itself knows more: which account sent each order, and both sides of its
//! own executions. This input carries that, as CSV (one header line, then one record per line):
//!
//! ```text
//! ts_ns,account,mpid,stock,event,side,order_ref,price,shares,match_number
//! 34200000123456,ACCT7,GSCO,ABC,new,B,1234567,101.2500,300,0
//! 34200000456789,ACCT7,GSCO,ABC,fill,B,1234567,101.2500,100,88812
//! ```
//!
//! - `ts_ns`: event time, ns since midnight (the market feed's clock); records must not go
//!   back in time.
//! - `account`: 1–12 ASCII graphic characters; `mpid`: the firm's 4-letter MPID (or empty).
//! - `event`: `new` (order accepted; `order_ref` is the ITCH order reference it got when it rests
//!   on the book, 0 if it never rested), `cancel` (shares cancelled), `fill` (an execution of
//!   the firm's order, aggressive or passive; `match_number` is the feed's match number).
//! - `side`: `B` or `S`, the side of the firm's order; `price`: decimal dollars, up to 4 places.
//!
//! The records are joined with the market feed by time: before the pipeline applies a market
//! message stamped t, every flow record of that stock stamped ≤ t has been applied. A resting
//! order's `new` record links its ITCH order reference to the account, so every detector sees the
//! account (not just the MPID, or nobody) on that order's later adds, executions and cancels.

use super::event::{party_of_name, Party};
use crate::itch::Side;
use std::fmt;
use std::path::Path;

/// What a flow record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FlowEvent {
    /// An order accepted.
    New,
    /// Shares cancelled.
    Cancel,
    /// An execution of the firm's order.
    Fill,
}

impl FlowEvent {
    /// The CSV name.
    pub fn name(self) -> &'static str {
        match self {
            FlowEvent::New => "new",
            FlowEvent::Cancel => "cancel",
            FlowEvent::Fill => "fill",
        }
    }
}

/// One record of the participant flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlowRecord {
    /// Event time, ns since midnight.
    pub ts: u64,
    /// The account.
    pub account: Party,
    /// The firm's MPID (zero bytes if none).
    pub mpid: [u8; 4],
    /// Symbol, space padded.
    pub stock: [u8; 8],
    /// What happened.
    pub event: FlowEvent,
    /// Side of the firm's order.
    pub side: Side,
    /// ITCH order reference (0: none).
    pub order_ref: u64,
    /// Price(4).
    pub price: u32,
    /// Shares.
    pub shares: u32,
    /// Match number (fills; 0 otherwise).
    pub match_number: u64,
}

/// The CSV header of a flow file.
pub const FLOW_HEADER: &str =
    "ts_ns,account,mpid,stock,event,side,order_ref,price,shares,match_number";

/// A flow file that cannot be read, naming the line.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// I/O.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A malformed line.
    #[error("{path}:{line}: {what}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
}

impl FlowRecord {
    /// Writes the record as a CSV line.
    pub fn write_csv(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{}.{:04},{},{}",
            self.ts,
            super::event::party_name(&self.account),
            std::str::from_utf8(&self.mpid)
                .unwrap_or("")
                .trim_end_matches('\0'),
            super::alert::trim_symbol(&self.stock),
            self.event.name(),
            self.side.as_byte() as char,
            self.order_ref,
            self.price / 10_000,
            self.price % 10_000,
            self.shares,
            self.match_number
        )
    }
}

impl fmt::Display for FlowRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = Vec::new();
        self.write_csv(&mut v).map_err(|_| fmt::Error)?;
        f.write_str(String::from_utf8_lossy(&v).trim_end())
    }
}

/// Parses a price of up to 4 decimal places into Price(4).
fn parse_price(s: &str) -> Option<u32> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || frac.len() > 4 || !int.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut f: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().ok()?
    };
    for _ in frac.len()..4 {
        f *= 10;
    }
    let v = int
        .parse::<u64>()
        .ok()?
        .checked_mul(10_000)?
        .checked_add(f)?;
    u32::try_from(v).ok()
}

/// Parses flow CSV text (`path` names it in errors). Records must be in time order.
///
/// # Errors
/// The first malformed line: a wrong header, a wrong number of fields, a field that does not
/// parse, or a timestamp earlier than the previous record's.
pub fn parse_flow(text: &str, path: &str) -> Result<Vec<FlowRecord>, FlowError> {
    let err = |line: usize, what: String| FlowError::Parse {
        path: path.to_string(),
        line,
        what,
    };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim() == FLOW_HEADER => {}
        Some((_, h)) => {
            return Err(err(
                1,
                format!("the header must be `{FLOW_HEADER}`, found `{}`", h.trim()),
            ))
        }
        None => {
            return Err(err(
                1,
                format!("empty file: expected the header `{FLOW_HEADER}`"),
            ))
        }
    }
    let mut out = Vec::new();
    let mut last_ts = 0;
    for (i, line) in lines {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.trim().split(',').collect();
        if f.len() != 10 {
            return Err(err(n, format!("expected 10 fields, found {}", f.len())));
        }
        let num = |k: usize, name: &str| -> Result<u64, FlowError> {
            f[k].parse::<u64>().map_err(|_| {
                err(
                    n,
                    format!("{name} `{}` is not a non-negative integer", f[k]),
                )
            })
        };
        let ts = num(0, "ts_ns")?;
        if ts < last_ts {
            return Err(err(
                n,
                format!("ts_ns {ts} is earlier than the previous record's {last_ts}"),
            ));
        }
        last_ts = ts;
        let account = party_of_name(f[1]).ok_or_else(|| {
            err(
                n,
                format!("account `{}` must be 1-12 ASCII graphic characters", f[1]),
            )
        })?;
        let mpid = match f[2].as_bytes() {
            [] => [0; 4],
            b if b.len() == 4 && b.iter().all(|c| c.is_ascii_alphanumeric()) => {
                [b[0], b[1], b[2], b[3]]
            }
            _ => {
                return Err(err(
                    n,
                    format!("mpid `{}` must be 4 letters or empty", f[2]),
                ))
            }
        };
        let sb = f[3].as_bytes();
        if sb.is_empty() || sb.len() > 8 || !sb.iter().all(|c| c.is_ascii_graphic()) {
            return Err(err(
                n,
                format!("stock `{}` must be 1-8 ASCII characters", f[3]),
            ));
        }
        let mut stock = [b' '; 8];
        stock[..sb.len()].copy_from_slice(sb);
        let event = match f[4] {
            "new" => FlowEvent::New,
            "cancel" => FlowEvent::Cancel,
            "fill" => FlowEvent::Fill,
            other => {
                return Err(err(
                    n,
                    format!("event `{other}` must be new, cancel or fill"),
                ))
            }
        };
        let side = match f[5] {
            "B" => Side::Buy,
            "S" => Side::Sell,
            other => return Err(err(n, format!("side `{other}` must be B or S"))),
        };
        let order_ref = num(6, "order_ref")?;
        let price = parse_price(f[7]).ok_or_else(|| {
            err(
                n,
                format!("price `{}` must be a decimal with at most 4 places", f[7]),
            )
        })?;
        let shares = u32::try_from(num(8, "shares")?)
            .map_err(|_| err(n, format!("shares `{}` is too large", f[8])))?;
        let match_number = num(9, "match_number")?;
        out.push(FlowRecord {
            ts,
            account,
            mpid,
            stock,
            event,
            side,
            order_ref,
            price,
            shares,
            match_number,
        });
    }
    Ok(out)
}

/// Reads and parses a flow file.
///
/// # Errors
/// As [`parse_flow`], and I/O errors.
pub fn read_flow(path: &Path) -> Result<Vec<FlowRecord>, FlowError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FlowError::Io {
        path: p.clone(),
        source,
    })?;
    parse_flow(&text, &p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_csv() {
        let text = format!(
            "{FLOW_HEADER}\n34200000123456,ACCT7,GSCO,ABC,new,B,1234567,101.25,300,0\n\
             34200000456789,ACCT7,,ABC,fill,S,0,0.0001,100,88812\n"
        );
        let recs = parse_flow(&text, "t.csv").unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].price, 1_012_500);
        assert_eq!(recs[0].event, FlowEvent::New);
        assert_eq!(recs[1].side, Side::Sell);
        assert_eq!(recs[1].mpid, [0; 4]);
        assert_eq!(recs[1].price, 1);
        let mut out = format!("{FLOW_HEADER}\n").into_bytes();
        for r in &recs {
            r.write_csv(&mut out).unwrap();
        }
        assert_eq!(
            parse_flow(std::str::from_utf8(&out).unwrap(), "x").unwrap(),
            recs
        );
    }

    #[test]
    fn bad_lines_name_their_line_and_field() {
        let h = FLOW_HEADER;
        let cases = [
            ("ts,account\n".to_string(), "t.csv:1: the header"),
            (
                format!("{h}\n1,A,GSCO,ABC,new,B,1,1.0,1\n"),
                "t.csv:2: expected 10 fields",
            ),
            (
                format!("{h}\n1,A,GSCO,ABC,buy,B,1,1.0,1,0\n"),
                "event `buy`",
            ),
            (format!("{h}\n1,A,GSCO,ABC,new,X,1,1.0,1,0\n"), "side `X`"),
            (
                format!("{h}\n1,A,GSCO,ABC,new,B,1,1.00001,1,0\n"),
                "price `1.00001`",
            ),
            (
                format!("{h}\n5,A,GSCO,ABC,new,B,1,1,1,0\n4,A,GSCO,ABC,new,B,1,1,1,0\n"),
                "t.csv:3: ts_ns 4 is earlier",
            ),
            (
                format!("{h}\n1,WAYTOOLONGACCOUNT,GSCO,ABC,new,B,1,1,1,0\n"),
                "account `WAYTOOLONGACCOUNT`",
            ),
            (format!("{h}\n-1,A,GSCO,ABC,new,B,1,1,1,0\n"), "ts_ns `-1`"),
        ];
        for (text, want) in cases {
            let e = parse_flow(&text, "t.csv").unwrap_err().to_string();
            assert!(e.contains(want), "{e:?} should contain {want:?}");
        }
    }
}
