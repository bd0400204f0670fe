//! Dataframes bigger than the cluster's memory: two `rask worker` processes
//! with 256 MiB limits take a 1 GiB dataset (twice their total limit) through
//! a many-group groupby (`split_out`), a shuffle join and `sort_values`, each
//! written to Parquet and checked against Polars reading the same files. Every
//! worker's peak RSS stays within 10% of its limit; spilled bytes are printed.

mod support;

use rask::dataframe::polars::prelude::*;
use rask::dataframe::{self as dd, Agg, How};
use rask::Client;
use support::{Cluster, TempDir};

const LIMIT: u64 = 256 << 20;
const FILES: usize = 64;
/// 32 bytes a row in four 8-byte columns: 64 files of 16 MiB, 1 GiB in all.
const ROWS_PER_FILE: usize = (16 << 20) / 32;
/// Distinct keys: a quarter of the rows, far too many for a tree reduction.
const KEYS: i64 = (FILES * ROWS_PER_FILE / 4) as i64;

/// File `i` of the dataset: a unique `id` in scrambled order, a `key`, values.
fn dataset_file(i: usize) -> DataFrame {
    let start = (i * ROWS_PER_FILE) as i64;
    let ids: Vec<i64> = (start..start + ROWS_PER_FILE as i64)
        // A bijection of [0, 2^25): ids arrive out of order.
        .map(|r| r.wrapping_mul(0x9E37_79B1) & ((1 << 25) - 1))
        .collect();
    let keys: Vec<i64> = ids.iter().map(|id| (id * 7 + 3) % KEYS).collect();
    let v: Vec<f64> = ids.iter().map(|id| (id % 1000) as f64 * 0.5).collect();
    let w: Vec<i64> = ids.iter().map(|id| id % 17).collect();
    df!("id" => ids, "key" => keys, "v" => v, "w" => w).unwrap()
}

fn write_parquet(frame: &mut DataFrame, path: &std::path::Path) {
    let file = std::fs::File::create(path).unwrap();
    ParquetWriter::new(file).finish(frame).unwrap();
}

fn scan(dir: &std::path::Path) -> LazyFrame {
    let pattern = format!("{}/*.parquet", dir.display());
    LazyFrame::scan_parquet(PlRefPath::new(&pattern), ScanArgsParquet::default()).unwrap()
}

/// Each worker's peak RSS so far, in MiB, for the test's output.
fn peaks(cluster: &Cluster, client: &Client, after: &str) {
    let peaks: Vec<String> = (0..cluster.workers.len())
        .map(|i| {
            let peak = support::peak_rss(cluster.worker_pid(client, &format!("w{i}")));
            format!("{:.0} MiB", peak as f64 / (1 << 20) as f64)
        })
        .collect();
    println!("peak RSS after {after}: {}", peaks.join(", "));
}

/// The workers' logs, for a failure's message.
fn logs(cluster: &Cluster) -> String {
    let mut text = String::new();
    for (i, worker) in cluster.workers.iter().enumerate() {
        text += &format!("--- worker {i} ---\n{}\n", worker.log_text());
    }
    text
}

#[test]
fn twice_the_cluster_memory_goes_through_groupby_join_and_sort() {
    assert_eq!(
        FILES * ROWS_PER_FILE,
        1 << 25,
        "ids are a permutation of 0..2^25"
    );
    let data = TempDir::new("df-memory");
    let input = data.path().join("input");
    let dim = data.path().join("dim");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::create_dir_all(&dim).unwrap();
    for i in 0..FILES {
        write_parquet(
            &mut dataset_file(i),
            &input.join(format!("part-{i:03}.parquet")),
        );
    }
    // The other side of the join: one row per key, in 16 files.
    let per = KEYS / 16;
    for i in 0..16 {
        let keys: Vec<i64> = (i * per..(i + 1) * per).collect();
        let labels: Vec<i64> = keys.iter().map(|k| k % 101).collect();
        let mut frame = df!("key" => keys, "label" => labels).unwrap();
        write_parquet(&mut frame, &dim.join(format!("dim-{i:02}.parquet")));
    }

    let mut cluster = Cluster::start("df-memory", &[]);
    for _ in 0..2 {
        // One thread: with two, the sort phase peaked at 93-106% of the limit
        // across runs (README, "Memory").
        cluster.add_worker(&["--nthreads", "1", "--memory-limit", &LIMIT.to_string()]);
    }
    let client = Client::connect(&cluster.address).expect("client connects");
    cluster.wait_for_workers(&client, 2);
    let out = |name: &str| data.path().join(name).display().to_string();
    // A partition per file: 16 MiB partitions for 256 MiB workers (Dask's
    // default would read five files together).
    let per_file = dd::ParquetOptions {
        minimum_partition_size: 0,
    };
    let frame =
        dd::read_parquet_with(&format!("{}/*.parquet", input.display()), &per_file).unwrap();
    assert_eq!(frame.npartitions(), FILES);

    // A groupby with 8M groups, its partials shuffled into 64 partitions.
    frame
        .groupby(&["key"])
        .split_out(64)
        .agg(&[("v", Agg::Sum), ("w", Agg::Count)])
        .unwrap()
        .to_parquet(&out("grouped"), &client)
        .unwrap_or_else(|e| panic!("groupby: {e}\n{}", logs(&cluster)));
    let got = scan(&data.path().join("grouped"))
        .select([len().alias("groups"), col("v").sum(), col("w").sum()])
        .collect()
        .unwrap();
    let want = scan(&input)
        .group_by([col("key")])
        .agg([col("v").sum(), col("w").count()])
        .select([
            len().alias("groups"),
            col("v").sum(),
            col("w").sum().cast(DataType::UInt32),
        ])
        .collect()
        .unwrap();
    assert_eq!(
        got.column("groups").unwrap(),
        want.column("groups").unwrap()
    );
    let sums = |f: &DataFrame, c: &str| {
        f.column(c)
            .unwrap()
            .cast(&DataType::Float64)
            .unwrap()
            .f64()
            .unwrap()
            .get(0)
            .unwrap()
    };
    assert_eq!(sums(&got, "v"), sums(&want, "v"));
    assert_eq!(sums(&got, "w"), sums(&want, "w"));
    peaks(&cluster, &client, "groupby");

    // A shuffle join: 64 partitions with 16.
    let labels = dd::read_parquet_with(&format!("{}/*.parquet", dim.display()), &per_file).unwrap();
    frame
        .merge(&labels, &["key"], How::Inner)
        .unwrap()
        .to_parquet(&out("joined"), &client)
        .unwrap_or_else(|e| panic!("join: {e}\n{}", logs(&cluster)));
    let totals = |lazy: LazyFrame| {
        lazy.select([
            len().alias("rows"),
            col("label").sum(),
            (col("label") * col("w")).sum().alias("lw"),
        ])
        .collect()
        .unwrap()
    };
    let got = totals(scan(&data.path().join("joined")));
    let want = totals(scan(&input).join(
        scan(&dim),
        [col("key")],
        [col("key")],
        JoinArgs::new(JoinType::Inner),
    ));
    assert!(got.equals(&want), "join:\n{got}\n{want}");
    peaks(&cluster, &client, "join");

    // sort_values of the whole dataset by its scrambled id.
    frame
        .sort_values(&["id"], false)
        .unwrap()
        .to_parquet(&out("sorted"), &client)
        .unwrap_or_else(|e| panic!("sort_values: {e}\n{}", logs(&cluster)));
    let mut previous = -1i64;
    let mut rows = 0usize;
    for i in 0..FILES {
        let path = data.path().join("sorted").join(format!("part.{i}.parquet"));
        let part = ParquetReader::new(std::fs::File::open(&path).unwrap())
            .finish()
            .unwrap();
        for id in part
            .column("id")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
        {
            assert!(
                id > previous,
                "{} is out of order after {previous}",
                path.display()
            );
            previous = id;
            rows += 1;
        }
    }
    assert_eq!(rows, FILES * ROWS_PER_FILE);
    assert_eq!(previous, (1 << 25) - 1);

    let mut spilled = 0;
    for (i, summary) in client.workers().unwrap().iter().enumerate() {
        spilled += summary.metrics.spilled + summary.metrics.shuffle_spilled;
        println!(
            "worker {i}: spilled {:.0} MiB of results, {:.0} MiB of shuffle shards in all",
            summary.metrics.spilled as f64 / (1 << 20) as f64,
            summary.metrics.shuffle_spilled as f64 / (1 << 20) as f64
        );
    }
    cluster.assert_peaks_within_limit(&client, LIMIT);
    assert!(spilled > 0, "nothing went to disk");
}
