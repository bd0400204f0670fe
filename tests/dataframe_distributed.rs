//! `rask::dataframe` and `rask::bag` on stock `rask worker` processes: the same checks as the
//! in-process tests, with partitions computed and combined across processes
//! over TCP (tasks carry Polars expressions, never code).

mod support;

#[path = "../core/tests/dataframe_cases/mod.rs"]
mod dataframe_cases;

#[path = "../core/tests/bag_cases/mod.rs"]
mod bag_cases;

use rask::Client;
use support::Cluster;

#[test]
fn dataframe_operations_match_polars_on_worker_processes() {
    let mut cluster = Cluster::start("dataframe", &[]);
    cluster.add_worker(&["--nthreads", "2"]);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = Client::connect(&cluster.address).expect("client connects");
    cluster.wait_for_workers(&client, 2);
    for (seed, rows, parts) in [(31, 3000, 20), (32, 7, 5), (33, 500, 3)] {
        dataframe_cases::rowwise(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("rowwise, seed {seed}: {e}"));
        dataframe_cases::groupby(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("groupby, seed {seed}: {e}"));
        dataframe_cases::relational(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("relational, seed {seed}: {e}"));
        dataframe_cases::shuffled(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("shuffled, seed {seed}: {e}"));
        dataframe_cases::indexed(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("set_index and loc, seed {seed}: {e}"));
        dataframe_cases::windows(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("resample and rolling, seed {seed}: {e}"));
    }
    dataframe_cases::automatic_split_out(&client, 34, 8)
        .unwrap_or_else(|e| panic!("automatic split_out: {e}"));
}

#[test]
fn bag_operations_and_groupby_match_on_worker_processes() {
    let mut cluster = Cluster::start("bag", &[]);
    cluster.add_worker(&["--nthreads", "2"]);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = Client::connect(&cluster.address).expect("client connects");
    cluster.wait_for_workers(&client, 2);
    for (seed, n, parts) in [(61, 3000, 20), (62, 5, 7), (63, 400, 3)] {
        bag_cases::operations(&client, seed, n, parts, false)
            .unwrap_or_else(|e| panic!("operations, seed {seed}: {e}"));
        bag_cases::groupby(&client, seed, n, parts, 4)
            .unwrap_or_else(|e| panic!("groupby, seed {seed}: {e}"));
    }
    let dir = std::env::temp_dir().join(format!("rask-bag-workers-{}", std::process::id()));
    bag_cases::word_frequencies_from_files(&client, &dir.display().to_string(), Some(5000))
        .unwrap_or_else(|e| panic!("files: {e}"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A worker process killed while a shuffle runs (its transfers under way, or
/// its outputs being gathered) costs a restart of the shuffle, not the
/// computation: every row arrives once, as Dask's P2P shuffle restarts.
#[test]
fn a_shuffle_survives_a_worker_killed_at_any_stage() {
    use rask::dataframe::polars::prelude::{DataFrame as PolarsFrame, SortMultipleOptions};
    let (cluster, client, frame, lazy) = shuffle_on_three_workers("shuffle-kill");
    let sorted = |f: &PolarsFrame| f.sort(["k", "v"], SortMultipleOptions::default()).unwrap();
    let want = sorted(&frame);
    // Killed once a quarter, half and three quarters of the tasks are done.
    for (run, fraction) in [0.25, 0.5, 0.75].into_iter().enumerate() {
        let computing = {
            let (client, lazy) = (client.clone(), lazy.clone());
            std::thread::spawn(move || lazy.compute(&client))
        };
        let killed_during_run = loop {
            let progress = client.work_progress().unwrap();
            if computing.is_finished() {
                break false;
            }
            if progress.pending > 0 && progress.done as f64 >= fraction * progress.total() as f64 {
                let victim = cluster.worker_pid(&client, &format!("w{run}"));
                support::kill(victim, "KILL");
                break true;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let got = computing.join().unwrap().unwrap_or_else(|e| {
            panic!(
                "run {run} (killed at {fraction} of the tasks): {e}\n{}",
                cluster.scheduler.log_text()
            )
        });
        assert!(
            killed_during_run,
            "run {run}: the shuffle finished before the kill"
        );
        assert!(sorted(&got).equals(&want), "run {run}: rows differ");
        cluster.wait_for_workers(&client, 3);
    }
}

/// A shuffle cancelled while its transfers run leaves no shards behind: the
/// scheduler releases its layout on every worker, and each drops what it
/// holds for it, in memory and on disk (the workers' heartbeats report what
/// they hold).
#[test]
fn a_cancelled_shuffle_frees_its_shards_on_every_worker() {
    let (_cluster, client, frame, lazy) = shuffle_on_three_workers("shuffle-cancel");
    let held = |client: &Client| -> u64 {
        let workers = client.workers().unwrap();
        workers.iter().map(|w| w.metrics.shuffle_held).sum()
    };
    let futures = client.compute_many(&lazy.to_delayed()).unwrap();
    // Cancelled halfway through, while the transfers push (as in the test above).
    loop {
        let progress = client.work_progress().unwrap();
        assert!(
            progress.done == 0 || progress.pending > 0,
            "the shuffle finished before it was cancelled"
        );
        if progress.pending > 0 && progress.done as f64 >= 0.5 * progress.total() as f64 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    client.cancel(&futures).unwrap();
    drop(futures);
    let cancelled = std::time::Instant::now();
    let deadline = cancelled + std::time::Duration::from_secs(30);
    loop {
        let (held, progress) = (held(&client), client.work_progress().unwrap());
        // Two heartbeats after the cancel, so no report from before it counts.
        let fresh = cancelled.elapsed() > 2 * rask::worker::session::HEARTBEAT_INTERVAL;
        if fresh && held == 0 && progress.pending == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "30 s after the cancel: {held} bytes of shards held, {} tasks pending",
            progress.pending
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // The same shuffle computed again afterwards is whole.
    let got = lazy.compute(&client).unwrap();
    assert_eq!(got.height(), frame.height());
}

/// 3 worker processes of one thread, and a 3M-row frame of 48 partitions
/// shuffled by `k` into 16, with the frame itself to check against.
fn shuffle_on_three_workers(
    name: &str,
) -> (
    Cluster,
    Client,
    rask::dataframe::polars::prelude::DataFrame,
    rask::dataframe::DataFrame,
) {
    use rask::dataframe::polars::prelude::df;
    let mut cluster = Cluster::start(name, &[]);
    for _ in 0..3 {
        cluster.add_worker(&["--nthreads", "1"]);
    }
    let client = Client::connect(&cluster.address).expect("client connects");
    cluster.wait_for_workers(&client, 3);
    const ROWS: i64 = 3_000_000;
    let key: Vec<i64> = (0..ROWS).map(|i| (i * 7_919) % 100_003).collect();
    let frame = df!("k" => key, "v" => (0..ROWS).collect::<Vec<i64>>()).unwrap();
    let lazy = rask::dataframe::DataFrame::from_polars(frame.clone(), 48)
        .unwrap()
        .shuffle(&["k"], 16)
        .unwrap();
    (cluster, client, frame, lazy)
}
