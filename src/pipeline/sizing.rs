//! Books sized to the feed: one pass over the frames counts what each shard can hold at most,
//! so a short feed does not pay for (and fault in) a whole day's tables.

use super::shard_of;
use crate::book::BookConfig;
use crate::feed::split::par_walk;
use crate::feed::{Frame, FrameError, Frames};

/// Orders a shard holds beyond its count (the tables' own slack is in the book).
const SLACK: usize = 1 << 10;

/// Each of `workers` shards' capacities for the feed `buf`: its live orders cannot exceed the
/// orders added on its stocks (`A`, `F`, and the new orders of `U`), and its locates stop at
/// the highest locate in the feed. Never above its share of `cap` (`cap` divided among the
/// shards with 50 % headroom for uneven ones, never more than the whole). Frames after a
/// framing error are not counted (the run stops there).
pub fn shard_books(buf: &[u8], workers: usize, cap: BookConfig) -> Vec<BookConfig> {
    let n = workers.max(1);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    // On every core (the walk's chunks resynchronise provably); a framing error: serially, up
    // to the error, where the run will stop too.
    let walk = par_walk::<_, FrameError, _, _>(buf, threads, || Count::new(n), Count::frame);
    let (adds, max_locate) = match walk {
        Ok((parts, _)) => parts.into_iter().fold(Count::new(n), Count::merge),
        Err(_) => {
            let mut c = Count::new(n);
            for f in Frames::new(buf).map_while(Result::ok) {
                let _ = c.frame(f);
            }
            c
        }
    }
    .into_parts();
    let locates = (usize::from(max_locate) + 1).min(cap.max_locates);
    let share = |x: usize| match n {
        1 => x,
        _ => (x / n + x / (2 * n)).max(1 << 12).min(x),
    };
    adds.into_iter()
        .map(|a| {
            let orders = (a + SLACK).min(share(cap.max_orders));
            let c = BookConfig::for_orders(orders, locates);
            BookConfig {
                max_levels: c.max_levels.min(share(cap.max_levels)),
                ..c
            }
        })
        .collect()
}

/// Orders added per shard, and the highest locate, in part of the feed.
struct Count {
    adds: Vec<usize>,
    max_locate: u16,
}

impl Count {
    fn new(shards: usize) -> Count {
        Count {
            adds: vec![0; shards],
            max_locate: 0,
        }
    }

    #[inline]
    fn frame(&mut self, f: Frame<'_>) -> Result<(), FrameError> {
        let b = f.body;
        if b.len() >= 3 {
            let locate = u16::from_be_bytes([b[1], b[2]]);
            self.max_locate = self.max_locate.max(locate);
            if matches!(b[0], b'A' | b'F' | b'U') && locate != 0 {
                let shard = shard_of(locate, self.adds.len());
                self.adds[shard] += 1;
            }
        }
        Ok(())
    }

    fn merge(mut self, other: Count) -> Count {
        self.adds
            .iter_mut()
            .zip(&other.adds)
            .for_each(|(a, b)| *a += b);
        self.max_locate = self.max_locate.max(other.max_locate);
        self
    }

    fn into_parts(self) -> (Vec<usize>, u16) {
        (self.adds, self.max_locate)
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
        let b = shard_books(&buf, 2, cap);
        // Shard 1 holds locates 1 and 3 (A, F, U), shard 0 locate 2 (A).
        assert_eq!(b[1].max_orders, 3 + SLACK);
        assert_eq!(b[0].max_orders, 1 + SLACK);
        assert_eq!(b[0].max_locates, 4);
        let small = BookConfig::for_orders(2, 1 << 16);
        assert!(shard_books(&buf, 1, small)[0].max_orders == 2);
    }
}
