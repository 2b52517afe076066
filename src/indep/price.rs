//! Prices in ITCH Price(4) units (1/10,000 dollar) on the Reg NMS Rule 612 grid: quotes at or
//! above $1.00 in whole cents, below $1.00 in hundredths of a cent.

/// $1.00 in Price(4).
pub const DOLLAR: u32 = 10_000;

/// The minimum increment at `p`.
pub fn tick_at(p: u32) -> u32 {
    if p >= DOLLAR {
        100
    } else {
        1
    }
}

/// Whether `p` lies on the grid.
pub fn on_grid(p: u32) -> bool {
    p > 0 && p % tick_at(p) == 0
}

/// The grid price nearest `x` (Price(4) as a float), at least one increment.
pub fn snap(x: f64) -> u32 {
    let x = x.max(1.0);
    if x >= DOLLAR as f64 {
        ((x / 100.0).round() as u32 * 100).max(DOLLAR)
    } else {
        x.round() as u32
    }
}

/// `n` increments above `p`.
pub fn up(p: u32, n: u32) -> u32 {
    (0..n).fold(p, |q, _| q + tick_at(q))
}

/// `n` increments below `p` (never below one increment).
pub fn down(p: u32, n: u32) -> u32 {
    (0..n).fold(p, |q, _| {
        let t = if q > DOLLAR { 100 } else { 1 };
        q.saturating_sub(t).max(1)
    })
}

/// `p` moved by `bps` basis points, on the grid.
pub fn by_bps(p: u32, bps: f64) -> u32 {
    snap(p as f64 * (1.0 + bps / 10_000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_changes_at_one_dollar() {
        assert_eq!(up(9_999, 1), 10_000);
        assert_eq!(up(10_000, 1), 10_100);
        assert_eq!(down(10_000, 1), 9_999);
        assert_eq!(down(10_100, 2), 9_999);
        assert!(on_grid(5_123) && !on_grid(10_050) && on_grid(10_100));
        assert_eq!(snap(10_049.0), 10_000);
        assert_eq!(by_bps(5_000, 100.0), 5_050);
    }
}
