//! What a stage thread does when none of its stages has work.

use serde::Serialize;

/// How an idle stage thread waits for work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
pub enum WaitStrategy {
    /// Spin on the rings (`PAUSE` between polls): lowest latency, burns its core. For pinned,
    /// dedicated cores.
    #[default]
    BusySpin,
    /// Spin for a while, then `sched_yield` between polls: close to busy-spin latency when busy,
    /// gives the core away when idle (a system call per idle poll).
    SpinYield,
    /// Spin, yield, then sleep in short `park_timeout`s (50 µs): near-zero CPU when idle, tens of
    /// microseconds to wake. Nothing on the hot path unparks anyone, so producers make no
    /// system calls.
    Park,
}

/// Spins before [`WaitStrategy::SpinYield`] / [`WaitStrategy::Park`] start yielding.
const SPINS: u32 = 1 << 10;
/// Yields before [`WaitStrategy::Park`] starts sleeping.
const YIELDS: u32 = 1 << 6;

/// Per-thread idle state for a [`WaitStrategy`].
#[derive(Debug)]
pub struct Idle {
    strategy: WaitStrategy,
    rounds: u32,
    /// Idle polls so far (every strategy).
    pub polls: u64,
}

impl Idle {
    /// Idle state for `strategy`.
    pub fn new(strategy: WaitStrategy) -> Idle {
        Idle {
            strategy,
            rounds: 0,
            polls: 0,
        }
    }

    /// Work was found: the next wait starts from spinning again.
    #[inline(always)]
    pub fn reset(&mut self) {
        self.rounds = 0;
    }

    /// Nothing to do this round: wait a little, as the strategy says. True when it gave the
    /// core away (yield or sleep), so the time until the next round was not the host's doing.
    #[inline]
    pub fn wait(&mut self) -> bool {
        self.polls += 1;
        self.rounds = self.rounds.saturating_add(1);
        let spin = match self.strategy {
            WaitStrategy::BusySpin => true,
            WaitStrategy::SpinYield | WaitStrategy::Park => self.rounds < SPINS,
        };
        if spin {
            std::hint::spin_loop();
            return false;
        }
        match self.strategy {
            WaitStrategy::Park if self.rounds >= SPINS + YIELDS => {
                std::thread::park_timeout(std::time::Duration::from_micros(50))
            }
            _ => std::thread::yield_now(),
        }
        true
    }
}
