//! What the dashboard asks the scheduler ([`DashboardQuery`]) and what it
//! gets back ([`DashboardView`]): typed, so a remote client (a performance
//! report) gets the same over the wire as the HTTP pages get as JSON.

use super::recorder::{Bar, Sample};
use crate::scheduler::{GroupView, TaskView};
use serde::{Deserialize, Serialize};

/// A question for the scheduler's dashboard state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum DashboardQuery {
    /// The status page's data: workers, tasks by state and group, and the
    /// task-stream bars and samples after the given sequence numbers.
    Status {
        /// The first bar wanted (the previous answer's `next_bar`).
        since_bar: u64,
        /// The most bars in the answer.
        max_bars: u32,
        /// Whether to keep the oldest bars when there are more than
        /// `max_bars` (to page through them), not the newest.
        oldest_first: bool,
        /// The first sample wanted.
        since_sample: u64,
    },
    /// The task graph by group, and task by task when it has at most
    /// `max_tasks` tasks.
    Graph {
        /// The largest graph drawn task by task.
        max_tasks: u32,
    },
    /// The scheduler process: CPU, the loop's load, message rates.
    System,
}

/// The scheduler's answer to a [`DashboardQuery`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub enum DashboardView {
    /// For [`DashboardQuery::Status`].
    Status(StatusView),
    /// For [`DashboardQuery::Graph`].
    Graph(GraphView),
    /// For [`DashboardQuery::System`].
    System(SystemView),
}

/// One worker, as the workers table shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct WorkerRow {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Where it serves data (empty for in-process workers).
    pub address: String,
    /// Its process id.
    pub pid: u32,
    /// Threads.
    pub threads: u32,
    /// Resident memory of its process.
    pub rss: u64,
    /// Bytes of results in memory.
    pub managed: u64,
    /// Bytes of results on disk.
    pub spilled: u64,
    /// Its memory limit (0: none).
    pub memory_limit: u64,
    /// CPU use, percent of one core.
    pub cpu: f32,
    /// Tasks assigned and not finished.
    pub processing: u32,
    /// Tasks running now (by its heartbeat).
    pub executing: u32,
    /// Results it holds.
    pub in_memory: u32,
    /// Bytes it sent to peers, in all.
    pub bytes_sent: u64,
    /// Bytes it fetched from peers, in all.
    pub bytes_received: u64,
    /// Whether it paused for memory.
    pub paused: bool,
    /// Plugins it loaded.
    pub plugins: Vec<String>,
}

/// The status page's data.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StatusView {
    /// Seconds on the scheduler's clock.
    pub now: f64,
    /// The workers, by id.
    pub workers: Vec<WorkerRow>,
    /// Tasks by state, in [`crate::scheduler::TaskState::ALL`] order.
    pub states: Vec<u64>,
    /// The state names, in the same order.
    pub state_names: Vec<String>,
    /// The live task groups.
    pub groups: Vec<GroupView>,
    /// Op names, which bars refer to by index.
    pub ops: Vec<String>,
    /// New task-stream bars.
    pub bars: Vec<Bar>,
    /// The sequence number to ask from next time.
    pub next_bar: u64,
    /// New bars left out of this answer.
    pub dropped_bars: u64,
    /// The sequence number of the oldest bar the scheduler still keeps.
    pub first_bar: u64,
    /// New once-a-second samples.
    pub samples: Vec<Sample>,
    /// The sample sequence number to ask from next time.
    pub next_sample: u64,
}

/// The graph page's data.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GraphView {
    /// The live groups, with their inputs.
    pub groups: Vec<GroupView>,
    /// Every task, when the graph is small enough.
    pub tasks: Option<Vec<TaskView>>,
    /// How many tasks the scheduler has.
    pub ntasks: u64,
}

/// The system page's data.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SystemView {
    /// Seconds since the scheduler started.
    pub uptime: f64,
    /// CPU time of the scheduler's process, seconds.
    pub cpu_seconds: f64,
    /// Resident memory of the scheduler's process.
    pub rss: u64,
    /// Fraction of the last second the scheduler loop was busy.
    pub busy_fraction: f64,
    /// Seconds the loop has been busy, in all.
    pub busy_seconds: f64,
    /// Messages the loop took per second, last second.
    pub messages_per_second: f64,
    /// State-machine events per second, last second.
    pub events_per_second: f64,
    /// Messages taken, in all.
    pub messages: u64,
    /// Events handled, in all.
    pub events: u64,
    /// Tasks the scheduler has.
    pub ntasks: u64,
    /// Workers connected.
    pub workers: u32,
    /// Clients connected.
    pub clients: u32,
}
