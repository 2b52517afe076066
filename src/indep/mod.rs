//! An independent feed generator for held-out evaluation (issue 14).
//!
//! Written apart from [`crate::gen`] and [`crate::scenario`] on purpose: it shares none of their
//! habits. Each seed draws a [regime](regime::Regime) — price level ($0.20–$800, sub-penny
//! ticks below $1.00 as Reg NMS Rule 612 requires), book shape (thin and wide to deep one-tick),
//! activity, session shape (an opening cross, an IPO/halt cross, a mid-day start or no crosses;
//! 'M' always), flow file or not — and the market has real aggressor semantics: a marketable
//! order is never an add, only the executions of the resting orders it meets appear.
//! [Episodes](episodes) are written from the regulatory definitions with wide random
//! parameters, beside labelled hard negatives (detector `none`). The truth is the usual
//! [`Truth`](crate::truth::Truth), so `tickwatch eval` scores it; [`check`] verifies the feed's
//! own invariants.

pub mod background;
pub mod check;
pub mod episodes;
pub mod market;
pub mod play;
pub mod price;
pub mod regime;
pub mod session;

use crate::rng::SplitMix64;
use crate::surv::FlowRecord;
use crate::truth::Episode;
use regime::Regime;

/// Seeds at or above this are held out: never used for tuning.
pub const HELD_OUT_SEEDS: u64 = 1_000;

/// What to generate.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Seed: the same seed and regime give the same bytes.
    pub seed: u64,
    /// A named regime (one of [`regime::REGIMES`]); `None` draws one from the seed.
    pub regime: Option<String>,
    /// A clean feed: the same seed's regime, background and hard negatives, without its
    /// manipulation episodes (any manipulation-family alert on it is false).
    pub clean: bool,
}

/// A generated feed.
#[derive(Debug)]
pub struct Output {
    /// The ITCH 5.0 BinaryFILE bytes.
    pub itch: Vec<u8>,
    /// Messages in it.
    pub messages: u64,
    /// Episodes and hard negatives, by start.
    pub episodes: Vec<Episode>,
    /// The firm's flow, when the regime has one.
    pub flow: Option<Vec<FlowRecord>>,
    /// The regime drawn.
    pub regime: Regime,
}

/// Why a feed cannot be generated.
#[derive(Debug, thiserror::Error)]
pub enum IndepError {
    /// No regime of that name.
    #[error("unknown regime `{0}`: expected any of {list}", list = regime::REGIMES.join(", "))]
    UnknownRegime(String),
}

/// Whether a feed of `seed` and regime `regime` may be used for tuning (else: held out).
pub fn is_tuning(seed: u64, regime: &str) -> bool {
    seed < HELD_OUT_SEEDS && regime != regime::HELD_OUT_REGIME
}

fn letters(rng: &mut SplitMix64, n: usize) -> Vec<u8> {
    (0..n).map(|_| b'A' + rng.below(26) as u8).collect()
}

/// Distinct random symbols (3..5 letters) and MPIDs (4 letters).
fn names(rng: &mut SplitMix64, stocks: usize, mpids: usize) -> (Vec<[u8; 8]>, Vec<[u8; 4]>) {
    let mut syms: Vec<[u8; 8]> = Vec::new();
    while syms.len() < stocks {
        let n = 3 + rng.below(3) as usize;
        let mut s = [b' '; 8];
        s[..n].copy_from_slice(&letters(rng, n));
        if !syms.contains(&s) {
            syms.push(s);
        }
    }
    let mut pool: Vec<[u8; 4]> = Vec::new();
    while pool.len() < mpids {
        let l = letters(rng, 4);
        let m = [l[0], l[1], l[2], l[3]];
        if !pool.contains(&m) {
            pool.push(m);
        }
    }
    (syms, pool)
}

/// Generates the feed of `cfg`.
///
/// # Errors
/// An unknown regime name.
pub fn generate(cfg: &Config) -> Result<Output, IndepError> {
    let mut rng = SplitMix64::new(cfg.seed ^ 0x1DE9_F00D_5EED_0014);
    let regime = Regime::draw(&mut rng, cfg.regime.as_deref())
        .ok_or_else(|| IndepError::UnknownRegime(cfg.regime.clone().unwrap_or_default()))?;
    let mpids = 6 + rng.below(7) as usize;
    let (syms, pool) = names(&mut rng, regime.stocks as usize, mpids);
    let accounts = (1..=6)
        .map(|i| crate::surv::event::party_of_name(&format!("ACCT{i:02}")).expect("ascii"))
        .collect();
    let mut m = market::Market::new(syms, pool[0], accounts, regime.flow);
    let mut bg = background::Background::new(&regime, pool.clone());
    let times = session::Times::of(&regime, &mut rng);
    session::open(&mut m, &mut bg, &mut rng, &regime, &times);
    let mut plans = play::schedule(&mut rng, &regime, &times, &pool);
    if cfg.clean {
        plans.retain(|p| !episodes::Kind::FAMILIES.contains(&p.kind));
    }
    let played = play::run(&mut m, &mut bg, &mut rng, &regime, &times, &plans);
    let episodes = play::truth(&m, &plans, &played, &times);
    session::close(&mut m, &mut rng, &regime, &times, &plans);
    Ok(Output {
        messages: m.messages,
        itch: std::mem::take(&mut m.out),
        episodes,
        flow: m.flow.take(),
        regime,
    })
}
