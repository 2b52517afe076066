//! The k-way merge of keyed streams that makes the output stage's results the same for any
//! worker count: each worker sends its records in key order; the merge hands out the smallest
//! head once every other live stream is known to come after it — it has a head, it has ended, or
//! the last key it sent (its floor) is not smaller. Marks broadcast to every worker advance the
//! floors of idle streams, so records stream out as the feed advances, with no buffer beyond the
//! rings. Used for the windowed bars' rows and the surveillance records.

use crate::ring::Consumer;

/// A record with a merge key.
pub trait Keyed: Copy {
    /// Its key type.
    type Key: Ord + Copy;
    /// Its key.
    fn key(&self) -> Self::Key;
}

/// The heads, floors and ends of one ring per worker.
#[derive(Debug)]
pub struct Merge<T: Keyed> {
    rxs: Vec<Consumer<T>>,
    heads: Vec<Option<T>>,
    /// Key of the last record taken from each stream: its later records are not smaller.
    floor: Vec<Option<T::Key>>,
    finished: Vec<bool>,
}

impl<T: Keyed> Merge<T> {
    /// A merge of `rxs`.
    pub fn new(rxs: Vec<Consumer<T>>) -> Merge<T> {
        let n = rxs.len();
        Merge {
            rxs,
            heads: vec![None; n],
            floor: vec![None; n],
            finished: vec![false; n],
        }
    }

    /// Whether every stream has ended and been taken.
    pub fn done(&self) -> bool {
        self.finished.iter().all(|f| *f)
    }

    /// The next record in key order, or `None` when some stream must be heard from first (or
    /// all have ended).
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.pop_from().map(|(_, r)| r)
    }

    /// [`Merge::pop`], with the number of the stream the record came from.
    #[inline]
    pub fn pop_from(&mut self) -> Option<(usize, T)> {
        for i in 0..self.rxs.len() {
            if self.heads[i].is_none() && !self.finished[i] {
                self.heads[i] = self.rxs[i].take();
                if self.heads[i].is_none() && self.rxs[i].is_abandoned() {
                    // Abandoned, then empty: the producer's last publish precedes its flag.
                    self.heads[i] = self.rxs[i].take();
                    self.finished[i] = self.heads[i].is_none();
                }
            }
        }
        let (i, key) = self
            .heads
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.map(|h| (i, h.key())))
            .min_by_key(|&(_, k)| k)?;
        // Every other live stream must be known to come after `key`.
        let safe = (0..self.rxs.len()).all(|j| {
            j == i || self.finished[j] || self.heads[j].is_some() || self.floor[j] >= Some(key)
        });
        if !safe {
            return None;
        }
        self.floor[i] = Some(key);
        self.heads[i].take().map(|r| (i, r))
    }

    /// Hands the taken slots back to the producers.
    pub fn release(&mut self) {
        for rx in &mut self.rxs {
            rx.release();
        }
    }
}
