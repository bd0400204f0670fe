//! Graceful retirement under load, on real processes (issue 13, item 1): a
//! 200,000-task map on two worker processes, and one worker retires 1 s in —
//! by SIGTERM to its nanny (what `scancel` and adaptive scale-down do) or by
//! SIGKILL of its nanny (the worker then gets SIGTERM from the kernel). Every
//! result must be right, the retiring worker must leave cleanly, and the other
//! worker must never be removed. Also: workers rejoin a restarted scheduler.

mod support;

use rask::ops::builtin::{inc, sleep_then};
use rask::prelude::*;
use std::time::{Duration, Instant};
use support::{free_port, spawn, Cluster, Proc};

const TASKS: u64 = 200_000;
const RUNS: usize = 10;

/// How the retiring worker is asked to go.
#[derive(Clone, Copy, Debug)]
enum Retire {
    /// SIGTERM to the nanny, which passes it on.
    TermNanny,
    /// SIGKILL of the nanny; the kernel sends its worker SIGTERM.
    KillNanny,
}

fn retire_during_a_map(how: Retire) {
    let mut cluster = Cluster::start(&format!("retire-{how:?}"), &[]);
    let workers = ["--nthreads", "1", "--memory-limit", "2GiB"];
    cluster.add_worker(&workers);
    cluster.add_worker(&workers);
    let client = Client::connect(&cluster.address).expect("client connects");
    let mut correct = 0;
    let mut victims = Vec::new();
    for run in 0..RUNS {
        cluster.wait_for_workers(&client, 2);
        // Alternate which of the two live workers retires.
        let live: Vec<usize> = (0..cluster.workers.len())
            .filter(|&i| cluster.workers[i].child.try_wait().ok().flatten().is_none())
            .collect();
        let victim = live[run % live.len()];
        let started = Instant::now();
        // One task in 100 sleeps 1 ms, so the map lasts past the retirement.
        let items = (0..TASKS).map(|i| (u64::from(i % 100 == 0), i));
        let futures = client.map(sleep_then, items).expect("map");
        std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
        let pending = futures.iter().filter(|f| !f.done()).count();
        assert!(
            pending > 0,
            "run {run}: the map finished before the retirement; make it larger"
        );
        // The worker process under the nanny, which outlives a killed nanny.
        let worker_pid = cluster.worker_pid(&client, &format!("w{victim}"));
        match how {
            Retire::TermNanny => cluster.workers[victim].signal("TERM"),
            Retire::KillNanny => cluster.workers[victim].signal("KILL"),
        }
        let results = client.gather(&futures).expect("gather");
        if results.iter().zip(0..).all(|(&got, want)| got == want)
            && results.len() == TASKS as usize
        {
            correct += 1;
        }
        drop(futures);
        if let Retire::TermNanny = how {
            // The nanny passes on the worker's exit: 0 for a clean retirement.
            let code = cluster.workers[victim].wait_exit(Duration::from_secs(60));
            assert_eq!(
                code,
                Some(0),
                "run {run}: the retired worker's exit; its log:\n{}",
                cluster.workers[victim].log_text()
            );
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::path::Path::new(&format!("/proc/{worker_pid}")).exists() && !zombie(worker_pid) {
            assert!(
                Instant::now() < deadline,
                "run {run}: the retiring worker {worker_pid} did not leave"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        victims.push(victim);
        cluster.add_worker(&workers);
    }
    assert_eq!(correct, RUNS, "correct results out of {RUNS} runs");
    // Only retirements removed workers: none was dropped for silence or lost.
    let log = cluster.scheduler.log_text();
    let removed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("worker removed"))
        .collect();
    assert_eq!(
        removed.len(),
        RUNS,
        "one removal per run:\n{}",
        removed.join("\n")
    );
    for line in &removed {
        assert!(
            line.contains("reason=\"retired\""),
            "a worker was removed without retiring: {line}"
        );
    }
    assert!(
        !log.contains("nothing heard"),
        "a worker was taken for dead:\n{log}"
    );
}

/// Whether process `pid` has exited and waits to be reaped.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

#[test]
fn sigterm_to_a_worker_during_a_200k_task_map_loses_nothing_ten_times() {
    retire_during_a_map(Retire::TermNanny);
}

#[test]
fn sigkill_of_a_nanny_during_a_200k_task_map_loses_nothing_ten_times() {
    retire_during_a_map(Retire::KillNanny);
}

/// `rask scheduler` arguments for a free port that stays the same across
/// restarts, and the address workers reach it at.
fn scheduler_at_a_fixed_port() -> (Vec<String>, String) {
    let port = free_port().to_string();
    let args = ["scheduler", "--port", &port, "--no-dashboard"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    (args, format!("tcp://127.0.0.1:{port}"))
}

/// A one-thread worker that keeps trying to reach `address` for 30 s.
fn patient_worker(address: &str, dir: &support::TempDir, log: &str) -> Proc {
    spawn(
        &[
            "worker".into(),
            address.to_string(),
            "--nthreads".into(),
            "1".into(),
            "--death-timeout".into(),
            "30".into(),
            "--local-directory".into(),
            dir.path().display().to_string(),
        ],
        dir.path().join(log),
    )
}

#[test]
fn workers_rejoin_a_scheduler_restarted_at_the_same_address() {
    let dir = support::TempDir::new("restart");
    let (scheduler_args, address) = scheduler_at_a_fixed_port();
    let mut first = spawn(&scheduler_args, dir.path().join("scheduler-0.log"));
    let mut worker = patient_worker(&address, &dir, "worker.log");
    let connect = || {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(client) = Client::connect(&address) {
                return client;
            }
            assert!(Instant::now() < deadline, "no scheduler at {address}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let wait_for_worker = |client: &Client| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.workers().map(|w| w.len()).unwrap_or(0) != 1 {
            assert!(Instant::now() < deadline, "the worker did not join");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let client = connect();
    wait_for_worker(&client);
    assert_eq!(client.submit(inc, 41u64).unwrap().result().unwrap(), 42);
    drop(client);

    first.signal("KILL");
    first.wait_exit(Duration::from_secs(10));
    // The worker notices, and keeps trying while no scheduler listens.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !worker.log_text().contains("scheduler not reachable yet") {
        assert!(Instant::now() < deadline, "{}", worker.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = spawn(&scheduler_args, dir.path().join("scheduler-1.log"));
    let client = connect();
    let rejoined = Instant::now();
    wait_for_worker(&client);
    assert!(
        rejoined.elapsed() < Duration::from_secs(30),
        "rejoined within --death-timeout"
    );
    assert_eq!(client.submit(inc, 1u64).unwrap().result().unwrap(), 2);
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker kept running"
    );
    assert!(
        worker.log_text().contains("joined the scheduler again"),
        "{}",
        worker.log_text()
    );
    drop(second);
}

/// A scheduler stopped with SIGTERM stops accepting before it lets go of its
/// workers: they retry (for --death-timeout) instead of joining the scheduler
/// that is going away, so its log shows each worker joining once.
#[test]
fn a_stopping_scheduler_takes_no_new_workers() {
    let dir = support::TempDir::new("stopping");
    let (scheduler_args, address) = scheduler_at_a_fixed_port();
    let mut scheduler = spawn(&scheduler_args, dir.path().join("scheduler.log"));
    let mut workers: Vec<_> = (0..2)
        .map(|n| patient_worker(&address, &dir, &format!("worker-{n}.log")))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while scheduler.log_text().matches("worker joined").count() < 2 {
        assert!(Instant::now() < deadline, "{}", scheduler.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    scheduler.signal("TERM");
    scheduler.wait_exit(Duration::from_secs(10));
    let log = scheduler.log_text();
    let after = log.split("shutting down").nth(1).unwrap_or_default();
    assert!(!after.contains("worker joined"), "{log}");
    assert_eq!(log.matches("worker joined").count(), 2, "{log}");
    for worker in &mut workers {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !worker.log_text().contains("scheduler not reachable yet") {
            assert!(Instant::now() < deadline, "{}", worker.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
        worker.signal("KILL");
    }
}
