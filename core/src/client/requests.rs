//! Requests waiting for the scheduler's reply.

use crate::comm::protocol::Reply;
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::sync::Mutex;

/// Replies not yet received, by request id.
#[derive(Default)]
pub(crate) struct PendingRequests {
    waiting: Mutex<(u64, HashMap<u64, Sender<Reply>>)>,
}

impl PendingRequests {
    /// A new request id and where its reply will arrive.
    pub fn register(&self) -> (u64, Receiver<Reply>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        waiting.0 += 1;
        let id = waiting.0;
        waiting.1.insert(id, tx);
        (id, rx)
    }

    /// Delivers a reply.
    pub fn complete(&self, id: u64, reply: Reply) {
        let sender = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .remove(&id);
        if let Some(sender) = sender {
            let _ = sender.send(reply);
        }
    }

    /// The scheduler is gone: every waiting request fails.
    pub fn fail_all(&self) {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1
            .clear();
    }
}
