//! Each client's work in flight, for progress bars: every task state change
//! goes through [`State::set_state`], which counts tasks entering and leaving
//! the pending states (waiting, no-worker, queued, processing) against the
//! client whose graph made the task.

use super::ids::ClientId;
use super::state::{State, TaskId, TaskState};
use serde::{Deserialize, Serialize};

/// One client's tasks still to run, and those that ran since it last had none
/// pending: a progress bar shows `done + erred` of `total()`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Tasks waiting, queued or processing.
    pub pending: u64,
    /// Tasks finished since the client last had nothing pending.
    pub done: u64,
    /// Tasks failed since then.
    pub erred: u64,
}

impl Progress {
    /// Tasks of the current stretch of work: pending, done and failed.
    pub fn total(&self) -> u64 {
        self.pending + self.done + self.erred
    }
}

impl TaskState {
    /// Whether the task is still to run: waiting, no-worker, queued or processing.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            TaskState::Waiting | TaskState::NoWorker | TaskState::Queued | TaskState::Processing
        )
    }
}

impl State {
    /// Moves task `t` to `state`, counting it against its client's progress.
    pub(crate) fn set_state(&mut self, t: TaskId, state: TaskState) {
        let task = self.task_mut(t);
        let was = std::mem::replace(&mut task.state, state);
        let g = task.group as usize;
        let group = &mut self.groups[g];
        group.states[was as usize] = group.states[was as usize].saturating_sub(1);
        group.states[state as usize] += 1;
        if state == TaskState::Memory && was != TaskState::Memory {
            group.finished += 1;
        }
        let task = self.task(t);
        if was.is_pending() == state.is_pending() {
            return;
        }
        let client = task.client;
        let Some(work) = self.work.get_mut(&client) else {
            return;
        };
        if state.is_pending() {
            if work.pending == 0 {
                *work = Progress::default();
            }
            work.pending += 1;
            return;
        }
        work.pending = work.pending.saturating_sub(1);
        match state {
            TaskState::Memory => work.done += 1,
            TaskState::Erred => work.erred += 1,
            _ => {}
        }
    }

    /// The progress of `client`'s work (all zero for an unknown client).
    pub fn progress(&self, client: ClientId) -> Progress {
        self.work.get(&client).copied().unwrap_or_default()
    }
}
