//! What the host took from a thread, from the kernel's own accounts: time it sat runnable while
//! another task had its core (`/proc/thread-self/schedstat`), the times it was switched out
//! against its will (`getrusage`), and the time the hypervisor stole from its core and spent in
//! interrupts there (`/proc/stat`). Read once before a thread's loop and once after, so a
//! thread that is never idle — where gaps between idle polls cannot be watched — still has its
//! host share measured. Linux only; elsewhere every figure is absent.

use serde::Serialize;

/// The host's share of one thread's run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HostTime {
    /// Time runnable but waiting for the core, ns (another task ran there).
    pub run_delay_ns: Option<u64>,
    /// Involuntary context switches (preemptions).
    pub preemptions: Option<u64>,
    /// Time the hypervisor stole from the thread's core, ns (whole core, 10 ms resolution).
    pub steal_ns: Option<u64>,
    /// Time the thread's core spent in hard and soft interrupts, ns (whole core, 10 ms resolution).
    pub irq_ns: Option<u64>,
}

/// Counters at one moment, for [`HostTime::since`].
#[derive(Clone, Copy, Debug, Default)]
pub struct HostMark {
    run_delay_ns: Option<u64>,
    preemptions: Option<u64>,
    core: Option<CoreTicks>,
}

#[derive(Clone, Copy, Debug)]
struct CoreTicks {
    steal: u64,
    irq: u64,
}

impl HostMark {
    /// The calling thread's counters now, and those of `core` if it is pinned there.
    pub fn now(core: Option<usize>) -> HostMark {
        HostMark {
            run_delay_ns: run_delay_ns(),
            preemptions: preemptions(),
            core: core.and_then(core_ticks),
        }
    }
}

impl HostTime {
    /// What the host took between `start` and now, on the calling thread and `core`.
    pub fn since(start: &HostMark, core: Option<usize>) -> HostTime {
        let end = HostMark::now(core);
        let diff = |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?));
        let tick_ns = 1_000_000_000 / clock_ticks_per_second();
        let core = |f: fn(&CoreTicks) -> u64| {
            let (a, b) = (start.core.as_ref()?, end.core.as_ref()?);
            Some(f(b).saturating_sub(f(a)) * tick_ns)
        };
        HostTime {
            run_delay_ns: diff(start.run_delay_ns, end.run_delay_ns),
            preemptions: diff(start.preemptions, end.preemptions),
            steal_ns: core(|c| c.steal),
            irq_ns: core(|c| c.irq),
        }
    }
}

/// The second field of `/proc/thread-self/schedstat`: time spent waiting on a run queue.
fn run_delay_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().nth(1)?.parse().ok()
}

fn preemptions() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let mut u = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: `u` is a valid, writable rusage; the call fills it or fails.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, u.as_mut_ptr()) };
        // SAFETY: zero-initialised and, on success, filled by the kernel.
        (rc == 0).then(|| unsafe { u.assume_init() }.ru_nivcsw as u64)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// `cpuN` in `/proc/stat`: user nice system idle iowait irq softirq steal (clock ticks).
fn core_ticks(core: usize) -> Option<CoreTicks> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let name = format!("cpu{core}");
    let line = s
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&name))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Some(CoreTicks {
        steal: *f.get(7)?,
        irq: f.get(5)? + f.get(6)?,
    })
}

fn clock_ticks_per_second() -> u64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no preconditions.
        let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if t > 0 {
            return t as u64;
        }
    }
    100
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_sleeps_has_its_accounts_read() {
        let start = HostMark::now(Some(0));
        std::thread::sleep(std::time::Duration::from_millis(2));
        let t = HostTime::since(&start, Some(0));
        if cfg!(target_os = "linux") {
            assert!(t.preemptions.is_some() && t.steal_ns.is_some() && t.irq_ns.is_some());
        }
    }

    #[test]
    fn a_thread_crowded_off_its_core_waits_on_the_run_queue() {
        if run_delay_ns().is_none() {
            return; // kernel without schedstats
        }
        // Pin three busy threads and this one to one core: this one must wait.
        let core = core_affinity::CoreId { id: 0 };
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spin: Vec<_> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    core_affinity::set_for_current(core);
                    // Relaxed: a stop flag, nothing else is published through it.
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let pinned = core_affinity::set_for_current(core);
        let start = HostMark::now(Some(0));
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_millis(60) {
            std::hint::spin_loop();
        }
        let t = HostTime::since(&start, Some(0));
        // Relaxed: as above.
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        spin.into_iter().for_each(|h| h.join().unwrap());
        if pinned {
            assert!(t.run_delay_ns.unwrap() > 1_000_000, "{t:?}");
            assert!(t.preemptions.unwrap() > 0, "{t:?}");
        }
    }
}
