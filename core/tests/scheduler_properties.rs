//! Property tests of the scheduler and worker state machines, driven together by a
//! deterministic simulator: randomized DAGs (up to 10,000 tasks, random fan-in and
//! fan-out), random worker counts and thread counts, injected task failures and
//! worker losses, and random interleavings of every message.
//!
//! Workers may also retire gracefully at random moments, with any number of
//! tasks queued on them (replaced by fresh workers).
//!
//! Checked: the scheduler's tables agree after every event (small graphs); a
//! task runs only when its inputs are on its worker; without worker
//! losses every task runs at most once, retirements included (unstarted tasks
//! move, unique results are copied, nothing is recomputed); every wanted key ends in memory with the
//! value a sequential evaluation gives, or erred with the right cause; after the
//! client leaves, the scheduler forgets everything and workers hold nothing.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rask::graph::{Arg, Key, TaskSpec};
use rask::ops::{OpRef, TaskFailure};
use rask::scheduler::{
    ClientId, Command, Event, Report, SchedulerConfig, State, TaskState, WorkerId,
};
use rask::value::Value;
use rask::worker::{WorkerCommand, WorkerEvent, WorkerState};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Worker losses injected, and tasks run more than once, across all cases: the
/// loss test checks that it really exercised recovery.
static KILLS: AtomicU64 = AtomicU64::new(0);
static RERUNS: AtomicU64 = AtomicU64::new(0);
static RETIRED: AtomicU64 = AtomicU64::new(0);

/// A random DAG: task `i` depends on `deps[i]` (all < i); `fails[i]` makes it fail.
#[derive(Debug, Clone)]
struct Dag {
    deps: Vec<Vec<usize>>,
    fails: Vec<bool>,
    wanted: Vec<usize>,
}

fn dag(max_tasks: usize) -> impl Strategy<Value = Dag> {
    (1..=max_tasks, any::<u64>()).prop_map(|(n, seed)| {
        let mut rng = SplitMix(seed);
        let mut deps = Vec::with_capacity(n);
        let mut fails = Vec::with_capacity(n);
        for i in 0..n {
            let fan_in = if i == 0 {
                0
            } else {
                (rng.below(5) as usize).min(i)
            };
            let mut ds: Vec<usize> = (0..fan_in)
                .map(|_| {
                    // Mostly recent tasks (chains, trees), sometimes anything (wide fan-out).
                    if rng.below(4) == 0 {
                        rng.below(i as u64) as usize
                    } else {
                        i - 1 - rng.below(i.min(8) as u64) as usize
                    }
                })
                .collect();
            ds.sort_unstable();
            ds.dedup();
            deps.push(ds);
            fails.push(rng.below(200) == 0);
        }
        let mut has_dependents = vec![false; n];
        for ds in &deps {
            for &d in ds {
                has_dependents[d] = true;
            }
        }
        // Every sink, plus some inner tasks.
        let wanted = (0..n)
            .filter(|&i| !has_dependents[i] || rng.below(10) == 0)
            .collect();
        Dag {
            deps,
            fails,
            wanted,
        }
    })
}

/// splitmix64: small, deterministic.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

fn key(i: usize) -> Key {
    // Group names vary so that some groups are root-ish and some are not.
    Key::new(format!("t{}-{i:x}", i % 3))
}

fn combine(id: u64, inputs: &[u64]) -> u64 {
    inputs.iter().fold(id.wrapping_mul(0x9e37_79b9), |acc, x| {
        acc.rotate_left(7) ^ x.wrapping_add(1)
    })
}

/// The op every simulated task runs: args are (id, fail, inputs...).
fn sim_op() -> OpRef {
    OpRef::Closure(
        Arc::from("sim"),
        Arc::new(|args: &[Value]| -> Result<Value, TaskFailure> {
            let id = args[0]
                .extract::<u64>()
                .map_err(|e| TaskFailure::new(e.to_string()))?;
            if args[1]
                .extract::<bool>()
                .map_err(|e| TaskFailure::new(e.to_string()))?
            {
                return Err(TaskFailure::new(format!("task {id} fails on purpose")));
            }
            let inputs: Vec<u64> = args[2..]
                .iter()
                .map(|v| v.extract::<u64>().unwrap_or(u64::MAX))
                .collect();
            Ok(Value::new(combine(id, &inputs)))
        }),
    )
}

/// Sequential evaluation: each task's value, or the index of the failing task to blame.
fn sequential(dag: &Dag) -> Vec<Result<u64, usize>> {
    let mut out: Vec<Result<u64, usize>> = Vec::with_capacity(dag.deps.len());
    for i in 0..dag.deps.len() {
        let inputs: Result<Vec<u64>, usize> = dag.deps[i].iter().map(|&d| out[d]).collect();
        out.push(match inputs {
            Err(blame) => Err(blame),
            Ok(_) if dag.fails[i] => Err(i),
            Ok(inputs) => Ok(combine(i as u64, &inputs)),
        });
    }
    out
}

/// Task `i` and its ancestors that fail on purpose.
fn failing_ancestors(dag: &Dag, i: usize) -> Vec<usize> {
    let mut seen = HashSet::new();
    let mut stack = vec![i];
    let mut out = Vec::new();
    while let Some(t) = stack.pop() {
        if seen.insert(t) {
            if dag.fails[t] {
                out.push(t);
            }
            stack.extend(dag.deps[t].iter().copied());
        }
    }
    out
}

struct SimWorker {
    state: WorkerState,
    inbox: VecDeque<WorkerEvent>,
    store: HashMap<Key, Value>,
    running: Vec<(Key, Arc<rask::graph::RunSpec>, Vec<Key>)>,
}

struct Sim {
    rng: SplitMix,
    scheduler: State,
    scheduler_inbox: VecDeque<Event>,
    workers: HashMap<WorkerId, SimWorker>,
    next_worker: u32,
    reports: Vec<Report>,
    runs: HashMap<Key, u32>,
    kills_left: u32,
    kills: u32,
    retires_left: u32,
    /// Check the scheduler's tables after every event (small graphs only).
    check_every_event: bool,
    /// Workers asked to retire and not closed yet.
    retiring: HashSet<WorkerId>,
    retired: u32,
}

impl Sim {
    fn add_worker(&mut self) {
        let id = WorkerId(self.next_worker);
        self.next_worker += 1;
        let nthreads = 1 + self.rng.below(3) as u32;
        self.workers.insert(
            id,
            SimWorker {
                state: WorkerState::new(nthreads, vec![]),
                inbox: VecDeque::new(),
                store: HashMap::new(),
                running: vec![],
            },
        );
        self.scheduler_inbox.push_back(Event::AddWorker {
            worker: id,
            name: format!("w{}", id.0),
            nthreads,
            resources: vec![],
            memory_limit: 0,
        });
    }

    fn route(&mut self, commands: Vec<Command>) {
        for command in commands {
            match command {
                Command::Compute { worker, task } => {
                    self.deliver(worker, WorkerEvent::Compute(task))
                }
                Command::Release { worker, key, as_of } => {
                    self.deliver(worker, WorkerEvent::Release(key, as_of))
                }
                Command::Steal {
                    worker,
                    key,
                    run_id,
                } => self.deliver(worker, WorkerEvent::Steal(key, run_id)),
                Command::Replicate {
                    worker,
                    key,
                    holders,
                    nbytes,
                } => self.deliver(
                    worker,
                    WorkerEvent::Replicate {
                        key,
                        holders,
                        nbytes,
                    },
                ),
                Command::CloseWorker { worker } => {
                    self.workers.remove(&worker);
                    if self.retiring.remove(&worker) {
                        self.retired += 1;
                    }
                }
                Command::Report { report, .. } => self.reports.push(report),
            }
        }
    }

    fn deliver(&mut self, worker: WorkerId, event: WorkerEvent) {
        if let Some(w) = self.workers.get_mut(&worker) {
            w.inbox.push_back(event);
        }
    }

    fn worker_commands(&mut self, id: WorkerId, commands: Vec<WorkerCommand>) {
        for command in commands {
            match command {
                WorkerCommand::Execute {
                    key, run, inputs, ..
                } => {
                    let w = self.workers.get_mut(&id).expect("live worker");
                    for input in &inputs {
                        assert!(
                            w.store.contains_key(input),
                            "{key} started on {id:?} before its input {input} was there"
                        );
                    }
                    *self.runs.entry(key.clone()).or_default() += 1;
                    w.running.push((key, run, inputs));
                }
                WorkerCommand::Fetch { key, holders, .. } => {
                    let value = holders
                        .iter()
                        .filter_map(|h| self.workers.get(h))
                        .find_map(|w| w.store.get(&key).cloned());
                    let w = self.workers.get_mut(&id).expect("live worker");
                    let nbytes = value.as_ref().map(|v| v.nbytes() as u64);
                    if let Some(value) = value {
                        w.store.insert(key.clone(), value);
                    }
                    w.inbox.push_back(WorkerEvent::Fetched { key, nbytes });
                }
                WorkerCommand::Free(key) => {
                    self.workers
                        .get_mut(&id)
                        .expect("live worker")
                        .store
                        .remove(&key);
                }
                // No shuffles in these graphs.
                WorkerCommand::ForgetShuffle { .. } => {}
                WorkerCommand::Send(message) => {
                    self.scheduler_inbox.push_back(message.into_event(id))
                }
            }
        }
    }

    /// One random step; false when nothing is left to do.
    fn step(&mut self) -> bool {
        let mut ids: Vec<WorkerId> = self.workers.keys().copied().collect();
        ids.sort();
        let mut choices: Vec<u8> = Vec::new();
        if !self.scheduler_inbox.is_empty() {
            choices.extend([0, 0, 0]);
        }
        if ids.iter().any(|w| !self.workers[w].inbox.is_empty()) {
            choices.extend([1, 1, 1]);
        }
        if ids.iter().any(|w| !self.workers[w].running.is_empty()) {
            choices.extend([2, 2, 2]);
        }
        if choices.is_empty() {
            return false;
        }
        if self.kills_left > 0 && self.rng.below(100) == 0 {
            choices.push(3);
        }
        if self.rng.below(50) == 0 {
            choices.push(4);
        }
        if self.retires_left > 0 && self.rng.below(200) == 0 {
            choices.push(5);
        }
        match choices[self.rng.below(choices.len() as u64) as usize] {
            0 => {
                let event = self.scheduler_inbox.pop_front().expect("non-empty");
                let commands = self.scheduler.handle(event);
                if self.check_every_event {
                    if let Err(error) = self.scheduler.check_consistency() {
                        panic!("the scheduler's tables disagree: {error}");
                    }
                }
                self.route(commands);
            }
            1 => {
                let busy: Vec<WorkerId> = ids
                    .into_iter()
                    .filter(|w| !self.workers[w].inbox.is_empty())
                    .collect();
                let id = busy[self.rng.below(busy.len() as u64) as usize];
                let w = self.workers.get_mut(&id).expect("live worker");
                let event = w.inbox.pop_front().expect("non-empty");
                let mut commands = Vec::new();
                w.state.handle(event, &mut commands);
                self.worker_commands(id, commands);
            }
            2 => {
                let busy: Vec<WorkerId> = ids
                    .into_iter()
                    .filter(|w| !self.workers[w].running.is_empty())
                    .collect();
                let id = busy[self.rng.below(busy.len() as u64) as usize];
                let pick = self.rng.below(self.workers[&id].running.len() as u64) as usize;
                let w = self.workers.get_mut(&id).expect("live worker");
                let (key, run, inputs) = w.running.swap_remove(pick);
                let values: Vec<Value> = inputs.iter().map(|k| w.store[k].clone()).collect();
                let result = run.run(&values).map(|value| {
                    let nbytes = value.nbytes() as u64;
                    w.store.insert(key.clone(), value);
                    nbytes
                });
                let mut commands = Vec::new();
                w.state.handle(
                    WorkerEvent::Executed {
                        key,
                        result,
                        duration_us: 1 + self.rng.below(1000),
                        thread: 0,
                    },
                    &mut commands,
                );
                self.worker_commands(id, commands);
            }
            3 => {
                let id = ids[self.rng.below(ids.len() as u64) as usize];
                self.workers.remove(&id);
                self.retiring.remove(&id);
                self.kills_left -= 1;
                self.kills += 1;
                self.scheduler_inbox.push_back(Event::RemoveWorker {
                    worker: id,
                    reason: "killed by the simulator".into(),
                });
                self.add_worker();
            }
            5 => {
                let id = ids[self.rng.below(ids.len() as u64) as usize];
                if self.retiring.insert(id) {
                    self.retires_left -= 1;
                    self.scheduler_inbox
                        .push_back(Event::RetireWorkers { workers: vec![id] });
                    self.add_worker();
                }
            }
            _ => self.scheduler_inbox.push_back(Event::Balance),
        }
        true
    }
}

fn simulate(
    dag: &Dag,
    nworkers: u32,
    kills: u32,
    retires: u32,
    saturation: f64,
    seed: u64,
) -> Result<(), TestCaseError> {
    let config = SchedulerConfig {
        worker_saturation: saturation,
        ..Default::default()
    };
    let mut sim = Sim {
        rng: SplitMix(seed),
        scheduler: State::new(config),
        scheduler_inbox: VecDeque::new(),
        workers: HashMap::new(),
        next_worker: 0,
        reports: Vec::new(),
        runs: HashMap::new(),
        kills_left: kills,
        kills: 0,
        retires_left: retires,
        check_every_event: dag.deps.len() <= 500,
        retiring: HashSet::new(),
        retired: 0,
    };
    for _ in 0..nworkers {
        sim.add_worker();
    }
    let op = sim_op();
    let tasks: Vec<TaskSpec> = (0..dag.deps.len())
        .map(|i| {
            let mut args = vec![
                Arg::Value(Value::new(i as u64)),
                Arg::Value(Value::new(dag.fails[i])),
            ];
            args.extend((0..dag.deps[i].len() as u32).map(Arg::Dep));
            TaskSpec::new(
                key(i),
                op.clone(),
                args,
                dag.deps[i].iter().map(|&d| key(d)).collect(),
            )
        })
        .collect();
    let client = ClientId(0);
    sim.scheduler_inbox.push_back(Event::AddClient { client });
    let wanted: Vec<Key> = dag.wanted.iter().map(|&i| key(i)).collect();
    sim.scheduler_inbox.push_back(Event::UpdateGraph {
        client,
        tasks,
        wanted: wanted.clone(),
    });
    let mut steps = 0_u64;
    while sim.step() {
        steps += 1;
        prop_assert!(steps < 50_000_000, "simulation does not settle");
    }

    let expected = sequential(dag);
    for &i in &dag.wanted {
        let k = key(i);
        match (sim.scheduler.task_state(&k), &expected[i]) {
            (Some(TaskState::Memory), Ok(value)) => {
                let holders = sim.scheduler.who_has(&k);
                prop_assert!(!holders.is_empty(), "{k} in memory with no holder");
                for h in holders {
                    let got = sim.workers[&h].store.get(&k).map(|v| v.extract::<u64>());
                    prop_assert_eq!(got, Some(Ok(*value)), "value of {} on {:?}", k, h);
                }
            }
            (Some(TaskState::Erred), Err(_)) => {
                let report = sim.reports.iter().rev().find_map(|r| match r {
                    Report::Erred { key, error } if *key == k => Some(error.clone()),
                    _ => None,
                });
                let error = report.expect("erred keys are reported");
                // Any failing task among its ancestors (or itself) may be the one that failed first.
                // Or a task that outlived `allowed_failures` worker deaths.
                let blamed = failing_ancestors(dag, i)
                    .into_iter()
                    .any(|a| key(a) == error.blame)
                    || (sim.kills > 0 && error.message.contains("killed worker"));
                prop_assert!(
                    blamed,
                    "{} blamed on {}, which is not a failing ancestor",
                    k,
                    error.blame
                );
            }
            (Some(TaskState::Erred), Ok(_)) if sim.kills > 0 => {
                // Only a task that outlived `allowed_failures` worker deaths may fail without a cause in the graph.
                let killed = sim.reports.iter().any(|r| matches!(r, Report::Erred { error, .. } if error.message.contains("killed worker")));
                prop_assert!(killed, "{k} erred without cause");
            }
            (state, want) => prop_assert!(false, "{k}: state {state:?}, expected {want:?}"),
        }
    }
    KILLS.fetch_add(u64::from(sim.kills), Ordering::Relaxed);
    RETIRED.fetch_add(u64::from(sim.retired), Ordering::Relaxed);
    RERUNS.fetch_add(
        sim.runs.values().filter(|&&n| n > 1).count() as u64,
        Ordering::Relaxed,
    );
    if sim.kills == 0 {
        for (k, n) in &sim.runs {
            prop_assert!(
                *n == 1,
                "{k} ran {n} times without any worker loss ({} retired)",
                sim.retired
            );
        }
    }
    prop_assert!(
        sim.retiring.is_empty(),
        "retirements never finished: {:?}",
        sim.retiring
    );
    // The client leaves: everything is forgotten and every worker is empty. A
    // worker retiring at that moment sees its keys forgotten while they are
    // being copied, and must still close.
    if retires > 0 {
        let mut ids: Vec<WorkerId> = sim.workers.keys().copied().collect();
        ids.sort();
        let id = ids[sim.rng.below(ids.len() as u64) as usize];
        sim.retiring.insert(id);
        sim.scheduler_inbox
            .push_back(Event::RetireWorkers { workers: vec![id] });
        sim.add_worker();
    }
    sim.scheduler_inbox
        .push_back(Event::RemoveClient { client });
    while sim.step() {}
    prop_assert!(
        sim.retiring.is_empty(),
        "retirements never finished after the client left: {:?}",
        sim.retiring
    );
    prop_assert_eq!(
        sim.scheduler.ntasks(),
        0,
        "tasks left: {:?}",
        sim.scheduler.count_by_state()
    );
    for (id, w) in &sim.workers {
        prop_assert!(
            w.store.is_empty(),
            "{:?} still holds {:?}",
            id,
            w.store.keys().collect::<Vec<_>>()
        );
    }
    Ok(())
}

fn run(cases: u32, max_tasks: usize, max_kills: u32, max_retires: u32) {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    let strategy = (
        dag(max_tasks),
        1..=4_u32,
        0..=max_kills,
        0..=max_retires,
        prop_oneof![Just(1.1), Just(f64::INFINITY)],
        any::<u64>(),
    );
    runner
        .run(
            &strategy,
            |(dag, nworkers, kills, retires, saturation, seed)| {
                simulate(&dag, nworkers, kills, retires, saturation, seed)
            },
        )
        .unwrap();
}

#[test]
fn random_dags_complete_correctly() {
    run(64, 300, 0, 0);
}

#[test]
fn random_dags_survive_retirements_without_recomputing_anything() {
    run(64, 2000, 0, 4);
    let retired = RETIRED.load(Ordering::Relaxed);
    assert!(retired >= 20, "only {retired} workers retired");
}

#[test]
fn random_dags_survive_worker_losses() {
    run(64, 300, 4, 2);
    let (kills, reruns) = (
        KILLS.load(Ordering::Relaxed),
        RERUNS.load(Ordering::Relaxed),
    );
    assert!(kills >= 20, "only {kills} worker losses were injected");
    assert!(reruns > 0, "no task was ever recomputed after a loss");
}

#[test]
fn large_random_dags_complete_correctly() {
    run(4, 10_000, 2, 2);
}

#[test]
fn unused_inputs_are_culled_and_cancelled_keys_are_reported() {
    let mut state = State::new(SchedulerConfig::default());
    state.handle(Event::AddWorker {
        worker: WorkerId(0),
        name: "w".into(),
        nthreads: 1,
        resources: vec![],
        memory_limit: 0,
    });
    let op = sim_op();
    let leaf = |i: usize| {
        TaskSpec::new(
            key(i),
            op.clone(),
            vec![
                Arg::Value(Value::new(i as u64)),
                Arg::Value(Value::new(false)),
            ],
            vec![],
        )
    };
    let out = state.handle(Event::UpdateGraph {
        client: ClientId(1),
        tasks: vec![leaf(0), leaf(1)],
        wanted: vec![key(0)],
    });
    assert_eq!(
        state.task_state(&key(1)),
        None,
        "a task nobody needs is culled"
    );
    assert!(matches!(&out[..], [Command::Compute { .. }]));
    let out = state.handle(Event::Cancel {
        client: ClientId(1),
        keys: vec![key(0)],
    });
    assert!(out.iter().any(|c| matches!(
        c,
        Command::Report {
            report: Report::Cancelled { .. },
            ..
        }
    )));
    assert!(
        out.iter().any(|c| matches!(c, Command::Release { .. })),
        "the running task is stopped: {out:?}"
    );
    assert_eq!(state.ntasks(), 0);
}

#[test]
fn a_malformed_graph_is_rejected_and_nothing_changes() {
    let mut state = State::new(SchedulerConfig::default());
    let op = sim_op();
    let orphan = TaskSpec::new(key(1), op, vec![Arg::Dep(0)], vec![key(99)]);
    let out = state.handle(Event::UpdateGraph {
        client: ClientId(0),
        tasks: vec![orphan],
        wanted: vec![key(1)],
    });
    assert!(
        matches!(&out[..], [Command::Report { report: Report::GraphRejected { error, .. }, .. }] if error.contains("t0-63")),
        "{out:?}"
    );
    assert_eq!(state.ntasks(), 0);
}
