//! `tickwatch convert lobster`: a LOBSTER pair as an ITCH file.

use super::args::LobsterArgs;
use anyhow::Result;
use std::io;
use tickwatch::itch::fmt_time;

pub fn cmd_lobster(a: LobsterArgs) -> Result<()> {
    let r = tickwatch::lobster::convert(&a.messages, &a.orderbook, &a.symbol, &a.date, &a.out)?;
    if a.json {
        serde_json::to_writer_pretty(io::stdout().lock(), &r)?;
        println!();
        return Ok(());
    }
    println!(
        "wrote {}: {} ITCH messages for {} LOBSTER events ({} levels per side), {} .. {}",
        a.out.display(),
        r.messages_written,
        r.events,
        r.levels,
        fmt_time(r.first_ns),
        fmt_time(r.last_ns)
    );
    println!(
        "seeded the resting book: {} levels from the first row, {} deeper levels revealed later, {} shares; {} events on pre-sample orders",
        r.seeded_levels, r.deep_levels_seeded, r.seeded_shares, r.presample_events
    );
    if r.corrected_levels > 0 || r.inconsistencies > 0 {
        println!(
            "{} level change(s) LOBSTER did not record were corrected with {} message(s); {} inconsistency(ies) in the input",
            r.corrected_levels, r.correction_messages, r.inconsistencies
        );
    }
    Ok(())
}
