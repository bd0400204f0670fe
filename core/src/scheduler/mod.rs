//! The scheduler state machine: events in, commands out, no I/O, no clock, no threads.
//!
//! [`State::handle`] holds every decision — placement by data locality and load,
//! root-task queuing, work stealing, retries, cancellation, recomputation of lost
//! results, releasing results nobody needs — and is tested by feeding events. The
//! runtimes around it (in-process channels, TCP) only move messages.
//!
//! ```
//! use rask::scheduler::{Command, ClientId, Event, State, WorkerId};
//! use rask::graph::{Key, TaskSpec};
//! rask::op! { fn one() -> u64 { 1 } }
//!
//! let mut state = State::new(Default::default());
//! state.handle(Event::AddWorker { worker: WorkerId(0), name: "w0".into(), nthreads: 1, resources: vec![] });
//! state.handle(Event::AddClient { client: ClientId(0) });
//! let task = TaskSpec::new(Key::new("one-1"), rask::ops::Op::op_ref(&one), vec![], vec![]);
//! let out = state.handle(Event::UpdateGraph { client: ClientId(0), tasks: vec![task], wanted: vec![Key::new("one-1")] });
//! assert!(matches!(&out[0], Command::Compute { worker: WorkerId(0), .. }));
//! ```
//!
//! Task states are Dask's: released, waiting, no-worker, queued, processing, memory,
//! erred; forgotten tasks leave the table.

mod clients;
mod config;
mod graph_update;
mod ids;
mod messages;
mod placement;
mod recovery;
mod small_set;
mod state;
mod stealing;
mod transitions;

pub use config::SchedulerConfig;
pub use ids::{ClientId, Priority, WorkerId};
pub use messages::{Command, ComputeTask, Event, Input, Report, TaskError};
pub use small_set::SmallSet;
pub use state::{State, TaskState};
