//! The worker's memory manager: process memory measured against the limit, with
//! Dask's thresholds — spill least-recently-used results to disk above the target
//! (60% of the limit, by managed bytes) and the spill fraction (70%, by process
//! memory), run one task at a time while still above 70% after spilling,
//! pause task execution above 80%, terminate above 95%.

use super::allocator::release_free_memory;
use super::runtime::WorkerCore;
use super::store::DataStore;

/// Fractions of the memory limit (Dask's `distributed.worker.memory.*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Managed bytes kept below this; older results spill first.
    pub target: f64,
    /// Process memory above this spills until it is back under `target`.
    pub spill: f64,
    /// Process memory above this pauses task execution.
    pub pause: f64,
    /// Process memory above this terminates the worker.
    pub terminate: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            target: 0.60,
            spill: 0.70,
            pause: 0.80,
            terminate: 0.95,
        }
    }
}

/// What the memory manager decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryVerdict {
    /// Carry on.
    Fine,
    /// The worker must stop now: it is about to run out of memory.
    Terminate {
        /// Resident bytes.
        rss: u64,
        /// The limit.
        limit: u64,
    },
}

/// Resident memory of this process, in bytes (Linux `/proc/self/statm`).
pub fn process_rss() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = text
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(4096) as u64
}

/// CPU time this process has used, user and system, in seconds.
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Total memory of this machine, in bytes.
pub fn system_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages.max(0) as u64) * (page.max(0) as u64)
}

/// Applies the thresholds to one worker.
pub struct MemoryManager {
    limit: u64,
    thresholds: Thresholds,
}

impl MemoryManager {
    /// A manager for a worker limited to `limit` bytes.
    pub fn new(limit: u64, thresholds: Thresholds) -> Self {
        MemoryManager { limit, thresholds }
    }

    /// The managed-bytes target to give the store.
    pub fn target_bytes(&self) -> u64 {
        (self.thresholds.target * self.limit as f64) as u64
    }

    /// Measures, spills, pauses or resumes; says whether to terminate.
    pub fn check(&self, store: &DataStore, core: &WorkerCore) -> MemoryVerdict {
        if self.limit == 0 {
            return MemoryVerdict::Fine;
        }
        let limit = self.limit as f64;
        let mut rss = process_rss();
        if rss as f64 > self.thresholds.spill * limit {
            // Pages the allocator keeps for reuse count as resident: give them back first.
            release_free_memory();
            rss = process_rss();
        }
        if rss as f64 > self.thresholds.spill * limit {
            // Spill until the process is back under the target, or nothing is left.
            for _ in 0..64 {
                let excess = rss as f64 - self.thresholds.target * limit;
                if excess <= 0.0 {
                    break;
                }
                let managed = store.sizes().managed;
                let shuffled = core.shuffles().memory_bytes();
                if managed + shuffled == 0 {
                    break;
                }
                // Results first (least recently used), then shuffle shards.
                let keep = (managed as f64 - excess).max(0.0) as u64;
                let mut spilled = store.spill_until(keep);
                let still = excess - spilled as f64;
                if still > 0.0 && shuffled > 0 {
                    let keep = (shuffled as f64 - still).max(0.0) as u64;
                    match core.shuffles().spill_until(keep) {
                        Ok(bytes) => spilled += bytes,
                        Err(error) => tracing::error!(%error, "cannot spill shuffle shards"),
                    }
                }
                release_free_memory();
                rss = process_rss();
                if spilled == 0 {
                    break;
                }
            }
        }
        // Still above the spill line after spilling: one task at a time.
        core.set_narrowed(rss as f64 > self.thresholds.spill * limit);
        core.set_paused(rss as f64 > self.thresholds.pause * limit);
        if rss as f64 > self.thresholds.terminate * limit {
            return MemoryVerdict::Terminate {
                rss,
                limit: self.limit,
            };
        }
        MemoryVerdict::Fine
    }
}

/// Why a memory size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad memory size {input:?}: {reason} (examples: 4GiB, 500MB, 0.5 for half of this machine, auto)")]
pub struct ParseBytesError {
    /// What was given.
    pub input: String,
    /// What is wrong.
    pub reason: String,
}

/// Reads a size like `4GiB`, `500MB`, `1e9`, `0.25` (a fraction of this machine's
/// memory), `auto` (all of it) or `0` (no limit).
pub fn parse_memory_limit(input: &str) -> Result<u64, ParseBytesError> {
    let text = input.trim();
    let err = |reason: &str| ParseBytesError {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    if text.eq_ignore_ascii_case("auto") {
        return Ok(system_memory());
    }
    let split = text
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .trim()
        .parse()
        .map_err(|_| err("expected a number followed by an optional unit"))?;
    if !number.is_finite() || number < 0.0 {
        return Err(err("the size must be a non-negative number"));
    }
    let unit = unit.trim().to_ascii_lowercase();
    if unit.is_empty() && number > 0.0 && number <= 1.0 && text.contains('.') {
        return Ok((number * system_memory() as f64) as u64);
    }
    let scale: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0f64.powi(4),
        _ => return Err(err(&format!("unknown unit {unit:?}"))),
    };
    Ok((number * scale) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_dask() {
        assert_eq!(parse_memory_limit("4GiB"), Ok(4 << 30));
        assert_eq!(parse_memory_limit("500MB"), Ok(500_000_000));
        assert_eq!(parse_memory_limit("1e9"), Ok(1_000_000_000));
        assert_eq!(parse_memory_limit("0"), Ok(0));
        assert_eq!(parse_memory_limit("2 kib"), Ok(2048));
        let half = parse_memory_limit("0.5").unwrap();
        assert!(half > 0 && half < system_memory());
        let err = parse_memory_limit("4 parsecs").unwrap_err();
        assert!(err.to_string().contains("unknown unit"), "{err}");
        assert!(parse_memory_limit("-1GB").is_err());
    }

    #[test]
    fn rss_is_measured() {
        assert!(process_rss() > 1 << 20);
    }
}
