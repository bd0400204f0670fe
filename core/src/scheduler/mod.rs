//! The scheduler state machine: events in, commands out, no I/O, no clock, no threads.
//!
//! [`State::handle`] holds every decision — placement by data locality and load,
//! root-task queuing, work stealing, retries, cancellation, recomputation of lost
//! results, restarting shuffles a lost worker held shards of, releasing results
//! nobody needs — and is tested by feeding events. The
//! runtimes around it (in-process channels, TCP) only move messages.
//!
//! ```
//! use rask::scheduler::{Command, ClientId, Event, State, WorkerId};
//! use rask::graph::{Key, TaskSpec};
//! rask::op! { fn one() -> u64 { 1 } }
//!
//! let mut state = State::new(Default::default());
//! state.handle(Event::AddWorker { worker: WorkerId(0), name: "w0".into(), nthreads: 1, resources: vec![], memory_limit: 0 });
//! state.handle(Event::AddClient { client: ClientId(0) });
//! let task = TaskSpec::new(Key::new("one-1"), rask::ops::Op::op_ref(&one), vec![], vec![]);
//! let out = state.handle(Event::UpdateGraph { client: ClientId(0), tasks: vec![task], wanted: vec![Key::new("one-1")] });
//! assert!(matches!(&out[0], Command::Compute { worker: WorkerId(0), .. }));
//! ```
//!
//! Task states are Dask's: released, waiting, no-worker, queued, processing, memory,
//! erred; forgotten tasks leave the table.

mod adaptive;
mod clients;
mod config;
mod graph_update;
mod ids;
mod key_index;
mod messages;
mod placement;
mod progress;
mod recovery;
mod retirement;
mod shuffle_restart;
mod small_set;
mod state;
mod stealing;
mod task_queue;
mod transitions;
mod views;

pub use adaptive::{MEMORY_FRACTION, TARGET_DURATION};
pub use config::SchedulerConfig;
pub use ids::{assigned_after, ClientId, Priority, RunId, WorkerId};
pub use messages::{Command, ComputeTask, Event, Input, Report, TaskError};
pub use progress::Progress;
pub use small_set::SmallSet;
pub use state::{State, TaskState};
pub use task_queue::TaskQueue;
pub use views::{GroupView, TaskView, WorkerLoad};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Key, TaskSpec};

    crate::op! { fn unit() -> u8 { 0 } }

    #[test]
    fn resource_restrictions_pick_a_worker_that_has_them() {
        let mut state = State::new(SchedulerConfig::default());
        state.handle(Event::AddWorker {
            worker: WorkerId(0),
            name: "cpu".into(),
            nthreads: 4,
            resources: vec![],
            memory_limit: 0,
        });
        state.handle(Event::AddWorker {
            worker: WorkerId(1),
            name: "gpu".into(),
            nthreads: 1,
            resources: vec![("GPU".into(), 1.0)],
            memory_limit: 0,
        });
        let mut task = TaskSpec::new(
            Key::new("train-1"),
            crate::ops::Op::op_ref(&unit),
            vec![],
            vec![],
        );
        task.annotations.resources = vec![("GPU".into(), 1.0)];
        let mut greedy = TaskSpec::new(
            Key::new("train-2"),
            crate::ops::Op::op_ref(&unit),
            vec![],
            vec![],
        );
        greedy.annotations.resources = vec![("GPU".into(), 2.0)];
        let out = state.handle(Event::UpdateGraph {
            client: ClientId(0),
            tasks: vec![task, greedy],
            wanted: vec![Key::new("train-1"), Key::new("train-2")],
        });
        assert!(
            matches!(&out[..], [Command::Compute { worker: WorkerId(1), task }] if task.key.as_str() == "train-1"),
            "{out:?}"
        );
        assert_eq!(
            state.task_state(&Key::new("train-2")),
            Some(TaskState::NoWorker)
        );
    }

    #[test]
    fn tasks_avoid_workers_whose_lifetime_ends_first() {
        let mut state = State::new(SchedulerConfig::default());
        for (id, name) in [(0, "ending"), (1, "lasting")] {
            state.handle(Event::AddWorker {
                worker: WorkerId(id),
                name: name.into(),
                nthreads: 1,
                resources: vec![],
                memory_limit: 0,
            });
        }
        // Ends now; the other's lifetime is too long for the clock (as a hostile
        // peer might say), which must count as "no end", not a panic.
        state.handle(Event::WorkerDeadline {
            worker: WorkerId(0),
            seconds: 0.0,
        });
        state.handle(Event::WorkerDeadline {
            worker: WorkerId(1),
            seconds: 1e30,
        });
        let out = state.handle(Event::UpdateGraph {
            client: ClientId(0),
            tasks: vec![TaskSpec::new(
                Key::new("t-1"),
                crate::ops::Op::op_ref(&unit),
                vec![],
                vec![],
            )],
            wanted: vec![Key::new("t-1")],
        });
        assert!(
            matches!(
                &out[..],
                [Command::Compute {
                    worker: WorkerId(1),
                    ..
                }]
            ),
            "{out:?}"
        );
    }
}
