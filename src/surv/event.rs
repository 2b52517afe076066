//! What a detector sees: every feed message classified once, with the order it touches looked up
//! in the book *before* the book forgets it, and the stock's touch before and after.

use crate::agg::Touch;
use crate::book::Books;
use crate::itch::{Message, Side};

/// A participant identifier: an MPID (4 bytes) or a firm's account id (up to 12 bytes), ASCII,
/// padded with zero bytes. All zero = unknown (an anonymous order).
pub type Party = [u8; 12];

/// No participant.
pub const NOBODY: Party = [0; 12];

/// A [`Party`] from an MPID (all-zero MPIDs are anonymous: [`NOBODY`]).
#[inline]
pub fn party_of_mpid(mpid: [u8; 4]) -> Party {
    let mut p = NOBODY;
    p[..4].copy_from_slice(&mpid);
    p
}

/// A [`Party`] from a name of 1..=12 ASCII graphic characters (`None` otherwise).
pub fn party_of_name(name: &str) -> Option<Party> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > 12 || !b.iter().all(|c| c.is_ascii_graphic()) {
        return None;
    }
    let mut p = NOBODY;
    p[..b.len()].copy_from_slice(b);
    Some(p)
}

/// The printable name of a party (empty for [`NOBODY`]).
pub fn party_name(p: &Party) -> &str {
    let n = p.iter().position(|&c| c == 0).unwrap_or(p.len());
    std::str::from_utf8(&p[..n]).unwrap_or("?")
}

/// What a message does, with the resting order's details where it refers to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// A new displayed order (A, or F with the MPID in `party`).
    Add {
        /// Order reference.
        order_ref: u64,
        /// Side.
        side: Side,
        /// Price(4).
        price: u32,
        /// Shares.
        shares: u32,
        /// The attributed MPID, or [`NOBODY`].
        party: Party,
    },
    /// A resting order executed (E, or C with its own price): `side` is the *resting* order's
    /// side, so the aggressor traded the other side.
    Exec {
        /// Resting order.
        order_ref: u64,
        /// Resting side.
        side: Side,
        /// Trade price (the order's price for E, the stated price for C).
        price: u32,
        /// Shares executed.
        shares: u32,
        /// Shares left resting after it.
        remaining: u32,
        /// The resting order's MPID, or [`NOBODY`].
        party: Party,
        /// Match number.
        match_number: u64,
        /// False for a non-printable C (its volume is reported elsewhere).
        printable: bool,
    },
    /// Shares taken off a resting order by its owner: a partial cancel (X) or a delete (D).
    Cancel {
        /// Order reference.
        order_ref: u64,
        /// Side.
        side: Side,
        /// Price(4).
        price: u32,
        /// Shares removed.
        shares: u32,
        /// Shares left (0 after a delete).
        remaining: u32,
        /// The order's MPID, or [`NOBODY`].
        party: Party,
    },
    /// A replace (U): the old order is gone, the new one rests (same side and owner).
    Replace {
        /// The replaced order.
        old_ref: u64,
        /// The new order.
        new_ref: u64,
        /// Side.
        side: Side,
        /// The old price.
        old_price: u32,
        /// The old remaining shares.
        old_shares: u32,
        /// The new price.
        price: u32,
        /// The new shares.
        shares: u32,
        /// The owner's MPID, or [`NOBODY`].
        party: Party,
    },
    /// A trade against a non-displayed order (P): `side` is the non-displayed order's side.
    Trade {
        /// Side of the hidden order.
        side: Side,
        /// Price(4).
        price: u32,
        /// Shares.
        shares: u32,
        /// Match number.
        match_number: u64,
    },
    /// A cross (Q): opening, closing, halt or IPO.
    Cross {
        /// Price(4).
        price: u32,
        /// Shares.
        shares: u64,
        /// `O`, `C`, `H` or `I`.
        cross_type: u8,
    },
    /// An imbalance indicator (NOII).
    Imbalance {
        /// Paired shares.
        paired: u64,
        /// Imbalance shares.
        imbalance: u64,
        /// `B`, `S`, `N`, `O` or `P`.
        direction: u8,
        /// Current reference price: where the paired shares would cross, Price(4) (0: none).
        reference: u32,
        /// Near indicative clearing price: the cross price with the continuous book and the
        /// auction's orders, Price(4) (0: none).
        near: u32,
        /// Far indicative clearing price: the cross price with the auction's orders only,
        /// Price(4) (0: none).
        far: u32,
        /// `O`, `C` or `H`.
        cross_type: u8,
    },
    /// An execution, cancel or replace of an order the book does not know (counted by the book).
    Unknown,
    /// A system event (S): `O` start of messages, `S` start of system hours, `Q` start of market
    /// hours, `M` end of market hours, `E` end of system hours, `C` end of messages.
    System {
        /// Its event code.
        code: u8,
    },
    /// Any other message (its type letter).
    Other(u8),
}

/// One classified message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SurvEvent {
    /// Feed position (wraps after 2³²).
    pub seq: u32,
    /// Event time, ns since midnight.
    pub ts: u64,
    /// Stock locate (0 for market-wide messages).
    pub locate: u16,
    /// What happened.
    pub kind: Kind,
    /// The stock's touch before the message.
    pub before: Touch,
    /// The stock's touch after it (set by [`crate::surv::Surveillance`] once the book applied it).
    pub after: Touch,
}

impl SurvEvent {
    /// Classifies `msg` against `books` *before* the books apply it (an execution or delete may
    /// remove the order it names). `after` is left equal to `before`.
    pub fn classify(msg: &Message<'_>, books: &Books, seq: u32) -> SurvEvent {
        let locate = msg.stock_locate();
        let order = |r: u64| books.orders().get(r, locate).copied();
        let side_of = |b: u8| if b == b'S' { Side::Sell } else { Side::Buy };
        let kind = match *msg {
            Message::AddOrder(m) => Kind::Add {
                order_ref: m.order_ref.get(),
                side: side_of(m.side),
                price: m.price.get(),
                shares: m.shares.get(),
                party: NOBODY,
            },
            Message::AddOrderMpid(m) => Kind::Add {
                order_ref: m.order_ref.get(),
                side: side_of(m.side),
                price: m.price.get(),
                shares: m.shares.get(),
                party: party_of_mpid(m.attribution),
            },
            Message::OrderExecuted(m) => match order(m.order_ref.get()) {
                Some(o) => Kind::Exec {
                    order_ref: m.order_ref.get(),
                    side: side_of(o.side),
                    price: o.price,
                    shares: m.executed_shares.get(),
                    remaining: o.shares.saturating_sub(m.executed_shares.get()),
                    party: party_of_mpid(o.mpid),
                    match_number: m.match_number.get(),
                    printable: true,
                },
                None => Kind::Unknown,
            },
            Message::OrderExecutedWithPrice(m) => match order(m.order_ref.get()) {
                Some(o) => Kind::Exec {
                    order_ref: m.order_ref.get(),
                    side: side_of(o.side),
                    price: m.execution_price.get(),
                    shares: m.executed_shares.get(),
                    remaining: o.shares.saturating_sub(m.executed_shares.get()),
                    party: party_of_mpid(o.mpid),
                    match_number: m.match_number.get(),
                    printable: m.printable == b'Y',
                },
                None => Kind::Unknown,
            },
            Message::OrderCancel(m) => match order(m.order_ref.get()) {
                Some(o) => {
                    let n = m.cancelled_shares.get().min(o.shares);
                    Kind::Cancel {
                        order_ref: m.order_ref.get(),
                        side: side_of(o.side),
                        price: o.price,
                        shares: n,
                        remaining: o.shares - n,
                        party: party_of_mpid(o.mpid),
                    }
                }
                None => Kind::Unknown,
            },
            Message::OrderDelete(m) => match order(m.order_ref.get()) {
                Some(o) => Kind::Cancel {
                    order_ref: m.order_ref.get(),
                    side: side_of(o.side),
                    price: o.price,
                    shares: o.shares,
                    remaining: 0,
                    party: party_of_mpid(o.mpid),
                },
                None => Kind::Unknown,
            },
            Message::OrderReplace(m) => match order(m.original_order_ref.get()) {
                Some(o) => Kind::Replace {
                    old_ref: m.original_order_ref.get(),
                    new_ref: m.new_order_ref.get(),
                    side: side_of(o.side),
                    old_price: o.price,
                    old_shares: o.shares,
                    price: m.price.get(),
                    shares: m.shares.get(),
                    party: party_of_mpid(o.mpid),
                },
                None => Kind::Unknown,
            },
            Message::Trade(m) => Kind::Trade {
                side: side_of(m.side),
                price: m.price.get(),
                shares: m.shares.get(),
                match_number: m.match_number.get(),
            },
            Message::CrossTrade(m) => Kind::Cross {
                price: m.cross_price.get(),
                shares: m.shares.get(),
                cross_type: m.cross_type,
            },
            Message::Noii(m) => Kind::Imbalance {
                paired: m.paired_shares.get(),
                imbalance: m.imbalance_shares.get(),
                direction: m.imbalance_direction,
                reference: m.current_reference_price.get(),
                near: m.near_price.get(),
                far: m.far_price.get(),
                cross_type: m.cross_type,
            },
            Message::SystemEvent(m) => Kind::System { code: m.event_code },
            ref other => Kind::Other(other.msg_type()),
        };
        let before = if locate == 0 {
            Touch::default()
        } else {
            Touch::of(books, locate)
        };
        SurvEvent {
            seq,
            ts: msg.timestamp(),
            locate,
            kind,
            before,
            after: before,
        }
    }

    /// The participant the message is attributed to, or [`NOBODY`].
    pub fn party(&self) -> Party {
        match self.kind {
            Kind::Add { party, .. }
            | Kind::Exec { party, .. }
            | Kind::Cancel { party, .. }
            | Kind::Replace { party, .. } => party,
            _ => NOBODY,
        }
    }

    /// Whether this is a trade: an execution (printable), a hidden print or a cross.
    pub fn trade(&self) -> Option<(u32, u64)> {
        match self.kind {
            Kind::Exec {
                price,
                shares,
                printable: true,
                ..
            } => Some((price, shares as u64)),
            Kind::Trade { price, shares, .. } => Some((price, shares as u64)),
            Kind::Cross { price, shares, .. } if shares > 0 => Some((price, shares)),
            _ => None,
        }
    }

    /// The mid after the message, in Price(4) units ×2 (bid + ask), when both sides are quoted.
    pub fn mid2(&self) -> Option<u64> {
        (self.after.bid_shares > 0 && self.after.ask_shares > 0)
            .then(|| self.after.bid as u64 + self.after.ask as u64)
    }
}
