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
