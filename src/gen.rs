//! Deterministic synthetic ITCH 5.0 feeds: a whole trading day, consistent with a real book.
//!
//! The generator keeps its own record of every live order (a slab, with per-stock per-side lists
//! and a list of all live orders for uniform picks), so every delete, cancel, execution and replace
//! it writes names a live order with enough shares, prices never cross the other side's best, and
//! timestamps never go backwards. A pre-open session (04:00-09:30) builds the book up to
//! `live_orders` with mostly adds (at most 40 % of the file), as resting orders accumulate before a
//! real open. Continuous trading (09:30-16:00) then follows the mix of a NASDAQ day: ≈45 % adds (≈15 % of them 'F' with
//! an MPID), ≈35 % deletes, replaces, partial cancels, executions at the touch (some 'C' with a
//! price), hidden-order trades 'P', and opening/closing crosses 'Q' per stock. The live-order count
//! is held at or below `live_orders` by turning adds into deletes, which is how the benchmarks
//! reach ≈2 M live orders over ≈8,000 stocks. Order lifetimes are skewed short: half
//! of all removals hit one of the 1,024 most recent live orders, the rest any live order.
//!
//! Before the closing cross come its Net Order Imbalance Indicators ('I', cross type 'C'). NASDAQ
//! disseminates them in the ten minutes before the close, every 5 seconds (ITCH 5.0 §4.6), for
//! every stock; to keep the message count sane the generator writes one round of them for every
//! stock every 20 s over the last ten minutes (30 rounds; the lead is at most half of a
//! compressed session, and the rounds at most 2 % of the flow, so small feeds get fewer). They
//! are counted in the fixed messages of the `--messages` total, like the directory and the
//! crosses. Each is consistent with the stock's book at its time: the current reference price is
//! the mid clamped inside the touch, the near and far indicative prices lie on the imbalance's
//! side of it, ordinary imbalances are up to 30 % of the paired shares (either side, or none). On
//! a stock a `close` episode is marking, from the episode's start, the NOIIs show its pressure: a
//! buy imbalance of 1.5–2.5× the paired shares, the reference following the price the sweeps
//! lift. The NOIIs draw on a random stream of their own, so the rest of the feed is the same
//! with them as without.
//!
//! Randomness is a SplitMix64 stream from the seed: the same arguments give the same bytes on
//! every platform and every version of this crate's dependencies.

use crate::itch::be::{BeU32, BeU64};
use crate::itch::encode::{common_stock, header, FrameWriter};
use crate::itch::wire::*;
/// The generator's random stream (in [`crate::rng`]; re-exported for older users).
pub use crate::rng::SplitMix64;
use crate::scenario::{Action, EpisodeCtx, Op, Px, ScenarioKind, Script};
use crate::surv::flow::{FlowEvent, FlowRecord};
use crate::truth::Episode;
use std::io::Write;

/// Arguments that cannot make a valid day, or output that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// The continuous session is not 2 s to 6.5 h long.
    #[error("the session must be 2 s to 6.5 h long, got {0} ns")]
    Session(u64),
    /// No symbols, or more than stock locates can name.
    #[error("--symbols must be 1..=65535, got {0}")]
    Symbols(u32),
    /// Fewer messages than the fixed ones (directory, system events, crosses).
    #[error(
        "--messages {messages} is too few for {symbols} symbols: the directory, the system events and the opening and closing crosses alone take {fixed}"
    )]
    TooFewMessages {
        /// Messages asked for.
        messages: u64,
        /// Symbols asked for.
        symbols: u32,
        /// Messages the fixed part takes.
        fixed: u64,
    },
    /// Writing the feed failed.
    #[error("writing the feed")]
    Io(#[from] std::io::Error),
}

type Result<T, E = GenError> = std::result::Result<T, E>;

/// What [`generate_scenarios`] made: the report, the episodes played (the ground truth) and the
/// firm's participant flow (when a scenario needs it).
pub type Generated = (GenReport, Vec<Episode>, Option<Vec<FlowRecord>>);

/// Generator parameters.
#[derive(Clone, Debug)]
pub struct GenConfig {
    /// Total messages in the file, system and directory messages included.
    pub messages: u64,
    /// Number of stocks (locates `1..=symbols`).
    pub symbols: u32,
    /// Live orders to ramp up to and then hold.
    pub live_orders: u64,
    /// RNG seed.
    pub seed: u64,
}

/// What was written.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct GenReport {
    /// Messages written.
    pub messages: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Highest number of live orders reached.
    pub peak_live_orders: u64,
    /// Messages by type letter (index by the byte).
    #[serde(skip)]
    pub by_type: Vec<u64>,
}

/// MPIDs used for attributed adds.
pub const MPIDS: [&[u8; 4]; 10] = [
    b"GSCO", b"MSCO", b"UBSS", b"JPMS", b"CDRG", b"NITE", b"VIRT", b"SUSQ", b"XTXM", b"HRTF",
];

const TICK: u32 = 100; // one cent in Price(4)
const PREOPEN_NS: u64 = 14_400_000_000_000; // 04:00
const OPEN_NS: u64 = 34_200_000_000_000; // 09:30
const CLOSE_NS: u64 = 57_600_000_000_000; // 16:00
const NO_ORDER: u32 = u32::MAX;
/// Size of the "recent orders" window that half of all removals pick from.
const RECENT: u64 = 1024;

#[derive(Clone, Copy, Debug)]
struct GenOrder {
    order_ref: u64,
    locate: u16,
    side: u8,
    price: u32,
    shares: u32,
    pos_live: u32,
    pos_side: u32,
    /// 0: background; else the episode (index + 1) that owns it — the background never
    /// deletes, cancels, replaces or executes it.
    owner: u32,
    /// The participant-flow account index + 1 (0: not in the flow).
    account: u8,
}

#[derive(Clone, Debug, Default)]
struct StockState {
    mid: u32,
    /// Slab ids of live orders, `[bids, asks]`.
    sides: [Vec<u32>; 2],
    /// Cached best price per side; `None` when it must be recomputed.
    best: [Option<u32>; 2],
}

struct Gen<W: Write> {
    out: FrameWriter<W>,
    rng: SplitMix64,
    slab: Vec<GenOrder>,
    free: Vec<u32>,
    live: Vec<u32>,
    stocks: Vec<StockState>,
    ts: u64,
    next_ref: u64,
    next_match: u64,
    by_type: Vec<u64>,
    peak: u64,
    /// Live orders are held at or below this.
    live_cap: u64,
    /// The firm's participant flow, when one is written.
    flow: Option<Vec<FlowRecord>>,
    /// Episodes being played.
    eps: Vec<Running>,
    /// The closing-cross NOII schedule.
    noii: NoiiPlan,
}

/// When the closing cross's NOIIs are written: `rounds` rounds, every `every_ns` from `from`,
/// each one NOII per stock; their own random stream, so the background and the episodes are
/// the same with or without them.
#[derive(Clone, Debug)]
struct NoiiPlan {
    from: u64,
    every_ns: u64,
    rounds: u64,
    /// Rounds written.
    done: u64,
    rng: SplitMix64,
}

impl NoiiPlan {
    /// The time of the next round, if any.
    fn next(&self) -> Option<u64> {
        (self.done < self.rounds).then(|| self.from + self.done * self.every_ns)
    }
}

/// NASDAQ disseminates the closing cross's NOIIs in the last ten minutes before the close.
const NOII_LEAD_NS: u64 = 600_000_000_000;
/// NOII rounds at most (one NOII per stock each): every 20 s over the ten minutes.
const NOII_ROUNDS: u64 = 30;

/// The NOII schedule of a session `[open, close)` with `symbols` stocks and `flow` messages
/// besides the fixed ones: rounds over the last ten minutes (at most half the session), at
/// most [`NOII_ROUNDS`] and at most 2 % of the flow.
fn noii_plan(open: u64, close: u64, symbols: u32, flow: u64, seed: u64) -> NoiiPlan {
    let lead = NOII_LEAD_NS.min((close - open) / 2);
    let rounds = NOII_ROUNDS.min(flow / (50 * symbols.max(1) as u64));
    let every_ns = lead / rounds.max(1);
    NoiiPlan {
        from: close - lead + every_ns / 2,
        every_ns,
        rounds,
        done: 0,
        rng: SplitMix64::new(seed ^ 0x4E01_1C05_u64.wrapping_mul(0x9E37_79B9)),
    }
}

/// The MPID of the firm whose participant flow is written (one of [`MPIDS`]).
pub const FIRM: [u8; 4] = *b"GSCO";
/// The firm's accounts: `ACCT01` … `ACCT08`.
pub const ACCOUNTS: u8 = 8;

/// The name of firm account `i` (1-based).
pub fn account_name(i: u8) -> crate::surv::Party {
    crate::surv::event::party_of_name(&format!("ACCT{i:02}")).expect("a valid name")
}

/// An episode being played.
#[derive(Clone, Debug)]
struct Running {
    kind: ScenarioKind,
    ctx: EpisodeCtx,
    script: Script,
    /// Next action.
    next: usize,
    /// Slab id per handle (`NO_ORDER`: none).
    handles: [u32; 16],
    /// The two accounts' indices (1-based).
    accounts: [u8; 2],
}

fn symbol_for(i: u32) -> [u8; 8] {
    // Base-26 names, 2..=5 letters: A0AA style avoided; deterministic and unique.
    let mut s = [b' '; 8];
    let mut n = i as u64 + 26 * 26; // start at three letters
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (n % 26) as u8);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    letters.reverse();
    s[..letters.len()].copy_from_slice(&letters);
    s
}

/// The symbol the generator gives locate `locate` (1-based).
pub fn symbol_of_locate(locate: u16) -> [u8; 8] {
    symbol_for(locate as u32 - 1)
}

impl<W: Write> Gen<W> {
    fn emit<M: bytemuck::Pod>(&mut self, msg: &M, t: u8) -> Result<()> {
        self.out.write(msg)?;
        self.by_type[t as usize] += 1;
        Ok(())
    }

    fn system(&mut self, code: u8, ts: u64) -> Result<()> {
        let m = SystemEvent {
            hdr: header(b'S', 0, 0, ts),
            event_code: code,
        };
        self.emit(&m, b'S')
    }

    fn best(&mut self, locate: usize, side: usize) -> Option<u32> {
        if let Some(p) = self.stocks[locate].best[side] {
            return Some(p);
        }
        let ids = &self.stocks[locate].sides[side];
        let it = ids.iter().map(|&id| self.slab[id as usize].price);
        let b = if side == 0 { it.max() } else { it.min() };
        self.stocks[locate].best[side] = b;
        b
    }

    /// Slab id of the best-priced, oldest order on a side.
    fn best_order(&self, locate: usize, side: usize) -> Option<u32> {
        let ids = &self.stocks[locate].sides[side];
        let better = |a: &GenOrder, b: &GenOrder| {
            let pa = if side == 0 { a.price } else { !a.price };
            let pb = if side == 0 { b.price } else { !b.price };
            pa > pb || (pa == pb && a.order_ref < b.order_ref)
        };
        let mut best: Option<u32> = None;
        for &id in ids {
            if self.slab[id as usize].owner != 0 {
                continue;
            }
            match best {
                Some(b) if !better(&self.slab[id as usize], &self.slab[b as usize]) => {}
                _ => best = Some(id),
            }
        }
        best
    }

    fn insert(&mut self, o: GenOrder) -> u32 {
        let id = match self.free.pop() {
            Some(id) => id,
            None => {
                self.slab.push(o);
                (self.slab.len() - 1) as u32
            }
        };
        let si = (o.side == b'S') as usize;
        let st = &mut self.stocks[o.locate as usize];
        let pos_side = st.sides[si].len() as u32;
        st.sides[si].push(id);
        if let Some(b) = st.best[si] {
            st.best[si] = Some(if si == 0 {
                b.max(o.price)
            } else {
                b.min(o.price)
            });
        } else if st.sides[si].len() == 1 {
            st.best[si] = Some(o.price);
        }
        let pos_live = self.live.len() as u32;
        self.live.push(id);
        self.slab[id as usize] = GenOrder {
            pos_live,
            pos_side,
            ..o
        };
        self.peak = self.peak.max(self.live.len() as u64);
        id
    }

    fn remove(&mut self, id: u32) {
        let o = self.slab[id as usize];
        let si = (o.side == b'S') as usize;
        let st = &mut self.stocks[o.locate as usize];
        let v = &mut st.sides[si];
        v.swap_remove(o.pos_side as usize);
        if let Some(&moved) = v.get(o.pos_side as usize) {
            self.slab[moved as usize].pos_side = o.pos_side;
        }
        if st.best[si] == Some(o.price) {
            st.best[si] = None;
        }
        self.live.swap_remove(o.pos_live as usize);
        if let Some(&moved) = self.live.get(o.pos_live as usize) {
            self.slab[moved as usize].pos_live = o.pos_live;
        }
        self.slab[id as usize].pos_live = NO_ORDER;
        self.free.push(id);
    }

    fn pick_stock(&mut self) -> usize {
        // Quadratic skew: low locates are busier, as real activity concentrates in few names.
        let n = self.stocks.len() as u64 - 1;
        let u = self.rng.unit();
        1 + ((u * u * n as f64) as u64).min(n - 1) as usize
    }

    fn lot(&mut self) -> u32 {
        if self.rng.chance(0.1) {
            1 + self.rng.below(99) as u32 // odd lot
        } else {
            100 * self.rng.geometric(0.5, 50)
        }
    }

    fn quote_price(&mut self, locate: usize, si: usize) -> u32 {
        let d = self.rng.geometric(0.72, 200);
        let mid = self.stocks[locate].mid;
        if si == 0 {
            let mut p = mid.saturating_sub(d * TICK).max(TICK);
            if let Some(a) = self.best(locate, 1) {
                p = p.min(a.saturating_sub(TICK));
            }
            p.max(TICK)
        } else {
            let mut p = mid + d * TICK;
            if let Some(b) = self.best(locate, 0) {
                p = p.max(b + TICK);
            }
            p
        }
    }

    fn add(&mut self) -> Result<()> {
        let locate = self.pick_stock();
        let si = self.rng.below(2) as usize;
        let mut price = self.quote_price(locate, si);
        if si == 0 && self.best(locate, 1).is_some_and(|a| price >= a) {
            // No room below the ask (ask at one tick): quote the other side instead.
            let p = self.quote_price(locate, 1);
            return self.add_at(locate, 1, p);
        }
        price = price.max(TICK);
        self.add_at(locate, si, price)
    }

    fn add_at(&mut self, locate: usize, si: usize, price: u32) -> Result<()> {
        let shares = self.lot();
        let side = if si == 0 { b'B' } else { b'S' };
        let mut account = 0;
        let mut mpid = None;
        if self.rng.chance(0.15) {
            let m = *MPIDS[self.rng.below(MPIDS.len() as u64) as usize];
            if self.flow.is_some() && m == FIRM {
                account = 1 + self.rng.below(ACCOUNTS as u64) as u8;
            }
            mpid = Some(m);
        }
        self.add_order(locate as u16, side, price, shares, mpid, 0, account)?;
        Ok(())
    }

    /// Writes a new order ('F' with `mpid`, else 'A') and returns its reference.
    fn write_add(
        &mut self,
        locate: u16,
        side: u8,
        price: u32,
        shares: u32,
        mpid: Option<[u8; 4]>,
    ) -> Result<u64> {
        let order_ref = self.next_ref;
        self.next_ref += 1;
        let stock = symbol_for(locate as u32 - 1);
        match mpid {
            Some(attribution) => {
                let m = AddOrderMpid {
                    hdr: header(b'F', locate, 0, self.ts),
                    order_ref: BeU64::new(order_ref),
                    side,
                    shares: BeU32::new(shares),
                    stock,
                    price: BeU32::new(price),
                    attribution,
                };
                self.emit(&m, b'F')?;
            }
            None => {
                let m = AddOrder {
                    hdr: header(b'A', locate, 0, self.ts),
                    order_ref: BeU64::new(order_ref),
                    side,
                    shares: BeU32::new(shares),
                    stock,
                    price: BeU32::new(price),
                };
                self.emit(&m, b'A')?;
            }
        }
        Ok(order_ref)
    }

    /// A new resting order of `owner` (0: the background; else the episode index + 1), in the
    /// participant flow when `account` is not 0; returns its slab id.
    #[allow(clippy::too_many_arguments)]
    fn add_order(
        &mut self,
        locate: u16,
        side: u8,
        price: u32,
        shares: u32,
        mpid: Option<[u8; 4]>,
        owner: u32,
        account: u8,
    ) -> Result<u32> {
        let order_ref = self.write_add(locate, side, price, shares, mpid)?;
        let id = self.insert(GenOrder {
            order_ref,
            locate,
            side,
            price,
            shares,
            pos_live: 0,
            pos_side: 0,
            owner,
            account,
        });
        if account != 0 {
            self.flow_record(
                FlowEvent::New,
                account,
                locate,
                side,
                order_ref,
                price,
                shares,
                0,
            );
        }
        Ok(id)
    }

    /// A live order to delete, cancel or replace. Real order lifetimes are heavily skewed to the
    /// short (most quotes are pulled within moments), so half the picks come from the most recent
    /// [`RECENT`] entries of the live list, the rest uniformly from all live orders.
    fn random_live(&mut self) -> Option<u32> {
        let n = self.live.len() as u64;
        if n == 0 {
            return None;
        }
        let i = if self.rng.chance(0.5) {
            n - 1 - self.rng.below(n.min(RECENT))
        } else {
            self.rng.below(n)
        };
        let id = self.live[i as usize];
        // An episode's orders are its script's alone.
        (self.slab[id as usize].owner == 0).then_some(id)
    }

    fn delete(&mut self, id: u32) -> Result<()> {
        let o = self.slab[id as usize];
        let m = OrderDelete {
            hdr: header(b'D', o.locate, 0, self.ts),
            order_ref: BeU64::new(o.order_ref),
        };
        self.emit(&m, b'D')?;
        if o.account != 0 {
            self.flow_record(
                FlowEvent::Cancel,
                o.account,
                o.locate,
                o.side,
                o.order_ref,
                o.price,
                o.shares,
                0,
            );
        }
        self.remove(id);
        Ok(())
    }

    fn cancel(&mut self, id: u32) -> Result<()> {
        let o = self.slab[id as usize];
        if o.shares < 2 {
            return self.delete(id);
        }
        let n = 1 + self.rng.below(o.shares as u64 - 1) as u32;
        let m = OrderCancel {
            hdr: header(b'X', o.locate, 0, self.ts),
            order_ref: BeU64::new(o.order_ref),
            cancelled_shares: BeU32::new(n),
        };
        self.emit(&m, b'X')?;
        if o.account != 0 {
            self.flow_record(
                FlowEvent::Cancel,
                o.account,
                o.locate,
                o.side,
                o.order_ref,
                o.price,
                n,
                0,
            );
        }
        self.slab[id as usize].shares -= n;
        Ok(())
    }

    fn replace(&mut self, id: u32) -> Result<()> {
        let o = self.slab[id as usize];
        let si = (o.side == b'S') as usize;
        self.remove(id);
        let price = self.quote_price(o.locate as usize, si);
        let crosses = match si {
            0 => self.best(o.locate as usize, 1).is_some_and(|a| price >= a),
            _ => self.best(o.locate as usize, 0).is_some_and(|b| price <= b),
        };
        let price = if crosses { o.price } else { price };
        let shares = self.lot();
        let new_ref = self.next_ref;
        self.next_ref += 1;
        let m = OrderReplace {
            hdr: header(b'U', o.locate, 0, self.ts),
            original_order_ref: BeU64::new(o.order_ref),
            new_order_ref: BeU64::new(new_ref),
            shares: BeU32::new(shares),
            price: BeU32::new(price),
        };
        self.emit(&m, b'U')?;
        if o.account != 0 {
            self.flow_record(
                FlowEvent::Cancel,
                o.account,
                o.locate,
                o.side,
                o.order_ref,
                o.price,
                o.shares,
                0,
            );
            self.flow_record(
                FlowEvent::New,
                o.account,
                o.locate,
                o.side,
                new_ref,
                price,
                shares,
                0,
            );
        }
        self.insert(GenOrder {
            order_ref: new_ref,
            price,
            shares,
            ..o
        });
        Ok(())
    }

    /// An add, unless the live-order cap is reached, then a delete: the fallback of events that
    /// find nothing to act on.
    fn add_within_cap(&mut self) -> Result<()> {
        if self.live.len() as u64 >= self.live_cap {
            self.delete_random()
        } else {
            self.add()
        }
    }

    fn execute(&mut self) -> Result<()> {
        let locate = self.pick_stock();
        let si = self.rng.below(2) as usize;
        let Some(id) = self.best_order(locate, si) else {
            return self.add_within_cap();
        };
        let o = self.slab[id as usize];
        let n = self.lot().min(o.shares);
        let match_number = self.next_match;
        self.next_match += 1;
        if self.rng.chance(0.1) {
            let m = OrderExecutedWithPrice {
                hdr: header(b'C', o.locate, 0, self.ts),
                order_ref: BeU64::new(o.order_ref),
                executed_shares: BeU32::new(n),
                match_number: BeU64::new(match_number),
                printable: if self.rng.chance(0.9) { b'Y' } else { b'N' },
                execution_price: BeU32::new(o.price),
            };
            self.emit(&m, b'C')?;
        } else {
            let m = OrderExecuted {
                hdr: header(b'E', o.locate, 0, self.ts),
                order_ref: BeU64::new(o.order_ref),
                executed_shares: BeU32::new(n),
                match_number: BeU64::new(match_number),
            };
            self.emit(&m, b'E')?;
        }
        let mut aggressor = 0;
        if self.flow.is_some() && self.rng.chance(0.05) {
            // The firm aggresses now and then, from an account other than the resting one's: its
            // fill is in the flow too (the public feed shows only the resting order).
            aggressor = 1 + self.rng.below(ACCOUNTS as u64) as u8;
            if aggressor == o.account {
                aggressor = aggressor % ACCOUNTS + 1;
            }
        }
        self.executed(id, n, match_number, aggressor);
        // The aggressor pushes the mid toward the side it took out.
        let st = &mut self.stocks[locate];
        if self.rng.chance(0.3) {
            st.mid = if si == 1 {
                st.mid + TICK
            } else {
                st.mid.saturating_sub(TICK).max(2 * TICK)
            };
        }
        Ok(())
    }

    fn hidden_trade(&mut self) -> Result<()> {
        let locate = self.pick_stock();
        let match_number = self.next_match;
        self.next_match += 1;
        let shares = self.lot();
        let m = Trade {
            hdr: header(b'P', locate as u16, 0, self.ts),
            order_ref: BeU64::new(0),
            side: if self.rng.chance(0.5) { b'B' } else { b'S' },
            shares: BeU32::new(shares),
            stock: symbol_for(locate as u32 - 1),
            price: BeU32::new(self.stocks[locate].mid),
            match_number: BeU64::new(match_number),
        };
        self.emit(&m, b'P')
    }

    fn cross(&mut self, locate: usize, cross_type: u8) -> Result<()> {
        let match_number = self.next_match;
        self.next_match += 1;
        let shares = 100 * (1 + self.rng.below(500));
        let m = CrossTrade {
            hdr: header(b'Q', locate as u16, 0, self.ts),
            shares: BeU64::new(shares),
            stock: symbol_for(locate as u32 - 1),
            cross_price: BeU32::new(self.stocks[locate].mid),
            match_number: BeU64::new(match_number),
            cross_type,
        };
        self.emit(&m, b'Q')
    }

    /// One closing-cross NOII for `locate`, consistent with its book: the reference price
    /// inside the touch (the mid, clamped into it), the near and far indicative prices on the
    /// imbalance's side of it. Ordinary imbalances are up to 30 % of the paired shares, either
    /// side (or none); a stock being marked (`pushed`) shows the manipulator's market-on-close
    /// buying: a buy imbalance of 1.5–2.5× the paired shares, the indicative prices above the
    /// reference.
    fn noii(&mut self, locate: usize, pushed: bool) -> Result<()> {
        let bid = self.best(locate, 0);
        let ask = self.best(locate, 1);
        let mut reference = self.stocks[locate].mid;
        if let Some(a) = ask {
            reference = reference.min(a);
        }
        if let Some(b) = bid {
            reference = reference.max(b);
        }
        let r = &mut self.noii.rng;
        let paired = 100 * (10 + r.below(2_000));
        let (direction, imbalance) = if pushed {
            (b'B', paired * (150 + r.below(100)) / 100 / 100 * 100)
        } else if r.chance(0.1) {
            (b'N', 0)
        } else {
            let side = if r.chance(0.5) { b'B' } else { b'S' };
            (side, paired * r.below(31) / 100 / 100 * 100)
        };
        let near_ticks = if direction == b'N' {
            0
        } else {
            r.below(3) as u32
        };
        let far_ticks = if direction == b'N' {
            0
        } else {
            near_ticks + 1 + r.below(5) as u32
        };
        let off = |t: u32| {
            if direction == b'S' {
                reference.saturating_sub(t * TICK).max(TICK)
            } else {
                reference + t * TICK
            }
        };
        let near = off(near_ticks);
        let pct = near.abs_diff(reference) as u64 * 100 / reference.max(1) as u64;
        let m = Noii {
            hdr: header(b'I', locate as u16, 0, self.ts),
            paired_shares: BeU64::new(paired),
            imbalance_shares: BeU64::new(imbalance),
            imbalance_direction: direction,
            stock: symbol_for(locate as u32 - 1),
            far_price: BeU32::new(off(far_ticks)),
            near_price: BeU32::new(near),
            current_reference_price: BeU32::new(reference),
            cross_type: b'C',
            price_variation_indicator: match pct {
                0 => b'L',
                1..=9 => b'0' + pct as u8,
                10..=19 => b'A',
                20..=29 => b'B',
                _ => b'C',
            },
        };
        self.emit(&m, b'I')
    }

    /// Writes the NOII rounds due at or before `until`, and the episode actions between them,
    /// in time order.
    fn play_until(&mut self, until: u64) -> Result<()> {
        loop {
            let action = self.next_action().filter(|&(t, _)| t <= until);
            let round = self.noii.next().filter(|&t| t <= until);
            match (action, round) {
                (Some((t, i)), r) if r.map_or(true, |r| t <= r) => {
                    self.ts = self.ts.max(t);
                    let a = self.eps[i].script.actions[self.eps[i].next];
                    self.eps[i].next += 1;
                    self.play(i, a)?;
                }
                (_, Some(t)) => {
                    self.ts = self.ts.max(t);
                    let now = self.ts;
                    self.noii.done += 1;
                    for locate in 1..self.stocks.len() {
                        let pushed = self.eps.iter().any(|e| {
                            e.kind == ScenarioKind::Close
                                && e.ctx.locate as usize == locate
                                && e.script.start <= now
                        });
                        self.noii(locate, pushed)?;
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn step(&mut self) -> Result<()> {
        let r = self.rng.unit();
        let full = self.live.len() as u64 >= self.live_cap;
        if r < 0.45 {
            return if full {
                self.delete_random()
            } else {
                self.add()
            };
        }
        let Some(id) = self.random_live() else {
            return self.add();
        };
        if r < 0.80 {
            self.delete(id)
        } else if r < 0.86 {
            self.replace(id)
        } else if r < 0.91 {
            self.cancel(id)
        } else if r < 0.985 {
            self.execute()
        } else if r < 0.9995 {
            self.hidden_trade()
        } else {
            self.broken_trade()
        }
    }

    fn delete_random(&mut self) -> Result<()> {
        match self.random_live() {
            Some(id) => self.delete(id),
            None => self.add(),
        }
    }

    fn broken_trade(&mut self) -> Result<()> {
        if self.next_match == 1 {
            return self.add_within_cap();
        }
        let m = BrokenTrade {
            hdr: header(b'B', self.pick_stock() as u16, 0, self.ts),
            match_number: BeU64::new(1 + self.rng.below(self.next_match - 1)),
        };
        self.emit(&m, b'B')
    }
}

impl<W: Write> Gen<W> {
    #[allow(clippy::too_many_arguments)]
    fn flow_record(
        &mut self,
        event: FlowEvent,
        account: u8,
        locate: u16,
        side: u8,
        order_ref: u64,
        price: u32,
        shares: u32,
        match_number: u64,
    ) {
        let ts = self.ts;
        if let Some(f) = &mut self.flow {
            f.push(FlowRecord {
                ts,
                account: account_name(account),
                mpid: FIRM,
                stock: symbol_for(locate as u32 - 1),
                event,
                side: if side == b'S' {
                    crate::itch::Side::Sell
                } else {
                    crate::itch::Side::Buy
                },
                order_ref,
                price,
                shares,
                match_number,
            });
        }
    }

    /// The time of the next episode action, if any.
    fn next_action(&self) -> Option<(u64, usize)> {
        self.eps
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                e.script
                    .actions
                    .get(e.next)
                    .map(|a| (e.script.start + a.at, i))
            })
            .min()
    }

    /// A price for a new order on side `si` of `locate`, never locking or crossing.
    fn script_price(&mut self, locate: usize, si: usize, px: Px) -> u32 {
        let bid = self.best(locate, 0);
        let ask = self.best(locate, 1);
        let mid = self.stocks[locate].mid;
        let t = |k: i32| k as i64 * TICK as i64;
        let p: i64 = match (px, si) {
            (Px::Best(k), 0) => bid.map_or(mid as i64 - TICK as i64, |b| b as i64) + t(k),
            (Px::Best(k), _) => ask.map_or(mid as i64 + TICK as i64, |a| a as i64) - t(k),
            (Px::Opposite(k), 0) => ask.map_or(mid as i64, |a| a as i64) - t(k.max(1)),
            (Px::Opposite(k), _) => bid.map_or(mid as i64, |b| b as i64) + t(k.max(1)),
        };
        let mut p = p.clamp(TICK as i64, u32::MAX as i64 / 2) as u32;
        if si == 0 {
            if let Some(a) = ask {
                p = p.min(a.saturating_sub(TICK));
            }
        } else if let Some(b) = bid {
            p = p.max(b + TICK);
        }
        p.max(TICK)
    }

    fn play(&mut self, i: usize, a: Action) -> Result<()> {
        let e = self.eps[i].clone();
        let owner = i as u32 + 1;
        let locate = e.ctx.locate as usize;
        let acc = |f: u8| match f {
            1 => e.accounts[0],
            2 => e.accounts[1],
            _ => 0,
        };
        match a.op {
            Op::Add {
                h,
                side,
                px,
                shares,
                attributed,
                flow,
            } => {
                let si = (side == b'S') as usize;
                let price = self.script_price(locate, si, px);
                let mpid = attributed.then_some(e.ctx.mpid);
                let id = self.add_order(
                    locate as u16,
                    side,
                    price,
                    shares.max(1),
                    mpid,
                    owner,
                    acc(flow),
                )?;
                if let Some(slot) = self.eps[i].handles.get_mut(h as usize) {
                    *slot = id;
                }
            }
            Op::Cancel { h } => {
                if let Some(id) = self.handle(i, h) {
                    self.delete(id)?;
                    self.eps[i].handles[h as usize] = NO_ORDER;
                }
            }
            Op::Fill { h, shares } => {
                if let Some(id) = self.handle(i, h) {
                    self.fill(id, shares, 0)?;
                    if self.slab[id as usize].pos_live == NO_ORDER {
                        self.eps[i].handles[h as usize] = NO_ORDER;
                    }
                }
            }
            Op::Wash { h, shares, flow } => {
                if let Some(id) = self.handle(i, h) {
                    self.fill(id, shares, acc(flow))?;
                    if self.slab[id as usize].pos_live == NO_ORDER {
                        self.eps[i].handles[h as usize] = NO_ORDER;
                    }
                }
            }
            Op::Sweep { side, shares, flow } => {
                let si = (side == b'S') as usize;
                let mut left = shares;
                let mut last = None;
                while left > 0 {
                    let Some(id) = self.best_order(locate, si) else {
                        break;
                    };
                    let n = left.min(self.slab[id as usize].shares);
                    last = Some(self.slab[id as usize].price);
                    self.fill(id, n, acc(flow))?;
                    left -= n;
                    self.ts += 1_000;
                }
                if let Some(p) = last {
                    self.stocks[locate].mid = p;
                }
            }
            Op::Burst { n, span_ns, depth } => {
                let step = (span_ns / (2 * n.max(1) as u64)).max(1);
                for k in 0..n {
                    let si = (k % 2) as usize;
                    let price = self.script_price(locate, si, Px::Best(-(depth as i32)));
                    let side = if si == 0 { b'B' } else { b'S' };
                    let order_ref =
                        self.write_add(locate as u16, side, price, 100, Some(e.ctx.mpid))?;
                    self.ts += step;
                    let d = OrderDelete {
                        hdr: header(b'D', locate as u16, 0, self.ts),
                        order_ref: BeU64::new(order_ref),
                    };
                    self.emit(&d, b'D')?;
                    self.ts += step;
                }
            }
        }
        Ok(())
    }

    /// The live slab id of episode `i`'s handle `h`.
    fn handle(&self, i: usize, h: u8) -> Option<u32> {
        let id = *self.eps[i].handles.get(h as usize)?;
        (id != NO_ORDER && self.slab[id as usize].pos_live != NO_ORDER).then_some(id)
    }

    /// After `n` shares of resting order `id` executed under `match_number`: the flow's fill
    /// records (the resting order's, if the firm's; the aggressor's, firm account `aggressor`
    /// 1-based, 0 for none) and the order reduced or removed.
    fn executed(&mut self, id: u32, n: u32, match_number: u64, aggressor: u8) {
        let o = self.slab[id as usize];
        if o.account != 0 {
            self.flow_record(
                FlowEvent::Fill,
                o.account,
                o.locate,
                o.side,
                o.order_ref,
                o.price,
                n,
                match_number,
            );
        }
        if aggressor != 0 {
            let side = if o.side == b'B' { b'S' } else { b'B' };
            self.flow_record(
                FlowEvent::Fill,
                aggressor,
                o.locate,
                side,
                0,
                o.price,
                n,
                match_number,
            );
        }
        if n == o.shares {
            self.remove(id);
        } else {
            self.slab[id as usize].shares -= n;
        }
    }

    /// Executes `shares` of resting order `id` (an E message); the aggressor is firm account
    /// `aggressor` (1-based; 0: someone outside the flow).
    fn fill(&mut self, id: u32, shares: u32, aggressor: u8) -> Result<()> {
        let o = self.slab[id as usize];
        let n = shares.clamp(1, o.shares);
        let match_number = self.next_match;
        self.next_match += 1;
        let m = OrderExecuted {
            hdr: header(b'E', o.locate, 0, self.ts),
            order_ref: BeU64::new(o.order_ref),
            executed_shares: BeU32::new(n),
            match_number: BeU64::new(match_number),
        };
        self.emit(&m, b'E')?;
        self.executed(id, n, match_number, aggressor);
        Ok(())
    }
}

/// Scenarios to inject into a generated feed.
#[derive(Clone, Debug, Default)]
pub struct ScenarioPlan {
    /// Which.
    pub kinds: Vec<ScenarioKind>,
    /// Episodes of each per minute of the continuous session.
    pub rate: f64,
}

/// Episodes go on the busiest stocks (the generator's low locates).
const EPISODE_STOCKS: u32 = 50;
/// Quiet time kept between two episodes on one stock, ns.
const EPISODE_GAP_NS: u64 = 10_000_000_000;

/// Plans the episodes of `plan` over a session [open, close) of `symbols` stocks.
fn plan_episodes(
    plan: &ScenarioPlan,
    symbols: u32,
    open: u64,
    close: u64,
    seed: u64,
) -> Vec<Running> {
    let mut rng = SplitMix64::new(seed ^ 0x5CE7_A410_u64.wrapping_mul(0x9E37_79B9));
    let minutes = (close - open) as f64 / 60e9;
    let stocks = symbols.clamp(1, EPISODE_STOCKS);
    // Episodes start after 20 s of trading and end before the last 6 minutes (at most 60 % of
    // the session): the marking-the-close detector watches the last 5 minutes of every stock,
    // and an ignition or a stuffing burst there is itself unusual activity before the close —
    // both detectors would rightly fire, and the truth would name only one.
    let lead = 20_000_000_000u64.min((close - open) / 10);
    let tail = 360_000_000_000u64.min((close - open) * 3 / 5);
    let usable = (close - open).saturating_sub(lead + tail).max(1);
    let mut out: Vec<Running> = Vec::new();
    let mut busy: Vec<(u16, u64, u64)> = Vec::new();
    for &kind in &plan.kinds {
        let n = ((plan.rate * minutes).round() as u64).max(1);
        for k in 0..n {
            let slot = usable as f64 / n as f64;
            let start = open + lead + (slot * (k as f64 + 0.1 + 0.8 * rng.unit())) as u64;
            let mi = rng.below(MPIDS.len() as u64) as usize;
            let a1 = 1 + rng.below(ACCOUNTS as u64) as u8;
            let a2 = a1 % ACCOUNTS + 1;
            let mpid = if kind == ScenarioKind::Wash {
                FIRM
            } else {
                *MPIDS[mi]
            };
            for _ in 0..64 {
                let locate = 1 + rng.below(stocks as u64) as u16;
                let ctx = EpisodeCtx {
                    start,
                    open,
                    close,
                    locate,
                    mpid,
                    account: account_name(a1),
                    account2: account_name(a2),
                };
                let mut script = kind.script(&mut rng, &ctx);
                script.actions.sort_by_key(|a| a.at);
                if script.actions.is_empty() {
                    break;
                }
                let end = script.start
                    + script
                        .detect_until
                        .max(script.actions.last().map_or(0, |a| a.at));
                let (lo, hi) = (
                    script.start.saturating_sub(EPISODE_GAP_NS),
                    end + EPISODE_GAP_NS,
                );
                if busy
                    .iter()
                    .any(|&(l, s, e)| l == locate && s < hi && lo < e)
                {
                    continue;
                }
                if script.start < open || end >= close + 60_000_000_000 {
                    continue;
                }
                busy.push((locate, script.start, end));
                out.push(Running {
                    kind,
                    ctx,
                    script,
                    next: 0,
                    handles: [NO_ORDER; 16],
                    accounts: [a1, a2],
                });
                break;
            }
        }
    }
    out.sort_by_key(|e| (e.script.start, e.ctx.locate));
    out
}

/// The truth record of played episodes.
fn truth_of(eps: &[Running]) -> Vec<Episode> {
    eps.iter()
        .enumerate()
        .map(|(id, e)| {
            let last = e.script.actions.last().map_or(0, |a| a.at);
            let flow_kind = e.kind == ScenarioKind::Wash;
            let acc = crate::surv::event::party_name(&e.ctx.account).to_string();
            let mpid = String::from_utf8_lossy(&e.ctx.mpid).to_string();
            Episode {
                id: id as u32,
                scenario: e.kind.name().into(),
                detector: e.kind.detector().name().into(),
                stock: crate::surv::alert::trim_symbol(&symbol_for(e.ctx.locate as u32 - 1)).into(),
                locate: e.ctx.locate,
                participant: if flow_kind { acc.clone() } else { mpid.clone() },
                mpid,
                account: acc,
                start_ns: e.script.start,
                end_ns: e.script.start + last,
                detect_from_ns: e.script.start + e.script.detect_from,
                detect_until_ns: e.script.start + e.script.detect_until.max(last),
            }
        })
        .collect()
}

/// Writes a synthetic feed to `out`.
///
/// # Errors
/// Arguments that cannot make a valid day (no symbols, too few messages for the directory and
/// crosses, more than 65,535 symbols) and I/O errors.
pub fn generate<W: Write>(cfg: &GenConfig, out: W) -> Result<GenReport, GenError> {
    generate_session(cfg, CLOSE_NS - OPEN_NS, out)
}

/// [`generate`], with the continuous session compressed into `session_ns` after the 09:30 open
/// (the close cross follows it; at most the real 6.5 hours): the same flow of messages at a
/// higher rate, so that short windows hold many events, as a busy real day's do.
///
/// # Errors
/// As [`generate`]; a session of zero or longer than 6.5 hours.
pub fn generate_session<W: Write>(
    cfg: &GenConfig,
    session_ns: u64,
    out: W,
) -> Result<GenReport, GenError> {
    Ok(generate_scenarios(cfg, session_ns, &ScenarioPlan::default(), out)?.0)
}

/// [`generate_session`] with labelled manipulation episodes: the feed, the episodes played (the
/// ground truth) and the firm's participant flow (when a scenario needs it: `wash`).
///
/// # Errors
/// As [`generate_session`].
pub fn generate_scenarios<W: Write>(
    cfg: &GenConfig,
    session_ns: u64,
    plan: &ScenarioPlan,
    out: W,
) -> Result<Generated, GenError> {
    if !(2_000_000_000..=CLOSE_NS - OPEN_NS).contains(&session_ns) {
        return Err(GenError::Session(session_ns));
    }
    let close_ns = OPEN_NS + session_ns;
    if cfg.symbols == 0 || cfg.symbols > 65_535 {
        return Err(GenError::Symbols(cfg.symbols));
    }
    let base = 6 + 3 * cfg.symbols as u64; // S events, R per stock, open and close cross per stock
    if cfg.messages < base + 1 {
        return Err(GenError::TooFewMessages {
            messages: cfg.messages,
            symbols: cfg.symbols,
            fixed: base,
        });
    }
    let noii = noii_plan(
        OPEN_NS,
        close_ns,
        cfg.symbols,
        cfg.messages - base,
        cfg.seed,
    );
    // The closing NOIIs: one per stock per round.
    let fixed = base + noii.rounds * cfg.symbols as u64;
    let mut g = Gen {
        out: FrameWriter::new(out),
        rng: SplitMix64::new(cfg.seed),
        slab: Vec::new(),
        free: Vec::new(),
        live: Vec::new(),
        stocks: vec![StockState::default(); cfg.symbols as usize + 1],
        ts: 10_800_000_000_000, // 03:00
        next_ref: 1,
        next_match: 1,
        by_type: vec![0; 256],
        peak: 0,
        live_cap: cfg.live_orders.max(1),
        flow: plan.kinds.contains(&ScenarioKind::Wash).then(Vec::new),
        eps: if plan.kinds.is_empty() {
            Vec::new()
        } else {
            plan_episodes(plan, cfg.symbols, OPEN_NS, close_ns, cfg.seed)
        },
        noii,
    };
    g.system(b'O', g.ts)?;
    for i in 0..cfg.symbols {
        let locate = i as u16 + 1;
        let ts = 10_800_000_001_000 + i as u64 * 1_000; // just after 03:00, before system hours
        let m = common_stock(locate, ts, symbol_for(i));
        g.emit(&m, b'R')?;
        let mid = TICK * (500 + g.rng.below(49_500) as u32);
        g.stocks[locate as usize].mid = mid;
    }
    g.system(b'S', 14_400_000_000_000)?; // 04:00, start of system hours
    let flow = cfg.messages - fixed;
    let live_cap = g.live_cap;
    // Pre-open: the book builds up (90 % adds) to the live-order target, within at most 40 % of
    // the flow, timestamps spread over 04:00-09:30 like a real pre-market session.
    let preopen_budget = (live_cap + live_cap / 8).min(flow * 2 / 5);
    let pre_gap = (OPEN_NS - PREOPEN_NS) as f64 / (preopen_budget as f64 + 1.0);
    g.ts = PREOPEN_NS;
    let mut used = 0;
    while used < preopen_budget && (g.live.len() as u64) < live_cap {
        g.ts = (g.ts + (-pre_gap * (1.0 - g.rng.unit()).ln()) as u64).min(OPEN_NS - 1);
        if g.rng.chance(0.9) {
            g.add()?;
        } else {
            g.delete_random()?;
        }
        used += 1;
    }
    g.ts = OPEN_NS;
    g.system(b'Q', g.ts)?;
    for locate in 1..=cfg.symbols as usize {
        g.cross(locate, b'O')?;
    }
    let continuous = flow - used;
    let mean_gap = ((close_ns - OPEN_NS - 1_000_000_000) as f64 / continuous as f64).max(1.0);
    for k in 0..continuous {
        // Exponential inter-arrival times; clustered bursts, like a real feed. With episodes,
        // the mean gap is re-fitted to the time left, so the time their actions take (bursts)
        // does not push the background's tail onto the clamp at the close.
        let mean_gap = if g.eps.is_empty() {
            mean_gap
        } else {
            ((close_ns - 1_000_000_000).saturating_sub(g.ts) as f64 / (continuous - k) as f64)
                .max(1.0)
        };
        let gap = -mean_gap * (1.0 - g.rng.unit()).ln();
        let next = (g.ts + gap as u64).min(close_ns - 1);
        g.play_until(next)?;
        g.ts = g.ts.max(next).min(close_ns - 1);
        g.step()?;
    }
    g.play_until(close_ns - 1)?;
    g.ts = close_ns;
    for locate in 1..=cfg.symbols as usize {
        g.cross(locate, b'C')?;
    }
    g.system(b'M', close_ns)?;
    g.system(b'E', 72_000_000_000_000)?;
    g.system(b'C', 72_300_000_000_000)?;
    let report = GenReport {
        messages: g.out.messages(),
        bytes: g.out.bytes(),
        peak_live_orders: g.peak,
        by_type: g.by_type,
    };
    g.out.finish()?;
    let truth = truth_of(&g.eps);
    Ok((report, truth, g.flow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_are_unique_and_padded() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..20_000 {
            let s = symbol_for(i);
            assert!(s.iter().all(|&b| b.is_ascii_uppercase() || b == b' '));
            assert!(seen.insert(s));
        }
    }

    #[test]
    fn a_compressed_session_keeps_the_flow_and_ends_at_its_close() {
        let cfg = GenConfig {
            messages: 20_000,
            symbols: 10,
            live_orders: 500,
            seed: 3,
        };
        let mut v = Vec::new();
        let r = generate_session(&cfg, 10_000_000_000, &mut v).unwrap();
        assert_eq!(r.messages, 20_000);
        let mut last = 0;
        let mut market_close = None;
        for f in crate::feed::Frames::new(&v) {
            let m = crate::itch::decode(f.unwrap().body, 0).unwrap();
            let ts = m.timestamp();
            assert!(ts >= last, "timestamps never go back");
            last = ts;
            if let crate::itch::Message::SystemEvent(e) = m {
                if e.event_code == b'M' {
                    market_close = Some(ts);
                }
            } else {
                assert!(
                    ts <= OPEN_NS + 10_000_000_000,
                    "stock messages inside the session"
                );
            }
        }
        assert_eq!(market_close, Some(OPEN_NS + 10_000_000_000));
        assert!(generate_session(&cfg, 0, &mut Vec::new()).is_err());
        assert!(generate_session(&cfg, CLOSE_NS, &mut Vec::new()).is_err());
    }

    #[test]
    fn closing_noiis_decode_follow_the_book_and_precede_the_closing_cross() {
        use crate::book::{BookConfig, Books};
        use crate::itch::Message;
        let cfg = GenConfig {
            messages: 200_000,
            symbols: 20,
            live_orders: 5_000,
            seed: 11,
        };
        let session = 1_200_000_000_000; // 20 minutes
        let close = OPEN_NS + session;
        // Without episodes: the exact count, the NOIIs among the fixed messages.
        let mut v = Vec::new();
        let r = generate_session(&cfg, session, &mut v).unwrap();
        assert_eq!(r.messages, 200_000);
        assert_eq!(r.by_type[b'I' as usize], NOII_ROUNDS * 20);
        // With a close episode: its stock's NOIIs show the push.
        let plan = ScenarioPlan {
            kinds: vec![ScenarioKind::Close],
            rate: 0.1,
        };
        let mut v = Vec::new();
        let (_, eps, _) = generate_scenarios(&cfg, session, &plan, &mut v).unwrap();
        assert!(!eps.is_empty());
        let mut books = Books::new(BookConfig::for_orders(1 << 16, 64));
        let mut noiis = [0u32; 21];
        let mut closed = [false; 21];
        let mut pushed = 0;
        for f in crate::feed::Frames::new(&v) {
            let m = crate::itch::decode(f.unwrap().body, 0).unwrap();
            let ts = m.timestamp();
            match m {
                Message::Noii(n) => {
                    let l = n.hdr.stock_locate.get() as usize;
                    assert!(!closed[l], "a NOII after its stock's closing cross");
                    assert!((close - NOII_LEAD_NS..close).contains(&ts));
                    assert_eq!(n.cross_type, b'C');
                    assert_eq!(n.stock, symbol_for(l as u32 - 1));
                    let t = crate::agg::Touch::of(&books, l as u16);
                    let reference = n.current_reference_price.get();
                    if t.bid_shares > 0 && t.ask_shares > 0 {
                        assert!((t.bid..=t.ask).contains(&reference), "inside the touch");
                    }
                    let (paired, imb) = (n.paired_shares.get(), n.imbalance_shares.get());
                    let near = n.near_price.get();
                    let far = n.far_price.get();
                    match n.imbalance_direction {
                        b'B' => assert!(reference <= near && near < far),
                        b'S' => assert!(reference >= near && near > far),
                        d => assert!(d == b'N' && imb == 0 && near == reference),
                    }
                    let marking = eps
                        .iter()
                        .any(|e| e.locate as usize == l && e.start_ns <= ts);
                    if marking {
                        assert_eq!(n.imbalance_direction, b'B');
                        assert!(imb * 2 >= paired * 3, "{imb} vs {paired}");
                        pushed += 1;
                    } else {
                        assert!(imb * 10 <= paired * 3, "{imb} vs {paired}");
                    }
                    noiis[l] += 1;
                }
                Message::CrossTrade(c) if c.cross_type == b'C' => {
                    let l = c.hdr.stock_locate.get() as usize;
                    assert_eq!(noiis[l] as u64, NOII_ROUNDS, "every round before the cross");
                    closed[l] = true;
                }
                _ => {}
            }
            books.apply(&m);
        }
        assert!(closed[1..].iter().all(|&c| c));
        assert!(pushed >= 5, "{pushed}");
    }

    #[test]
    fn deterministic_and_exact_count() {
        let cfg = GenConfig {
            messages: 5_000,
            symbols: 20,
            live_orders: 500,
            seed: 7,
        };
        let mut a = Vec::new();
        let mut b = Vec::new();
        let ra = generate(&cfg, &mut a).unwrap();
        generate(&cfg, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(ra.messages, 5_000);
        assert_eq!(ra.bytes as usize, a.len());
        let other = generate(
            &GenConfig {
                seed: 8,
                ..cfg.clone()
            },
            Vec::new(),
        )
        .unwrap();
        assert_eq!(other.messages, 5_000);
        assert!(generate(
            &GenConfig {
                messages: 10,
                ..cfg
            },
            Vec::new()
        )
        .is_err());
    }
}
