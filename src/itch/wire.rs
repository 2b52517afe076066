//! The ITCH 5.0 messages, one `#[repr(C)]` plain-old-data struct per type, laid out byte for byte.
//!
//! Field order and widths follow the NASDAQ TotalView-ITCH 5.0 specification (03/06/2015) plus the
//! later 'h' and 'O' messages. Every struct starts with the 11-byte [`Header`] common to all types,
//! contains only alignment-1 fields, and is tied to the spec's length by a `const` assertion, so a
//! wrong field width fails the build. Alpha fields are raw bytes, right-padded with spaces.

use super::be::{BeU16, BeU32, BeU48, BeU64};
use bytemuck::{Pod, Zeroable};

/// The first 11 bytes of every ITCH 5.0 message.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type letter (`b'A'`, `b'S'`, ...).
    pub msg_type: u8,
    /// Locate code of the security (0 for system-wide messages).
    pub stock_locate: BeU16,
    /// NASDAQ internal tracking number.
    pub tracking_number: BeU16,
    /// Nanoseconds since midnight.
    pub timestamp: BeU48,
}

macro_rules! wire {
    ($(#[$doc:meta])* $letter:literal $name:ident = $len:literal { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[doc = concat!("\n\nType `", $letter, "`, ", stringify!($len), " bytes.")]
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable, Debug, PartialEq, Eq)]
        pub struct $name {
            /// Common header: type, locate, tracking number, timestamp.
            pub hdr: Header,
            $($(#[$fdoc])* pub $field: $ty,)*
        }
        const _: () = assert!(core::mem::size_of::<$name>() == $len);
        #[allow(clippy::char_lit_as_u8)]
        impl $name {
            /// The message type letter.
            pub const TYPE: u8 = $letter as u8;
            /// The length in bytes the specification gives (type byte included).
            pub const LEN: usize = $len;
        }
    };
}

wire!(
    /// System Event: start/end of messages, system hours and market hours.
    'S' SystemEvent = 12 {
        /// `O` start of messages, `S` start of system hours, `Q` start of market hours,
        /// `M` end of market hours, `E` end of system hours, `C` end of messages.
        event_code: u8,
    }
);

wire!(
    /// Stock Directory: one per security at the start of the day; binds a locate to a symbol.
    'R' StockDirectory = 39 {
        /// Symbol, right-padded with spaces.
        stock: [u8; 8],
        /// Listing market category (`Q`, `G`, `S`, `N`, `A`, `P`, `Z`, `V`, ` `).
        market_category: u8,
        /// Financial status indicator.
        financial_status: u8,
        /// Number of shares in a round lot.
        round_lot_size: BeU32,
        /// `Y` if only round lots are accepted.
        round_lots_only: u8,
        /// Issue classification.
        issue_classification: u8,
        /// Issue sub-type (two letters).
        issue_subtype: [u8; 2],
        /// `P` live/production, `T` test.
        authenticity: u8,
        /// Reg SHO short-sale threshold indicator.
        short_sale_threshold: u8,
        /// IPO flag.
        ipo_flag: u8,
        /// LULD reference price tier.
        luld_tier: u8,
        /// Exchange-traded-product flag.
        etp_flag: u8,
        /// ETP leverage factor.
        etp_leverage_factor: BeU32,
        /// `Y` for an inverse ETP.
        inverse_indicator: u8,
    }
);

wire!(
    /// Stock Trading Action: halted, paused, quotation-only or trading.
    'H' StockTradingAction = 25 {
        /// Symbol.
        stock: [u8; 8],
        /// `H` halted, `P` paused, `Q` quotation only, `T` trading.
        trading_state: u8,
        /// Reserved.
        reserved: u8,
        /// Trading action reason code.
        reason: [u8; 4],
    }
);

wire!(
    /// Reg SHO Short Sale Price Test Restricted Indicator.
    'Y' RegShoRestriction = 20 {
        /// Symbol.
        stock: [u8; 8],
        /// `0` no test, `1` restriction intraday drop, `2` restriction remains.
        reg_sho_action: u8,
    }
);

wire!(
    /// Market Participant Position.
    'L' MarketParticipantPosition = 26 {
        /// Market participant identifier.
        mpid: [u8; 4],
        /// Symbol.
        stock: [u8; 8],
        /// `Y` primary market maker.
        primary_market_maker: u8,
        /// Market maker mode.
        market_maker_mode: u8,
        /// Market participant state.
        market_participant_state: u8,
    }
);

wire!(
    /// MWCB Decline Level: the three market-wide circuit-breaker levels (8-decimal prices).
    'V' MwcbDeclineLevel = 35 {
        /// Level 1 (Price(8)).
        level1: BeU64,
        /// Level 2 (Price(8)).
        level2: BeU64,
        /// Level 3 (Price(8)).
        level3: BeU64,
    }
);

wire!(
    /// MWCB Status: a circuit-breaker level was breached.
    'W' MwcbStatus = 12 {
        /// `1`, `2` or `3`.
        breached_level: u8,
    }
);

wire!(
    /// IPO Quoting Period Update.
    'K' IpoQuotingPeriod = 28 {
        /// Symbol.
        stock: [u8; 8],
        /// Seconds since midnight of the anticipated quotation release.
        ipo_quotation_release_time: BeU32,
        /// `A` anticipated release time, `C` canceled/postponed.
        ipo_quotation_release_qualifier: u8,
        /// IPO price (Price(4)).
        ipo_price: BeU32,
    }
);

wire!(
    /// LULD Auction Collar.
    'J' LuldAuctionCollar = 35 {
        /// Symbol.
        stock: [u8; 8],
        /// Reference price used to set the collars (Price(4)).
        auction_collar_reference_price: BeU32,
        /// Upper collar (Price(4)).
        upper_auction_collar_price: BeU32,
        /// Lower collar (Price(4)).
        lower_auction_collar_price: BeU32,
        /// Number of extensions to the reopening auction.
        auction_collar_extension: BeU32,
    }
);

wire!(
    /// Operational Halt (added after the 2015 edition; see the addendum).
    'h' OperationalHalt = 21 {
        /// Symbol.
        stock: [u8; 8],
        /// `Q` Nasdaq, `B` BX, `X` PSX.
        market_code: u8,
        /// `H` halted, `T` resumed.
        operational_halt_action: u8,
    }
);

wire!(
    /// Add Order, no MPID attribution.
    'A' AddOrder = 36 {
        /// Day-unique order reference number.
        order_ref: BeU64,
        /// `B` buy, `S` sell.
        side: u8,
        /// Displayed shares.
        shares: BeU32,
        /// Symbol.
        stock: [u8; 8],
        /// Display price (Price(4)).
        price: BeU32,
    }
);

wire!(
    /// Add Order with MPID attribution.
    'F' AddOrderMpid = 40 {
        /// Day-unique order reference number.
        order_ref: BeU64,
        /// `B` buy, `S` sell.
        side: u8,
        /// Displayed shares.
        shares: BeU32,
        /// Symbol.
        stock: [u8; 8],
        /// Display price (Price(4)).
        price: BeU32,
        /// Market participant identifier of the entering firm.
        attribution: [u8; 4],
    }
);

wire!(
    /// Order Executed at its display price.
    'E' OrderExecuted = 31 {
        /// Reference of the resting order.
        order_ref: BeU64,
        /// Shares executed.
        executed_shares: BeU32,
        /// Day-unique match number.
        match_number: BeU64,
    }
);

wire!(
    /// Order Executed With Price (a price other than the display price).
    'C' OrderExecutedWithPrice = 36 {
        /// Reference of the resting order.
        order_ref: BeU64,
        /// Shares executed.
        executed_shares: BeU32,
        /// Day-unique match number.
        match_number: BeU64,
        /// `Y` printable to the tape, `N` not.
        printable: u8,
        /// Execution price (Price(4)).
        execution_price: BeU32,
    }
);

wire!(
    /// Order Cancel: part of the order's shares are removed.
    'X' OrderCancel = 23 {
        /// Reference of the resting order.
        order_ref: BeU64,
        /// Shares removed.
        cancelled_shares: BeU32,
    }
);

wire!(
    /// Order Delete: the whole remaining order is removed.
    'D' OrderDelete = 19 {
        /// Reference of the resting order.
        order_ref: BeU64,
    }
);

wire!(
    /// Order Replace: the original order is removed and a new one takes its side and stock.
    'U' OrderReplace = 35 {
        /// Reference of the order being replaced.
        original_order_ref: BeU64,
        /// Reference of the new order.
        new_order_ref: BeU64,
        /// New displayed shares.
        shares: BeU32,
        /// New display price (Price(4)).
        price: BeU32,
    }
);

wire!(
    /// Trade (non-cross) against a non-displayed order.
    'P' Trade = 44 {
        /// Order reference (zero since 2012 for non-displayed orders).
        order_ref: BeU64,
        /// Side of the non-displayed order (`B`/`S`).
        side: u8,
        /// Shares matched.
        shares: BeU32,
        /// Symbol.
        stock: [u8; 8],
        /// Match price (Price(4)).
        price: BeU32,
        /// Day-unique match number.
        match_number: BeU64,
    }
);

wire!(
    /// Cross Trade: the bulk print of an opening, closing, IPO or halt cross.
    'Q' CrossTrade = 40 {
        /// Shares matched in the cross.
        shares: BeU64,
        /// Symbol.
        stock: [u8; 8],
        /// Cross price (Price(4)).
        cross_price: BeU32,
        /// Day-unique match number.
        match_number: BeU64,
        /// `O` opening, `C` closing, `H` halt/IPO, `I` intraday.
        cross_type: u8,
    }
);

wire!(
    /// Broken Trade: an earlier execution was broken.
    'B' BrokenTrade = 19 {
        /// Match number of the broken execution.
        match_number: BeU64,
    }
);

wire!(
    /// Net Order Imbalance Indicator (NOII), ahead of a cross.
    'I' Noii = 50 {
        /// Shares paired at the current reference price.
        paired_shares: BeU64,
        /// Shares not paired.
        imbalance_shares: BeU64,
        /// `B` buy, `S` sell, `N` none, `O` insufficient orders, `P` paused.
        imbalance_direction: u8,
        /// Symbol.
        stock: [u8; 8],
        /// Far price (Price(4)).
        far_price: BeU32,
        /// Near price (Price(4)).
        near_price: BeU32,
        /// Current reference price (Price(4)).
        current_reference_price: BeU32,
        /// `O` opening, `C` closing, `H` halt/IPO.
        cross_type: u8,
        /// Price variation indicator.
        price_variation_indicator: u8,
    }
);

wire!(
    /// Retail Price Improvement Indicator.
    'N' RetailInterest = 20 {
        /// Symbol.
        stock: [u8; 8],
        /// `B`, `S`, `A` (both) or `N` (none).
        interest_flag: u8,
    }
);

wire!(
    /// Direct Listing with Capital Raise price discovery (added after the 2015 edition).
    'O' DirectListingCapitalRaise = 48 {
        /// Symbol.
        stock: [u8; 8],
        /// `N` not eligible, `Y` eligible.
        open_eligibility_status: u8,
        /// Minimum allowable price (Price(4)).
        minimum_allowable_price: BeU32,
        /// Maximum allowable price (Price(4)).
        maximum_allowable_price: BeU32,
        /// Near execution price (Price(4)).
        near_execution_price: BeU32,
        /// Near execution time (ns since midnight).
        near_execution_time: BeU64,
        /// Lower price range collar (Price(4)).
        lower_price_range_collar: BeU32,
        /// Upper price range collar (Price(4)).
        upper_price_range_collar: BeU32,
    }
);

/// Every type letter of ITCH 5.0, in the specification's order.
pub const TYPES: [u8; 23] = *b"SRHYLVWKJhAFECXDUPQBINO";

/// The specification's length for a message type, or `None` for a letter ITCH 5.0 does not define.
///
/// A 256-entry table lookup; zero marks an unknown type.
#[inline(always)]
pub fn spec_len(msg_type: u8) -> Option<usize> {
    match LEN_TABLE[msg_type as usize] {
        0 => None,
        n => Some(n as usize),
    }
}

/// Type byte → length, 0 for unknown.
pub(crate) static LEN_TABLE: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'S' as usize] = SystemEvent::LEN as u8;
    t[b'R' as usize] = StockDirectory::LEN as u8;
    t[b'H' as usize] = StockTradingAction::LEN as u8;
    t[b'Y' as usize] = RegShoRestriction::LEN as u8;
    t[b'L' as usize] = MarketParticipantPosition::LEN as u8;
    t[b'V' as usize] = MwcbDeclineLevel::LEN as u8;
    t[b'W' as usize] = MwcbStatus::LEN as u8;
    t[b'K' as usize] = IpoQuotingPeriod::LEN as u8;
    t[b'J' as usize] = LuldAuctionCollar::LEN as u8;
    t[b'h' as usize] = OperationalHalt::LEN as u8;
    t[b'A' as usize] = AddOrder::LEN as u8;
    t[b'F' as usize] = AddOrderMpid::LEN as u8;
    t[b'E' as usize] = OrderExecuted::LEN as u8;
    t[b'C' as usize] = OrderExecutedWithPrice::LEN as u8;
    t[b'X' as usize] = OrderCancel::LEN as u8;
    t[b'D' as usize] = OrderDelete::LEN as u8;
    t[b'U' as usize] = OrderReplace::LEN as u8;
    t[b'P' as usize] = Trade::LEN as u8;
    t[b'Q' as usize] = CrossTrade::LEN as u8;
    t[b'B' as usize] = BrokenTrade::LEN as u8;
    t[b'I' as usize] = Noii::LEN as u8;
    t[b'N' as usize] = RetailInterest::LEN as u8;
    t[b'O' as usize] = DirectListingCapitalRaise::LEN as u8;
    t
};
