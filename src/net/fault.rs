//! Fault injection for tests, per line: drop every N-th packet or the packets holding a range
//! of sequences, send every N-th packet twice, swap adjacent packets. Only data packets are
//! touched; heartbeats and the end of session always go out.

use serde::Serialize;

/// Which lines the faults of `send`'s command line apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum FaultLines {
    /// Line A only (the default: line B then makes up for it).
    #[default]
    A,
    /// Line B only.
    B,
    /// Both lines, the same packets.
    Both,
}

impl FaultLines {
    /// Whether line `line` (0 = A) takes the faults.
    pub fn covers(self, line: usize) -> bool {
        matches!(
            (self, line),
            (FaultLines::Both, _) | (FaultLines::A, 0) | (FaultLines::B, 1)
        )
    }
}

/// Faults of one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// Drop every N-th data packet (1-based, counted on the line).
    pub drop_every: Option<u64>,
    /// Drop every data packet holding a sequence in `first..=last`.
    pub drop_seq: Option<(u64, u64)>,
    /// Send every N-th data packet twice.
    pub duplicate_every: Option<u64>,
    /// Swap adjacent data packets (the 1st goes after the 2nd, the 3rd after the 4th, ...).
    pub reorder: bool,
}

impl Faults {
    /// Whether any fault is set.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }
}

/// Packets (by index) to send now, each with its number of copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    items: [(usize, u8); 2],
    len: usize,
}

impl Plan {
    fn push(&mut self, idx: usize, copies: u8) {
        self.items[self.len] = (idx, copies);
        self.len += 1;
    }

    /// (packet index, copies) in sending order.
    pub fn items(&self) -> &[(usize, u8)] {
        &self.items[..self.len]
    }
}

/// One line's fault state while sending.
#[derive(Debug, Clone)]
pub struct LineFaults {
    faults: Faults,
    n: u64,
    stashed: Option<(usize, u8)>,
    /// Data packets dropped.
    pub dropped: u64,
    /// Extra copies sent.
    pub duplicated: u64,
    /// Packets sent after their successor.
    pub reordered: u64,
}

impl LineFaults {
    /// A line with `faults`.
    pub fn new(faults: Faults) -> LineFaults {
        LineFaults {
            faults,
            n: 0,
            stashed: None,
            dropped: 0,
            duplicated: 0,
            reordered: 0,
        }
    }

    /// What to send for data packet `idx`, holding `count` messages from `seq`.
    pub fn plan(&mut self, idx: usize, seq: u64, count: u16) -> Plan {
        let f = self.faults;
        self.n += 1;
        let last = seq + u64::from(count) - 1;
        let drop = f.drop_every.is_some_and(|k| self.n % k == 0)
            || f.drop_seq.is_some_and(|(a, b)| seq <= b && last >= a);
        let mut plan = Plan::default();
        if drop {
            self.dropped += 1;
            if let Some((i, c)) = self.stashed.take() {
                plan.push(i, c);
            }
            return plan;
        }
        let copies = if f.duplicate_every.is_some_and(|k| self.n % k == 0) {
            self.duplicated += 1;
            2
        } else {
            1
        };
        match self.stashed.take() {
            Some((i, c)) => {
                plan.push(idx, copies);
                plan.push(i, c);
                self.reordered += 1;
            }
            None if f.reorder => self.stashed = Some((idx, copies)),
            None => plan.push(idx, copies),
        }
        plan
    }

    /// At the end: the packet still waiting for a successor, if any.
    pub fn flush(&mut self) -> Plan {
        let mut plan = Plan::default();
        if let Some((i, c)) = self.stashed.take() {
            plan.push(i, c);
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(f: Faults, n: usize) -> Vec<(usize, u8)> {
        let mut l = LineFaults::new(f);
        let mut out = Vec::new();
        for i in 0..n {
            out.extend_from_slice(l.plan(i, 1 + 2 * i as u64, 2).items());
        }
        out.extend_from_slice(l.flush().items());
        out
    }

    #[test]
    fn faults_do_what_they_say() {
        let drop3 = Faults {
            drop_every: Some(3),
            ..Faults::default()
        };
        assert_eq!(run(drop3, 6), [(0, 1), (1, 1), (3, 1), (4, 1)]);
        let seq = Faults {
            drop_seq: Some((4, 5)),
            ..Faults::default()
        }; // packets hold 1-2, 3-4, 5-6, ...
        assert_eq!(run(seq, 4), [(0, 1), (3, 1)]);
        let dup = Faults {
            duplicate_every: Some(2),
            ..Faults::default()
        };
        assert_eq!(run(dup, 3), [(0, 1), (1, 2), (2, 1)]);
        let re = Faults {
            reorder: true,
            ..Faults::default()
        };
        assert_eq!(run(re, 5), [(1, 1), (0, 1), (3, 1), (2, 1), (4, 1)]);
        assert!(FaultLines::A.covers(0) && !FaultLines::A.covers(1));
        assert!(FaultLines::Both.covers(1) && FaultLines::B.covers(1));
    }
}
