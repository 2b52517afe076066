//! Decoder robustness and field layout.
//!
//! - Every one of the 23 ITCH 5.0 message types is built here byte by byte from the offsets in the
//!   specification's tables (`shared/data/spec`, plus the addendum for 'h' and 'O'; 'J' from the
//!   later spec text), never with the crate's wire structs, and every field is read back through
//!   the decoded view.
//! - The real sample file is cut at every byte: the cut file is an error naming the offset of the
//!   frame that was cut (or, cut on a frame boundary, a clean shorter file), never a panic.
//! - Seeded random and randomly mutated inputs never panic, and the parallel walk reports exactly
//!   what the serial walk does.
//! - Bad lengths, unknown types, zero-length frames and empty files are reported as documented.

use std::collections::BTreeSet;

use tickwatch::book::{BookConfig, Books};
use tickwatch::feed::split::{par_walk, resync, MIN_PARALLEL_BYTES};
use tickwatch::feed::{FrameError, Frames};
use tickwatch::gen::{generate, GenConfig};
use tickwatch::inspect::{inspect, InspectError, InspectOptions, Summary};
use tickwatch::itch::{decode, spec_len, DecodeError, DecodeErrorKind, Message, TYPES};
use tickwatch::replay::replay;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data");
const SAMPLE: &str = "12302019_SNIPPET.NASDAQ_ITCH50";

fn sample() -> Vec<u8> {
    std::fs::read(format!("{DATA}/{SAMPLE}")).expect("reading the ITCH sample")
}

/// Frame offsets and lengths of a BinaryFILE, from this test's own walk of the length prefixes.
fn my_frames(buf: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut p = 0;
    while p + 2 <= buf.len() {
        let n = u16::from_be_bytes([buf[p], buf[p + 1]]) as usize;
        assert!(
            p + 2 + n <= buf.len(),
            "test input itself is truncated at {p}"
        );
        out.push((p, n));
        p += 2 + n;
    }
    assert_eq!(p, buf.len());
    out
}

fn opts(threads: usize) -> InspectOptions {
    InspectOptions {
        threads,
        lenient: false,
        refs: false,
    }
}

fn lenient(threads: usize) -> InspectOptions {
    InspectOptions {
        threads,
        lenient: true,
        refs: false,
    }
}

/// The summary with the fields that describe *how* it was walked (not what) removed.
fn what(s: &Summary) -> serde_json::Value {
    let mut v = serde_json::to_value(s).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("chunks");
    o.remove("resync_fallbacks");
    v
}

fn inspect_what(buf: &[u8], o: InspectOptions) -> Result<serde_json::Value, InspectError> {
    inspect(buf, o).map(|s| what(&s))
}

// ---------------------------------------------------------------------------------------------
// Hand-built messages.

/// A message under construction: every byte must be written exactly once.
struct Msg {
    bytes: Vec<u8>,
    written: Vec<bool>,
}

impl Msg {
    /// A message of `len` bytes with the common header (spec 1.1: type 0/1, locate 1/2,
    /// tracking 3/2, timestamp 5/6).
    fn new(t: u8, len: usize, locate: u16, tracking: u16, ts: u64) -> Msg {
        let mut m = Msg {
            bytes: vec![0xEE; len],
            written: vec![false; len],
        };
        m.put(0, &[t]);
        m.put(1, &locate.to_be_bytes());
        m.put(3, &tracking.to_be_bytes());
        m.put(5, &ts.to_be_bytes()[2..]);
        m
    }

    fn put(&mut self, off: usize, v: &[u8]) -> &mut Msg {
        for (i, b) in v.iter().enumerate() {
            assert!(!self.written[off + i], "byte {} written twice", off + i);
            self.written[off + i] = true;
            self.bytes[off + i] = *b;
        }
        self
    }

    fn u32(&mut self, off: usize, v: u32) -> &mut Msg {
        self.put(off, &v.to_be_bytes())
    }

    fn u64(&mut self, off: usize, v: u64) -> &mut Msg {
        self.put(off, &v.to_be_bytes())
    }

    fn done(&self) -> Vec<u8> {
        let gaps: Vec<usize> = (0..self.bytes.len())
            .filter(|&i| !self.written[i])
            .collect();
        assert!(gaps.is_empty(), "bytes never written: {gaps:?}");
        self.bytes.clone()
    }
}

/// Checks the header fields of a decoded message.
fn check_header(m: &Message<'_>, t: u8, locate: u16, tracking: u16, ts: u64) {
    assert_eq!(m.msg_type(), t);
    assert_eq!(m.stock_locate(), locate);
    assert_eq!(m.header().stock_locate.get(), locate);
    assert_eq!(m.header().tracking_number.get(), tracking);
    assert_eq!(m.timestamp(), ts);
    assert_eq!(m.header().timestamp.get(), ts);
}

// Distinct values in every byte, so a field read from the wrong offset or with the wrong byte
// order cannot come out right by accident.
const TS: u64 = 0x3456_789A_BCDE; // 57,599,... ns: 15:59:59.x, all six bytes distinct
const LOC: u16 = 0x1F2E;
const TRK: u16 = 0x3D4C;

fn decoded(bytes: &[u8]) -> Message<'_> {
    let t = bytes[0];
    assert_eq!(
        spec_len(t),
        Some(bytes.len()),
        "spec length of '{}'",
        t as char
    );
    let m = decode(bytes, 777).unwrap_or_else(|e| panic!("'{}': {e}", t as char));
    check_header(&m, t, LOC, TRK, TS);
    // One byte short and one byte long are both bad lengths naming the offset.
    for len in [bytes.len() - 1, bytes.len() + 1] {
        let mut b = bytes.to_vec();
        b.resize(len, 0);
        let e = decode(&b, 4242).unwrap_err();
        assert_eq!(
            e,
            DecodeError {
                offset: 4242,
                kind: DecodeErrorKind::BadLength {
                    msg_type: t,
                    expected: bytes.len(),
                    got: len
                }
            }
        );
    }
    m
}

#[test]
fn system_event_s() {
    let b = Msg::new(b'S', 12, LOC, TRK, TS).put(11, b"Q").done();
    let Message::SystemEvent(m) = decoded(&b) else {
        panic!()
    };
    assert_eq!(m.event_code, b'Q');
    assert_eq!(decoded(&b).stock(), None);
}

#[test]
fn stock_directory_r() {
    let b = Msg::new(b'R', 39, LOC, TRK, TS)
        .put(11, b"ABCDEFG ")
        .put(19, b"G") // market category
        .put(20, b"D") // financial status
        .u32(21, 0x0001_86A0) // round lot size 100000
        .put(25, b"Y") // round lots only
        .put(26, b"C") // issue classification
        .put(27, b"AB") // issue sub-type
        .put(29, b"P") // authenticity
        .put(30, b"N") // short sale threshold
        .put(31, b"X") // IPO flag
        .put(32, b"2") // LULD tier
        .put(33, b"E") // ETP flag
        .u32(34, 0x0A0B_0C0D) // ETP leverage factor
        .put(38, b"I") // inverse indicator
        .done();
    let msg = decoded(&b);
    let Message::StockDirectory(m) = msg else {
        panic!()
    };
    assert_eq!(&m.stock, b"ABCDEFG ");
    assert_eq!(msg.stock(), Some(b"ABCDEFG "));
    assert_eq!(m.market_category, b'G');
    assert_eq!(m.financial_status, b'D');
    assert_eq!(m.round_lot_size.get(), 100_000);
    assert_eq!(m.round_lots_only, b'Y');
    assert_eq!(m.issue_classification, b'C');
    assert_eq!(&m.issue_subtype, b"AB");
    assert_eq!(m.authenticity, b'P');
    assert_eq!(m.short_sale_threshold, b'N');
    assert_eq!(m.ipo_flag, b'X');
    assert_eq!(m.luld_tier, b'2');
    assert_eq!(m.etp_flag, b'E');
    assert_eq!(m.etp_leverage_factor.get(), 0x0A0B_0C0D);
    assert_eq!(m.inverse_indicator, b'I');
}

#[test]
fn stock_trading_action_h() {
    let b = Msg::new(b'H', 25, LOC, TRK, TS)
        .put(11, b"HALTED  ")
        .put(19, b"H")
        .put(20, b"r")
        .put(21, b"T1  ")
        .done();
    let msg = decoded(&b);
    let Message::StockTradingAction(m) = msg else {
        panic!()
    };
    assert_eq!(&m.stock, b"HALTED  ");
    assert_eq!(msg.stock(), Some(b"HALTED  "));
    assert_eq!(m.trading_state, b'H');
    assert_eq!(m.reserved, b'r');
    assert_eq!(&m.reason, b"T1  ");
}

#[test]
fn reg_sho_y() {
    let b = Msg::new(b'Y', 20, LOC, TRK, TS)
        .put(11, b"SHO     ")
        .put(19, b"1")
        .done();
    let msg = decoded(&b);
    let Message::RegShoRestriction(m) = msg else {
        panic!()
    };
    assert_eq!(&m.stock, b"SHO     ");
    assert_eq!(msg.stock(), Some(b"SHO     "));
    assert_eq!(m.reg_sho_action, b'1');
}

#[test]
fn market_participant_position_l() {
    let b = Msg::new(b'L', 26, LOC, TRK, TS)
        .put(11, b"GSCO")
        .put(15, b"MMKR    ")
        .put(23, b"Y")
        .put(24, b"P")
        .put(25, b"A")
        .done();
    let msg = decoded(&b);
    let Message::MarketParticipantPosition(m) = msg else {
        panic!()
    };
    assert_eq!(&m.mpid, b"GSCO");
    assert_eq!(&m.stock, b"MMKR    ");
    assert_eq!(msg.stock(), Some(b"MMKR    "));
    assert_eq!(m.primary_market_maker, b'Y');
    assert_eq!(m.market_maker_mode, b'P');
    assert_eq!(m.market_participant_state, b'A');
}

#[test]
fn mwcb_decline_level_v() {
    let b = Msg::new(b'V', 35, LOC, TRK, TS)
        .u64(11, 0x0102_0304_0506_0708)
        .u64(19, 0x1112_1314_1516_1718)
        .u64(27, 0x2122_2324_2526_2728)
        .done();
    let msg = decoded(&b);
    let Message::MwcbDeclineLevel(m) = msg else {
        panic!()
    };
    assert_eq!(m.level1.get(), 0x0102_0304_0506_0708);
    assert_eq!(m.level2.get(), 0x1112_1314_1516_1718);
    assert_eq!(m.level3.get(), 0x2122_2324_2526_2728);
    assert_eq!(msg.stock(), None);
}

#[test]
fn mwcb_status_w() {
    let b = Msg::new(b'W', 12, LOC, TRK, TS).put(11, b"2").done();
    let Message::MwcbStatus(m) = decoded(&b) else {
        panic!()
    };
    assert_eq!(m.breached_level, b'2');
}

#[test]
fn ipo_quoting_period_k() {
    let b = Msg::new(b'K', 28, LOC, TRK, TS)
        .put(11, b"IPO     ")
        .u32(19, 34_200) // release time, seconds since midnight
        .put(23, b"A")
        .u32(24, 0x00BC_614E) // price 1234.5678
        .done();
    let msg = decoded(&b);
    let Message::IpoQuotingPeriod(m) = msg else {
        panic!()
    };
    assert_eq!(&m.stock, b"IPO     ");
    assert_eq!(msg.stock(), Some(b"IPO     "));
    assert_eq!(m.ipo_quotation_release_time.get(), 34_200);
    assert_eq!(m.ipo_quotation_release_qualifier, b'A');
    assert_eq!(m.ipo_price.get(), 12_345_678);
}

#[test]
fn luld_auction_collar_j() {
    // Not in the 2015 PDF: stock 11/8, reference 19/4, upper 23/4, lower 27/4, extension 31/4.
    let b = Msg::new(b'J', 35, LOC, TRK, TS)
        .put(11, b"LULD    ")
        .u32(19, 0x0102_0304)
        .u32(23, 0x1112_1314)
        .u32(27, 0x2122_2324)
        .u32(31, 0x3132_3334)
        .done();
    let msg = decoded(&b);
    let Message::LuldAuctionCollar(m) = msg else {
        panic!()
    };
    assert_eq!(&m.stock, b"LULD    ");
    assert_eq!(msg.stock(), Some(b"LULD    "));
    assert_eq!(m.auction_collar_reference_price.get(), 0x0102_0304);
    assert_eq!(m.upper_auction_collar_price.get(), 0x1112_1314);
    assert_eq!(m.lower_auction_collar_price.get(), 0x2122_2324);
    assert_eq!(m.auction_collar_extension.get(), 0x3132_3334);
}

#[test]
fn operational_halt_h_lower() {
    let b = Msg::new(b'h', 21, LOC, TRK, TS)
        .put(11, b"OPHALT  ")
        .put(19, b"B")
        .put(20, b"T")
        .done();
    let msg = decoded(&b);
    let Message::OperationalHalt(m) = msg else {
        panic!()
    };
    assert_eq!(&m.stock, b"OPHALT  ");
    assert_eq!(msg.stock(), Some(b"OPHALT  "));
    assert_eq!(m.market_code, b'B');
    assert_eq!(m.operational_halt_action, b'T');
}

#[test]
fn add_order_a() {
    let b = Msg::new(b'A', 36, LOC, TRK, TS)
        .u64(11, 0x0123_4567_89AB_CDEF)
        .put(19, b"S")
        .u32(20, 0x0001_E240) // 123456 shares
        .put(24, b"AAPL    ")
        .u32(32, 0x7FFF_0102)
        .done();
    let msg = decoded(&b);
    let Message::AddOrder(m) = msg else { panic!() };
    assert_eq!(m.order_ref.get(), 0x0123_4567_89AB_CDEF);
    assert_eq!(m.side, b'S');
    assert_eq!(m.shares.get(), 123_456);
    assert_eq!(&m.stock, b"AAPL    ");
    assert_eq!(msg.stock(), Some(b"AAPL    "));
    assert_eq!(m.price.get(), 0x7FFF_0102);
}

#[test]
fn add_order_mpid_f() {
    let b = Msg::new(b'F', 40, LOC, TRK, TS)
        .u64(11, 0xFEDC_BA98_7654_3210)
        .put(19, b"B")
        .u32(20, 0x0102_0304)
        .put(24, b"MSFT    ")
        .u32(32, 0x0506_0708)
        .put(36, b"VIRT")
        .done();
    let msg = decoded(&b);
    let Message::AddOrderMpid(m) = msg else {
        panic!()
    };
    assert_eq!(m.order_ref.get(), 0xFEDC_BA98_7654_3210);
    assert_eq!(m.side, b'B');
    assert_eq!(m.shares.get(), 0x0102_0304);
    assert_eq!(&m.stock, b"MSFT    ");
    assert_eq!(msg.stock(), Some(b"MSFT    "));
    assert_eq!(m.price.get(), 0x0506_0708);
    assert_eq!(&m.attribution, b"VIRT");
}

#[test]
fn order_executed_e() {
    let b = Msg::new(b'E', 31, LOC, TRK, TS)
        .u64(11, 0x1111_2222_3333_4444)
        .u32(19, 0x0A0B_0C0D)
        .u64(23, 0x5555_6666_7777_8888)
        .done();
    let msg = decoded(&b);
    let Message::OrderExecuted(m) = msg else {
        panic!()
    };
    assert_eq!(m.order_ref.get(), 0x1111_2222_3333_4444);
    assert_eq!(m.executed_shares.get(), 0x0A0B_0C0D);
    assert_eq!(m.match_number.get(), 0x5555_6666_7777_8888);
    assert_eq!(msg.stock(), None);
}

#[test]
fn order_executed_with_price_c() {
    let b = Msg::new(b'C', 36, LOC, TRK, TS)
        .u64(11, 0x0102_0304_0506_0708)
        .u32(19, 0x090A_0B0C)
        .u64(23, 0x1112_1314_1516_1718)
        .put(31, b"N")
        .u32(32, 0x191A_1B1C)
        .done();
    let Message::OrderExecutedWithPrice(m) = decoded(&b) else {
        panic!()
    };
    assert_eq!(m.order_ref.get(), 0x0102_0304_0506_0708);
    assert_eq!(m.executed_shares.get(), 0x090A_0B0C);
    assert_eq!(m.match_number.get(), 0x1112_1314_1516_1718);
    assert_eq!(m.printable, b'N');
    assert_eq!(m.execution_price.get(), 0x191A_1B1C);
}

#[test]
fn order_cancel_x() {
    let b = Msg::new(b'X', 23, LOC, TRK, TS)
        .u64(11, 0xA1A2_A3A4_A5A6_A7A8)
        .u32(19, 0xB1B2_B3B4)
        .done();
    let Message::OrderCancel(m) = decoded(&b) else {
        panic!()
    };
    assert_eq!(m.order_ref.get(), 0xA1A2_A3A4_A5A6_A7A8);
    assert_eq!(m.cancelled_shares.get(), 0xB1B2_B3B4);
}

#[test]
fn order_delete_d() {
    let b = Msg::new(b'D', 19, LOC, TRK, TS)
        .u64(11, 0xC1C2_C3C4_C5C6_C7C8)
        .done();
    let Message::OrderDelete(m) = decoded(&b) else {
        panic!()
    };
    assert_eq!(m.order_ref.get(), 0xC1C2_C3C4_C5C6_C7C8);
}

#[test]
fn order_replace_u() {
    let b = Msg::new(b'U', 35, LOC, TRK, TS)
        .u64(11, 0x0101_0202_0303_0404)
        .u64(19, 0x0505_0606_0707_0808)
        .u32(27, 0x0909_0A0A)
        .u32(31, 0x0B0B_0C0C)
        .done();
    let Message::OrderReplace(m) = decoded(&b) else {
        panic!()
    };
    assert_eq!(m.original_order_ref.get(), 0x0101_0202_0303_0404);
    assert_eq!(m.new_order_ref.get(), 0x0505_0606_0707_0808);
    assert_eq!(m.shares.get(), 0x0909_0A0A);
    assert_eq!(m.price.get(), 0x0B0B_0C0C);
}

#[test]
fn trade_p() {
    let b = Msg::new(b'P', 44, LOC, TRK, TS)
        .u64(11, 0x0102_0304_0506_0708)
        .put(19, b"B")
        .u32(20, 0x1112_1314)
        .put(24, b"TRADE   ")
        .u32(32, 0x2122_2324)
        .u64(36, 0x3132_3334_3536_3738)
        .done();
    let msg = decoded(&b);
    let Message::Trade(m) = msg else { panic!() };
    assert_eq!(m.order_ref.get(), 0x0102_0304_0506_0708);
    assert_eq!(m.side, b'B');
    assert_eq!(m.shares.get(), 0x1112_1314);
    assert_eq!(&m.stock, b"TRADE   ");
    assert_eq!(msg.stock(), Some(b"TRADE   "));
    assert_eq!(m.price.get(), 0x2122_2324);
    assert_eq!(m.match_number.get(), 0x3132_3334_3536_3738);
}

#[test]
fn cross_trade_q() {
    let b = Msg::new(b'Q', 40, LOC, TRK, TS)
        .u64(11, 0x0102_0304_0506_0708)
        .put(19, b"CROSS   ")
        .u32(27, 0x1112_1314)
        .u64(31, 0x2122_2324_2526_2728)
        .put(39, b"C")
        .done();
    let msg = decoded(&b);
    let Message::CrossTrade(m) = msg else {
        panic!()
    };
    assert_eq!(m.shares.get(), 0x0102_0304_0506_0708);
    assert_eq!(&m.stock, b"CROSS   ");
    assert_eq!(msg.stock(), Some(b"CROSS   "));
    assert_eq!(m.cross_price.get(), 0x1112_1314);
    assert_eq!(m.match_number.get(), 0x2122_2324_2526_2728);
    assert_eq!(m.cross_type, b'C');
}

#[test]
fn broken_trade_b() {
    let b = Msg::new(b'B', 19, LOC, TRK, TS)
        .u64(11, 0x0F0E_0D0C_0B0A_0908)
        .done();
    let Message::BrokenTrade(m) = decoded(&b) else {
        panic!()
    };
    assert_eq!(m.match_number.get(), 0x0F0E_0D0C_0B0A_0908);
}

#[test]
fn noii_i() {
    let b = Msg::new(b'I', 50, LOC, TRK, TS)
        .u64(11, 0x0102_0304_0506_0708) // paired shares
        .u64(19, 0x1112_1314_1516_1718) // imbalance shares
        .put(27, b"S") // imbalance direction
        .put(28, b"NOII    ")
        .u32(36, 0x2122_2324) // far
        .u32(40, 0x3132_3334) // near
        .u32(44, 0x4142_4344) // current reference
        .put(48, b"O") // cross type
        .put(49, b"5") // price variation indicator
        .done();
    let msg = decoded(&b);
    let Message::Noii(m) = msg else { panic!() };
    assert_eq!(m.paired_shares.get(), 0x0102_0304_0506_0708);
    assert_eq!(m.imbalance_shares.get(), 0x1112_1314_1516_1718);
    assert_eq!(m.imbalance_direction, b'S');
    assert_eq!(&m.stock, b"NOII    ");
    assert_eq!(msg.stock(), Some(b"NOII    "));
    assert_eq!(m.far_price.get(), 0x2122_2324);
    assert_eq!(m.near_price.get(), 0x3132_3334);
    assert_eq!(m.current_reference_price.get(), 0x4142_4344);
    assert_eq!(m.cross_type, b'O');
    assert_eq!(m.price_variation_indicator, b'5');
}

#[test]
fn retail_interest_n() {
    let b = Msg::new(b'N', 20, LOC, TRK, TS)
        .put(11, b"RPII    ")
        .put(19, b"A")
        .done();
    let msg = decoded(&b);
    let Message::RetailInterest(m) = msg else {
        panic!()
    };
    assert_eq!(&m.stock, b"RPII    ");
    assert_eq!(msg.stock(), Some(b"RPII    "));
    assert_eq!(m.interest_flag, b'A');
}

#[test]
fn direct_listing_capital_raise_o() {
    let b = Msg::new(b'O', 48, LOC, TRK, TS)
        .put(11, b"DLCR    ")
        .put(19, b"Y")
        .u32(20, 0x0102_0304) // minimum allowable price
        .u32(24, 0x1112_1314) // maximum allowable price
        .u32(28, 0x2122_2324) // near execution price
        .u64(32, 0x3132_3334_3536_3738) // near execution time
        .u32(40, 0x4142_4344) // lower collar
        .u32(44, 0x5152_5354) // upper collar
        .done();
    let msg = decoded(&b);
    let Message::DirectListingCapitalRaise(m) = msg else {
        panic!()
    };
    assert_eq!(&m.stock, b"DLCR    ");
    assert_eq!(msg.stock(), Some(b"DLCR    "));
    assert_eq!(m.open_eligibility_status, b'Y');
    assert_eq!(m.minimum_allowable_price.get(), 0x0102_0304);
    assert_eq!(m.maximum_allowable_price.get(), 0x1112_1314);
    assert_eq!(m.near_execution_price.get(), 0x2122_2324);
    assert_eq!(m.near_execution_time.get(), 0x3132_3334_3536_3738);
    assert_eq!(m.lower_price_range_collar.get(), 0x4142_4344);
    assert_eq!(m.upper_price_range_collar.get(), 0x5152_5354);
}

#[test]
fn exactly_the_23_spec_types_are_known() {
    // The length table of the addendum, typed in here.
    let spec: [(u8, usize); 23] = [
        (b'S', 12),
        (b'R', 39),
        (b'H', 25),
        (b'Y', 20),
        (b'L', 26),
        (b'V', 35),
        (b'W', 12),
        (b'K', 28),
        (b'J', 35),
        (b'h', 21),
        (b'A', 36),
        (b'F', 40),
        (b'E', 31),
        (b'C', 36),
        (b'X', 23),
        (b'D', 19),
        (b'U', 35),
        (b'P', 44),
        (b'Q', 40),
        (b'B', 19),
        (b'I', 50),
        (b'N', 20),
        (b'O', 48),
    ];
    let known: BTreeSet<u8> = spec.iter().map(|&(t, _)| t).collect();
    assert_eq!(TYPES.iter().copied().collect::<BTreeSet<u8>>(), known);
    for t in 0..=255u8 {
        let want = spec.iter().find(|&&(s, _)| s == t).map(|&(_, n)| n);
        assert_eq!(spec_len(t), want, "type {t:#04x}");
        let body = vec![t; want.unwrap_or(20)];
        match (decode(&body, 9), want) {
            (Ok(m), Some(_)) => assert_eq!(m.msg_type(), t),
            (Err(e), None) => assert_eq!(
                e,
                DecodeError {
                    offset: 9,
                    kind: DecodeErrorKind::UnknownType(t)
                }
            ),
            (r, w) => panic!("type {t:#04x}: {r:?} with spec length {w:?}"),
        }
    }
    assert_eq!(
        decode(&[], 5),
        Err(DecodeError {
            offset: 5,
            kind: DecodeErrorKind::Empty
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Truncation of the real sample.

/// Cuts the sample inside every frame in `which` (at every byte of the frame, its start included)
/// and checks what each cut file gives.
fn cut_sample_inside_frames(which: std::ops::Range<usize>) {
    let buf = sample();
    let frames = my_frames(&buf);
    assert_eq!(frames.len(), 1000);
    // The whole file is clean, and every frame decodes.
    for f in Frames::new(&buf) {
        let f = f.unwrap();
        decode(f.body, f.offset).unwrap();
    }
    assert_eq!(inspect(&buf, opts(1)).unwrap().messages, 1000);

    let mut books = Books::new(BookConfig {
        max_orders: 1024,
        max_locates: 16,
        max_levels: 1024,
    });
    for fi in which {
        let (start, len) = frames[fi];
        for cut in start..start + 2 + len {
            let t = &buf[..cut];
            if cut == 0 {
                assert_eq!(inspect(t, opts(1)).unwrap_err(), InspectError::Empty);
                assert_eq!(inspect(t, opts(2)).unwrap_err(), InspectError::Empty);
                continue;
            }
            if cut == start {
                // A cut on a frame boundary leaves a shorter, valid file of `fi` messages.
                for th in [1, 2] {
                    let s = inspect(t, opts(th)).unwrap();
                    assert_eq!((s.messages, s.bytes), (fi as u64, cut as u64), "cut {cut}");
                }
                continue;
            }
            let want = if cut - start == 1 {
                FrameError::TruncatedPrefix {
                    offset: start as u64,
                }
            } else {
                FrameError::TruncatedBody {
                    offset: start as u64,
                    need: len,
                    have: cut - start - 2,
                }
            };
            for th in [1, 2] {
                let e = inspect(t, opts(th)).unwrap_err();
                assert_eq!(e, InspectError::Frame(want), "cut {cut}, threads {th}");
            }
            // Every cut point of a frame has the same prefix before it; walk that prefix in detail
            // at the first two and the last cut point of the frame.
            if cut - start > 2 && cut != start + 1 + len {
                continue;
            }
            let e = InspectError::Frame(want);
            assert_eq!(e.offset(), Some(start as u64));
            assert!(
                e.to_string().contains(&format!("byte offset {start}")),
                "{e}"
            );
            // The frames before the cut all come through and decode; then the error; then nothing.
            let mut it = Frames::new(t);
            for &(off, n) in &frames[..fi] {
                let f = it.next().unwrap().unwrap();
                assert_eq!((f.offset, f.body.len()), (off as u64, n));
                decode(f.body, f.offset).unwrap();
            }
            assert_eq!(it.next(), Some(Err(want)));
            assert_eq!(it.next(), None);
            // Replay reports the same error, and the books it left are consistent.
            books.clear();
            assert_eq!(replay(t, &mut books, None, false).unwrap_err(), e);
            books.check().unwrap();
            assert_eq!(tickwatch::bench::decode_fold(t).unwrap_err(), e);
            assert_eq!(tickwatch::bench::decode_fold_by_type(t).unwrap_err(), e);
        }
    }
}

// Split in two so that the halves run in parallel.
#[test]
fn sample_cut_at_every_byte_of_frames_0_to_599() {
    cut_sample_inside_frames(0..600);
}

#[test]
fn sample_cut_at_every_byte_of_frames_600_to_999() {
    cut_sample_inside_frames(600..1000);
}

/// A buffer above the parallel threshold (the sample repeated), cut at many points: the parallel
/// walk reports the same error (or the same summary) as the serial one.
#[test]
fn large_file_cut_parallel_equals_serial() {
    let one = sample();
    let copies = MIN_PARALLEL_BYTES / one.len() + 3;
    let big: Vec<u8> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * copies)
        .collect();
    assert!(big.len() > MIN_PARALLEL_BYTES);
    assert!(
        inspect(&big, opts(4)).unwrap().chunks > 1,
        "the parallel path did not split"
    );
    let frames = my_frames(&big);
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut cuts: Vec<usize> = vec![
        big.len(),
        big.len() - 1,
        big.len() - 2,
        MIN_PARALLEL_BYTES + 1,
    ];
    for _ in 0..40 {
        let (off, n) = frames[rng.below(frames.len())];
        if off + n + 2 <= MIN_PARALLEL_BYTES {
            continue;
        }
        cuts.extend([off, off + 1, off + 2, off + 3, off + 1 + n]);
    }
    for cut in cuts {
        let t = &big[..cut];
        let serial = inspect_what(t, opts(1));
        let fi = frames.partition_point(|&(o, n)| o + 2 + n <= cut);
        match &serial {
            Ok(s) => assert_eq!(s["messages"], fi as u64, "cut {cut}"),
            Err(e) => assert_eq!(e.offset(), Some(frames[fi].0 as u64), "cut {cut}"),
        }
        for th in [2, 3, 4] {
            assert_eq!(inspect_what(t, opts(th)), serial, "cut {cut} threads {th}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Random input.

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Walks `buf` through everything that takes untrusted bytes; panics are the failure.
fn everything_agrees(buf: &[u8], books: &mut Books, label: &str) {
    for lax in [false, true] {
        let o = |th| InspectOptions {
            threads: th,
            lenient: lax,
            refs: false,
        };
        let serial = inspect_what(buf, o(1));
        for th in [2, 5] {
            assert_eq!(
                inspect_what(buf, o(th)),
                serial,
                "{label}: threads {th} lenient {lax}"
            );
        }
        books.clear();
        let r = replay(buf, books, None, lax);
        match (&serial, &r) {
            (Ok(s), Ok(r)) => {
                assert_eq!(s["messages"], r.messages, "{label}");
                assert_eq!(s["skipped_bad_lengths"], r.skipped_bad_lengths, "{label}");
            }
            (Err(a), Err(b)) => assert_eq!(a, b, "{label}"),
            (Err(InspectError::Empty), Ok(r)) => assert_eq!(r.messages, 0),
            (a, b) => panic!("{label}: inspect {a:?} but replay {b:?}"),
        }
        if !lax {
            // The checksum walks agree with each other and with inspect.
            let fold = tickwatch::bench::decode_fold(buf);
            assert_eq!(tickwatch::bench::par_decode_fold(buf, 3), fold, "{label}");
            assert_eq!(tickwatch::bench::decode_fold_by_type(buf), fold, "{label}");
            match (&serial, &fold) {
                (Ok(s), Ok(w)) => assert_eq!(s["messages"], w.messages, "{label}"),
                (Err(InspectError::Empty), Ok(w)) => assert_eq!(w.messages, 0),
                (Err(a), Err(b)) => assert_eq!(a, b, "{label}"),
                (a, b) => panic!("{label}: inspect {a:?} but decode_fold {b:?}"),
            }
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut books = Books::new(BookConfig {
        max_orders: 4096,
        max_locates: 1 << 16,
        max_levels: 1 << 16,
    });
    let lens = [0usize, 1, 2, 3, 4, 11, 12, 13, 100, 1000, 40_000, 65_537];
    for seed in 1..=40u64 {
        let mut rng = XorShift(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
        for &n in &lens {
            let b = rng.bytes(n);
            everything_agrees(&b, &mut books, &format!("seed {seed} len {n}"));
        }
    }
    for seed in [7u64, 8] {
        let mut rng = XorShift(seed);
        let n = MIN_PARALLEL_BYTES + 3 * MIN_PARALLEL_BYTES / 2;
        let b = rng.bytes(n);
        everything_agrees(&b, &mut books, &format!("seed {seed} len {n}"));
    }
}

/// Random frames that are mostly well-formed: known types at their spec length with random
/// bodies, some unknown types, some wrong lengths, some zero-length frames. Unlike uniform noise
/// these pass the resync test, so the parallel walk really splits.
fn random_frames(rng: &mut XorShift, target: usize, bad_per_million: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(target + 64);
    while out.len() < target {
        let r = rng.below(1_000_000);
        let (t, len) = if r < bad_per_million {
            // Wrong length for a known type, or an empty frame.
            let t = TYPES[rng.below(TYPES.len())];
            let n = spec_len(t).unwrap();
            if rng.below(4) == 0 {
                (t, 0)
            } else {
                (
                    t,
                    if rng.below(2) == 0 {
                        n - 1
                    } else {
                        n + 1 + rng.below(30)
                    },
                )
            }
        } else if r < 2 * bad_per_million + 2_000 {
            // Unknown type, any length.
            let t = loop {
                let t = rng.next() as u8;
                if spec_len(t).is_none() {
                    break t;
                }
            };
            (t, 1 + rng.below(80))
        } else {
            let t = TYPES[rng.below(TYPES.len())];
            (t, spec_len(t).unwrap())
        };
        out.extend_from_slice(&(len as u16).to_be_bytes());
        if len > 0 {
            out.push(t);
            // Small locates and refs so that the books see adds, executions and deletes of the
            // same orders.
            let body = rng.bytes(len - 1);
            let start = out.len();
            out.extend_from_slice(&body);
            if len >= 3 {
                out[start] = 0;
                out[start + 1] = (rng.next() % 8) as u8;
            }
            if len >= 19 && t != b'V' && t != b'Q' && t != b'I' {
                out[start + 10..start + 17].fill(0);
                out[start + 17] = (rng.next() % 64) as u8;
            }
            if (t == b'A' || t == b'F') && len >= 24 && rng.below(10) != 0 {
                out[start + 18] = if rng.below(2) == 0 { b'B' } else { b'S' };
                out[start + 19..start + 21].fill(0); // shares below 65,536
            }
            // Never zero shares in an add or replace (see `zero_share_add_keeps_books_consistent`).
            if (t == b'A' || t == b'F') && len >= 24 {
                out[start + 22] |= 1;
            }
            if t == b'U' && len >= 31 {
                out[start + 29] |= 1;
            }
        }
    }
    out
}

#[test]
fn random_frames_parallel_equals_serial() {
    let mut books = Books::new(BookConfig {
        max_orders: 256,
        max_locates: 16,
        max_levels: 4096,
    });
    for seed in 1..=8u64 {
        let mut rng = XorShift(0xDEAD_BEEF ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // No bad frames: must inspect cleanly; a few: an error somewhere, the same one in parallel.
        for bad in [0usize, 3, 200] {
            let n = MIN_PARALLEL_BYTES + rng.below(MIN_PARALLEL_BYTES);
            let buf = random_frames(&mut rng, n, bad);
            everything_agrees(&buf, &mut books, &format!("seed {seed} bad {bad}"));
            if bad == 0 {
                let s = inspect(&buf, opts(4)).unwrap();
                assert!(
                    s.chunks > 1,
                    "seed {seed}: the parallel path did not split: {s:?}"
                );
            }
            // Whatever the random frames did to the books, they are consistent.
            books.clear();
            replay(&buf, &mut books, None, true).unwrap();
            books
                .check()
                .unwrap_or_else(|e| panic!("seed {seed} bad {bad}: {e}"));
            // ... and the small references made them meet the same orders again.
            let st = *books.stats();
            assert!(
                st.adds > 0
                    && st.deletes > 0
                    && st.executions > 0
                    && st.cancels > 0
                    && st.replaces > 0,
                "{st:?}"
            );
        }
    }
}

/// A generated feed with random bytes overwritten: parallel and serial agree, nothing panics.
#[test]
fn mutated_generated_feed_parallel_equals_serial() {
    let mut clean = Vec::new();
    generate(
        &GenConfig {
            messages: 60_000,
            symbols: 40,
            live_orders: 3_000,
            seed: 11,
        },
        &mut clean,
    )
    .unwrap();
    assert!(clean.len() > MIN_PARALLEL_BYTES);
    let mut books = Books::new(BookConfig {
        max_orders: 1 << 14,
        max_locates: 1 << 16,
        max_levels: 1 << 16,
    });
    for seed in 1..=10u64 {
        let mut rng = XorShift(seed * 0x1234_5678_9ABC_DEF1);
        let mut buf = clean.clone();
        for _ in 0..seed {
            let i = rng.below(buf.len());
            buf[i] = rng.next() as u8;
        }
        everything_agrees(&buf, &mut books, &format!("mutation seed {seed}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Specific malformed input.

fn frame(out: &mut Vec<u8>, body: &[u8]) -> usize {
    let at = out.len();
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
    at
}

fn system_event(code: u8, ts: u64) -> Vec<u8> {
    Msg::new(b'S', 12, 0, 0, ts).put(11, &[code]).done()
}

fn add(locate: u16, order_ref: u64, side: u8, shares: u32, price: u32, ts: u64) -> Vec<u8> {
    Msg::new(b'A', 36, locate, 0, ts)
        .u64(11, order_ref)
        .put(19, &[side])
        .u32(20, shares)
        .put(24, b"TEST    ")
        .u32(32, price)
        .done()
}

#[test]
fn bad_length_is_an_error_at_its_offset_or_a_lenient_skip() {
    let mut buf = Vec::new();
    frame(&mut buf, &system_event(b'O', 1_000));
    frame(&mut buf, &add(1, 1, b'B', 100, 10_000, 2_000));
    let mut short_add = add(1, 2, b'B', 100, 10_000, 3_000);
    short_add.pop(); // 35 bytes: one short
    let bad_at = frame(&mut buf, &short_add);
    frame(&mut buf, &add(1, 3, b'S', 100, 10_100, 4_000));
    let mut long_d = Msg::new(b'D', 19, 1, 0, 5_000).u64(11, 1).done();
    long_d.push(0); // 20 bytes: one long
    let bad2_at = frame(&mut buf, &long_d);
    frame(&mut buf, &system_event(b'C', 6_000));

    let want = DecodeError {
        offset: bad_at as u64,
        kind: DecodeErrorKind::BadLength {
            msg_type: b'A',
            expected: 36,
            got: 35,
        },
    };
    for th in [1, 2] {
        assert_eq!(
            inspect(&buf, opts(th)).unwrap_err(),
            InspectError::Decode(want)
        );
        let s = inspect(&buf, lenient(th)).unwrap();
        assert_eq!(s.messages, 4);
        assert_eq!(s.skipped_bad_lengths, 2);
        let first = s.first_bad_length.unwrap();
        assert!(first.contains(&format!("byte offset {bad_at}")), "{first}");
        assert_eq!(s.by_type.get("A"), Some(&2));
        assert_eq!(s.by_type.get("D"), None);
    }
    let e = InspectError::Decode(want).to_string();
    assert!(
        e.contains(&format!("byte offset {bad_at}")) && e.contains("36") && e.contains("35"),
        "{e}"
    );

    let mut books = Books::new(BookConfig::small());
    assert_eq!(
        replay(&buf, &mut books, None, false).unwrap_err(),
        InspectError::Decode(want)
    );
    books.clear();
    let r = replay(&buf, &mut books, None, true).unwrap();
    assert_eq!((r.messages, r.skipped_bad_lengths), (4, 2));
    // The long 'D' was skipped, so order 1 is still live, and order 3 too.
    assert_eq!(books.live_orders(), 2);
    assert!(bad2_at > bad_at);
    books.check().unwrap();
}

#[test]
fn unknown_type_is_a_counted_skip_with_its_offset() {
    let mut buf = Vec::new();
    frame(&mut buf, &system_event(b'O', 1_000));
    let z_at = frame(&mut buf, b"Zhello, unknown");
    frame(&mut buf, &add(1, 1, b'B', 100, 10_000, 2_000));
    frame(&mut buf, &[0xFF; 7]);
    frame(&mut buf, b"z");
    frame(&mut buf, &system_event(b'C', 3_000));
    for o in [opts(1), opts(3), lenient(1)] {
        let s = inspect(&buf, o).unwrap();
        assert_eq!(s.messages, 3);
        assert_eq!(s.first_unknown_offset, Some(z_at as u64));
        let skipped: Vec<(&str, u64)> = s
            .skipped_unknown_types
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(skipped, vec![("0x5a", 1), ("0x7a", 1), ("0xff", 1)]);
        assert_eq!(s.skipped_bad_lengths, 0);
        assert_eq!(s.bytes, buf.len() as u64);
    }
    let mut books = Books::new(BookConfig::small());
    let r = replay(&buf, &mut books, None, false).unwrap();
    assert_eq!((r.messages, r.skipped_unknown_types), (3, 3));
    assert_eq!(books.live_orders(), 1);
}

#[test]
fn zero_length_frame() {
    let mut buf = Vec::new();
    frame(&mut buf, &system_event(b'O', 1_000));
    let z_at = frame(&mut buf, &[]);
    frame(&mut buf, &system_event(b'C', 2_000));
    let want = InspectError::Decode(DecodeError {
        offset: z_at as u64,
        kind: DecodeErrorKind::Empty,
    });
    assert_eq!(inspect(&buf, opts(1)).unwrap_err(), want);
    let s = inspect(&buf, lenient(1)).unwrap();
    assert_eq!((s.messages, s.skipped_bad_lengths), (2, 1));
    let mut books = Books::new(BookConfig::small());
    assert_eq!(replay(&buf, &mut books, None, false).unwrap_err(), want);
    // A zero length prefix as the whole file: one empty frame.
    assert_eq!(
        inspect(&[0, 0], opts(1)).unwrap_err(),
        InspectError::Decode(DecodeError {
            offset: 0,
            kind: DecodeErrorKind::Empty
        })
    );
}

#[test]
fn empty_file() {
    assert_eq!(inspect(&[], opts(1)).unwrap_err(), InspectError::Empty);
    assert_eq!(inspect(&[], lenient(4)).unwrap_err(), InspectError::Empty);
    assert_eq!(InspectError::Empty.offset(), None);
    let mut books = Books::new(BookConfig::small());
    let r = replay(&[], &mut books, None, false).unwrap();
    assert_eq!(r.messages, 0);
}

// ---------------------------------------------------------------------------------------------
// The parallel walk.

#[test]
fn par_walk_on_generated_files_equals_serial_walk() {
    for (seed, messages, symbols) in [(1u64, 60_000u64, 50u32), (2, 90_000, 7), (3, 45_000, 400)] {
        let mut buf = Vec::new();
        generate(
            &GenConfig {
                messages,
                symbols,
                live_orders: messages / 20,
                seed,
            },
            &mut buf,
        )
        .unwrap();
        assert!(buf.len() > MIN_PARALLEL_BYTES, "{} bytes", buf.len());
        let serial: Vec<(u64, usize, u8)> = my_frames(&buf)
            .iter()
            .map(|&(o, n)| (o as u64, n, buf[o + 2]))
            .collect();
        assert_eq!(serial.len() as u64, messages);
        for threads in [1usize, 2, 3, 7] {
            let (parts, report) = par_walk::<Vec<(u64, usize, u8)>, FrameError, _, _>(
                &buf,
                threads,
                Vec::new,
                |v, f| {
                    v.push((f.offset, f.body.len(), f.body[0]));
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(parts.len(), report.chunks);
            if threads > 1 {
                assert!(
                    report.chunks > 1,
                    "seed {seed} threads {threads}: {report:?}"
                );
            }
            let joined: Vec<_> = parts.concat();
            assert_eq!(joined, serial, "seed {seed} threads {threads}: {report:?}");
            let s = inspect(&buf, opts(threads)).unwrap();
            assert_eq!(what(&s), what(&inspect(&buf, opts(1)).unwrap()));
            assert_eq!(s.messages, messages);
        }
    }
}

/// A timestamp regression exactly at a chunk boundary must be reported as the serial walk reports
/// it: counted, and its offset given as the first regression.
#[test]
fn regression_at_chunk_boundary_has_its_offset() {
    let mut buf = Vec::new();
    generate(
        &GenConfig {
            messages: 60_000,
            symbols: 30,
            live_orders: 3_000,
            seed: 5,
        },
        &mut buf,
    )
    .unwrap();
    // Where a two-thread walk puts its second chunk (resync looks only at types and lengths).
    let b = resync(&buf, buf.len() / 2, buf.len()).unwrap();
    // Make the message there go back in time (the header's timestamp is at body offset 5..11).
    let ts_at = b + 2 + 5;
    buf[ts_at..ts_at + 6].copy_from_slice(&1u64.to_be_bytes()[2..]);
    let serial = inspect(&buf, opts(1)).unwrap();
    assert_eq!(serial.timestamp_regressions, 1);
    assert_eq!(serial.first_regression_offset, Some(b as u64));
    let par = inspect(&buf, opts(2)).unwrap();
    assert_eq!(par.chunks, 2);
    assert_eq!(par.timestamp_regressions, 1);
    assert_eq!(par.first_regression_offset, Some(b as u64));
}

/// An add of zero shares is not a real order; the books must either refuse it (counted) or stay
/// consistent by their own `check()`.
#[test]
fn zero_share_add_keeps_books_consistent() {
    // An 'A' of 0 shares; an 'F' of 0 shares; a 'U' that replaces a good order with 0 shares.
    let f_zero = Msg::new(b'F', 40, 1, 0, 1_000)
        .u64(11, 2)
        .put(19, b"S")
        .u32(20, 0)
        .put(24, b"TEST    ")
        .u32(32, 10_100)
        .put(36, b"GSCO")
        .done();
    let u_zero = Msg::new(b'U', 35, 1, 0, 2_000)
        .u64(11, 3)
        .u64(19, 4)
        .u32(27, 0)
        .u32(31, 10_000)
        .done();
    let cases: [Vec<Vec<u8>>; 3] = [
        vec![add(1, 1, b'B', 0, 10_000, 1_000)],
        vec![f_zero],
        vec![add(1, 3, b'B', 100, 10_000, 1_000), u_zero],
    ];
    for (i, msgs) in cases.iter().enumerate() {
        let mut buf = Vec::new();
        for m in msgs {
            frame(&mut buf, m);
        }
        let mut books = Books::new(BookConfig::small());
        replay(&buf, &mut books, None, false).unwrap();
        books.check().unwrap_or_else(|e| panic!("case {i}: {e}"));
    }
}
