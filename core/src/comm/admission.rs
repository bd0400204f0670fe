//! How many connections may be in their handshake at once.
//!
//! Until its `Hello` is accepted a peer is nobody: it may hold a socket, a TLS
//! session and a small buffer ([`super::frame::Limits::handshake`]) for at
//! most the handshake timeouts. [`Admission`] caps how many such peers a
//! server keeps; beyond the cap new connections are closed at once, so a
//! flood of stalled handshakes costs bounded memory and the peers already
//! admitted keep being served.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections a server lets handshake at once.
pub const MAX_HANDSHAKES: usize = 512;
/// How often a server says it is refusing connections.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Slots for connections that are still handshaking.
#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    refused: AtomicU64,
    last_warning: std::sync::Mutex<Option<Instant>>,
    what: &'static str,
}

impl Admission {
    /// At most `max` handshakes at once on the server called `what` (for logs).
    pub fn new(max: usize, what: &'static str) -> Arc<Admission> {
        Arc::new(Admission {
            slots: Arc::new(Semaphore::new(max)),
            refused: AtomicU64::new(0),
            last_warning: std::sync::Mutex::new(None),
            what,
        })
    }

    /// A slot for a new connection, held until its handshake is done; `None`
    /// (with an occasional warning) when every slot is taken.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
                if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    *last = Some(Instant::now());
                    tracing::warn!(
                        server = self.what,
                        refused,
                        "too many connections still in their handshake; closing new ones"
                    );
                }
                None
            }
        }
    }

    /// Connections refused so far for want of a slot.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_and_come_back() {
        let admission = Admission::new(2, "test");
        let a = admission.admit().expect("first");
        let _b = admission.admit().expect("second");
        assert!(admission.admit().is_none());
        assert_eq!(admission.refused(), 1);
        drop(a);
        assert!(admission.admit().is_some());
    }
}
