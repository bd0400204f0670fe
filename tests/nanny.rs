//! The nanny of `rask worker`: a worker process that dies on its own (over its
//! memory limit, or killed) is restarted; a stop signal retires it; a nanny that
//! is itself killed does not leave its worker behind.

mod support;

use rask::ops::builtin::{inc, random_bytes};
use rask::prelude::*;
use std::time::{Duration, Instant};
use support::Cluster;

#[test]
fn a_worker_over_its_memory_limit_is_restarted_and_the_task_fails_with_the_cause() {
    let mut cluster = Cluster::start("nanny-memory", &[]);
    cluster.add_worker(&["--nthreads", "1", "--memory-limit", "150MiB"]);
    let client = Client::connect(&cluster.address).expect("client connects");
    cluster.wait_for_workers(&client, 1);
    let first = cluster.worker_pid(&client, "w0");

    // 400 MiB in one task: every worker that runs it passes 95% of its limit.
    let hog = client.submit(random_bytes, (400u64 << 20, 7u64)).unwrap();
    let error = hog
        .result()
        .expect_err("the task kills every worker it runs on");
    let message = error.to_string();
    println!("{message}");
    assert!(message.contains("killed worker"), "{message}");
    assert!(message.contains("95% of its memory limit"), "{message}");

    // The nanny brought the worker back each time; it works.
    cluster.wait_for_workers(&client, 1);
    let now = cluster.worker_pid(&client, "w0");
    assert_ne!(now, first, "a new worker process");
    assert_eq!(client.submit(inc, 41u64).unwrap().result().unwrap(), 42);
    let log = cluster.workers[0].log_text();
    let restarts = log.matches("restarting it").count();
    println!("the nanny restarted its worker {restarts} times");
    assert_eq!(restarts, 3, "one restart per death:\n{log}");
    assert!(log.contains("passed 95% of its memory limit"), "{log}");
    assert_eq!(cluster.workers[0].child.try_wait().unwrap(), None);
}

#[test]
fn sigterm_to_the_nanny_retires_its_worker_and_sigkill_leaves_no_orphan() {
    let mut cluster = Cluster::start("nanny-signals", &[]);
    cluster.add_worker(&["--nthreads", "1"]);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = Client::connect(&cluster.address).expect("client connects");
    cluster.wait_for_workers(&client, 2);

    // SIGTERM: the worker retires (its data moves), then worker and nanny exit 0.
    let values: Vec<Vec<u64>> = (0..8u64).map(|i| vec![i; 100]).collect();
    let futures = client.scatter(values.clone()).unwrap();
    let worker = cluster.worker_pid(&client, "w0");
    cluster.workers[0].signal("TERM");
    let code = cluster.workers[0].wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{}", cluster.workers[0].log_text());
    assert!(gone(worker), "worker process {worker} is gone");
    assert_eq!(client.gather(&futures).unwrap(), values);

    // SIGKILL to the nanny: its worker gets SIGTERM from the kernel and leaves.
    let worker = cluster.worker_pid(&client, "w1");
    cluster.workers[1].signal("KILL");
    cluster.wait_for_workers(&client, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(worker) {
        assert!(
            Instant::now() < deadline,
            "worker {worker} outlived its nanny"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` has exited (a zombie nobody reaped counts as gone).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(status) => status
            .lines()
            .any(|l| l.starts_with("State:") && l.contains("Z")),
    }
}
