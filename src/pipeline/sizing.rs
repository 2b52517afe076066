//! Books and detector tables sized to the feed: one pass over the frames counts what each shard
//! can hold at most, so a short feed does not pay for (and fault in) a whole day's tables.

use super::shard_of;
use crate::book::BookConfig;
use crate::feed::split::par_walk;
use crate::feed::{Frame, FrameError, Frames};
use crate::surv::Capacity;

/// Orders a shard holds beyond its count (the tables' own slack is in the book).
const SLACK: usize = 1 << 10;

/// What each shard of a feed can hold at most: the orders added on its stocks (`A`, `F`, and
/// the new orders of `U`), the messages it gets (market-wide ones go to every shard), and the
/// highest locate. Frames after a framing error are not counted (the run stops there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedCounts {
    /// Orders added, per shard.
    pub adds: Vec<usize>,
    /// Messages, per shard.
    pub messages: Vec<usize>,
    /// The highest stock locate.
    pub max_locate: u16,
}

impl FeedCounts {
    /// One pass over the frames of `buf` for `shards` shards, on every core (the walk's chunks
    /// resynchronise provably); after a framing error, serially up to it.
    pub fn of(buf: &[u8], shards: usize) -> FeedCounts {
        let n = shards.max(1);
        let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
        let walk = par_walk::<_, FrameError, _, _>(buf, threads, || Count::new(n), Count::frame);
        let c = match walk {
            Ok((parts, _)) => parts.into_iter().fold(Count::new(n), Count::merge),
            Err(_) => {
                let mut c = Count::new(n);
                for f in Frames::new(buf).map_while(Result::ok) {
                    let _ = c.frame(f);
                }
                c
            }
        };
        c.0
    }

    /// Counts of nothing yet, for `shards` shards: [`FeedCounts::count`] each message.
    pub fn zero(shards: usize) -> FeedCounts {
        Count::new(shards.max(1)).0
    }

    /// Counts one message (a frame's body), as [`FeedCounts::of`] counts a frame.
    #[inline]
    pub fn count(&mut self, b: &[u8]) {
        if b.len() >= 3 {
            let locate = u16::from_be_bytes([b[1], b[2]]);
            self.max_locate = self.max_locate.max(locate);
            if locate == 0 {
                self.messages.iter_mut().for_each(|m| *m += 1);
            } else {
                let shard = shard_of(locate, self.adds.len());
                self.messages[shard] += 1;
                self.adds[shard] += usize::from(matches!(b[0], b'A' | b'F' | b'U'));
            }
        }
    }

    /// Counts for a feed that cannot be scanned first (a live one): as if each shard could
    /// get any number of orders and messages on any locate, so the books and detector tables
    /// take the configured capacities.
    pub fn unscanned(shards: usize) -> FeedCounts {
        let n = shards.max(1);
        // Large, yet far from overflowing the sums made of it.
        let any = usize::MAX / 4;
        FeedCounts {
            adds: vec![any; n],
            messages: vec![any; n],
            max_locate: u16::MAX,
        }
    }

    /// Each shard's book capacities: never above its share of `cap` (`cap` divided among the
    /// shards with 50 % headroom for uneven ones, never more than the whole).
    pub fn books(&self, cap: BookConfig) -> Vec<BookConfig> {
        let n = self.adds.len().max(1);
        let locates = (usize::from(self.max_locate) + 1).min(cap.max_locates);
        let share = |x: usize| match n {
            1 => x,
            _ => (x / n + x / (2 * n)).max(1 << 12).min(x),
        };
        self.adds
            .iter()
            .map(|&a| {
                let orders = (a + SLACK).min(share(cap.max_orders));
                let c = BookConfig::for_orders(orders, locates);
                BookConfig {
                    max_levels: c.max_levels.min(share(cap.max_levels)),
                    ..c
                }
            })
            .collect()
    }

    /// The most shard `shard`'s detector tables can fill, with `flow` participant-flow
    /// records: an entry is made by an event (a message or a flow record), an order by an add
    /// or a flow record. Tables this large never fill, so they behave as the configured ones.
    pub fn detector_fit(&self, shard: usize, flow: usize) -> Capacity {
        let events = self.messages.get(shard).copied().unwrap_or(0) + flow + SLACK;
        Capacity {
            orders: self.adds.get(shard).copied().unwrap_or(0) + flow + SLACK,
            parties: events,
            pairs: events,
            locates: usize::from(self.max_locate) + 1,
        }
    }
}

/// [`FeedCounts`] of part of the feed.
struct Count(FeedCounts);

impl Count {
    fn new(shards: usize) -> Count {
        Count(FeedCounts {
            adds: vec![0; shards],
            messages: vec![0; shards],
            max_locate: 0,
        })
    }

    #[inline]
    fn frame(&mut self, f: Frame<'_>) -> Result<(), FrameError> {
        self.0.count(f.body);
        Ok(())
    }

    fn merge(mut self, other: Count) -> Count {
        let (a, b) = (&mut self.0, other.0);
        a.adds.iter_mut().zip(&b.adds).for_each(|(x, y)| *x += y);
        a.messages
            .iter_mut()
            .zip(&b.messages)
            .for_each(|(x, y)| *x += y);
        a.max_locate = a.max_locate.max(b.max_locate);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::itch::encode::{header, push_frame};

    #[test]
    fn counts_adds_per_shard_and_caps_at_the_configured_size() {
        let mut buf = Vec::new();
        for (t, locate) in [
            (b'A', 1u16),
            (b'A', 2),
            (b'F', 3),
            (b'U', 1),
            (b'D', 1),
            (b'S', 0),
        ] {
            // Only the type and locate are read: a header is enough.
            push_frame(&mut buf, &header(t, locate, 0, 0));
        }
        let cap = BookConfig::full_day();
        let b = FeedCounts::of(&buf, 2).books(cap);
        // Shard 1 holds locates 1 and 3 (A, F, U), shard 0 locate 2 (A).
        assert_eq!(b[1].max_orders, 3 + SLACK);
        assert_eq!(b[0].max_orders, 1 + SLACK);
        assert_eq!(b[0].max_locates, 4);
        let small = BookConfig::for_orders(2, 1 << 16);
        assert!(FeedCounts::of(&buf, 1).books(small)[0].max_orders == 2);
    }

    #[test]
    fn an_unscanned_feed_takes_the_configured_capacities() {
        let cap = BookConfig::for_orders(1 << 16, 1 << 12);
        let one = FeedCounts::unscanned(1).books(cap);
        assert_eq!(one[0].max_orders, cap.max_orders);
        assert_eq!(one[0].max_locates, cap.max_locates);
        // Two shards: each its share of the cap (half, with 50 % headroom).
        let two = FeedCounts::unscanned(2).books(cap);
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].max_orders, (1 << 15) + (1 << 14));
        let fit = FeedCounts::unscanned(2).detector_fit(1, 10);
        assert!(fit.orders > 1 << 40 && fit.locates == 1 << 16);
    }
}
