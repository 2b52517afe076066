//! Books sized to the feed: one pass over the frames counts what each shard can hold at most,
//! so a short feed does not pay for (and fault in) a whole day's tables.

use super::shard_of;
use crate::book::BookConfig;
use crate::feed::Frames;

/// Orders a shard holds beyond its count (the tables' own slack is in the book).
const SLACK: usize = 1 << 10;

/// Each of `workers` shards' capacities for the feed `buf`: its live orders cannot exceed the
/// orders added on its stocks (`A`, `F`, and the new orders of `U`), and its locates stop at
/// the highest locate in the feed. Never above its share of `cap` (`cap` divided among the
/// shards with 50 % headroom for uneven ones, never more than the whole). Frames after a
/// framing error are not counted (the run stops there).
pub fn shard_books(buf: &[u8], workers: usize, cap: BookConfig) -> Vec<BookConfig> {
    let n = workers.max(1);
    let mut adds = vec![0usize; n];
    let mut max_locate = 0u16;
    for f in Frames::new(buf) {
        let Ok(f) = f else { break };
        let b = f.body;
        if b.len() < 3 {
            continue;
        }
        let locate = u16::from_be_bytes([b[1], b[2]]);
        max_locate = max_locate.max(locate);
        if matches!(b[0], b'A' | b'F' | b'U') && locate != 0 {
            adds[shard_of(locate, n)] += 1;
        }
    }
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
