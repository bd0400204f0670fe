//! The worker state machine: events in, commands out, no I/O.
//!
//! It tracks the tasks the scheduler gave this worker, fetches missing inputs,
//! runs ready tasks best-priority first within its threads and resources, and
//! reports results. Inputs fetched from peers are kept only while a local task
//! needs them.

use crate::comm::protocol::WorkerMessage;
use crate::graph::{Key, RunSpec, ShuffleRole};
use crate::ops::TaskFailure;
use crate::scheduler::{ComputeTask, Priority, RunId, TaskQueue, WorkerId};
use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

/// Something that happened to a worker.
#[derive(Debug)]
pub enum WorkerEvent {
    /// The scheduler asks for a task to be run.
    Compute(ComputeTask),
    /// The scheduler says to drop a key (free the result, or forget the task),
    /// as of the serial of the last assignment it had handed out.
    Release(Key, u32),
    /// The scheduler asks to give up a task that has not started (its
    /// assignment `RunId`).
    Steal(Key, RunId),
    /// A client put a value here directly (scatter); the runtime has stored it.
    Stored {
        /// The key.
        key: Key,
        /// Its size.
        nbytes: u64,
    },
    /// The scheduler asks to copy a key from a peer and keep it.
    Replicate {
        /// The key.
        key: Key,
        /// Workers holding it.
        holders: Vec<WorkerId>,
        /// Its size.
        nbytes: u64,
    },
    /// A task finished running; on success the runtime has stored its result.
    Executed {
        /// The task.
        key: Key,
        /// The result's size, or why it failed.
        result: Result<u64, TaskFailure>,
        /// How long it ran, in microseconds.
        duration_us: u64,
        /// The worker's thread that ran it.
        thread: u16,
    },
    /// An input arrived from a peer (stored by the runtime), or could not be fetched.
    Fetched {
        /// The input.
        key: Key,
        /// Its size, or `None` when no holder delivered it.
        nbytes: Option<u64>,
    },
}

/// Something the worker's runtime must do.
#[derive(Debug, Clone)]
pub enum WorkerCommand {
    /// Run a task on a free thread, with these inputs from the store.
    Execute {
        /// The task.
        key: Key,
        /// The assignment it runs for.
        run_id: RunId,
        /// What to run.
        run: Arc<RunSpec>,
        /// Input keys, in `Arg::Dep` order.
        inputs: Vec<Key>,
    },
    /// Fetch an input from one of these workers into the store.
    Fetch {
        /// The input.
        key: Key,
        /// Workers that hold it.
        holders: Vec<WorkerId>,
        /// Its size as the scheduler knows it (0 when unknown), for batching.
        nbytes: u64,
    },
    /// Drop a value from the store.
    Free(Key),
    /// Drop the shards held for runs of this shuffle up to an assignment
    /// serial: its layout was released, so the shuffle finished, was
    /// cancelled or restarts (a later run goes on).
    ForgetShuffle {
        /// The shuffle.
        id: String,
        /// Runs whose layout was assigned up to this serial are over.
        through: u32,
    },
    /// Tell the scheduler.
    Send(WorkerMessage),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Ready,
    Executing,
}

struct Pending {
    /// The scheduler's assignment this task runs for.
    run_id: RunId,
    run: Arc<RunSpec>,
    inputs: Vec<Key>,
    priority: Priority,
    resources: Vec<(String, f64)>,
    missing: u32,
    phase: Phase,
    /// Released while executing: the result is dropped when it arrives.
    cancelled: bool,
    /// Executing with an input the scheduler has since released (it may be
    /// computed again with another value), or a shuffle layout itself released
    /// (its run is over): this run cannot serve a new assignment.
    stale_inputs: bool,
    /// Assigned again while a run with stale inputs went on: run anew once
    /// that run ends.
    next: Option<ComputeTask>,
}

struct Held {
    nbytes: u64,
    /// The scheduler knows this worker holds it (a result computed here).
    scheduler_owned: bool,
    /// Local pending tasks using it as input.
    users: u32,
    /// Released by the scheduler while local tasks still used it. Its key may
    /// be computed again with another value (a restarted shuffle's layout
    /// leaves out a lost worker), so no new assignment takes this copy.
    stale: bool,
}

/// A fetch under way.
#[derive(Default)]
struct InFlight {
    /// Local tasks waiting for the value.
    waiters: Vec<Key>,
    /// The holders it was asked from.
    holders: Vec<WorkerId>,
    /// The scheduler released the key while it was fetched: the value on its
    /// way may be an old one (a restarted shuffle's layout), so tasks assigned
    /// since wait for a fetch of their own, started when this one ends.
    stale: bool,
    /// Those tasks, the holders they were given, and the key's size.
    refetch: Option<(Vec<Key>, Vec<WorkerId>, u64)>,
}

/// One worker's state machine.
pub struct WorkerState {
    nthreads: u32,
    resources: Vec<(String, f64)>,
    available: Vec<f64>,
    pending: HashMap<Key, Pending>,
    ready: TaskQueue<Key>,
    /// Ready tasks waiting for resources.
    constrained: Vec<Key>,
    executing: u32,
    data: HashMap<Key, Held>,
    /// Inputs being fetched: the tasks waiting for each, and the holders asked.
    in_flight: HashMap<Key, InFlight>,
    /// Keys being fetched to keep (replicas for a retiring peer).
    replicating: foldhash::HashSet<Key>,
    out: Vec<WorkerCommand>,
}

impl WorkerState {
    /// A worker running up to `nthreads` tasks at once, offering `resources`.
    pub fn new(nthreads: u32, resources: Vec<(String, f64)>) -> Self {
        let available = resources.iter().map(|(_, amount)| *amount).collect();
        WorkerState {
            nthreads: nthreads.max(1),
            resources,
            available,
            pending: HashMap::new(),
            ready: TaskQueue::default(),
            constrained: Vec::new(),
            executing: 0,
            data: HashMap::new(),
            in_flight: HashMap::new(),
            replicating: Default::default(),
            out: Vec::new(),
        }
    }

    /// Applies one event; its commands are appended to `out`.
    pub fn handle(&mut self, event: WorkerEvent, out: &mut Vec<WorkerCommand>) {
        match event {
            WorkerEvent::Compute(task) => self.compute(task),
            WorkerEvent::Release(key, as_of) => self.release(&key, as_of),
            WorkerEvent::Steal(key, run_id) => self.steal(key, run_id),
            WorkerEvent::Replicate {
                key,
                holders,
                nbytes,
            } => self.replicate(key, holders, nbytes),
            WorkerEvent::Stored { key, nbytes } => {
                let held = self.data.entry(key).or_insert(Held {
                    nbytes,
                    scheduler_owned: true,
                    users: 0,
                    stale: false,
                });
                held.scheduler_owned = true;
                held.stale = false;
            }
            WorkerEvent::Executed {
                key,
                result,
                duration_us,
                thread,
            } => self.executed(key, result, duration_us, thread),
            WorkerEvent::Fetched { key, nbytes } => self.fetched(key, nbytes),
        }
        self.start_ready();
        out.append(&mut self.out);
    }

    /// Tasks assigned and not finished.
    pub fn npending(&self) -> usize {
        self.pending.len()
    }

    /// Keys held in memory.
    pub fn nheld(&self) -> usize {
        self.data.len()
    }

    fn compute(&mut self, task: ComputeTask) {
        if let Some(pending) = self.pending.get_mut(&task.key) {
            if pending.stale_inputs {
                // The run under way read inputs the scheduler has since released
                // (they may come back different): run again once it ends.
                pending.next = Some(task);
                return;
            }
            // Assigned again while still here (released while it ran, then given
            // back): the run under way serves the new assignment.
            pending.run_id = task.run_id;
            pending.cancelled = false;
            return;
        }
        if let Some(held) = self.data.get_mut(&task.key).filter(|h| !h.stale) {
            // Already here (fetched as an input): it is the result.
            held.scheduler_owned = true;
            let nbytes = held.nbytes;
            self.out
                .push(WorkerCommand::Send(WorkerMessage::TaskFinished {
                    key: task.key,
                    run_id: task.run_id,
                    nbytes,
                    duration_us: 0,
                    thread: 0,
                }));
            return;
        }
        let mut missing = 0;
        let mut inputs = Vec::with_capacity(task.inputs.len());
        for input in task.inputs {
            if let Some(held) = self.data.get_mut(&input.key).filter(|h| !h.stale) {
                held.users += 1;
            } else {
                missing += 1;
                match self.in_flight.get_mut(&input.key) {
                    Some(fetch) if fetch.stale => {
                        let (waiters, _, _) = fetch.refetch.get_or_insert_with(|| {
                            (Vec::new(), input.holders.clone(), input.nbytes)
                        });
                        waiters.push(task.key.clone());
                    }
                    Some(fetch) => fetch.waiters.push(task.key.clone()),
                    None => {
                        let fetch = InFlight {
                            waiters: vec![task.key.clone()],
                            holders: input.holders.clone(),
                            ..InFlight::default()
                        };
                        self.in_flight.insert(input.key.clone(), fetch);
                        self.out.push(WorkerCommand::Fetch {
                            key: input.key.clone(),
                            holders: input.holders,
                            nbytes: input.nbytes,
                        });
                    }
                }
            }
            inputs.push(input.key);
        }
        let phase = if missing == 0 {
            Phase::Ready
        } else {
            Phase::Waiting
        };
        if phase == Phase::Ready {
            self.ready.push(task.priority, task.key.clone());
        }
        self.pending.insert(
            task.key,
            Pending {
                run_id: task.run_id,
                run: task.run,
                inputs,
                priority: task.priority,
                resources: task.resources,
                missing,
                phase,
                cancelled: false,
                stale_inputs: false,
                next: None,
            },
        );
    }

    fn replicate(&mut self, key: Key, holders: Vec<WorkerId>, nbytes: u64) {
        if let Some(held) = self.data.get_mut(&key).filter(|h| !h.stale) {
            held.scheduler_owned = true;
            let nbytes = Some(held.nbytes);
            self.out
                .push(WorkerCommand::Send(WorkerMessage::Replicated {
                    key,
                    nbytes,
                }));
            return;
        }
        self.replicating.insert(key.clone());
        if !self.in_flight.contains_key(&key) {
            let fetch = InFlight {
                waiters: Vec::new(),
                holders: holders.clone(),
                ..InFlight::default()
            };
            self.in_flight.insert(key.clone(), fetch);
            self.out.push(WorkerCommand::Fetch {
                key,
                holders,
                nbytes,
            });
        }
    }

    fn fetched(&mut self, key: Key, nbytes: Option<u64>) {
        let InFlight {
            waiters,
            holders,
            stale,
            refetch,
        } = self.in_flight.remove(&key).unwrap_or_default();
        if self.replicating.remove(&key) {
            self.out
                .push(WorkerCommand::Send(WorkerMessage::Replicated {
                    key: key.clone(),
                    nbytes,
                }));
            if let Some(nbytes) = nbytes {
                // Kept for the scheduler, whoever else waits for it.
                self.data.insert(
                    key.clone(),
                    Held {
                        nbytes,
                        scheduler_owned: true,
                        users: 0,
                        stale: false,
                    },
                );
            }
        }
        match nbytes {
            Some(nbytes) => {
                let mut users = 0;
                for w in &waiters {
                    if let Some(task) = self.pending.get_mut(w) {
                        if task.phase == Phase::Waiting {
                            users += 1;
                            task.missing -= 1;
                            if task.missing == 0 {
                                task.phase = Phase::Ready;
                                self.ready.push(task.priority, w.clone());
                            }
                        }
                    }
                }
                if let Some(held) = self.data.get_mut(&key) {
                    // A fresh copy replaced a stale one in the store.
                    held.users += users;
                    held.stale = false;
                } else if users == 0 {
                    self.out.push(WorkerCommand::Free(key.clone()));
                } else {
                    self.data.insert(
                        key.clone(),
                        Held {
                            nbytes,
                            scheduler_owned: false,
                            users,
                            stale: false,
                        },
                    );
                }
            }
            None => {
                for w in waiters {
                    let Some(run_id) = self
                        .pending
                        .get(&w)
                        .filter(|t| t.phase == Phase::Waiting)
                        .map(|t| t.run_id)
                    else {
                        continue;
                    };
                    self.drop_pending(&w);
                    self.out
                        .push(WorkerCommand::Send(WorkerMessage::MissingData {
                            key: w,
                            run_id,
                            missing: key.clone(),
                            tried: holders.clone(),
                        }));
                }
            }
        }
        if let Some((waiters, holders, nbytes)) = refetch {
            // Tasks assigned after the key was released wait for a fetch of
            // the value as it is now.
            if let Some(held) = self.data.get_mut(&key) {
                held.stale = true;
            }
            self.in_flight.insert(
                key.clone(),
                InFlight {
                    waiters,
                    holders: holders.clone(),
                    ..InFlight::default()
                },
            );
            self.out.push(WorkerCommand::Fetch {
                key,
                holders,
                nbytes,
            });
        } else if stale {
            if let Some(held) = self.data.get_mut(&key) {
                held.stale = true;
            }
        }
    }

    fn executed(
        &mut self,
        key: Key,
        result: Result<u64, TaskFailure>,
        duration_us: u64,
        thread: u16,
    ) {
        let Some(task) = self.pending.get(&key) else {
            if result.is_ok() {
                self.out.push(WorkerCommand::Free(key));
            }
            return;
        };
        if task.phase != Phase::Executing {
            return;
        }
        let cancelled = task.cancelled;
        let run_id = task.run_id;
        let next = self.pending.get_mut(&key).and_then(|t| t.next.take());
        self.executing -= 1;
        self.drop_pending(&key);
        match result {
            Ok(_) if cancelled => self.out.push(WorkerCommand::Free(key)),
            Ok(nbytes) => {
                // Local tasks still using a stale copy keep their count.
                let users = self.data.get(&key).map_or(0, |h| h.users);
                self.data.insert(
                    key.clone(),
                    Held {
                        nbytes,
                        scheduler_owned: true,
                        users,
                        stale: false,
                    },
                );
                self.out
                    .push(WorkerCommand::Send(WorkerMessage::TaskFinished {
                        key,
                        run_id,
                        nbytes,
                        duration_us,
                        thread,
                    }));
            }
            Err(_) if cancelled => {}
            Err(failure) => self.out.push(WorkerCommand::Send(WorkerMessage::TaskErred {
                key,
                run_id,
                failure,
            })),
        }
        if let Some(next) = next {
            self.compute(next);
        }
    }

    fn release(&mut self, key: &Key, as_of: u32) {
        let layout = key.as_str().strip_prefix(ShuffleRole::LAYOUT_KEY_PREFIX);
        if let Some(id) = layout {
            self.out.push(WorkerCommand::ForgetShuffle {
                id: id.to_string(),
                through: as_of,
            });
        }
        if let Some(fetch) = self.in_flight.get_mut(key) {
            fetch.stale = true;
        }
        if let Some(task) = self.pending.get_mut(key) {
            if task.phase == Phase::Executing {
                task.cancelled = true;
                // A layout being computed names a run that is now over: it
                // cannot serve a later assignment.
                task.stale_inputs |= layout.is_some();
            } else {
                self.drop_pending(key);
            }
        }
        if let Some(held) = self.data.get_mut(key) {
            if held.users > 0 {
                held.scheduler_owned = false;
                held.stale = true;
                for task in self.pending.values_mut() {
                    if task.phase == Phase::Executing && task.inputs.contains(key) {
                        task.stale_inputs = true;
                    }
                }
            } else {
                self.data.remove(key);
                self.out.push(WorkerCommand::Free(key.clone()));
            }
        }
    }

    fn steal(&mut self, key: Key, run_id: RunId) {
        let stolen = match self.pending.get(&key) {
            Some(task) if task.phase != Phase::Executing && task.run_id == run_id => {
                self.drop_pending(&key);
                true
            }
            _ => false,
        };
        self.out
            .push(WorkerCommand::Send(WorkerMessage::StealResponse {
                key,
                run_id,
                stolen,
            }));
    }

    /// Forgets a pending task and lets go of its inputs (freeing fetched copies no one uses).
    fn drop_pending(&mut self, key: &Key) {
        let Some(task) = self.pending.remove(key) else {
            return;
        };
        if task.phase == Phase::Executing {
            for (at, amount) in self.resource_slots(&task.resources) {
                self.available[at] += amount;
            }
        }
        for input in &task.inputs {
            if let Some(held) = self.data.get_mut(input) {
                held.users = held.users.saturating_sub(1);
                if held.users == 0 && !held.scheduler_owned {
                    self.data.remove(input);
                    self.out.push(WorkerCommand::Free(input.clone()));
                }
            } else if let Some(fetch) = self.in_flight.get_mut(input) {
                fetch.waiters.retain(|w| w != key);
            }
        }
    }

    fn resource_slots(&self, needs: &[(String, f64)]) -> Vec<(usize, f64)> {
        needs
            .iter()
            .filter_map(|(name, amount)| {
                self.resources
                    .iter()
                    .position(|(n, _)| n == name)
                    .map(|at| (at, *amount))
            })
            .collect()
    }

    /// Starts the best ready tasks while threads (and resources) are free.
    fn start_ready(&mut self) {
        if !self.constrained.is_empty() {
            for key in std::mem::take(&mut self.constrained) {
                if let Some(task) = self.pending.get(&key) {
                    self.ready.push(task.priority, key);
                }
            }
        }
        let mut blocked = Vec::new();
        while self.executing < self.nthreads {
            let Some((priority, key)) = self.ready.pop() else {
                break;
            };
            let Some(task) = self.pending.get(&key) else {
                continue;
            };
            if task.phase != Phase::Ready || task.priority != priority {
                continue;
            }
            let slots = self.resource_slots(&task.resources);
            if slots
                .iter()
                .any(|&(at, amount)| self.available[at] < amount)
            {
                blocked.push(key);
                continue;
            }
            for (at, amount) in slots {
                self.available[at] -= amount;
            }
            let Some(task) = self.pending.get_mut(&key) else {
                continue;
            };
            task.phase = Phase::Executing;
            self.executing += 1;
            self.out.push(WorkerCommand::Execute {
                key,
                run_id: task.run_id,
                run: task.run.clone(),
                inputs: task.inputs.clone(),
            });
        }
        self.constrained = blocked;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::RunSpec;
    use crate::ops::OpRef;
    use crate::scheduler::Input;

    fn task(key: &str, inputs: Vec<Input>, resources: &[(&str, f64)]) -> ComputeTask {
        ComputeTask {
            key: Key::new(key),
            run_id: RunId(0),
            run: Arc::new(RunSpec {
                op: OpRef::Missing("test".into()),
                args: vec![],
            }),
            inputs,
            priority: Priority::new(0, 0, 0),
            resources: resources.iter().map(|(n, a)| (n.to_string(), *a)).collect(),
        }
    }

    fn executed(out: &[WorkerCommand]) -> Vec<String> {
        out.iter()
            .filter_map(|c| match c {
                WorkerCommand::Execute { key, .. } => Some(key.to_string()),
                _ => None,
            })
            .collect()
    }

    /// Input `key` of 8 bytes, held by `holder`.
    fn held_by(key: &str, holder: u32) -> Input {
        Input {
            key: Key::new(key),
            holders: vec![WorkerId(holder)],
            nbytes: 8,
        }
    }

    /// Input `key` of 8 bytes arrives.
    fn arrives(worker: &mut WorkerState, key: &str, out: &mut Vec<WorkerCommand>) {
        let nbytes = Some(8);
        worker.handle(
            WorkerEvent::Fetched {
                key: Key::new(key),
                nbytes,
            },
            out,
        )
    }

    /// Whether `key` is fetched from `holder`.
    fn fetches(out: &[WorkerCommand], key: &str, holder: u32) -> bool {
        out.iter().any(|c| {
            matches!(c, WorkerCommand::Fetch { key: k, holders, .. }
                if k.as_str() == key && holders == &[WorkerId(holder)])
        })
    }

    /// Whether a task was reported finished.
    fn reported_finished(out: &[WorkerCommand]) -> bool {
        out.iter()
            .any(|c| matches!(c, WorkerCommand::Send(WorkerMessage::TaskFinished { .. })))
    }

    #[test]
    fn resources_limit_what_runs_at_once() {
        let mut worker = WorkerState::new(2, vec![("GPU".into(), 1.0)]);
        let mut out = Vec::new();
        worker.handle(
            WorkerEvent::Compute(task("a", vec![], &[("GPU", 1.0)])),
            &mut out,
        );
        worker.handle(
            WorkerEvent::Compute(task("b", vec![], &[("GPU", 1.0)])),
            &mut out,
        );
        assert_eq!(
            executed(&out),
            ["a"],
            "the second GPU task waits for the GPU"
        );
        out.clear();
        worker.handle(
            WorkerEvent::Executed {
                key: Key::new("a"),
                result: Ok(8),
                duration_us: 1,
                thread: 0,
            },
            &mut out,
        );
        assert_eq!(executed(&out), ["b"]);
    }

    #[test]
    fn missing_inputs_are_fetched_and_a_failed_fetch_is_reported() {
        let mut worker = WorkerState::new(1, vec![]);
        let mut out = Vec::new();
        let input = Input {
            key: Key::new("x"),
            holders: vec![WorkerId(7)],
            nbytes: 8,
        };
        worker.handle(WorkerEvent::Compute(task("y", vec![input], &[])), &mut out);
        assert!(
            matches!(&out[..], [WorkerCommand::Fetch { key, holders, nbytes: 8 }] if key.as_str() == "x" && holders == &[WorkerId(7)])
        );
        out.clear();
        worker.handle(
            WorkerEvent::Fetched {
                key: Key::new("x"),
                nbytes: None,
            },
            &mut out,
        );
        assert!(matches!(
            &out[..],
            [WorkerCommand::Send(WorkerMessage::MissingData { key, missing, tried, .. })] if key.as_str() == "y" && missing.as_str() == "x" && tried == &[WorkerId(7)]
        ));
        assert_eq!(worker.npending(), 0);
    }

    #[test]
    fn a_task_not_started_can_be_stolen_and_a_running_one_cannot() {
        let mut worker = WorkerState::new(1, vec![]);
        let mut out = Vec::new();
        worker.handle(WorkerEvent::Compute(task("a", vec![], &[])), &mut out);
        worker.handle(WorkerEvent::Compute(task("b", vec![], &[])), &mut out);
        out.clear();
        worker.handle(WorkerEvent::Steal(Key::new("a"), RunId(0)), &mut out);
        worker.handle(WorkerEvent::Steal(Key::new("b"), RunId(0)), &mut out);
        let answers: Vec<(String, bool)> = out
            .iter()
            .filter_map(|c| match c {
                WorkerCommand::Send(WorkerMessage::StealResponse { key, stolen, .. }) => {
                    Some((key.to_string(), *stolen))
                }
                _ => None,
            })
            .collect();
        assert_eq!(answers, [("a".to_string(), false), ("b".to_string(), true)]);
    }

    /// A restarted shuffle computes its layout again, with other owners: a copy
    /// released while a running task used it serves no new assignment, neither
    /// as the key's result, nor as an input, nor through the run under way.
    #[test]
    fn an_input_released_while_in_use_serves_no_new_assignment() {
        let mut worker = WorkerState::new(1, vec![]);
        let mut out = Vec::new();
        worker.handle(
            WorkerEvent::Compute(task("transfer", vec![held_by("layout", 7)], &[])),
            &mut out,
        );
        arrives(&mut worker, "layout", &mut out);
        assert_eq!(executed(&out), ["transfer"]);
        // The restart: the transfer and the layout are released while it runs.
        out.clear();
        worker.handle(WorkerEvent::Release(Key::new("transfer"), 0), &mut out);
        worker.handle(WorkerEvent::Release(Key::new("layout"), 0), &mut out);
        // The layout assigned here is computed, not answered with the old copy.
        let mut again = task("layout", vec![], &[]);
        again.run_id = RunId(1);
        worker.handle(WorkerEvent::Compute(again), &mut out);
        assert!(
            !reported_finished(&out),
            "the stale copy was handed back as the new result: {out:?}"
        );
        // The transfer assigned again waits for the run under way to end, then
        // runs anew with the new layout, fetched.
        let mut transfer = task("transfer", vec![held_by("layout", 8)], &[]);
        transfer.run_id = RunId(2);
        worker.handle(WorkerEvent::Compute(transfer), &mut out);
        out.clear();
        worker.handle(
            WorkerEvent::Executed {
                key: Key::new("transfer"),
                result: Err(TaskFailure::new("pushing to a lost worker")),
                duration_us: 1,
                thread: 0,
            },
            &mut out,
        );
        assert!(
            !out.iter()
                .any(|c| matches!(c, WorkerCommand::Send(WorkerMessage::TaskErred { .. }))),
            "the old run's failure was reported: {out:?}"
        );
        assert!(
            fetches(&out, "layout", 8),
            "the new run fetches the new layout: {out:?}"
        );
    }

    #[test]
    fn a_released_layout_drops_its_shuffle_shards_even_where_no_copy_is_held() {
        let mut worker = WorkerState::new(1, vec![]);
        let mut out = Vec::new();
        worker.handle(
            WorkerEvent::Release(Key::new("shuffle-layout-sort-7f"), 41),
            &mut out,
        );
        worker.handle(
            WorkerEvent::Release(Key::new("shuffle-barrier-sort-7f"), 42),
            &mut out,
        );
        let forgotten: Vec<_> = out
            .iter()
            .filter_map(|c| match c {
                WorkerCommand::ForgetShuffle { id, through } => Some((id.as_str(), *through)),
                _ => None,
            })
            .collect();
        assert_eq!(forgotten, [("sort-7f", 41)]);
    }

    /// A restarted shuffle's transfer assigned while this worker still fetches
    /// the old layout (for the transfer the restart released) does not take
    /// the old value: it waits for a fetch of its own from the new holder.
    #[test]
    fn a_fetch_under_way_when_its_key_is_released_serves_no_new_assignment() {
        let mut worker = WorkerState::new(1, vec![]);
        let mut out = Vec::new();
        let layout = "shuffle-layout-s";
        worker.handle(
            WorkerEvent::Compute(task("transfer", vec![held_by(layout, 7)], &[])),
            &mut out,
        );
        worker.handle(WorkerEvent::Release(Key::new("transfer"), 3), &mut out);
        worker.handle(WorkerEvent::Release(Key::new(layout), 3), &mut out);
        let mut again = task("transfer", vec![held_by(layout, 8)], &[]);
        again.run_id = RunId(5);
        worker.handle(WorkerEvent::Compute(again), &mut out);
        assert!(executed(&out).is_empty());
        // The old layout arrives: nothing runs with it, and the new one is fetched.
        out.clear();
        arrives(&mut worker, layout, &mut out);
        assert!(
            executed(&out).is_empty(),
            "ran with the old layout: {out:?}"
        );
        assert!(
            fetches(&out, layout, 8),
            "the new layout is fetched from its holder: {out:?}"
        );
        out.clear();
        arrives(&mut worker, layout, &mut out);
        assert_eq!(executed(&out), ["transfer"]);
    }

    /// A layout released while it is computed (a restart) and assigned here
    /// again runs anew: the run under way names a run of the shuffle that is over.
    #[test]
    fn a_layout_released_while_it_runs_is_computed_again_when_reassigned() {
        let mut worker = WorkerState::new(1, vec![]);
        let mut out = Vec::new();
        worker.handle(
            WorkerEvent::Compute(task("shuffle-layout-s", vec![], &[])),
            &mut out,
        );
        assert_eq!(executed(&out), ["shuffle-layout-s"]);
        worker.handle(
            WorkerEvent::Release(Key::new("shuffle-layout-s"), 9),
            &mut out,
        );
        let mut again = task("shuffle-layout-s", vec![], &[]);
        again.run_id = RunId(10);
        worker.handle(WorkerEvent::Compute(again), &mut out);
        out.clear();
        worker.handle(
            WorkerEvent::Executed {
                key: Key::new("shuffle-layout-s"),
                result: Ok(8),
                duration_us: 1,
                thread: 0,
            },
            &mut out,
        );
        assert!(
            !reported_finished(&out),
            "the old run answered the new assignment: {out:?}"
        );
        assert_eq!(executed(&out), ["shuffle-layout-s"]);
    }
}
