//! The progress line shown while a pipeline run goes on, and the rules-file watcher that runs
//! beside it. Neither is on the hot path: one display thread wakes 10 times a second, and at
//! once when the run ends, so the process exits as soon as the work is done.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tickwatch::pipeline::alerts::RulesCell;
use tickwatch::surv::watch::{Reload, RulesWatch};

/// How often the display refreshes.
const TICK: Duration = Duration::from_millis(100);
/// How often the rules file is looked at.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// A watched rules file and the cell its reloads are published to.
pub type Watch = (Arc<RulesCell>, RulesWatch);

/// Runs `work` while a display thread shows `progress` (messages read) and polls `watch`;
/// returns once `work` has returned and the display is cleared.
pub fn while_running<R>(progress: &AtomicU64, watch: Option<Watch>, work: impl FnOnce() -> R) -> R {
    let finished = AtomicBool::new(false);
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} {human_pos} messages ({per_sec}) {msg}",
        )
        .expect("static template"),
    );
    std::thread::scope(|s| {
        let display = s.spawn(|| show(&bar, progress, &finished, watch));
        let r = work();
        finished.store(true, Ordering::Release);
        // Wake the display from its wait now, not at its next tick.
        display.thread().unpark();
        r
    })
}

/// The display thread: refreshes the bar, reloads the rules when their file changes.
fn show(
    bar: &indicatif::ProgressBar,
    progress: &AtomicU64,
    finished: &AtomicBool,
    mut watch: Option<Watch>,
) {
    let mut looked = Instant::now();
    while !finished.load(Ordering::Acquire) {
        bar.set_position(progress.load(Ordering::Relaxed));
        // Returns early on `unpark` (the run ended) or spuriously: the loop checks again.
        std::thread::park_timeout(TICK);
        if let Some((cell, w)) = &mut watch {
            if looked.elapsed() >= WATCH_EVERY {
                looked = Instant::now();
                reload(bar, cell, w);
            }
        }
    }
    bar.finish_and_clear();
}

/// Publishes the watched file's rules if it changed and loads; says what happened.
fn reload(bar: &indicatif::ProgressBar, cell: &RulesCell, w: &mut RulesWatch) {
    match w.poll() {
        None => {}
        Some(Reload::Loaded(r)) => {
            cell.publish(*r);
            bar.println(format!(
                "tickwatch: rules reloaded from {}",
                w.path().display()
            ));
        }
        Some(Reload::LimitsChanged) => bar.println(format!(
            "tickwatch: {}: [limits] cannot change while running; rules not reloaded",
            w.path().display()
        )),
        Some(Reload::Failed(e)) => bar.println(format!(
            "tickwatch: {:#}; the previous rules stay in force",
            anyhow::Error::new(e)
        )),
    }
}
