//! How many threads a command gets on this machine: decode threads, and the pipeline's shard
//! workers for each kind of run (the choices measured best in PERF.md).

/// What a pipeline run does, as far as choosing its worker count goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// Books only (plain `run`).
    Books,
    /// Bars: the output stage formats a row per window.
    Bars,
    /// Surveillance: the detectors make the workers the heavy stages.
    Surveillance,
}

/// The cores this process may run on (empty when the platform cannot say).
pub fn available_cores() -> Vec<usize> {
    core_affinity::get_core_ids()
        .map(|v| v.into_iter().map(|c| c.id).collect())
        .unwrap_or_default()
}

/// `threads`, or one per core this process may use when `None`; at least 1.
pub fn threads_or_all(threads: Option<usize>) -> usize {
    threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .max(1)
}

/// Shard workers for `cores` cores: the reader and the output stage get cores of their own from
/// 4 cores on. Below that, a paced (latency) run gives the reader and output one core and the
/// workers the rest, so no event waits for another stage's turn; an as-fast-as-possible run
/// takes one worker more than cores, so that the stages pack evenly (on 2 cores: {reader,
/// worker} and {worker, worker, output}). Both measured best in PERF.md.
pub fn default_workers(cores: usize, paced: bool) -> usize {
    match (cores, paced) {
        (c, _) if c >= 4 => c - 2,
        (c, true) => c.saturating_sub(1).max(1),
        (c, false) => c.max(1) + 1,
    }
}

/// Shard workers for a run of `kind` on `cores` cores, paced or as fast as possible.
///
/// A bars run's output stage formats a row per window: like a paced run, it gets a core of its
/// own with the reader below 4 cores. Surveillance at full speed below 4 cores takes one worker
/// per core, each sharing it with the light reader or output stage. Both measured faster on 2
/// cores (PERF.md).
pub fn workers_for(kind: RunKind, cores: usize, paced: bool) -> usize {
    match kind {
        RunKind::Surveillance if !paced && cores < 4 => cores.max(1),
        RunKind::Bars => default_workers(cores, true),
        _ => default_workers(cores, paced),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_by_cores_and_kind() {
        assert_eq!(default_workers(8, false), 6);
        assert_eq!(default_workers(4, true), 2);
        assert_eq!(default_workers(2, false), 3);
        assert_eq!(default_workers(2, true), 1);
        assert_eq!(default_workers(1, true), 1);
        assert_eq!(default_workers(0, false), 2);
        assert_eq!(workers_for(RunKind::Surveillance, 2, false), 2);
        assert_eq!(workers_for(RunKind::Surveillance, 2, true), 1);
        assert_eq!(workers_for(RunKind::Surveillance, 8, false), 6);
        assert_eq!(workers_for(RunKind::Bars, 2, false), 1);
        assert_eq!(workers_for(RunKind::Books, 2, false), 3);
    }

    #[test]
    fn threads_default_to_every_core() {
        assert_eq!(threads_or_all(Some(3)), 3);
        assert_eq!(threads_or_all(Some(0)), 1);
        assert!(threads_or_all(None) >= 1);
    }
}
