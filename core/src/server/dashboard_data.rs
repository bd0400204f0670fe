//! The scheduler loop's answers to [`DashboardQuery`]s, put together from the
//! state machine's views, the workers' heartbeats and the recorder.

use super::event_loop::Loop;
use crate::diagnostics::{
    DashboardQuery, DashboardView, GraphView, StatusView, SystemView, WorkerRow,
};
use crate::scheduler::{TaskState, WorkerId};

/// The most bars one answer carries, whatever a client asks for.
pub(super) const MAX_BARS: u32 = 20_000;
/// The largest graph listed task by task, whatever a client asks for.
const MAX_TASKS: u32 = 5_000;

impl Loop {
    /// Answers a dashboard query.
    pub(super) fn dashboard(&self, query: DashboardQuery) -> DashboardView {
        match query {
            DashboardQuery::Status {
                since_bar,
                max_bars,
                oldest_first,
                since_sample,
            } => DashboardView::Status(self.status_view(
                since_bar,
                max_bars.min(MAX_BARS),
                oldest_first,
                since_sample,
            )),
            DashboardQuery::Graph { max_tasks } => DashboardView::Graph(GraphView {
                groups: self.state.group_views(),
                tasks: self.state.task_views(max_tasks.min(MAX_TASKS) as usize),
                ntasks: self.state.ntasks() as u64,
            }),
            DashboardQuery::System => DashboardView::System(self.system_view()),
        }
    }

    fn status_view(
        &self,
        since_bar: u64,
        max_bars: u32,
        oldest_first: bool,
        since_sample: u64,
    ) -> StatusView {
        let (bars, next_bar, dropped_bars) =
            self.recorder
                .bars_since(since_bar, max_bars as usize, oldest_first);
        let (samples, next_sample) = self.recorder.samples_since(since_sample);
        StatusView {
            now: self.now().as_secs_f64(),
            workers: self.worker_rows(),
            states: self.state.tasks_by_state().to_vec(),
            state_names: TaskState::ALL
                .iter()
                .map(|s| s.name().to_string())
                .collect(),
            groups: self.state.group_views(),
            ops: self.recorder.ops(),
            bars,
            next_bar,
            dropped_bars,
            first_bar: self.recorder.first_bar(),
            samples,
            next_sample,
        }
    }

    fn worker_rows(&self) -> Vec<WorkerRow> {
        let mut ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        ids.sort();
        ids.iter()
            .map(|id| {
                let entry = &self.workers[id];
                let load = self.state.worker_load(*id).unwrap_or_default();
                WorkerRow {
                    id: id.0,
                    name: entry.name.clone(),
                    address: entry.data_address.clone(),
                    pid: entry.pid,
                    threads: entry.nthreads,
                    rss: entry.metrics.rss,
                    managed: entry.metrics.managed.max(load.nbytes),
                    spilled: entry.metrics.spilled,
                    memory_limit: load.memory_limit,
                    cpu: self.recorder.cpu(*id),
                    processing: load.processing,
                    executing: entry.metrics.executing,
                    in_memory: load.in_memory,
                    bytes_sent: entry.metrics.bytes_sent,
                    bytes_received: entry.metrics.bytes_received,
                    paused: entry.metrics.paused,
                    plugins: entry.plugins.clone(),
                }
            })
            .collect()
    }

    fn system_view(&self) -> SystemView {
        let (messages_per_second, events_per_second, busy_fraction) = self.recorder.rates();
        SystemView {
            uptime: self.now().as_secs_f64(),
            cpu_seconds: crate::worker::memory::process_cpu_seconds(),
            rss: crate::worker::memory::process_rss(),
            busy_fraction,
            busy_seconds: self.busy_seconds,
            messages_per_second,
            events_per_second,
            messages: self.recorder.messages,
            events: self.events_handled,
            ntasks: self.state.ntasks() as u64,
            workers: self.workers.len() as u32,
            clients: self.clients.len() as u32,
        }
    }

    /// Takes the once-a-second sample of the cluster.
    pub(super) fn take_sample(&mut self) {
        let mut sample = crate::diagnostics::Sample {
            time: self.now().as_secs_f64(),
            ..Default::default()
        };
        for entry in self.workers.values() {
            let m = &entry.metrics;
            sample.managed += m.managed;
            sample.unmanaged += m.rss.saturating_sub(m.managed);
            sample.spilled += m.spilled;
            sample.bytes_sent += m.bytes_sent;
        }
        let states = self.state.tasks_by_state();
        sample.processing = states[TaskState::Processing as usize];
        sample.in_memory = states[TaskState::Memory as usize];
        self.recorder
            .sample(sample, self.events_handled, self.busy_seconds);
    }
}
