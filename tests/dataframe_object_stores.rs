//! Dataframes and bags in object stores: a real S3 server (moto) and a real GCS
//! server (fake-gcs-server) on 127.0.0.1, started by this test. Partitioned
//! Parquet, CSV and JSON are written, globbed and read back (CSV also in blocks
//! read by ranged requests), grouped and joined, and the result written again;
//! bags write JSON lines (plain, gzip, zstd) and count words in them, read in
//! blocks — on an embedded cluster and on worker processes — and pandas (with
//! pyarrow) reads what rask wrote to S3.

mod support;

#[path = "../core/tests/dataframe_cases/mod.rs"]
mod dataframe_cases;

#[path = "../core/tests/bag_cases/mod.rs"]
mod bag_cases;

use rask::dataframe::polars::prelude::*;
use rask::dataframe::{self as dd, Agg, CsvOptions, How};
use rask::prelude::*;
use support::object_stores::Server;
use support::{run_python, Cluster};

/// Writes `frame` under `base` in every format, reads each back by glob and
/// checks it; returns the mean of `x` by `key`, joined with a small table,
/// written to `{base}/result` and read back.
fn round_trip(client: &Client, frame: &DataFrame, base: &str) -> DataFrame {
    let lazy = dd::DataFrame::from_polars(frame.clone(), 4).unwrap();
    lazy.to_parquet(&format!("{base}/pq"), client).unwrap();
    lazy.to_csv(&format!("{base}/csv"), client).unwrap();
    lazy.to_json(&format!("{base}/json"), client).unwrap();
    // Small files, read two to a partition (√4).
    let parquet = dd::read_parquet(&format!("{base}/pq/*.parquet")).unwrap();
    assert_eq!(parquet.npartitions(), 2, "{base}");
    dataframe_cases::close(&parquet.compute(client).unwrap(), frame).unwrap();
    let options = CsvOptions {
        dtypes: vec![("group".into(), DataType::Int64)],
        ..Default::default()
    };
    let csv = dd::read_csv(&format!("{base}/csv/part.*.csv"), &options).unwrap();
    dataframe_cases::close(&csv.compute(client).unwrap(), frame).unwrap();
    // Blocks of a few kB: each task reads its byte range from the store.
    let blocks = CsvOptions {
        blocksize: Some(4096),
        ..options.clone()
    };
    let csv = dd::read_csv(&format!("{base}/csv/part.*.csv"), &blocks).unwrap();
    assert!(csv.npartitions() > 4, "{base}: {}", csv.npartitions());
    dataframe_cases::close(&csv.compute(client).unwrap(), frame).unwrap();
    let json = dd::read_json(&format!("{base}/json")).unwrap();
    dataframe_cases::close(&json.compute(client).unwrap(), frame).unwrap();

    let labels = df!("key" => ["a", "k1", "k3"], "label" => ["alpha", "one", "three"]).unwrap();
    let means = parquet
        .groupby(&["key"])
        .agg(&[("x", Agg::Mean), ("n", Agg::Sum)])
        .unwrap()
        .merge(
            &dd::DataFrame::from_polars(labels, 1).unwrap(),
            &["key"],
            How::Left,
        )
        .unwrap();
    means.to_parquet(&format!("{base}/result"), client).unwrap();
    dd::read_parquet(&format!("{base}/result"))
        .unwrap()
        .compute(client)
        .unwrap()
}

#[test]
fn dataframes_round_trip_through_s3_and_gcs() {
    let s3 = Server::moto_s3("tables");
    let gcs = Server::fake_gcs("tables");
    let env: Vec<(String, String)> = s3.s3_env().into_iter().chain(gcs.gcs_env()).collect();
    // Set before any store client or worker process exists; this test is the
    // only one in its binary, so nothing reads the environment concurrently.
    for (key, value) in &env {
        std::env::set_var(key, value);
    }
    let client = Client::local(LocalCluster::new().workers(2)).unwrap();
    let frame = dataframe_cases::sample(7, 4000);
    let want = frame
        .clone()
        .lazy()
        .drop_nulls(Some(Selector::ByName {
            names: ["key".into()].into(),
            strict: true,
        }))
        .group_by([col("key")])
        .agg([col("x").mean(), col("n").sum()])
        .sort(["key"], Default::default())
        .collect()
        .unwrap();
    for base in ["s3://tables/trips", "gs://tables/trips"] {
        let got = round_trip(&client, &frame, base);
        dataframe_cases::close(&got.select(["key", "x", "n"]).unwrap(), &want)
            .unwrap_or_else(|e| panic!("{base}: {e}"));
        let labels: Vec<Option<&str>> =
            got.column("label").unwrap().str().unwrap().iter().collect();
        let keys: Vec<Option<&str>> = got.column("key").unwrap().str().unwrap().iter().collect();
        for (key, label) in keys.iter().zip(&labels) {
            let expected = match *key {
                Some("a") => Some("alpha"),
                Some("k1") => Some("one"),
                Some("k3") => Some("three"),
                _ => None,
            };
            assert_eq!(*label, expected, "{base}: key {key:?}");
        }
        bag_cases::word_frequencies_from_files(&client, &format!("{base}/bag"), Some(4096))
            .unwrap_or_else(|e| panic!("{base}: {e}"));
    }

    // pandas (pyarrow) reads the result rask wrote to S3.
    let printed = run_python(
        r#"
import io, os, boto3, pandas as pd
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="tables", Prefix="trips/result/")["Contents"])
frames = [pd.read_parquet(io.BytesIO(s3.get_object(Bucket="tables", Key=k)["Body"].read())) for k in keys]
df = pd.concat(frames)
print(len(df), repr(round(float(df["x"].sum()), 6)), int(df["n"].sum()), sorted(df["label"].dropna()))
"#,
        &env,
    );
    let x_sum: f64 = want
        .column("x")
        .unwrap()
        .f64()
        .unwrap()
        .iter()
        .flatten()
        .sum();
    let n_sum: i64 = want
        .column("n")
        .unwrap()
        .i64()
        .unwrap()
        .iter()
        .flatten()
        .sum();
    let expected = format!(
        "{} {} {n_sum} ['alpha', 'one', 'three']",
        want.height(),
        (x_sum * 1e6).round() / 1e6
    );
    assert_eq!(printed.trim(), expected);

    ranged_reads_fetch_only_the_columns_a_query_reads(&client);
    ranged_reads_skip_row_groups_a_filter_rules_out(&client);

    // Worker processes read from S3 and write to GCS on their own.
    let mut cluster = Cluster::start("s3frames", &[]);
    cluster.add_worker(&["--nthreads", "2"]);
    cluster.add_worker(&["--nthreads", "1"]);
    let remote = Client::connect(&cluster.address).unwrap();
    cluster.wait_for_workers(&remote, 2);
    let counts = dd::read_parquet("s3://tables/trips/pq/*.parquet")
        .unwrap()
        .value_counts("key")
        .unwrap();
    counts.to_parquet("gs://tables/counts", &remote).unwrap();
    let back = dd::read_parquet("gs://tables/counts")
        .unwrap()
        .compute(&remote)
        .unwrap();
    let total: u64 = back
        .column("count")
        .unwrap()
        .u64()
        .unwrap()
        .iter()
        .flatten()
        .sum();
    let non_null = frame
        .column("key")
        .unwrap()
        .as_materialized_series()
        .drop_nulls()
        .len();
    assert_eq!(total as usize, non_null);
    // Bags on the worker processes: blocks of S3 objects, words counted.
    bag_cases::word_frequencies_from_files(&remote, "s3://tables/remote-bag", Some(2048))
        .unwrap_or_else(|e| panic!("bags on worker processes: {e}"));

    // Missing objects are errors naming them.
    let missing = dd::read_parquet("s3://tables/nothing/*.parquet")
        .err()
        .unwrap()
        .to_string();
    assert!(
        missing.contains("s3://tables/nothing/*.parquet"),
        "{missing}"
    );
}

/// A query of two of a wide S3 file's eight columns fetches those columns'
/// chunks (in each of its row groups) and the footer, not the whole object;
/// one that needs every column reads it whole. Both equal Polars.
fn ranged_reads_fetch_only_the_columns_a_query_reads(client: &Client) {
    const ROWS: usize = 200_000;
    // Numbers that do not compress, so that each column is an eighth of the file.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let columns: Vec<Column> = (0..8)
        .map(|c| {
            Column::new(
                format!("c{c}").into(),
                (0..ROWS).map(|_| next()).collect::<Vec<f64>>(),
            )
        })
        .collect();
    let mut wide = DataFrame::new(ROWS, columns).unwrap();
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .with_row_group_size(Some(50_000))
        .finish(&mut wide)
        .unwrap();
    let size = bytes.len() as f64;
    rask::io::Location::parse("s3://tables/wide/part-000.parquet")
        .unwrap()
        .write(bytes)
        .unwrap();
    let total = |frame: &DataFrame, column: &str| -> f64 {
        frame
            .column(column)
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .flatten()
            .sum()
    };
    let read = || dd::read_parquet("s3://tables/wide/*.parquet").unwrap();

    let before = rask::io::object_bytes_read();
    let got = read()
        .filter(col("c1").gt(lit(0.5)))
        .unwrap()
        .select(vec![col("c0").sum()])
        .unwrap()
        .compute(client)
        .unwrap();
    let fetched = (rask::io::object_bytes_read() - before) as f64;
    let want = wide
        .clone()
        .lazy()
        .filter(col("c1").gt(lit(0.5)))
        .select([col("c0").sum()])
        .collect()
        .unwrap();
    assert!((total(&got, "c0") - total(&want, "c0")).abs() < 1e-6);
    assert!(
        fetched < 0.3 * size,
        "fetched {fetched} bytes of a {size}-byte object for 2 of its 8 columns"
    );

    let before = rask::io::object_bytes_read();
    let all = read().compute(client).unwrap();
    let fetched = (rask::io::object_bytes_read() - before) as f64;
    assert!(all.equals(&wide), "the whole wide file differs");
    assert!(fetched >= size, "fetched {fetched} of {size} bytes");
}

/// A table of `ROWS` rows in row groups of `GROUP` rows: `id` and `name`
/// sorted (so each row group holds one range of them), `small` the row group's
/// number (an `i32`), `r` random integers with nulls only in row group 3, `f`
/// random floats with NaNs in row group 5, `ts` and `day` a datetime and a
/// date rising with `id`, and four incompressible columns that make up most
/// of the bytes.
fn row_group_table(rows: usize, seed: u64) -> DataFrame {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(seed);
    const GROUP: usize = 25_000;
    let id: Vec<i64> = (0..rows as i64).collect();
    let name: Vec<String> = (0..rows).map(|i| format!("k{i:07}")).collect();
    let small: Vec<i32> = (0..rows).map(|i| (i / GROUP) as i32).collect();
    let r: Vec<Option<i64>> = (0..rows)
        .map(|i| (i / GROUP != 3 || i % 7 != 0).then(|| rng.random_range(0..100)))
        .collect();
    let f: Vec<f64> = (0..rows)
        .map(|i| {
            if i / GROUP == 5 && i % 11 == 0 {
                f64::NAN
            } else {
                rng.random::<f64>()
            }
        })
        .collect();
    let mut columns = vec![
        Column::new("id".into(), id),
        Column::new("name".into(), name),
        Column::new("small".into(), small),
        Column::new("r".into(), r),
        Column::new("f".into(), f),
        Column::new(
            "ts".into(),
            (0..rows as i64).map(|i| i * 1_000_000).collect::<Vec<_>>(),
        )
        .cast(&DataType::Datetime(TimeUnit::Microseconds, None))
        .unwrap(),
        Column::new(
            "day".into(),
            (0..rows as i32).map(|i| i / 1000).collect::<Vec<_>>(),
        )
        .cast(&DataType::Date)
        .unwrap(),
    ];
    for c in 0..4 {
        let noise: Vec<f64> = (0..rows).map(|_| rng.random()).collect();
        columns.push(Column::new(format!("c{c}").into(), noise));
    }
    DataFrame::new(rows, columns).unwrap()
}

/// A filter that the row groups' statistics rule out keeps their bytes
/// unfetched (only the footer of those row groups is read), and every
/// filter, pushed down or not, gives Polars' rows: a sorted S3 file of 8 row
/// groups, queried by ranges of its sorted columns (integers, text, datetimes,
/// dates), by nulls, by a widened
/// `i32`, by no row at all, by a filter Polars cannot push to the file, and
/// by 60 random filters over columns with nulls and NaNs.
fn ranged_reads_skip_row_groups_a_filter_rules_out(client: &Client) {
    const ROWS: usize = 200_000;
    let mut table = row_group_table(ROWS, 41);
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .with_row_group_size(Some(25_000))
        .finish(&mut table)
        .unwrap();
    let size = bytes.len() as f64;
    rask::io::Location::parse("s3://tables/sorted/part-000.parquet")
        .unwrap()
        .write(bytes)
        .unwrap();
    let read = || dd::read_parquet("s3://tables/sorted/*.parquet").unwrap();
    // Runs `filter` through rask and Polars; returns the share of the object
    // rask fetched.
    let check = |filter: Expr| -> f64 {
        let before = rask::io::object_bytes_read();
        let got = read()
            .filter(filter.clone())
            .unwrap()
            .compute(client)
            .unwrap();
        let fetched = (rask::io::object_bytes_read() - before) as f64;
        let want = table
            .clone()
            .lazy()
            .filter(filter.clone())
            .collect()
            .unwrap();
        assert!(
            got.equals_missing(&want),
            "{filter:?}: rask has {} rows, Polars {}",
            got.height(),
            want.height()
        );
        fetched / size
    };
    let eighth = (ROWS / 8) as i64;
    for (filter, most) in [
        (col("id").lt(lit(eighth)), 0.2),
        (
            col("id").gt_eq(lit(7 * eighth)).and(col("c1").gt(lit(0.5))),
            0.2,
        ),
        (
            col("id")
                .eq(lit(10i64))
                .or(col("id").eq(lit(7 * eighth + 3))),
            0.3,
        ),
        (col("name").eq(lit("k0100000")), 0.2),
        (col("name").lt_eq(lit("k0010000")), 0.2),
        (col("r").is_null(), 0.2),
        (col("small").gt(lit(6i64)), 0.2),
        (lit(eighth).gt(col("id")), 0.2),
        (col("id").gt(lit(ROWS as i64)), 0.05),
        (
            col("ts")
                .lt(lit(eighth * 1_000_000).cast(DataType::Datetime(TimeUnit::Microseconds, None))),
            0.2,
        ),
        (
            col("day").gt_eq(lit(7 * eighth as i32 / 1000).cast(DataType::Date)),
            0.2,
        ),
    ] {
        let share = check(filter.clone());
        assert!(share < most, "{filter:?} fetched {share:.2} of the object");
    }
    // Filters statistics cannot judge read every row group.
    for filter in [
        col("f").gt(lit(0.99)),
        col("id")
            .lt(lit(100i64))
            .or((col("c0") * lit(2.0)).gt(lit(1.99))),
        col("r").is_not_null(),
    ] {
        let share = check(filter.clone());
        assert!(
            share > 0.5,
            "{filter:?} fetched only {share:.2} of the object"
        );
    }
    // A filter on a column the steps replaced is not the file's.
    let doubled = read()
        .with_column(col("id") * lit(2i64))
        .unwrap()
        .filter(col("id").lt(lit(eighth)))
        .unwrap()
        .compute(client)
        .unwrap();
    let want = table
        .clone()
        .lazy()
        .with_column(col("id") * lit(2i64))
        .filter(col("id").lt(lit(eighth)))
        .collect()
        .unwrap();
    assert!(
        doubled.equals_missing(&want),
        "a filter on a replaced column"
    );
    assert_eq!(doubled.height(), (eighth / 2) as usize);

    // Random filters: comparisons of columns with nulls, NaNs and sorted
    // ranges, joined by & and |.
    use rand::{Rng, SeedableRng};
    let mut rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(7);
    let comparison = |rng: &mut rand_xoshiro::Xoshiro256PlusPlus| -> Expr {
        let (column, value) = match rng.random_range(0..5) {
            0 => (col("id"), lit(rng.random_range(-10..ROWS as i64 + 10))),
            1 => (col("r"), lit(rng.random_range(-1..101i64))),
            2 => (col("f"), lit(rng.random_range(-0.1..1.1f64))),
            3 => (
                col("name"),
                lit(format!("k{:07}", rng.random_range(0..ROWS + 10))),
            ),
            _ => (col("small"), lit(rng.random_range(-1..9i32))),
        };
        match rng.random_range(0..7) {
            0 => column.eq(value),
            1 => column.lt(value),
            2 => column.lt_eq(value),
            3 => column.gt(value),
            4 => column.gt_eq(value),
            5 => column.is_null(),
            _ => column.is_not_null(),
        }
    };
    for _ in 0..60 {
        let first = comparison(&mut rng);
        let filter = match rng.random_range(0..3) {
            0 => first,
            1 => first.and(comparison(&mut rng)),
            _ => first.or(comparison(&mut rng)).and(comparison(&mut rng)),
        };
        check(filter);
    }
}
