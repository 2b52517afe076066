//! Episodes written from the definitions, each a list of timed actions resolved against the
//! book when they play; every parameter is drawn over a wide range. Hard negatives are
//! episodes too: their expected detector is `none`, and any manipulation alert on them is false.

use super::market::Who;
use crate::itch::Side;
use crate::rng::SplitMix64;

/// Where a passive order goes, resolved when it plays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum At {
    /// `k` increments behind the same side's best (0 joins it).
    Level(u32),
    /// One increment inside the spread when there is room, else join the best.
    Improve,
}

/// How big, resolved when it plays.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sz {
    /// Shares.
    Shares(u32),
    /// A multiple of the same side's touch size.
    Touch(f64),
    /// A multiple of the opposite side's touch size.
    Opp(f64),
    /// A multiple of the volume traded since the episode's reference point.
    Ramp(f64),
}

/// One step of an episode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    /// Note the mid and the stock's volume (for `Push` and `Sz::Ramp`).
    SetRef,
    /// A passive order, remembered as handle `h`.
    Place {
        /// Handle.
        h: u8,
        /// Side.
        side: Side,
        /// Price.
        at: At,
        /// Size.
        sz: Sz,
        /// Sender.
        who: Who,
    },
    /// An aggressor takes `frac` of order `h` (and whatever is ahead of it).
    Fill {
        /// Handle.
        h: u8,
        /// Fraction of what rests.
        frac: f64,
        /// Aggressor.
        by: Who,
    },
    /// Delete order `h`.
    Cancel {
        /// Handle.
        h: u8,
    },
    /// Replace order `h` at its side's current best (a market maker's refresh).
    Requote {
        /// Handle.
        h: u8,
    },
    /// A marketable order on `side` taking size `sz` from the opposite touch level.
    Take {
        /// Aggressor side.
        side: Side,
        /// Size.
        sz: Sz,
        /// Aggressor.
        by: Who,
    },
    /// Marketable orders on `side` until the opposite best lies `bps` beyond the reference.
    Push {
        /// Aggressor side.
        side: Side,
        /// Basis points from the reference.
        bps: f64,
        /// Aggressor.
        by: Who,
    },
    /// Delete one resting order near the touch that no episode owns.
    CancelOne,
}

/// Episode kinds: manipulation families, and hard negatives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Spoofing.
    Spoofing,
    /// Layering.
    Layering,
    /// Momentum ignition.
    Ignition,
    /// Quote stuffing.
    Stuffing,
    /// Marking the close.
    Close,
    /// Wash trades.
    Wash,
    /// Abnormal move.
    Abnormal,
    /// Negative: a market maker refreshing both quotes fast.
    MmRefresh,
    /// Negative: genuine momentum on news, no reversion, no exit.
    NewsJump,
    /// Negative: a sweep followed by a cascade of cancels, no adds.
    SweepCascade,
    /// Negative: ordinary trades at the touch of a thin, wide book.
    ThinTouch,
    /// Negative: a large order cancelled minutes later, a small fill on the other side.
    PatientCancel,
    /// Negative: a heavy one-sided closing auction that does not move the price.
    RebalanceClose,
}

impl Kind {
    /// The manipulation families.
    pub const FAMILIES: [Kind; 7] = [
        Kind::Spoofing,
        Kind::Layering,
        Kind::Ignition,
        Kind::Stuffing,
        Kind::Close,
        Kind::Wash,
        Kind::Abnormal,
    ];
    /// Hard negatives placed anywhere in the session.
    pub const NEGATIVES: [Kind; 5] = [
        Kind::MmRefresh,
        Kind::NewsJump,
        Kind::SweepCascade,
        Kind::ThinTouch,
        Kind::PatientCancel,
    ];

    /// The name in the truth file.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Spoofing => "spoofing",
            Kind::Layering => "layering",
            Kind::Ignition => "ignition",
            Kind::Stuffing => "stuffing",
            Kind::Close => "close",
            Kind::Wash => "wash",
            Kind::Abnormal => "abnormal",
            Kind::MmRefresh => "neg_mm_refresh",
            Kind::NewsJump => "neg_news_jump",
            Kind::SweepCascade => "neg_sweep_cascade",
            Kind::ThinTouch => "neg_thin_touch",
            Kind::PatientCancel => "neg_patient_cancel",
            Kind::RebalanceClose => "neg_rebalance_close",
        }
    }

    /// The detector expected to fire (`none` for a hard negative).
    pub fn detector(self) -> &'static str {
        match self {
            Kind::Spoofing => "spoofing",
            Kind::Layering => "layering",
            Kind::Ignition => "momentum_ignition",
            Kind::Stuffing => "quote_stuffing",
            Kind::Close => "marking_the_close",
            Kind::Wash => "wash_trade",
            Kind::Abnormal => "abnormal_move",
            _ => crate::surv::eval::NEGATIVE,
        }
    }
}

/// An episode's plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Kind.
    pub kind: Kind,
    /// Stock.
    pub locate: u16,
    /// Timed actions, ns since midnight, in order.
    pub acts: Vec<(u64, Act)>,
    /// How long after the last action an alert still counts, ns.
    pub margin: u64,
    /// The participant an alert should name (MPID or account; empty: anonymous).
    pub participant: String,
    /// MPID used (may be empty).
    pub mpid: String,
    /// Account used (may be empty).
    pub account: String,
}

impl Plan {
    /// First action.
    pub fn start(&self) -> u64 {
        self.acts.first().map_or(0, |a| a.0)
    }

    /// Last action.
    pub fn end(&self) -> u64 {
        self.acts.last().map_or(0, |a| a.0)
    }
}

/// What an episode may use.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// Stock.
    pub locate: u16,
    /// Start, ns since midnight.
    pub start: u64,
    /// The manipulator's MPID.
    pub mpid: [u8; 4],
    /// The firm's flow is present; the firm's account index to use.
    pub flow_acct: Option<u8>,
    /// The firm's MPID.
    pub firm: [u8; 4],
    /// The closing time ('M'), ns since midnight.
    pub close: u64,
    /// The book is thin and wide (for the thin-touch negative).
    pub wide: bool,
}

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// Log-uniform duration in `[lo, hi]` ns.
fn logu(rng: &mut SplitMix64, lo: u64, hi: u64) -> u64 {
    let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
    (a + rng.unit() * (b - a)).exp() as u64
}

fn uni(rng: &mut SplitMix64, lo: f64, hi: f64) -> f64 {
    lo + rng.unit() * (hi - lo)
}

fn side(rng: &mut SplitMix64) -> Side {
    if rng.chance(0.5) {
        Side::Buy
    } else {
        Side::Sell
    }
}

fn other(s: Side) -> Side {
    super::market::opposite(s)
}

/// A script under construction: a clock and its actions.
struct Script {
    t: u64,
    acts: Vec<(u64, Act)>,
}

impl Script {
    fn new(t: u64) -> Script {
        Script {
            t,
            acts: Vec::new(),
        }
    }
    fn at(&mut self, act: Act) {
        self.acts.push((self.t, act));
    }
    fn after(&mut self, dt: u64, act: Act) {
        self.t += dt;
        self.at(act);
    }
    fn sorted(mut self) -> Vec<(u64, Act)> {
        self.acts.sort_by_key(|a| a.0);
        self.acts
    }
}

fn name4(m: [u8; 4]) -> String {
    String::from_utf8_lossy(&m)
        .trim_end_matches('\0')
        .to_string()
}

/// The plan of an episode of `kind` in `c`.
pub fn plan(kind: Kind, rng: &mut SplitMix64, c: &Ctx) -> Plan {
    let manip = Who {
        mpid: Some(c.mpid),
        acct: None,
    };
    let (acts, margin) = match kind {
        Kind::Spoofing => spoofing(rng, c, manip),
        Kind::Layering => layering(rng, c, manip),
        Kind::Ignition => ignition(rng, c, manip),
        Kind::Stuffing => stuffing(rng, c, manip),
        Kind::Close => close(rng, c),
        Kind::Wash => wash(rng, c, manip),
        Kind::Abnormal => abnormal(rng, c),
        Kind::MmRefresh => mm_refresh(rng, c, manip),
        Kind::NewsJump => news_jump(rng, c),
        Kind::SweepCascade => sweep_cascade(rng, c),
        Kind::ThinTouch => thin_touch(rng, c),
        Kind::PatientCancel => patient_cancel(rng, c, manip),
        Kind::RebalanceClose => (vec![(c.start, Act::SetRef)], 60 * SEC),
    };
    let anonymous = matches!(kind, Kind::Abnormal | Kind::NewsJump | Kind::SweepCascade);
    let mpid = match (kind, c.flow_acct) {
        _ if anonymous => String::new(),
        (Kind::Wash, Some(_)) => name4(c.firm),
        _ => name4(c.mpid),
    };
    let account = match (kind, c.flow_acct) {
        (Kind::Wash, Some(a)) => format!("ACCT{:02}", a + 1),
        _ => String::new(),
    };
    let participant = if account.is_empty() {
        mpid.clone()
    } else {
        account.clone()
    };
    Plan {
        kind,
        locate: c.locate,
        acts,
        margin,
        participant,
        mpid,
        account,
    }
}

type Acts = (Vec<(u64, Act)>, u64);

/// Spoof on one side, a genuine order on the other executes, the spoof is cancelled; every
/// delay 1 ms .. 3 s log-uniform, the spoof at, inside or behind the touch.
fn spoofing(rng: &mut SplitMix64, c: &Ctx, m: Who) -> Acts {
    let g = side(rng);
    let at = match rng.below(10) {
        0..=5 => At::Level(0),
        6..=7 => At::Improve,
        _ => At::Level(1),
    };
    let mut s = Script::new(c.start);
    let sz = Sz::Touch(uni(rng, 0.5, 6.0));
    s.at(Act::Place {
        h: 0,
        side: other(g),
        at,
        sz,
        who: m,
    });
    let lots = Sz::Shares(100 * (1 + rng.below(5) as u32));
    s.after(
        logu(rng, MS, 3 * SEC),
        Act::Place {
            h: 1,
            side: g,
            at: At::Improve,
            sz: lots,
            who: m,
        },
    );
    s.after(
        logu(rng, MS, 3 * SEC),
        Act::Fill {
            h: 1,
            frac: 1.0,
            by: Who::ANON,
        },
    );
    s.after(logu(rng, MS, 3 * SEC), Act::Cancel { h: 0 });
    (s.sorted(), 5 * SEC)
}

/// Layers on one side (the first sometimes at the touch), a genuine order on the other executes,
/// the layers are cancelled 0.1 .. 3 s after the fill.
fn layering(rng: &mut SplitMix64, c: &Ctx, m: Who) -> Acts {
    let g = side(rng);
    let n = 3 + rng.below(4) as u8;
    let first = if rng.chance(0.4) { 0 } else { 1 };
    let mut s = Script::new(c.start);
    let mut depth = first;
    for h in 0..n {
        let sz = Sz::Touch(uni(rng, 0.5, 4.0));
        let act = Act::Place {
            h,
            side: other(g),
            at: At::Level(depth),
            sz,
            who: m,
        };
        s.after(if h == 0 { 0 } else { logu(rng, MS, 500 * MS) }, act);
        depth += 1 + rng.below(2) as u32;
    }
    let lots = Sz::Shares(100 * (1 + rng.below(5) as u32));
    s.after(
        logu(rng, MS, SEC),
        Act::Place {
            h: 15,
            side: g,
            at: At::Improve,
            sz: lots,
            who: m,
        },
    );
    s.after(
        logu(rng, 5 * MS, 2 * SEC),
        Act::Fill {
            h: 15,
            frac: 1.0,
            by: Who::ANON,
        },
    );
    let fill = s.t;
    for h in 0..n {
        s.acts
            .push((fill + logu(rng, 100 * MS, 3 * SEC), Act::Cancel { h }));
    }
    (s.sorted(), 5 * SEC)
}

/// Aggressive orders move the price 5 .. 60 bps over 0.3 .. 10 s; the manipulator's resting exit
/// (a share of the ramp's volume) is taken near the peak; the price usually reverts.
fn ignition(rng: &mut SplitMix64, c: &Ctx, m: Who) -> Acts {
    let up = side(rng);
    let bps = uni(rng, 5.0, 60.0);
    let dur = logu(rng, 300 * MS, 10 * SEC);
    let n = 5 + rng.below(36);
    let mut s = Script::new(c.start);
    s.at(Act::SetRef);
    for i in 0..n {
        let step = bps * (i + 1) as f64 / n as f64;
        let act = Act::Push {
            side: up,
            bps: step,
            by: Who::ANON,
        };
        s.after(dur / n, act);
    }
    let exit = Sz::Ramp(uni(rng, 0.2, 1.2));
    s.after(
        logu(rng, MS, 500 * MS),
        Act::Place {
            h: 0,
            side: other(up),
            at: At::Level(0),
            sz: exit,
            who: m,
        },
    );
    s.after(
        logu(rng, MS, 2 * SEC),
        Act::Fill {
            h: 0,
            frac: uni(rng, 0.5, 1.0),
            by: Who::ANON,
        },
    );
    s.after(logu(rng, 100 * MS, 3 * SEC), Act::Cancel { h: 0 });
    if rng.chance(0.85) {
        let back = bps * uni(rng, 0.0, 0.4);
        let k = 3 + rng.below(8);
        let span = logu(rng, SEC, 8 * SEC);
        for i in 0..k {
            let target = bps - (bps - back) * (i + 1) as f64 / k as f64;
            let signed = -target; // reverting: the other side pushes back toward the reference
            s.after(
                span / k,
                Act::Push {
                    side: other(up),
                    bps: signed,
                    by: Who::ANON,
                },
            );
        }
    }
    (s.sorted(), 5 * SEC)
}

/// Bursts of attributed adds and deletes (some via replaces) at 200 .. 5,000 pairs a second.
fn stuffing(rng: &mut SplitMix64, c: &Ctx, m: Who) -> Acts {
    let mut s = Script::new(c.start);
    for _ in 0..1 + rng.below(3) {
        let pairs = 25 + rng.below(376) as u32;
        let rate = logu(rng, 200, 5_000) as f64;
        let step = ((1e9 / rate) as u64 / 2).max(1_000);
        let depth = rng.below(6) as u32;
        let requote = rng.chance(0.3);
        for k in 0..pairs {
            let h = (k % 8) as u8;
            let sd = if k % 2 == 0 { Side::Buy } else { Side::Sell };
            s.after(
                step,
                Act::Place {
                    h,
                    side: sd,
                    at: At::Level(depth),
                    sz: Sz::Shares(100),
                    who: m,
                },
            );
            if requote && k % 3 == 1 {
                s.after(step, Act::Requote { h });
            }
            s.after(step, Act::Cancel { h });
        }
        s.t += logu(rng, 200 * MS, 5 * SEC);
    }
    (s.sorted(), 2 * SEC)
}

/// Aggressive buying (or selling) into the last 0.5 .. 5 minutes before 'M', 10 .. 80 bps.
fn close(rng: &mut SplitMix64, c: &Ctx) -> Acts {
    let d = rng.below(2) == 0;
    let up = if d { Side::Buy } else { Side::Sell };
    let window = logu(rng, 30 * SEC, 300 * SEC);
    let bps = uni(rng, 10.0, 80.0);
    let n = 5 + rng.below(36);
    let end = c.close - logu(rng, 10 * MS, 5 * SEC);
    let mut s = Script::new(end - window);
    s.at(Act::SetRef);
    for i in 0..n {
        let step = bps * (i + 1) as f64 / n as f64;
        s.after(
            window / n - 1,
            Act::Push {
                side: up,
                bps: step,
                by: Who::ANON,
            },
        );
    }
    (s.sorted(), 60 * SEC)
}

/// With the flow: one account's resting order taken by the same account, 1 .. 5 times. Without:
/// the public-feed shape, an attributed order executed within a millisecond of its add.
fn wash(rng: &mut SplitMix64, c: &Ctx, m: Who) -> Acts {
    let mut s = Script::new(c.start);
    let (rester, taker) = match c.flow_acct {
        Some(a) => {
            let mpid = rng.chance(0.5).then_some(c.firm);
            let acct = Some(a);
            (Who { mpid, acct }, Who { mpid: None, acct })
        }
        None => (m, Who::ANON),
    };
    for i in 0..1 + rng.below(5) as u8 {
        let sd = side(rng);
        let sz = Sz::Shares(100 * (1 + rng.below(20) as u32));
        let gap = if i == 0 {
            0
        } else {
            logu(rng, 10 * MS, 30 * SEC)
        };
        s.after(
            gap,
            Act::Place {
                h: i,
                side: sd,
                at: At::Improve,
                sz,
                who: rester,
            },
        );
        let react = if c.flow_acct.is_some() {
            logu(rng, 100_000, 500 * MS)
        } else {
            logu(rng, 50_000, MS)
        };
        s.after(
            react,
            Act::Fill {
                h: i,
                frac: 1.0,
                by: taker,
            },
        );
    }
    (s.sorted(), 2 * SEC)
}

/// One aggressive order sweeps 300 .. 1,500 bps through the book.
fn abnormal(rng: &mut SplitMix64, c: &Ctx) -> Acts {
    let mut s = Script::new(c.start);
    s.at(Act::SetRef);
    let bps = uni(rng, 300.0, 1_500.0);
    let sd = side(rng);
    s.after(
        1,
        Act::Push {
            side: sd,
            bps,
            by: Who::ANON,
        },
    );
    // Someone trades against the new level soon after (the sweep's remainder, if it rests).
    let sz = Sz::Opp(uni(rng, 0.2, 1.0));
    s.after(
        logu(rng, 10 * MS, 800 * MS),
        Act::Take {
            side: other(sd),
            sz,
            by: Who::ANON,
        },
    );
    (s.sorted(), 3 * SEC)
}

/// A market maker quoting both sides, refreshing every 5 .. 300 ms for 5 .. 60 s, sometimes hit.
fn mm_refresh(rng: &mut SplitMix64, c: &Ctx, m: Who) -> Acts {
    let mut s = Script::new(c.start);
    let sz = Sz::Touch(uni(rng, 0.3, 2.0));
    s.at(Act::Place {
        h: 0,
        side: Side::Buy,
        at: At::Level(0),
        sz,
        who: m,
    });
    s.at(Act::Place {
        h: 1,
        side: Side::Sell,
        at: At::Level(0),
        sz,
        who: m,
    });
    let every = logu(rng, 5 * MS, 300 * MS);
    let end = s.t + logu(rng, 5 * SEC, 60 * SEC);
    while s.t < end {
        let h = rng.below(2) as u8;
        s.after(every, Act::Requote { h });
        if rng.chance(0.05) {
            s.after(
                1_000,
                Act::Fill {
                    h,
                    frac: uni(rng, 0.1, 0.6),
                    by: Who::ANON,
                },
            );
        }
    }
    s.after(every, Act::Cancel { h: 0 });
    s.after(1_000, Act::Cancel { h: 1 });
    (s.sorted(), 2 * SEC)
}

/// News: many aggressors move the price 100 .. 600 bps over 0.5 .. 5 s; no reversion, no exit.
fn news_jump(rng: &mut SplitMix64, c: &Ctx) -> Acts {
    let mut s = Script::new(c.start);
    s.at(Act::SetRef);
    let sd = side(rng);
    let bps = uni(rng, 100.0, 600.0);
    let n = 5 + rng.below(26);
    let dur = logu(rng, 500 * MS, 5 * SEC);
    for i in 0..n {
        let step = bps * (i + 1) as f64 / n as f64;
        s.after(
            dur / n,
            Act::Push {
                side: sd,
                bps: step,
                by: Who::ANON,
            },
        );
    }
    (s.sorted(), 10 * SEC)
}

/// A sweep through several levels, then 10 .. 80 cancels of resting orders within 50 .. 500 ms.
fn sweep_cascade(rng: &mut SplitMix64, c: &Ctx) -> Acts {
    let mut s = Script::new(c.start);
    let sd = side(rng);
    let sz = Sz::Opp(uni(rng, 1.5, 4.0));
    s.at(Act::Take {
        side: sd,
        sz,
        by: Who::ANON,
    });
    let n = 10 + rng.below(71);
    let span = logu(rng, 50 * MS, 500 * MS);
    for _ in 0..n {
        s.after(span / n, Act::CancelOne);
    }
    (s.sorted(), 2 * SEC)
}

/// Ordinary trades at the touch (alternating sides), 50 ms .. 5 s apart.
fn thin_touch(rng: &mut SplitMix64, c: &Ctx) -> Acts {
    let mut s = Script::new(c.start);
    for _ in 0..5 + rng.below(16) {
        let sz = Sz::Opp(uni(rng, 0.3, 1.0));
        s.after(
            logu(rng, 50 * MS, 5 * SEC),
            Act::Take {
                side: side(rng),
                sz,
                by: Who::ANON,
            },
        );
    }
    let _ = c.wide;
    (s.sorted(), 2 * SEC)
}

/// A large order rests for 1 .. 5 minutes at or behind the touch; a small order of the same
/// participant on the other side executes meanwhile; the large one is cancelled at last.
fn patient_cancel(rng: &mut SplitMix64, c: &Ctx, m: Who) -> Acts {
    let mut s = Script::new(c.start);
    let big = side(rng);
    let sz = Sz::Touch(uni(rng, 3.0, 15.0));
    s.at(Act::Place {
        h: 0,
        side: big,
        at: At::Level(rng.below(3) as u32),
        sz,
        who: m,
    });
    let life = logu(rng, 60 * SEC, 300 * SEC);
    let small = Sz::Shares(100 * (1 + rng.below(5) as u32));
    s.after(
        logu(rng, 5 * SEC, 50 * SEC),
        Act::Place {
            h: 1,
            side: other(big),
            at: At::Improve,
            sz: small,
            who: m,
        },
    );
    s.after(
        logu(rng, 100 * MS, 10 * SEC),
        Act::Fill {
            h: 1,
            frac: 1.0,
            by: Who::ANON,
        },
    );
    s.acts.push((
        c.start + life.max(s.t - c.start + SEC),
        Act::Cancel { h: 0 },
    ));
    (s.sorted(), 2 * SEC)
}
