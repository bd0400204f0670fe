//! What the scheduler loop remembers for the dashboard and performance
//! reports: a ring of task-stream bars (one per finished task, plus
//! transfers and spills seen between heartbeats), a ring of once-a-second
//! samples of the cluster's memory and traffic, and message counters.
//!
//! Recording costs one ring push per finished task; nothing is formatted or
//! serialised until somebody asks ([`Recorder::bars_since`]).

use crate::comm::protocol::WorkerMetrics;
use crate::scheduler::{Event, WorkerId};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Bars kept for the task stream (the newest; about 3 MB).
pub const BAR_CAPACITY: usize = 100_000;
/// Once-a-second samples kept (two hours).
pub const SAMPLE_CAPACITY: usize = 7_200;
/// The op index of transfer bars.
pub const TRANSFER: u32 = 0;
/// The op index of spill bars.
pub const SPILL: u32 = 1;
/// The most distinct op names kept; later ones share the last name.
const MAX_OPS: usize = 4_096;

/// One bar of the task stream: a task that ran on a worker (or, for ops
/// [`TRANSFER`] and [`SPILL`], bytes the worker moved in that stretch).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Bar {
    /// The worker.
    pub worker: u32,
    /// The worker's thread that ran the task (0 for transfers and spills).
    pub thread: u16,
    /// Index into the op names.
    pub op: u32,
    /// Start, seconds on the scheduler's clock.
    pub start: f64,
    /// End, seconds on the scheduler's clock.
    pub end: f64,
    /// The result's size (tasks) or the bytes moved (transfers, spills).
    pub bytes: u64,
}

/// The cluster at one moment: memory, traffic and tasks.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Sample {
    /// Seconds on the scheduler's clock.
    pub time: f64,
    /// Bytes of results held in workers' memory.
    pub managed: u64,
    /// Resident memory beyond that (the processes' own, buffers, fragmentation).
    pub unmanaged: u64,
    /// Bytes of results spilled to disk.
    pub spilled: u64,
    /// Bytes workers sent each other, in all.
    pub bytes_sent: u64,
    /// Tasks processing.
    pub processing: u64,
    /// Tasks whose results are in memory.
    pub in_memory: u64,
}

/// The recorder the scheduler loop feeds.
pub struct Recorder {
    ops: Vec<Arc<str>>,
    op_ids: HashMap<Arc<str>, u32>,
    bars: VecDeque<Bar>,
    /// The sequence number of `bars[0]`.
    first_bar: u64,
    samples: VecDeque<Sample>,
    first_sample: u64,
    /// Each worker's previous heartbeat: when, and what it said.
    heard: HashMap<WorkerId, (f64, WorkerMetrics)>,
    /// Each worker's CPU use over its last heartbeat interval, percent of one core.
    cpu: HashMap<WorkerId, f32>,
    /// Messages the loop has taken, in all.
    pub messages: u64,
    rates: Rates,
}

/// Per-second rates over the last sampling interval.
#[derive(Default)]
struct Rates {
    at: f64,
    messages: u64,
    events: u64,
    busy: f64,
    messages_per_second: f64,
    events_per_second: f64,
    busy_fraction: f64,
}

impl Default for Recorder {
    fn default() -> Self {
        let mut recorder = Recorder {
            ops: Vec::new(),
            op_ids: HashMap::new(),
            bars: VecDeque::new(),
            first_bar: 0,
            samples: VecDeque::new(),
            first_sample: 0,
            heard: HashMap::new(),
            cpu: HashMap::new(),
            messages: 0,
            rates: Rates::default(),
        };
        recorder.op_id("transfer");
        recorder.op_id("spill");
        recorder
    }
}

impl Recorder {
    fn op_id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.op_ids.get(name) {
            return id;
        }
        if self.ops.len() >= MAX_OPS {
            return MAX_OPS as u32 - 1;
        }
        let name: Arc<str> = Arc::from(name);
        let id = self.ops.len() as u32;
        self.ops.push(name.clone());
        self.op_ids.insert(name, id);
        id
    }

    fn push_bar(&mut self, bar: Bar) {
        if self.bars.len() == BAR_CAPACITY {
            self.bars.pop_front();
            self.first_bar += 1;
        }
        self.bars.push_back(bar);
    }

    /// Notes the tasks that finished among `events`, which arrived at `now`.
    pub fn events(&mut self, events: &[Event], now: Duration) {
        let end = now.as_secs_f64();
        for event in events {
            if let Event::TaskFinished {
                worker,
                key,
                nbytes,
                duration_us,
                thread,
                ..
            } = event
            {
                let op = self.op_id(key.prefix());
                self.push_bar(Bar {
                    worker: worker.0,
                    thread: *thread,
                    op,
                    start: end - *duration_us as f64 / 1e6,
                    end,
                    bytes: *nbytes,
                });
            }
        }
    }

    /// Notes a worker's heartbeat: bytes fetched and spilled since its last
    /// one become transfer and spill bars, and its CPU use is updated.
    pub fn heartbeat(&mut self, worker: WorkerId, metrics: &WorkerMetrics, now: Duration) {
        let now = now.as_secs_f64();
        if let Some((then, before)) = self.heard.get(&worker).cloned() {
            let moved = [
                (
                    TRANSFER,
                    metrics.bytes_received.saturating_sub(before.bytes_received),
                ),
                (SPILL, metrics.spilled.saturating_sub(before.spilled)),
            ];
            for (op, bytes) in moved.into_iter().filter(|(_, bytes)| *bytes > 0) {
                self.push_bar(Bar {
                    worker: worker.0,
                    thread: 0,
                    op,
                    start: then,
                    end: now,
                    bytes,
                });
            }
            if now > then {
                let cpu = (metrics.cpu_seconds - before.cpu_seconds).max(0.0) / (now - then);
                self.cpu.insert(worker, (cpu * 100.0) as f32);
            }
        }
        self.heard.insert(worker, (now, metrics.clone()));
    }

    /// Forgets a worker that left.
    pub fn worker_gone(&mut self, worker: WorkerId) {
        self.heard.remove(&worker);
        self.cpu.remove(&worker);
    }

    /// A worker's CPU use over its last heartbeat interval, percent of one core.
    pub fn cpu(&self, worker: WorkerId) -> f32 {
        self.cpu.get(&worker).copied().unwrap_or(0.0)
    }

    /// Keeps a sample, and updates the loop's rates from its counters
    /// (`events` handled and `busy` seconds, in all).
    pub fn sample(&mut self, sample: Sample, events: u64, busy: f64) {
        if self.samples.len() == SAMPLE_CAPACITY {
            self.samples.pop_front();
            self.first_sample += 1;
        }
        let rates = &mut self.rates;
        let span = sample.time - rates.at;
        if span > 0.0 {
            rates.messages_per_second = (self.messages - rates.messages) as f64 / span;
            rates.events_per_second = events.saturating_sub(rates.events) as f64 / span;
            rates.busy_fraction = ((busy - rates.busy) / span).clamp(0.0, 1.0);
        }
        rates.at = sample.time;
        rates.messages = self.messages;
        rates.events = events;
        rates.busy = busy;
        self.samples.push_back(sample);
    }

    /// Messages and events per second, and the loop's busy fraction, over
    /// the last sampling interval.
    pub fn rates(&self) -> (f64, f64, f64) {
        let r = &self.rates;
        (r.messages_per_second, r.events_per_second, r.busy_fraction)
    }

    /// The op names bars refer to.
    pub fn ops(&self) -> Vec<String> {
        self.ops.iter().map(|s| s.to_string()).collect()
    }

    /// Bars from sequence number `since` on, at most `max` of them: the
    /// newest (for a live view) or the oldest (to page through them all).
    /// Returns them, the sequence number after the last one returned (or, for
    /// the newest, after every bar), and how many were left out.
    pub fn bars_since(&self, since: u64, max: usize, oldest_first: bool) -> (Vec<Bar>, u64, u64) {
        let end = self.first_bar + self.bars.len() as u64;
        let from = since.clamp(self.first_bar, end);
        let available = (end - from) as usize;
        let take = available.min(max);
        let left_out = (available - take) as u64;
        let first = (from - self.first_bar) as usize;
        if oldest_first {
            let bars = self.bars.range(first..first + take).copied().collect();
            (bars, from + take as u64, left_out)
        } else {
            let bars = self
                .bars
                .range(first + (available - take)..)
                .copied()
                .collect();
            (bars, end, left_out)
        }
    }

    /// The sequence number of the oldest bar kept.
    pub fn first_bar(&self) -> u64 {
        self.first_bar
    }

    /// Samples from sequence number `since` on (all of them), and the next
    /// sequence number.
    pub fn samples_since(&self, since: u64) -> (Vec<Sample>, u64) {
        let next = self.first_sample + self.samples.len() as u64;
        let from = since.clamp(self.first_sample, next);
        let skip = (from - self.first_sample) as usize;
        (self.samples.range(skip..).copied().collect(), next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Key;
    use crate::scheduler::RunId;

    fn finished(worker: u32, key: &str, us: u64) -> Event {
        Event::TaskFinished {
            worker: WorkerId(worker),
            key: Key::new(key),
            run_id: RunId::default(),
            nbytes: 8,
            duration_us: us,
            thread: 1,
        }
    }

    #[test]
    fn finished_tasks_become_bars_named_by_op() {
        let mut r = Recorder::default();
        r.events(
            &[finished(0, "inc-1", 500_000), finished(1, "add-7", 0)],
            Duration::from_secs(2),
        );
        let (bars, next, dropped) = r.bars_since(0, 10, false);
        assert_eq!((bars.len(), next, dropped), (2, 2, 0));
        assert_eq!(bars[0].start, 1.5);
        assert_eq!(bars[0].end, 2.0);
        assert_eq!((bars[0].worker, bars[0].thread), (0, 1));
        let ops = r.ops();
        assert_eq!(ops[bars[0].op as usize], "inc");
        assert_eq!(ops[bars[1].op as usize], "add");
        assert_eq!(r.bars_since(2, 10, false).0.len(), 0);
    }

    #[test]
    fn a_poll_gets_the_newest_bars_and_the_ring_forgets_the_oldest() {
        let mut r = Recorder::default();
        let events: Vec<Event> = (0..BAR_CAPACITY + 10)
            .map(|i| finished(0, &format!("t-{i}"), 1))
            .collect();
        r.events(&events, Duration::from_secs(1));
        let (bars, next, dropped) = r.bars_since(0, 100, false);
        assert_eq!(next, BAR_CAPACITY as u64 + 10);
        assert_eq!(bars.len(), 100);
        assert_eq!(dropped, BAR_CAPACITY as u64 - 100);
        assert_eq!(r.first_bar(), 10);
        let (all, _, none) = r.bars_since(0, usize::MAX, false);
        assert_eq!((all.len(), none), (BAR_CAPACITY, 0));
        // Paging from the oldest gets every bar once.
        let (mut since, mut seen) = (0, 0);
        loop {
            let (page, next, _) = r.bars_since(since, 30_000, true);
            if page.is_empty() {
                break;
            }
            assert_eq!(page[0].start, all[seen].start);
            seen += page.len();
            since = next;
        }
        assert_eq!(seen, BAR_CAPACITY);
    }

    #[test]
    fn heartbeats_mark_transfers_spills_and_cpu() {
        let mut r = Recorder::default();
        let w = WorkerId(3);
        r.heartbeat(w, &WorkerMetrics::default(), Duration::from_secs(1));
        let later = WorkerMetrics {
            bytes_received: 1000,
            spilled: 10,
            cpu_seconds: 0.5,
            ..Default::default()
        };
        r.heartbeat(w, &later, Duration::from_secs(2));
        let (bars, _, _) = r.bars_since(0, 10, false);
        let kinds: Vec<(u32, u64)> = bars.iter().map(|b| (b.op, b.bytes)).collect();
        assert_eq!(kinds, vec![(TRANSFER, 1000), (SPILL, 10)]);
        assert_eq!(r.cpu(w), 50.0);
    }

    #[test]
    fn samples_give_rates() {
        let mut r = Recorder::default();
        r.sample(Sample::default(), 0, 0.0);
        r.messages = 200;
        r.sample(
            Sample {
                time: 2.0,
                ..Default::default()
            },
            100,
            0.5,
        );
        assert_eq!(r.rates(), (100.0, 50.0, 0.25));
        assert_eq!(r.samples_since(1).0.len(), 1);
    }
}
