//! Coordination primitives held by the scheduler: Lock, Semaphore, Queue,
//! Variable and Event, by name (Dask's `distributed.Lock` and friends).
//!
//! [`Primitives`] is a pure state machine: requests come in with an opaque
//! waiter token, and replies come out for whichever waiters can be answered now
//! (a lock released answers the next waiter). Deadlines are checked by
//! [`Primitives::expire`]. The client-side handles are in
//! [`crate::client::primitives`].

use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// An operation on a named primitive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PrimitiveRequest {
    /// Take a lock (or a semaphore lease when `max_leases > 1`); waits up to `timeout_ms`.
    Acquire {
        /// The primitive's name.
        name: String,
        /// Who takes it (unique per handle).
        holder: String,
        /// Leases available in total (1 for a lock).
        max_leases: u32,
        /// How long to wait; `None` waits forever.
        timeout_ms: Option<u64>,
    },
    /// Give a lock or lease back.
    Release {
        /// The name.
        name: String,
        /// Who gives it back.
        holder: String,
    },
    /// Append to a queue.
    Put {
        /// The queue.
        name: String,
        /// The encoded item.
        item: Vec<u8>,
    },
    /// Take the oldest item of a queue, waiting up to `timeout_ms`.
    Get {
        /// The queue.
        name: String,
        /// How long to wait.
        timeout_ms: Option<u64>,
    },
    /// Items in a queue.
    QueueSize {
        /// The queue.
        name: String,
    },
    /// Set a variable.
    SetVariable {
        /// The variable.
        name: String,
        /// The encoded value.
        value: Vec<u8>,
    },
    /// Read a variable, waiting up to `timeout_ms` for it to be set.
    GetVariable {
        /// The variable.
        name: String,
        /// How long to wait.
        timeout_ms: Option<u64>,
    },
    /// Delete a variable.
    DeleteVariable {
        /// The variable.
        name: String,
    },
    /// Set an event: every waiter wakes.
    SetEvent {
        /// The event.
        name: String,
    },
    /// Clear an event.
    ClearEvent {
        /// The event.
        name: String,
    },
    /// Wait for an event to be set.
    WaitEvent {
        /// The event.
        name: String,
        /// How long to wait.
        timeout_ms: Option<u64>,
    },
    /// Whether an event is set.
    IsEventSet {
        /// The event.
        name: String,
    },
}

/// The answer to a [`PrimitiveRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PrimitiveReply {
    /// Acquired / set / waited successfully (`true`) or timed out (`false`).
    Flag(bool),
    /// An item or value; `None` when the wait timed out.
    Value(Option<Vec<u8>>),
    /// A count.
    Count(u64),
    /// Misuse, e.g. releasing a lock not held.
    Error(String),
}

#[derive(Default)]
struct Leases {
    holders: HashSet<String>,
    max: u32,
}

struct Waiting<W> {
    waiter: W,
    kind: WaitKind,
    deadline: Option<Instant>,
}

enum WaitKind {
    Acquire { name: String, holder: String },
    Get { name: String },
    Variable { name: String },
    Event { name: String },
}

/// Every named primitive and everyone waiting on one.
pub struct Primitives<W> {
    leases: HashMap<String, Leases>,
    queues: HashMap<String, VecDeque<Vec<u8>>>,
    variables: HashMap<String, Vec<u8>>,
    events: HashSet<String>,
    waiting: Vec<Waiting<W>>,
}

impl<W> Default for Primitives<W> {
    fn default() -> Self {
        Primitives {
            leases: HashMap::new(),
            queues: HashMap::new(),
            variables: HashMap::new(),
            events: HashSet::new(),
            waiting: Vec::new(),
        }
    }
}

impl<W> Primitives<W> {
    /// Handles one request from `waiter`; returns the replies that are due now
    /// (possibly to other waiters, possibly none when `waiter` must wait).
    pub fn handle(
        &mut self,
        waiter: W,
        request: PrimitiveRequest,
        now: Instant,
    ) -> Vec<(W, PrimitiveReply)> {
        let deadline = |t: Option<u64>| t.map(|ms| now + Duration::from_millis(ms));
        let mut out = Vec::new();
        match request {
            PrimitiveRequest::Acquire {
                name,
                holder,
                max_leases,
                timeout_ms,
            } => {
                let free = self.no_one_waits_for(&name);
                let leases = self.leases.entry(name.clone()).or_default();
                leases.max = max_leases.max(1);
                if leases.holders.len() < leases.max as usize && free {
                    leases.holders.insert(holder);
                    out.push((waiter, PrimitiveReply::Flag(true)));
                } else if timeout_ms == Some(0) {
                    out.push((waiter, PrimitiveReply::Flag(false)));
                } else {
                    self.wait(
                        waiter,
                        WaitKind::Acquire { name, holder },
                        deadline(timeout_ms),
                    );
                }
            }
            PrimitiveRequest::Release { name, holder } => {
                let released = self
                    .leases
                    .get_mut(&name)
                    .is_some_and(|l| l.holders.remove(&holder));
                if released {
                    out.push((waiter, PrimitiveReply::Flag(true)));
                    self.grant_leases(&name, &mut out);
                } else {
                    out.push((
                        waiter,
                        PrimitiveReply::Error(format!("{name:?} is not held by this handle")),
                    ));
                }
            }
            PrimitiveRequest::Put { name, item } => {
                self.queues.entry(name.clone()).or_default().push_back(item);
                out.push((waiter, PrimitiveReply::Flag(true)));
                self.serve_queue(&name, &mut out);
            }
            PrimitiveRequest::Get { name, timeout_ms } => {
                match self.queues.get_mut(&name).and_then(|q| q.pop_front()) {
                    Some(item) => out.push((waiter, PrimitiveReply::Value(Some(item)))),
                    None if timeout_ms == Some(0) => {
                        out.push((waiter, PrimitiveReply::Value(None)))
                    }
                    None => self.wait(waiter, WaitKind::Get { name }, deadline(timeout_ms)),
                }
            }
            PrimitiveRequest::QueueSize { name } => {
                let n = self.queues.get(&name).map_or(0, |q| q.len());
                out.push((waiter, PrimitiveReply::Count(n as u64)));
            }
            PrimitiveRequest::SetVariable { name, value } => {
                self.variables.insert(name.clone(), value.clone());
                out.push((waiter, PrimitiveReply::Flag(true)));
                self.wake(&mut out, |kind| match kind {
                    WaitKind::Variable { name: n } if *n == name => {
                        Some(PrimitiveReply::Value(Some(value.clone())))
                    }
                    _ => None,
                });
            }
            PrimitiveRequest::GetVariable { name, timeout_ms } => match self.variables.get(&name) {
                Some(value) => out.push((waiter, PrimitiveReply::Value(Some(value.clone())))),
                None if timeout_ms == Some(0) => out.push((waiter, PrimitiveReply::Value(None))),
                None => self.wait(waiter, WaitKind::Variable { name }, deadline(timeout_ms)),
            },
            PrimitiveRequest::DeleteVariable { name } => {
                let existed = self.variables.remove(&name).is_some();
                out.push((waiter, PrimitiveReply::Flag(existed)));
            }
            PrimitiveRequest::SetEvent { name } => {
                self.events.insert(name.clone());
                out.push((waiter, PrimitiveReply::Flag(true)));
                self.wake(&mut out, |kind| match kind {
                    WaitKind::Event { name: n } if *n == name => Some(PrimitiveReply::Flag(true)),
                    _ => None,
                });
            }
            PrimitiveRequest::ClearEvent { name } => {
                self.events.remove(&name);
                out.push((waiter, PrimitiveReply::Flag(true)));
            }
            PrimitiveRequest::WaitEvent { name, timeout_ms } => {
                if self.events.contains(&name) {
                    out.push((waiter, PrimitiveReply::Flag(true)));
                } else if timeout_ms == Some(0) {
                    out.push((waiter, PrimitiveReply::Flag(false)));
                } else {
                    self.wait(waiter, WaitKind::Event { name }, deadline(timeout_ms));
                }
            }
            PrimitiveRequest::IsEventSet { name } => {
                out.push((waiter, PrimitiveReply::Flag(self.events.contains(&name))));
            }
        }
        out
    }

    /// Answers waiters whose deadline has passed (a timed-out wait).
    pub fn expire(&mut self, now: Instant) -> Vec<(W, PrimitiveReply)> {
        let mut out = Vec::new();
        let mut kept = Vec::with_capacity(self.waiting.len());
        for waiting in self.waiting.drain(..) {
            if waiting.deadline.is_some_and(|d| d <= now) {
                let reply = match waiting.kind {
                    WaitKind::Acquire { .. } | WaitKind::Event { .. } => {
                        PrimitiveReply::Flag(false)
                    }
                    WaitKind::Get { .. } | WaitKind::Variable { .. } => PrimitiveReply::Value(None),
                };
                out.push((waiting.waiter, reply));
            } else {
                kept.push(waiting);
            }
        }
        self.waiting = kept;
        out
    }

    /// Drops the waits of waiters that went away (their client disconnected).
    pub fn forget_waiters(&mut self, gone: impl Fn(&W) -> bool) {
        self.waiting.retain(|w| !gone(&w.waiter));
    }

    /// How many requests are waiting.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    fn wait(&mut self, waiter: W, kind: WaitKind, deadline: Option<Instant>) {
        self.waiting.push(Waiting {
            waiter,
            kind,
            deadline,
        });
    }

    fn no_one_waits_for(&self, name: &str) -> bool {
        !self
            .waiting
            .iter()
            .any(|w| matches!(&w.kind, WaitKind::Acquire { name: n, .. } if n == name))
    }

    /// Grants free leases of `name` to waiters, first come first served.
    fn grant_leases(&mut self, name: &str, out: &mut Vec<(W, PrimitiveReply)>) {
        let Some(leases) = self.leases.get_mut(name) else {
            return;
        };
        let mut i = 0;
        while i < self.waiting.len() && leases.holders.len() < leases.max as usize {
            match &self.waiting[i].kind {
                WaitKind::Acquire { name: n, holder } if n == name => {
                    leases.holders.insert(holder.clone());
                    let waiting = self.waiting.remove(i);
                    out.push((waiting.waiter, PrimitiveReply::Flag(true)));
                }
                _ => i += 1,
            }
        }
    }

    fn serve_queue(&mut self, name: &str, out: &mut Vec<(W, PrimitiveReply)>) {
        let mut i = 0;
        while i < self.waiting.len() {
            let is_getter = matches!(&self.waiting[i].kind, WaitKind::Get { name: n } if n == name);
            if !is_getter {
                i += 1;
                continue;
            }
            let Some(item) = self.queues.get_mut(name).and_then(|q| q.pop_front()) else {
                return;
            };
            let waiting = self.waiting.remove(i);
            out.push((waiting.waiter, PrimitiveReply::Value(Some(item))));
        }
    }

    fn wake(
        &mut self,
        out: &mut Vec<(W, PrimitiveReply)>,
        answer: impl Fn(&WaitKind) -> Option<PrimitiveReply>,
    ) {
        let mut kept = Vec::with_capacity(self.waiting.len());
        for waiting in self.waiting.drain(..) {
            match answer(&waiting.kind) {
                Some(reply) => out.push((waiting.waiter, reply)),
                None => kept.push(waiting),
            }
        }
        self.waiting = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquire(name: &str, holder: &str, max: u32, timeout_ms: Option<u64>) -> PrimitiveRequest {
        PrimitiveRequest::Acquire {
            name: name.into(),
            holder: holder.into(),
            max_leases: max,
            timeout_ms,
        }
    }

    #[test]
    fn a_lock_passes_to_the_next_waiter_in_order() {
        let now = Instant::now();
        let mut p = Primitives::default();
        assert_eq!(
            p.handle(1, acquire("l", "a", 1, None), now),
            [(1, PrimitiveReply::Flag(true))]
        );
        assert!(p.handle(2, acquire("l", "b", 1, None), now).is_empty());
        assert!(p.handle(3, acquire("l", "c", 1, None), now).is_empty());
        let out = p.handle(
            4,
            PrimitiveRequest::Release {
                name: "l".into(),
                holder: "a".into(),
            },
            now,
        );
        assert_eq!(
            out,
            [
                (4, PrimitiveReply::Flag(true)),
                (2, PrimitiveReply::Flag(true))
            ]
        );
        let out = p.handle(
            5,
            PrimitiveRequest::Release {
                name: "l".into(),
                holder: "a".into(),
            },
            now,
        );
        assert!(matches!(out[0].1, PrimitiveReply::Error(_)));
    }

    #[test]
    fn semaphores_lend_up_to_their_maximum_and_waits_time_out() {
        let now = Instant::now();
        let mut p = Primitives::default();
        assert_eq!(
            p.handle(1, acquire("s", "a", 2, None), now)[0].1,
            PrimitiveReply::Flag(true)
        );
        assert_eq!(
            p.handle(2, acquire("s", "b", 2, None), now)[0].1,
            PrimitiveReply::Flag(true)
        );
        assert!(p.handle(3, acquire("s", "c", 2, Some(100)), now).is_empty());
        assert!(p.expire(now + Duration::from_millis(50)).is_empty());
        assert_eq!(
            p.expire(now + Duration::from_millis(150)),
            [(3, PrimitiveReply::Flag(false))]
        );
        assert_eq!(p.waiting(), 0);
    }

    #[test]
    fn queues_variables_and_events_wake_waiters() {
        let now = Instant::now();
        let mut p = Primitives::default();
        assert!(p
            .handle(
                1,
                PrimitiveRequest::Get {
                    name: "q".into(),
                    timeout_ms: None
                },
                now
            )
            .is_empty());
        let out = p.handle(
            2,
            PrimitiveRequest::Put {
                name: "q".into(),
                item: vec![7],
            },
            now,
        );
        assert_eq!(out[1], (1, PrimitiveReply::Value(Some(vec![7]))));
        assert!(p
            .handle(
                3,
                PrimitiveRequest::GetVariable {
                    name: "v".into(),
                    timeout_ms: None
                },
                now
            )
            .is_empty());
        let out = p.handle(
            4,
            PrimitiveRequest::SetVariable {
                name: "v".into(),
                value: vec![1],
            },
            now,
        );
        assert_eq!(out[1], (3, PrimitiveReply::Value(Some(vec![1]))));
        assert!(p
            .handle(
                5,
                PrimitiveRequest::WaitEvent {
                    name: "e".into(),
                    timeout_ms: None
                },
                now
            )
            .is_empty());
        let out = p.handle(6, PrimitiveRequest::SetEvent { name: "e".into() }, now);
        assert_eq!(out[1], (5, PrimitiveReply::Flag(true)));
        assert_eq!(
            p.handle(7, PrimitiveRequest::IsEventSet { name: "e".into() }, now),
            [(7, PrimitiveReply::Flag(true))]
        );
    }
}
