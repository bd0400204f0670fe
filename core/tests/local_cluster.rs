//! The user API on the embedded local cluster: futures, delayed, errors,
//! cancellation, retries, restrictions and worker loss.

use rask::client::FutureStatus;
use rask::prelude::*;
use rask::scheduler::WorkerId;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

rask::op! {
    /// Increments.
    pub fn inc(x: i64) -> i64 { x + 1 }
}
rask::op! {
    /// Adds.
    pub fn add(a: i64, b: i64) -> i64 { a + b }
}
rask::op! {
    /// Fails for negative input.
    pub fn checked_sqrt(x: i64) -> Result<i64, String> {
        if x < 0 { Err(format!("cannot take the square root of {x}")) } else { Ok((x as f64).sqrt() as i64) }
    }
}
rask::op! {
    /// Panics.
    pub fn explode(x: i64) -> i64 { panic!("boom at {x}") }
}
rask::op! {
    /// Sleeps, then returns its input.
    pub fn slow(x: i64, millis: u64) -> i64 { std::thread::sleep(Duration::from_millis(millis)); x }
}

fn client(workers: usize, threads: usize) -> Client {
    Client::local(
        LocalCluster::new()
            .workers(workers)
            .threads_per_worker(threads),
    )
    .expect("local cluster starts")
}

#[test]
fn submit_map_gather_and_chained_futures() {
    let client = client(2, 2);
    let futures = client.map(inc, 0..1000_i64).unwrap();
    let values = client.gather(&futures).unwrap();
    assert_eq!(values, (1..=1000).collect::<Vec<i64>>());
    let total = client.submit(add, (&futures[0], &futures[999])).unwrap();
    assert_eq!(total.result().unwrap(), 1 + 1000);
}

#[test]
fn a_failure_names_its_key_dependents_share_the_cause_and_others_finish() {
    let client = client(2, 1);
    let bad = client.submit(checked_sqrt, -4).unwrap();
    let dependent = client.submit(inc, &bad).unwrap();
    let fine = client.submit(checked_sqrt, 16).unwrap();
    let err = bad.result().unwrap_err().to_string();
    assert!(
        err.contains(bad.key().as_str()) && err.contains("cannot take the square root of -4"),
        "{err}"
    );
    let err = dependent.result().unwrap_err().to_string();
    assert!(
        err.contains(dependent.key().as_str())
            && err.contains(bad.key().as_str())
            && err.contains("square root"),
        "{err}"
    );
    assert_eq!(fine.result().unwrap(), 4);
}

#[test]
fn a_panicking_task_fails_and_the_worker_carries_on() {
    let client = client(1, 1);
    let bad = client.submit(explode, 7).unwrap();
    let err = bad.result().unwrap_err().to_string();
    assert!(
        err.contains("panicked") && err.contains("boom at 7"),
        "{err}"
    );
    assert_eq!(client.submit(inc, 1).unwrap().result().unwrap(), 2);
}

#[test]
fn delayed_graphs_compute_and_persist() {
    let client = client(2, 1);
    let leaves: Vec<Delayed<i64>> = (0..100).map(|i| delayed(inc, i)).collect();
    let mut level = leaves;
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| {
                if p.len() == 2 {
                    delayed(add, (&p[0], &p[1]))
                } else {
                    p[0].clone()
                }
            })
            .collect();
    }
    assert_eq!(level[0].compute(&client).unwrap(), (1..=100).sum::<i64>());
    let persisted = client.persist(&delayed(inc, 41)).unwrap();
    let again = delayed(add, (&persisted, &persisted));
    assert_eq!(
        again.graph().len(),
        1,
        "the persisted input is not recomputed"
    );
    assert_eq!(again.compute(&client).unwrap(), 84);
}

#[test]
fn closures_run_on_the_local_cluster() {
    let client = client(2, 1);
    let offset = 100;
    let shift = closure(move |x: i64| x + offset).named("shift");
    let futures = client.map(shift, 0..10_i64).unwrap();
    assert_eq!(
        client.gather(&futures).unwrap(),
        (100..110).collect::<Vec<i64>>()
    );
}

#[test]
fn wait_and_as_completed_see_every_future() {
    let client = client(2, 1);
    let futures = client
        .map(slow, (0..20_i64).map(|i| (i, (20 - i) as u64)))
        .unwrap();
    let mut seen: Vec<i64> = as_completed(futures.clone())
        .map(|f| f.result().unwrap())
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, (0..20).collect::<Vec<i64>>());
    wait(&futures);
    assert!(futures.iter().all(|f| f.done()));
}

#[test]
fn cancel_stops_a_future_and_its_dependents() {
    let client = client(1, 1);
    let blocker = client.submit(slow, (0, 300)).unwrap();
    let waiting = client.submit(slow, (&blocker, 5_000)).unwrap();
    let after = client.submit(inc, &waiting).unwrap();
    client.cancel(std::slice::from_ref(&waiting)).unwrap();
    assert!(matches!(after.result(), Err(rask::Error::Cancelled(_))));
    assert!(matches!(waiting.result(), Err(rask::Error::Cancelled(_))));
    assert_eq!(
        blocker.result().unwrap(),
        0,
        "what was not cancelled finishes"
    );
}

#[test]
fn retries_rerun_a_flaky_task() {
    let client = client(1, 1);
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = attempts.clone();
    let flaky = closure(move |x: i64| {
        if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            panic!("transient failure");
        }
        x
    });
    let value = delayed(flaky, 5).retries(2).compute(&client).unwrap();
    assert_eq!(value, 5);
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[test]
fn worker_restrictions_are_respected() {
    let client = client(3, 1);
    for _ in 0..5 {
        let future = client
            .compute(&delayed(inc, 1).workers(&["local-2"]))
            .unwrap();
        future.result().unwrap();
        assert_eq!(
            future.status(),
            FutureStatus::Finished {
                worker: WorkerId(2)
            }
        );
    }
}

#[test]
fn results_survive_a_worker_killed_mid_run() {
    let client = client(3, 1);
    let leaves = client.map(slow, (0..300_i64).map(|i| (i, 1_u64))).unwrap();
    let mut level = leaves;
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| {
                if p.len() == 2 {
                    client.submit(add, (&p[0], &p[1])).unwrap()
                } else {
                    p[0].clone()
                }
            })
            .collect();
    }
    std::thread::sleep(Duration::from_millis(60));
    assert!(client.cluster().unwrap().kill_worker(WorkerId(1)));
    assert_eq!(level[0].result().unwrap(), (0..300).sum::<i64>());
}

#[test]
fn a_million_noop_tasks_complete() {
    rask::op! { fn noop(i: u64) -> u64 { i } }
    let client = client(2, 1);
    let n = 1_000_000_u64;
    let futures = client.map(noop, 0..n).unwrap();
    let sum: u64 = client.gather(&futures).unwrap().into_iter().sum();
    assert_eq!(sum, n * (n - 1) / 2);
}

/// Holds `gated` tasks until the test opens it.
static GATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

rask::op! {
    /// Waits for the test's gate, then returns its input.
    pub fn gated(x: i64) -> i64 {
        while !GATE.load(Ordering::SeqCst) { std::thread::sleep(Duration::from_millis(2)); }
        x
    }
}

/// Polls `check` until it holds (panics after 30 s).
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !check() {
        assert!(start.elapsed() < Duration::from_secs(30), "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn work_progress_counts_each_clients_tasks_in_flight() {
    use rask::scheduler::Progress;
    // Three threads for the gated tasks, one for the other client's.
    let client = client(1, 4);
    let other = Client::connect_local(client.cluster().unwrap().clone()).unwrap();
    let held = client.map(gated, 0..3_i64).unwrap();
    let chained = client.submit(add, (&held[0], &held[1])).unwrap();
    eventually("the gated tasks are pending", || {
        client.work_progress().unwrap()
            == Progress {
                pending: 4,
                done: 0,
                erred: 0,
            }
    });
    // Another client's work is counted for it alone.
    let theirs = other.map(inc, 0..5_i64).unwrap();
    assert_eq!(other.gather(&theirs).unwrap(), vec![1, 2, 3, 4, 5]);
    assert_eq!(other.work_progress().unwrap().done, 5);
    assert_eq!(client.work_progress().unwrap().pending, 4);
    // A wait of more than a second draws a bar (on stderr, hidden when it is
    // not a terminal) from the same counts while the gate opens.
    client.show_progress(true);
    let opener = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(1500));
        GATE.store(true, Ordering::SeqCst);
    });
    assert_eq!(chained.result().unwrap(), 1);
    opener.join().unwrap();
    assert_eq!(client.gather(&held).unwrap(), vec![0, 1, 2]);
    assert_eq!(
        client.work_progress().unwrap(),
        Progress {
            pending: 0,
            done: 4,
            erred: 0
        }
    );
    // New work after none was pending starts a new count; failures count apart.
    let roots = client.map(checked_sqrt, [-1_i64, 9]).unwrap();
    assert!(roots[0].result().is_err());
    assert_eq!(roots[1].result().unwrap(), 3);
    assert_eq!(
        client.work_progress().unwrap(),
        Progress {
            pending: 0,
            done: 1,
            erred: 1
        }
    );
}

/// Tasks of `overlapping` running now, and the most at once.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST: AtomicUsize = AtomicUsize::new(0);

rask::op! {
    /// Runs for a while, noting how many of its kind run at once.
    pub fn overlapping(x: i64) -> i64 {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        MOST.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(30));
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        x
    }
}

rask::op! {
    /// Sets the worker running it to one task at a time, or back.
    pub fn narrow(on: bool) -> bool {
        rask::worker::runtime::current_worker().expect("runs on a worker").set_narrowed(on);
        on
    }
}

#[test]
fn a_narrowed_worker_runs_one_task_at_a_time() {
    // What the memory manager does above 70% of the limit after spilling.
    let client = client(1, 3);
    assert!(client.submit(narrow, true).unwrap().result().unwrap());
    let futures = client.map(overlapping, 0..9_i64).unwrap();
    assert_eq!(client.gather(&futures).unwrap(), (0..9).collect::<Vec<_>>());
    assert_eq!(MOST.load(Ordering::SeqCst), 1, "one task at a time");
    assert!(!client.submit(narrow, false).unwrap().result().unwrap());
    let futures = client.map(overlapping, 100..109_i64).unwrap();
    client.gather(&futures).unwrap();
    assert!(MOST.load(Ordering::SeqCst) > 1, "all three threads again");
}
