//! How much the connections may queue for the scheduler loop.
//!
//! Every message a connection's reader hands to the loop takes its size from
//! one shared budget ([`INBOX_BYTES`]) and gives it back when the loop takes
//! it. When the loop is behind, readers wait for budget — and stop reading, so
//! TCP slows the senders down — instead of queueing without end. A reader that
//! waits tells the worker's [`Liveness`](super::liveness::Liveness), so a
//! worker that is sending is never taken for dead while the loop catches up.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes of messages that may wait for the scheduler loop at once.
pub const INBOX_BYTES: u64 = 256 << 20;
/// The budget is counted in units of this many bytes.
const UNIT: u64 = 4096;

/// The shared budget of the scheduler's inbox.
#[derive(Debug, Clone)]
pub struct InboxBudget {
    units: Arc<Semaphore>,
    capacity: u32,
}

impl Default for InboxBudget {
    fn default() -> Self {
        let capacity = (INBOX_BYTES / UNIT) as u32;
        InboxBudget {
            units: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
        }
    }
}

impl InboxBudget {
    /// Waits until a message of `bytes` fits (one larger than the whole budget
    /// waits for all of it), and returns its share.
    pub async fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let units = u32::try_from((bytes as u64).div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.capacity);
        self.units.clone().acquire_many_owned(units).await.ok()
    }

    /// Budget units free now.
    pub fn available(&self) -> usize {
        self.units.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn shares_come_back_when_dropped_and_a_full_budget_makes_readers_wait() {
        let budget = InboxBudget::default();
        let all = budget.available();
        let big = budget
            .reserve(INBOX_BYTES as usize * 4)
            .await
            .expect("open");
        assert_eq!(
            budget.available(),
            0,
            "a message over the budget takes all of it"
        );
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), budget.reserve(10));
        assert!(
            waiting.await.is_err(),
            "a reader waits while the budget is spent"
        );
        drop(big);
        assert_eq!(budget.available(), all);
        let small = budget.reserve(10).await.expect("open");
        assert_eq!(budget.available(), all - 1);
        drop(small);
    }
}
