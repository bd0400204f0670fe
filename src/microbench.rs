//! `rask microbench`: scheduling throughput on a local cluster.
//!
//! (a) N independent no-op tasks through `map` + `gather`; (b) an N-leaf pairwise
//! tree reduction as one delayed graph. `--scheduler-memory` also measures the
//! scheduler state's resident memory per task for an N-task graph.

use anyhow::{Context, Result};
use rask::prelude::*;
use std::time::Instant;

/// Options of `rask microbench`.
#[derive(clap::Args)]
pub struct Args {
    /// Tasks in (a) and leaves in (b).
    #[arg(long, default_value_t = 100_000)]
    tasks: u64,
    /// Workers in the local cluster.
    #[arg(long, value_parser = crate::counts::at_least_one, default_value_t = 2)]
    workers: usize,
    /// Threads per worker.
    #[arg(long, value_parser = crate::counts::at_least_one, default_value_t = 1)]
    threads: usize,
    /// Which workloads to run.
    #[arg(long, value_enum, default_value_t = Workload::Both)]
    workload: Workload,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
    /// Also measure the scheduler's resident memory per task (pure state machine, N tasks).
    #[arg(long)]
    scheduler_memory: bool,
    /// Run on this running scheduler (`tcp://host:port`) instead of a local cluster.
    #[arg(long, value_name = "ADDR", conflicts_with = "scheduler_file")]
    scheduler: Option<String>,
    /// With a running scheduler: wait until this many workers are connected
    /// before timing.
    #[arg(long, value_name = "N", default_value_t = 1)]
    wait_for_workers: usize,
    /// Run on the scheduler named in this scheduler file.
    #[arg(long, value_name = "PATH")]
    scheduler_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    security: crate::security_args::SecurityArgs,
}

/// The workloads of `rask microbench`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Workload {
    /// (a) map + gather only.
    Map,
    /// (b) the tree reduction only.
    Tree,
    /// Both, (a) then (b).
    Both,
}

use rask::ops::builtin::{add, noop};

pub fn run(args: Args) -> Result<()> {
    anyhow::ensure!(args.tasks > 0, "--tasks must be at least 1");
    // First, while the heap is fresh: resident growth is then the state's own memory.
    let memory = if args.scheduler_memory {
        Some(scheduler_bytes_per_task(args.tasks)?)
    } else {
        None
    };
    let client = match (&args.scheduler, &args.scheduler_file) {
        (None, None) => Client::local(
            LocalCluster::new()
                .workers(args.workers)
                .threads_per_worker(args.threads),
        )
        .context("starting the local cluster")?,
        (address, file) => {
            let options = match (address, file) {
                (Some(address), _) => rask::ConnectOptions::new(address),
                (None, Some(file)) => rask::ConnectOptions::scheduler_file(file),
                (None, None) => unreachable!("handled above"),
            };
            let options = args.security.apply(options)?;
            options.connect().context("connecting to the scheduler")?
        }
    };
    let (workers, threads) = match client.cluster() {
        Some(_) => (args.workers, args.threads),
        None => {
            // Time the work, not the workers' start (saying so while none are there).
            client.wait_for_workers(
                args.wait_for_workers,
                std::time::Duration::from_secs(24 * 3600),
            )?;
            let workers = client.workers()?;
            let threads = workers
                .iter()
                .map(|w| w.nthreads as usize)
                .max()
                .unwrap_or(0);
            (workers.len(), threads)
        }
    };
    let n = args.tasks;

    let map_rate = if args.workload != Workload::Tree {
        Some(map_and_gather(&client, n)?)
    } else {
        None
    };
    let tree = if args.workload != Workload::Map {
        Some(tree_reduction(&client, n)?)
    } else {
        None
    };
    let peak = peak_resident_bytes()?;
    if args.json {
        let mut line = serde_json::json!({
            "n": n,
            "workers": workers,
            "threads": threads,
            "cluster": if client.is_in_process() { "local" } else { "tcp" },
            "peak_rss_bytes": peak,
        });
        if let Some(rate) = map_rate {
            line["map_tasks_per_s"] = serde_json::json!(rate.round());
        }
        if let Some((_, rate)) = tree {
            line["tree_tasks_per_s"] = serde_json::json!(rate.round());
        }
        if let Some(bytes) = memory {
            line["scheduler_bytes_per_task"] = serde_json::json!(bytes.round());
        }
        println!("{line}");
    } else {
        if let Some(rate) = map_rate {
            println!("map + gather: {n} tasks at {rate:.0} tasks/s");
        }
        if let Some((ntasks, rate)) = tree {
            println!("tree reduction: {ntasks} tasks at {rate:.0} tasks/s");
        }
        println!(
            "peak resident memory of this process: {:.1} MiB",
            peak as f64 / (1 << 20) as f64
        );
        if let Some(bytes) = memory {
            println!(
                "scheduler memory: {bytes:.0} bytes/task (resident, {n} waiting or queued tasks)"
            );
        }
    }
    Ok(())
}

/// (a) `n` no-op tasks through `map` + `gather`; returns tasks per second.
fn map_and_gather(client: &Client, n: u64) -> Result<f64> {
    let started = Instant::now();
    let futures = client.map(noop, 0..n)?;
    let results = client.gather(&futures)?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        results.iter().sum::<u64>() == n * (n - 1) / 2,
        "map results are wrong"
    );
    Ok(n as f64 / seconds)
}

/// (b) an `n`-leaf pairwise tree reduction as one delayed graph; returns the
/// number of tasks and tasks per second.
fn tree_reduction(client: &Client, n: u64) -> Result<(u64, f64)> {
    let started = Instant::now();
    let mut level: Vec<Delayed<u64>> = (0..n).map(|i| delayed(noop, i)).collect();
    let mut ntasks = level.len() as u64;
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len() / 2 + 1);
        for pair in level.chunks(2) {
            match pair {
                [a, b] => {
                    next.push(delayed(add, (a, b)));
                    ntasks += 1;
                }
                _ => next.extend(pair.iter().cloned()),
            }
        }
        level = next;
    }
    let total = level[0].compute(client)?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(total == n * (n - 1) / 2, "tree result {total} is wrong");
    Ok((ntasks, ntasks as f64 / seconds))
}

/// Resident memory added by the scheduler state for `n` submitted no-op tasks.
fn scheduler_bytes_per_task(n: u64) -> Result<f64> {
    use rask::graph::{Arg, Key, TaskSpec};
    use rask::scheduler::{ClientId, Event, State, WorkerId};
    use rask::value::Value;
    let op = rask::ops::Op::op_ref(&noop);
    let before = resident_bytes()?;
    let mut state = State::new(Default::default());
    for w in 0..2 {
        state.handle(Event::AddWorker {
            worker: WorkerId(w),
            name: format!("w{w}"),
            nthreads: 1,
            resources: vec![],
            memory_limit: 0,
        });
    }
    let tasks: Vec<TaskSpec> = (0..n)
        .map(|i| {
            TaskSpec::new(
                Key::unique("noop"),
                op.clone(),
                vec![Arg::Value(Value::new(i))],
                vec![],
            )
        })
        .collect();
    let wanted = tasks.iter().map(|t| t.key.clone()).collect();
    let commands = state.handle(Event::UpdateGraph {
        client: ClientId(0),
        tasks,
        wanted,
    });
    drop(commands);
    let after = resident_bytes()?;
    anyhow::ensure!(
        state.ntasks() as u64 == n,
        "scheduler holds {} tasks, expected {n}",
        state.ntasks()
    );
    let per_task = after.saturating_sub(before) as f64 / n as f64;
    drop(state);
    Ok(per_task)
}

fn resident_bytes() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("reading /proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .context("parsing /proc/self/statm")?;
    Ok(pages * 4096)
}

/// The peak resident memory of this process so far (`VmHWM`).
fn peak_resident_bytes() -> Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("parsing VmHWM in /proc/self/status")?;
    Ok(kib * 1024)
}
