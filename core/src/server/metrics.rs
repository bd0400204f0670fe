//! Prometheus metrics of the scheduler, as text (`/metrics`), names prefixed `rask_`.

use std::fmt::Write;

/// The numbers behind `/metrics`, taken in the scheduler loop.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsSnapshot {
    /// Tasks per state name.
    pub tasks_by_state: Vec<(String, usize)>,
    /// Connected workers.
    pub workers: usize,
    /// Connected clients.
    pub clients: usize,
    /// Threads over all workers.
    pub threads: u64,
    /// Resident memory over all workers.
    pub memory_bytes: u64,
    /// Bytes of results in workers' memory.
    pub managed_bytes: u64,
    /// Bytes of results spilled to disk.
    pub spilled_bytes: u64,
    /// Bytes workers sent to peers.
    pub bytes_sent: u64,
    /// Bytes workers fetched from peers.
    pub bytes_received: u64,
    /// Workers paused for memory.
    pub paused_workers: u64,
    /// Seconds the event loop spent handling events.
    pub busy_seconds: f64,
    /// Events handled.
    pub events: u64,
    /// The adaptive target.
    pub adaptive_target: u32,
}

const STATES: [&str; 7] = [
    "released",
    "waiting",
    "noworker",
    "queued",
    "processing",
    "memory",
    "erred",
];

/// The Prometheus text exposition of a snapshot.
pub fn render(m: &MetricsSnapshot) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP rask_{name} {help}");
        let _ = writeln!(out, "# TYPE rask_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "rask_{name}{labels} {value}");
        }
    };
    let by_state: Vec<(String, f64)> = STATES
        .iter()
        .map(|state| {
            let n = m
                .tasks_by_state
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            (format!("{{state=\"{state}\"}}"), n as f64)
        })
        .collect();
    let one = |v: f64| vec![(String::new(), v)];
    metric(
        "tasks",
        "gauge",
        "Tasks known to the scheduler, by state.",
        &by_state,
    );
    metric(
        "workers",
        "gauge",
        "Connected workers.",
        &one(m.workers as f64),
    );
    metric(
        "clients",
        "gauge",
        "Connected clients.",
        &one(m.clients as f64),
    );
    metric(
        "threads",
        "gauge",
        "Threads over all workers.",
        &one(m.threads as f64),
    );
    metric(
        "memory_bytes",
        "gauge",
        "Resident memory of worker processes.",
        &one(m.memory_bytes as f64),
    );
    metric(
        "managed_bytes",
        "gauge",
        "Bytes of results held in worker memory.",
        &one(m.managed_bytes as f64),
    );
    metric(
        "spilled_bytes",
        "gauge",
        "Bytes of results spilled to disk.",
        &one(m.spilled_bytes as f64),
    );
    metric(
        "paused_workers",
        "gauge",
        "Workers paused for memory.",
        &one(m.paused_workers as f64),
    );
    metric(
        "transfer_sent_bytes_total",
        "counter",
        "Bytes workers sent to peers.",
        &one(m.bytes_sent as f64),
    );
    metric(
        "transfer_received_bytes_total",
        "counter",
        "Bytes workers fetched from peers.",
        &one(m.bytes_received as f64),
    );
    metric(
        "event_loop_seconds_total",
        "counter",
        "Seconds the scheduler loop spent handling events.",
        &one(m.busy_seconds),
    );
    metric(
        "events_total",
        "counter",
        "Events the scheduler handled.",
        &one(m.events as f64),
    );
    metric(
        "adaptive_target",
        "gauge",
        "Workers the scheduler would like.",
        &one(m.adaptive_target as f64),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_is_reported_with_the_rask_prefix() {
        let text = render(&MetricsSnapshot {
            tasks_by_state: vec![("memory".into(), 3)],
            workers: 2,
            ..Default::default()
        });
        assert!(text.contains("rask_tasks{state=\"memory\"} 3\n"), "{text}");
        assert!(text.contains("rask_tasks{state=\"queued\"} 0\n"));
        assert!(text.contains("rask_workers 2\n"));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("rask_"), "{line}");
        }
    }
}
