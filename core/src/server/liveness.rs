//! Whether a worker process is alive, as its connection sees it.
//!
//! The connection's reader stamps [`Liveness`] whenever a packet arrives
//! (results, heartbeats, anything) and while it waits for room in the
//! scheduler loop's inbox. The loop reads the stamp when it checks for silent
//! workers, so a worker that is connected and sending is alive however long
//! the loop's queue is: liveness never waits behind other messages.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The last time a worker's connection heard from it.
#[derive(Debug)]
pub struct Liveness {
    epoch: Instant,
    /// Milliseconds since `epoch` when the last packet arrived.
    last_heard_ms: AtomicU64,
    /// The reader holds a packet and waits for the loop to take it: the
    /// worker is sending, the scheduler is behind.
    waiting_for_loop: AtomicBool,
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            epoch: Instant::now(),
            last_heard_ms: AtomicU64::new(0),
            waiting_for_loop: AtomicBool::new(false),
        }
    }
}

impl Liveness {
    /// Something arrived from the worker just now.
    pub fn heard(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.last_heard_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// The reader starts or stops waiting for room in the loop's inbox.
    pub fn set_waiting_for_loop(&self, waiting: bool) {
        self.waiting_for_loop.store(waiting, Ordering::Relaxed);
        self.heard();
    }

    /// How long the worker has been silent, counting time the reader spent
    /// waiting for the loop as heard.
    pub fn silent_for(&self) -> Duration {
        if self.waiting_for_loop.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_heard_ms.load(Ordering::Relaxed);
        Duration::from_millis(now.saturating_sub(last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_grows_until_something_is_heard_and_waiting_counts_as_heard() {
        let liveness = Liveness::default();
        std::thread::sleep(Duration::from_millis(30));
        assert!(liveness.silent_for() >= Duration::from_millis(30));
        liveness.heard();
        assert!(liveness.silent_for() < Duration::from_millis(30));
        liveness.set_waiting_for_loop(true);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(liveness.silent_for(), Duration::ZERO);
        liveness.set_waiting_for_loop(false);
        assert!(liveness.silent_for() < Duration::from_millis(30));
    }
}
