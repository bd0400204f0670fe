//! The distributed runtime with real processes on 127.0.0.1: a `rask scheduler`,
//! `rask worker` processes, and clients in this test process.

mod support;

use rask::client::FutureStatus;
use rask::ops::builtin::{add, checksum, inc, noop, random_bytes, sleep_then};
use rask::prelude::*;
use rask::ConnectOptions;
use std::time::Duration;
use support::{free_port, spawn, Cluster, TempDir};

fn connect(cluster: &Cluster) -> Client {
    Client::connect(&cluster.address).expect("client connects")
}

/// A tree reduction over `leaves` slow-ish leaves: `2 * leaves - 1` tasks.
fn tree(leaves: u64, sleep_every: u64) -> (Delayed<u64>, u64) {
    let mut level: Vec<Delayed<u64>> = (0..leaves)
        .map(|i| {
            if i % sleep_every == 0 {
                delayed(sleep_then, (1u64, i))
            } else {
                delayed(noop, i)
            }
        })
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => delayed(add, (a, b)),
                [a] => a.clone(),
                _ => unreachable!(),
            })
            .collect();
    }
    (level.pop().expect("root"), leaves * (leaves - 1) / 2)
}

#[test]
fn map_gather_and_trees_run_on_worker_processes() {
    let mut cluster = Cluster::start("basic", &[]);
    cluster.add_worker(&["--nthreads", "1"]);
    cluster.add_worker(&["--nthreads", "2"]);
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 2);
    assert!(!client.is_in_process());

    let futures = client.map(inc, 0..2000u64).unwrap();
    let results = client.gather(&futures).unwrap();
    assert_eq!(results, (1..=2000u64).collect::<Vec<_>>());

    let (root, expected) = tree(4096, 1_000_000);
    assert_eq!(root.compute(&client).unwrap(), expected);

    // Closures cannot cross a process boundary: a clear error, nothing sent.
    let err = client
        .submit(rask::ops::closure(|x: u64| x).named("local_only"), 1u64)
        .unwrap_err();
    assert!(err.to_string().contains("rask::op"), "{err}");
}

#[test]
fn a_client_dropped_inside_an_async_runtime_closes_quietly() {
    // An operator's reconcile (or any async code) calls the blocking client
    // on blocking threads, and may drop the last handle on an async one:
    // that used to panic ("Cannot drop a runtime in a context where blocking
    // is not allowed").
    let mut cluster = Cluster::start("async-drop", &[]);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 1);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sum = runtime.block_on(async move {
        let (client, sum) = tokio::task::spawn_blocking(move || {
            let futures = client.map(inc, 0..10u64).unwrap();
            let sum: u64 = client.gather(&futures).unwrap().iter().sum();
            (client, sum)
        })
        .await
        .unwrap();
        drop(client);
        sum
    });
    assert_eq!(sum, 55);
}

#[test]
fn a_graph_survives_a_worker_killed_mid_run_ten_times() {
    let mut cluster = Cluster::start("sigkill", &[]);
    for _ in 0..3 {
        cluster.add_worker(&["--nthreads", "1"]);
    }
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 3);
    let mut correct = 0;
    for run in 0..10 {
        // 5,000 leaves (1 in 4 sleeps 1 ms) and 4,999 sums: 9,999 tasks + 1 below.
        let (root, expected) = tree(5000, 4);
        let total = delayed(inc, &root);
        let future = client.compute(&total).unwrap();
        std::thread::sleep(Duration::from_millis(250));
        assert!(
            !future.done(),
            "run {run} finished before the kill; make the graph slower"
        );
        // The worker process itself dies (not its nanny, which restarts it).
        let victim = cluster.worker_pid(&client, &format!("w{}", run % 3));
        support::kill(victim, "KILL");
        let value = future.result().unwrap();
        if value == expected + 1 {
            correct += 1;
        }
        // Every run starts with three workers.
        cluster.wait_for_workers(&client, 3);
    }
    assert_eq!(correct, 10, "correct results out of 10 runs");
}

#[test]
fn data_three_times_the_memory_limit_completes_by_spilling() {
    const LIMIT: u64 = 256 << 20;
    const BLOCK: u64 = 8 << 20;
    let mut cluster = Cluster::start("spill", &[]);
    for _ in 0..2 {
        cluster.add_worker(&["--nthreads", "2", "--memory-limit", &LIMIT.to_string()]);
    }
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 2);
    // 3 x (2 x 256 MiB) of blocks, all held at once.
    let nblocks = 3 * 2 * LIMIT / BLOCK;
    let blocks = client
        .map(random_bytes, (0..nblocks).map(|seed| (BLOCK, seed)))
        .unwrap();
    let sums = client.map(checksum, blocks.iter()).unwrap();
    let got = client.gather(&sums).unwrap();
    let expected: Vec<u64> = (0..nblocks)
        .map(|seed| checksum::call(random_bytes::call(BLOCK, seed)))
        .collect();
    assert_eq!(got, expected);
    let spilled: u64 = client
        .workers()
        .unwrap()
        .iter()
        .map(|w| w.metrics.spilled)
        .sum();
    // Every block is still held: read one back from disk.
    let first: Vec<u8> = blocks[0].result().unwrap();
    assert_eq!(first, random_bytes::call(BLOCK, 0));
    cluster.assert_peaks_within_limit(&client, LIMIT);
    println!(
        "spilled at the end: {:.0} MiB",
        spilled as f64 / (1 << 20) as f64
    );
    assert!(spilled > LIMIT, "data went to disk: {spilled} bytes");
}

#[test]
fn data_held_only_by_a_retiring_worker_is_still_there_after_it_leaves() {
    let mut cluster = Cluster::start("retire", &[]);
    cluster.add_worker(&["--nthreads", "1"]);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 2);
    // Scattered data cannot be recomputed: if it survives, it was moved.
    let values: Vec<Vec<u64>> = (0..20u64).map(|i| vec![i; 1000]).collect();
    let futures = client.scatter(values.clone()).unwrap();
    client.gather(&futures).unwrap();
    cluster.workers[0].signal("TERM");
    let code = cluster.workers[0].wait_exit(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{}", cluster.workers[0].log_text());
    assert_eq!(client.workers().unwrap().len(), 1);
    assert_eq!(client.gather(&futures).unwrap(), values);

    // The HTTP API retires too, and says whom.
    cluster.add_worker(&["--nthreads", "1"]);
    cluster.wait_for_workers(&client, 2);
    let (status, body) = cluster.http("POST", "/api/v1/retire_workers", r#"{"n": 1}"#);
    assert_eq!(status, 200, "{body}");
    let retired: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(retired.as_array().map(|a| a.len()), Some(1), "{body}");
    cluster.wait_for_workers(&client, 1);
    assert_eq!(client.gather(&futures).unwrap(), values);
    let (status, body) = cluster.http("POST", "/api/v1/retire_workers", r#"{"bogus": 1}"#);
    assert_eq!(status, 400, "{body}");
}

#[test]
fn metrics_and_adaptive_target_over_http() {
    let mut cluster = Cluster::start("http", &[]);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 1);
    let (status, body) = cluster.http("GET", "/api/v1/adaptive_target", "");
    assert_eq!((status, body.trim()), (200, r#"{"workers":0}"#));
    // Slow work queued: the target grows.
    let slow = client
        .map(sleep_then, (0..200u64).map(|i| (200u64, i)))
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let target = client.adaptive_target().unwrap();
    assert!(target >= 2, "target {target} for 40 s of queued work");
    client.cancel(&slow).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let (status, text) = cluster.http("GET", "/metrics", "");
    assert_eq!(status, 200);
    for name in [
        "rask_tasks{state=\"memory\"}",
        "rask_workers 1",
        "rask_threads 1",
        "rask_memory_bytes",
        "rask_spilled_bytes",
        "rask_transfer_sent_bytes_total",
        "rask_event_loop_seconds_total",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[test]
fn datasets_and_primitives_are_shared_between_clients() {
    let mut cluster = Cluster::start("shared", &[]);
    cluster.add_worker(&["--nthreads", "2"]);
    let alice = connect(&cluster);
    let bob = connect(&cluster);
    cluster.wait_for_workers(&alice, 1);

    let data = alice.map(inc, 0..10u64).unwrap();
    alice.publish_dataset("incs", &data).unwrap();
    drop(data);
    assert_eq!(bob.list_datasets().unwrap(), vec!["incs".to_string()]);
    let seen: Vec<Future<u64>> = bob.get_dataset("incs").unwrap();
    assert_eq!(bob.gather(&seen).unwrap(), (1..=10).collect::<Vec<u64>>());
    assert!(bob.get_dataset::<u64>("nope").is_err());

    let lock_a = rask::Lock::new(&alice, "L");
    let lock_b = rask::Lock::new(&bob, "L");
    assert!(lock_a.acquire(None).unwrap());
    assert!(!lock_b.acquire(Some(Duration::from_millis(100))).unwrap());
    lock_a.release().unwrap();
    assert!(lock_b.acquire(Some(Duration::from_secs(5))).unwrap());

    let queue = rask::Queue::<String>::new(&alice, "jobs");
    queue.put("one".into()).unwrap();
    assert_eq!(
        rask::Queue::<String>::new(&bob, "jobs").get(None).unwrap(),
        Some("one".into())
    );
    let var = rask::Variable::<u64>::new(&bob, "answer");
    var.set(42).unwrap();
    assert_eq!(
        rask::Variable::<u64>::new(&alice, "answer")
            .get(None)
            .unwrap(),
        Some(42)
    );
    let event = rask::Event::new(&alice, "go");
    let waiter = {
        let bob = bob.clone();
        std::thread::spawn(move || rask::Event::new(&bob, "go").wait(Some(Duration::from_secs(10))))
    };
    std::thread::sleep(Duration::from_millis(100));
    event.set().unwrap();
    assert!(waiter.join().unwrap().unwrap());
    let semaphore = rask::Semaphore::new(&alice, "two", 2);
    assert!(semaphore.acquire(None).unwrap());
    assert!(rask::Semaphore::new(&bob, "two", 2).acquire(None).unwrap());
    assert!(!rask::Semaphore::new(&bob, "two", 2)
        .acquire(Some(Duration::ZERO))
        .unwrap());
}

#[test]
fn resources_restrict_where_tasks_run() {
    let mut cluster = Cluster::start("resources", &[]);
    cluster.add_worker(&["--nthreads", "2"]);
    cluster.add_worker(&["--nthreads", "2", "--resources", "GPU=1"]);
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 2);
    let gpu_tasks: Vec<Delayed<u64>> = (0..6u64)
        .map(|i| delayed(sleep_then, (20u64, i)).resources(&[("GPU", 1.0)]))
        .collect();
    let futures = client.compute_many(&gpu_tasks).unwrap();
    client.gather(&futures).unwrap();
    let gpu_worker = client
        .workers()
        .unwrap()
        .into_iter()
        .find(|w| w.name == "w1")
        .expect("w1");
    for f in &futures {
        assert_eq!(
            f.status(),
            FutureStatus::Finished {
                worker: gpu_worker.id
            },
            "{f:?}"
        );
    }
}

#[test]
fn scheduler_file_and_token() {
    let token = vec!["--token".to_string(), "s3cret".to_string()];
    let mut cluster = Cluster::start("token", &token);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = ConnectOptions::scheduler_file(cluster.scheduler_file())
        .token("s3cret")
        .connect()
        .unwrap();
    cluster.wait_for_workers(&client, 1);
    assert_eq!(client.submit(inc, 1u64).unwrap().result().unwrap(), 2);
    let refused = ConnectOptions::new(&cluster.address)
        .token("wrong")
        .connect();
    let err = refused.err().expect("a wrong token is refused").to_string();
    assert!(err.contains("invalid token"), "{err}");
    assert!(Client::connect(&cluster.address).is_err());
    assert!(cluster
        .scheduler
        .log_text()
        .contains("missing or invalid token"));

    // The scheduler file carries the token, for its owner's eyes only: a
    // worker and a client that read it need no --token.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(cluster.scheduler_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let file = cluster.scheduler_file().display().to_string();
    let log = cluster.dir.path().join("file-worker.log");
    cluster.workers.push(support::spawn(
        &["worker", "--scheduler-file", &file, "--nthreads", "1"].map(String::from),
        log,
    ));
    let client = ConnectOptions::scheduler_file(cluster.scheduler_file())
        .connect()
        .expect("the file's token serves");
    cluster.wait_for_workers(&client, 2);
    let results = client.gather(&client.map(inc, 0..20u64).unwrap()).unwrap();
    assert_eq!(results, (1..=20).collect::<Vec<u64>>());
}

/// Senders split what a frame cannot hold (issue 13, item 4): 100,000
/// scattered values to one worker, a 130 MB graph, and a task too large for
/// any message fails with an error naming it and the limit.
#[test]
fn large_scatters_and_graphs_are_split_and_a_huge_task_is_refused() {
    let mut cluster = Cluster::start("split", &[]);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 1);

    let values: Vec<u64> = (0..100_000).collect();
    let futures = client.scatter(values.clone()).unwrap();
    assert_eq!(client.gather(&futures).unwrap(), values);
    drop(futures);

    // 2,000 tasks carrying 64 KiB each: one graph of about 130 MB.
    let blocks = (0..2000u64).map(|i| vec![(i % 251) as u8; 64 << 10]);
    let sums = client.map(checksum, blocks).unwrap();
    let expected: Vec<u64> = (0..2000u64).map(|i| (i % 251) * (64 << 10)).collect();
    assert_eq!(client.gather(&sums).unwrap(), expected);

    let huge = client.submit(checksum, vec![1u8; 40 << 20]).unwrap();
    let err = huge.result().unwrap_err().to_string();
    assert!(
        err.contains("checksum")
            && err.contains(&(32u64 << 20).to_string())
            && err.contains("scatter"),
        "{err}"
    );
    // The connection survived: more work goes through.
    assert_eq!(client.submit(inc, 1u64).unwrap().result().unwrap(), 2);
}

/// With `--token`, every HTTP API endpoint wants `Authorization: Bearer`;
/// `/metrics` stays readable unless `--protect-metrics` says otherwise.
#[test]
fn the_http_api_wants_the_token() {
    let token = vec!["--token".to_string(), "s3cret".to_string()];
    let mut cluster = Cluster::start("http-token", &token);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = ConnectOptions::new(&cluster.address)
        .token("s3cret")
        .connect()
        .unwrap();
    cluster.wait_for_workers(&client, 1);
    let good = [("Authorization", "Bearer s3cret")];
    let bad = [("Authorization", "Bearer wrong")];
    for (method, path, body) in [
        ("POST", "/api/v1/retire_workers", r#"{"n": 1}"#),
        ("GET", "/api/v1/workers", ""),
        ("GET", "/api/v1/workers_to_close?n=1", ""),
        ("GET", "/api/v1/adaptive_target", ""),
    ] {
        let (status, text) = cluster.http(method, path, body);
        assert_eq!(status, 401, "{method} {path} without the token: {text}");
        assert!(text.contains("Bearer"), "{text}");
        let (status, _) = cluster.http_with(method, path, body, &bad);
        assert_eq!(status, 401, "{method} {path} with a wrong token");
    }
    // Refused requests changed nothing: the worker is still there.
    assert_eq!(client.workers().unwrap().len(), 1);
    let (status, text) = cluster.http_with("GET", "/api/v1/workers", "", &good);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("\"name\":\"w0\""), "{text}");
    let (status, _) = cluster.http("GET", "/metrics", "");
    assert_eq!(
        status, 200,
        "/metrics stays readable without --protect-metrics"
    );
    let (status, text) = cluster.http_with("POST", "/api/v1/retire_workers", r#"{"n": 1}"#, &good);
    assert_eq!(status, 200, "{text}");
    cluster.wait_for_workers(&client, 0);

    let protected = [
        "--token".to_string(),
        "s3cret".to_string(),
        "--protect-metrics".to_string(),
    ];
    let strict = Cluster::start("http-metrics", &protected);
    let (status, _) = strict.http("GET", "/metrics", "");
    assert_eq!(status, 401, "/metrics with --protect-metrics and no token");
    let (status, text) = strict.http_with("GET", "/metrics", "", &good);
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("rask_workers"), "{text}");
    let (status, _) = strict.http("GET", "/health", "");
    assert_eq!(status, 200, "/health is always open");
}

/// `--death-timeout`: a worker started before its scheduler keeps trying and
/// joins once the scheduler is up; with no scheduler at all it gives up after
/// the timeout, naming the address.
#[test]
fn a_worker_waits_death_timeout_for_its_scheduler() {
    let dir = TempDir::new("death-timeout");
    let address = format!("tcp://127.0.0.1:{}", free_port());
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut early = spawn(
        &args(&[
            "worker",
            &address,
            "--name",
            "early",
            "--death-timeout",
            "60",
        ]),
        dir.path().join("worker.log"),
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        early.child.try_wait().unwrap(),
        None,
        "{}",
        early.log_text()
    );
    assert!(early.log_text().contains("scheduler not reachable yet"));

    let port = address.rsplit(':').next().unwrap();
    let _scheduler = spawn(
        &args(&["scheduler", "--port", port, "--dashboard-port", "0"]),
        dir.path().join("scheduler.log"),
    );
    let client = (0..100)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            Client::connect(&address).ok()
        })
        .expect("the scheduler comes up");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while client.workers().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "{}", early.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(client.workers().unwrap()[0].name, "early");
    assert_eq!(client.submit(inc, 41u64).unwrap().result().unwrap(), 42);

    let nobody = format!("tcp://127.0.0.1:{}", free_port());
    let started = std::time::Instant::now();
    let mut lonely = spawn(
        &args(&["worker", &nobody, "--death-timeout", "2"]),
        dir.path().join("lonely.log"),
    );
    let code = lonely.wait_exit(Duration::from_secs(30));
    let waited = started.elapsed();
    assert!(
        code.is_some_and(|c| c != 0),
        "{code:?}: {}",
        lonely.log_text()
    );
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(10),
        "gave up after {waited:?}"
    );
    assert!(
        lonely.log_text().contains(&nobody[6..]),
        "{}",
        lonely.log_text()
    );
    drop(early);
}

/// A client (here `rask microbench`) on a cluster without workers says so
/// after a few seconds instead of waiting in silence, and finishes once a
/// worker joins; `Client::wait_for_workers` waits for a count or times out.
#[test]
fn a_client_on_a_cluster_without_workers_says_so_and_goes_on_when_one_joins() {
    let mut cluster = Cluster::start("no-workers", &[]);
    let client = Client::connect(&cluster.address).unwrap();
    let err = client
        .wait_for_workers(1, Duration::from_millis(300))
        .unwrap_err();
    assert!(err.to_string().contains("0 connected"), "{err}");

    let args: Vec<String> = [
        "microbench",
        "--scheduler",
        &cluster.address,
        "--tasks",
        "200",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut bench = spawn(&args, cluster.dir.path().join("microbench.log"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !bench
        .log_text()
        .contains("waiting for workers (0 connected")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing said: {}",
            bench.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.add_worker(&["--nthreads", "1"]);
    client
        .wait_for_workers(1, Duration::from_secs(30))
        .expect("the worker joins");
    assert_eq!(
        bench.wait_exit(Duration::from_secs(60)),
        Some(0),
        "{}",
        bench.log_text()
    );
}

/// A worker and a client started before their scheduler wait for its
/// scheduler file to appear (as Dask's do), then join it.
#[test]
fn workers_and_clients_wait_for_the_scheduler_file() {
    let dir = TempDir::new("scheduler-file-later");
    let file = dir.path().join("scheduler.json");
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let file_arg = file.display().to_string();
    let mut worker = spawn(
        &args(&["worker", "--scheduler-file", &file_arg, "--nthreads", "1"]),
        dir.path().join("worker.log"),
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !worker.log_text().contains("waiting for the scheduler file") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            worker.log_text()
        );
        assert_eq!(
            worker.child.try_wait().unwrap(),
            None,
            "{}",
            worker.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let client = std::thread::spawn({
        let file = file.clone();
        move || ConnectOptions::scheduler_file(file).connect()
    });
    std::thread::sleep(Duration::from_millis(500));
    let _scheduler = spawn(
        &args(&[
            "scheduler",
            "--port",
            "0",
            "--dashboard-port",
            "0",
            "--scheduler-file",
            &file_arg,
        ]),
        dir.path().join("scheduler.log"),
    );
    let client = client
        .join()
        .unwrap()
        .expect("the client finds the scheduler");
    client
        .wait_for_workers(1, Duration::from_secs(30))
        .expect("the worker joins");
    assert_eq!(client.submit(inc, 1u64).unwrap().result().unwrap(), 2);
    drop(worker);
}

#[test]
fn a_client_can_serve_the_cluster_requests_of_a_scheduler_it_does_not_run() {
    use rask::comm::launcher::{ClusterRequest, ClusterStatus};
    let cluster = Cluster::start("cluster-calls", &[]);
    let asker = connect(&cluster);
    let refused = asker.scale(3).unwrap_err().to_string();
    assert!(refused.contains("has no launcher"), "{refused}");

    let launcher = connect(&cluster);
    let calls = launcher.serve_cluster_requests().expect("serves");
    let status = |target: u32, adaptive| ClusterStatus {
        backend: "test".into(),
        workers: 0,
        target,
        adaptive,
        jobs: Vec::new(),
        submitted: 0,
    };
    let answering = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for call in calls.iter().take(3) {
            seen.push(call.request().clone());
            let answer = match *call.request() {
                ClusterRequest::Scale { workers } => Ok(status(workers, None)),
                ClusterRequest::Adapt { minimum, maximum } => {
                    Ok(status(minimum, Some((minimum, maximum))))
                }
                ClusterRequest::Status => Err("no status today".to_string()),
            };
            call.answer(answer);
        }
        seen
    });
    assert_eq!(asker.scale(3).unwrap().target, 3);
    assert_eq!(asker.adapt(1, 4).unwrap().adaptive, Some((1, 4)));
    let failed = asker.cluster_status().unwrap_err().to_string();
    assert!(failed.contains("no status today"), "{failed}");
    assert_eq!(
        answering.join().unwrap(),
        vec![
            ClusterRequest::Scale { workers: 3 },
            ClusterRequest::Adapt {
                minimum: 1,
                maximum: 4
            },
            ClusterRequest::Status
        ]
    );

    // A call dropped unanswered fails rather than hang its client.
    let calls = launcher.serve_cluster_requests().expect("serves again");
    let dropping = std::thread::spawn(move || {
        drop(calls.recv_timeout(Duration::from_secs(10)));
    });
    let error = asker.scale(2).unwrap_err().to_string();
    assert!(error.contains("did not answer"), "{error}");
    dropping.join().unwrap();

    // One launcher at a time.
    let other = connect(&cluster).serve_cluster_requests().unwrap_err();
    assert!(
        other.to_string().contains("serves this scheduler"),
        "{other}"
    );

    // A launcher that leaves with a request unanswered: that request fails,
    // and the next finds no launcher.
    let calls = launcher.serve_cluster_requests().expect("serves again");
    let pending = std::thread::spawn(move || asker.scale(5).map(|_| asker));
    let call = calls
        .recv_timeout(Duration::from_secs(10))
        .expect("the call");
    assert_eq!(call.request(), &ClusterRequest::Scale { workers: 5 });
    drop(launcher);
    let error = pending.join().unwrap().err().expect("fails").to_string();
    assert!(error.contains("launcher disconnected"), "{error}");
    drop(call);
    drop(calls);
    let asker = connect(&cluster);
    let refused = asker.scale(1).unwrap_err().to_string();
    assert!(refused.contains("has no launcher"), "{refused}");
}

/// A launcher whose connection stays open but that leaves a request
/// unanswered (a `rask cluster up` whose host died, its connection half-open):
/// the request fails after the scheduler's timeout, and the launcher's role is
/// free for another, as for a `rask cluster up` started again.
#[test]
fn a_launcher_that_never_answers_loses_its_role() {
    use rask::comm::launcher::ClusterRequest;
    use rask::server::event_loop::LAUNCHER_CALL_TIMEOUT;
    let cluster = Cluster::start("cluster-calls-unanswered", &[]);
    let asker = connect(&cluster);
    let silent = connect(&cluster);
    let calls = silent.serve_cluster_requests().expect("serves");
    let started = std::time::Instant::now();
    let pending = std::thread::spawn(move || asker.scale(2).map(|_| ()));
    let call = calls
        .recv_timeout(Duration::from_secs(10))
        .expect("the call");
    assert_eq!(call.request(), &ClusterRequest::Scale { workers: 2 });
    let error = pending.join().unwrap().unwrap_err().to_string();
    assert!(
        error.contains("did not answer within") && error.contains("client-"),
        "{error}"
    );
    assert!(started.elapsed() >= LAUNCHER_CALL_TIMEOUT, "{error}");

    let restarted = connect(&cluster);
    let calls_again = restarted
        .serve_cluster_requests()
        .expect("the role is free again");
    let asker = connect(&cluster);
    let answering = std::thread::spawn(move || {
        let call = calls_again
            .recv_timeout(Duration::from_secs(10))
            .expect("the call");
        let request = call.request().clone();
        call.answer(Err("answered by the new launcher".into()));
        request
    });
    let error = asker.cluster_status().unwrap_err().to_string();
    assert!(error.contains("answered by the new launcher"), "{error}");
    assert_eq!(answering.join().unwrap(), ClusterRequest::Status);
    drop(call);
}
