//! Identifiers of workers and clients, assigned by whoever runs the scheduler.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A worker, as the scheduler numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct WorkerId(pub u32);

/// A client, as the scheduler numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientId(pub u32);

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "worker-{}", self.0)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client-{}", self.0)
    }
}

/// One assignment of a task to a worker. Every `Compute` carries a fresh one and
/// the worker's answers echo it, so an answer to an assignment the scheduler has
/// since withdrawn (the task moved, or was run again) is recognised as stale.
///
/// The high 32 bits are the task's slot in the scheduler's table, so an answer
/// finds its task without a lookup by key; the low 32 bits count assignments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunId(pub u64);

impl RunId {
    /// Assignment number `serial`, of the task in table slot `slot`.
    pub fn new(slot: u32, serial: u32) -> Self {
        RunId((u64::from(slot) << 32) | u64::from(serial))
    }

    /// The table slot of the task this assignment was for (a hint: a peer may
    /// send anything, so the caller checks the slot's key).
    pub fn slot(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Its place in the scheduler's count of assignments (wraps at 2³²).
    pub fn serial(self) -> u32 {
        self.0 as u32
    }
}

/// Whether assignment `serial` was handed out after assignment `than`: the
/// counter wraps, so this holds while fewer than 2³¹ assignments lie between.
pub fn assigned_after(serial: u32, than: u32) -> bool {
    (serial.wrapping_sub(than) as i32) > 0
}

/// Scheduling priority: lower runs first. User priority (higher first), then
/// submission order, then graph order — as Dask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Priority {
    /// The user's priority, negated so that lower sorts first.
    pub user: i32,
    /// Which `update_graph` the task came with.
    pub generation: u32,
    /// The task's rank in its graph's depth-first order.
    pub order: u32,
}

impl Priority {
    /// A priority from the user's value (higher runs first), the submission and the graph rank.
    pub fn new(user: i32, generation: u32, order: u32) -> Self {
        Priority {
            user: user.saturating_neg(),
            generation,
            order,
        }
    }
}
