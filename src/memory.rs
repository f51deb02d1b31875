//! Gives the allocator's free pages back to the system after bursts of work.
//!
//! glibc's malloc returns memory to the system only from the top of a heap.
//! A gateway's long-lived allocations (each connection's task and record)
//! are made among short-lived ones (the upgrade's buffers, registry and
//! lookup calls), so once a burst of connects is over, the pages of the
//! short-lived ones stay resident between the live ones: a quarter of the
//! memory per idle connection after a storm, measured (benches/README.md).
//! `malloc_trim` releases every whole free page inside the heaps.

use std::time::{Duration, Instant};

/// How often free pages are given back.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Starts the thread that gives free pages back every few seconds, for the
/// life of the process. Processes that run a gateway start it; the control
/// plane alone does not (not measured there, and a trim holds each heap's
/// lock while it runs).
pub fn spawn_trimmer() {
    let spawned = std::thread::Builder::new()
        .name("memory-trim".into())
        .spawn(|| {
            loop {
                std::thread::sleep(TRIM_EVERY);
                let started = Instant::now();
                let released = trim();
                tracing::debug!(
                    released,
                    took_us = started.elapsed().as_micros(),
                    "free pages given back"
                );
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no memory trim thread; freed pages stay resident");
    }
}

/// Releases the free pages of every heap; true when some were released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() -> bool {
    // SAFETY: malloc_trim has no preconditions: it takes each heap's lock
    // and advises the kernel that whole free pages are unneeded.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other C libraries return what they can by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::trim;

    /// Private resident memory of this process, in KiB.
    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("RssAnon:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn the_pages_of_blocks_freed_between_live_ones_are_given_back() {
        // 32 MiB in 16 KiB blocks (below the mmap threshold: in the heap),
        // then every other one freed: 16 MiB of holes that free() alone
        // cannot return, each between two live blocks.
        let mut blocks: Vec<Vec<u8>> = (0..2048).map(|i| vec![i as u8; 16 * 1024]).collect();
        let mut kept = Vec::new();
        for (i, block) in blocks.drain(..).enumerate() {
            if i % 2 == 0 {
                kept.push(block);
            }
        }
        let before = resident_kib();
        trim();
        let after = resident_kib();
        std::hint::black_box(&kept);
        assert!(
            before.saturating_sub(after) >= 8 * 1024,
            "resident {before} KiB -> {after} KiB"
        );
    }
}
