//! `rask::dataframe` on an embedded cluster against Polars on the whole frame:
//! row-wise steps, groupby with every aggregation on random frames (skewed
//! keys, nulls, more partitions than rows), files written and read back, and
//! bad input.

mod dataframe_cases;

use rask::dataframe::polars::prelude::*;
use rask::dataframe::{self as dd, Agg, CsvOptions};
use rask::{Client, LocalCluster};

fn client() -> Client {
    Client::local(LocalCluster::new().workers(2)).unwrap()
}

#[test]
fn rowwise_steps_match_polars() {
    let client = client();
    for (seed, rows, parts) in [
        (1, 1000, 7),
        (2, 37, 1),
        (3, 5, 9),
        (4, 0, 3),
        (5, 4000, 16),
    ] {
        dataframe_cases::rowwise(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("seed {seed}, {rows} rows in {parts}: {e}"));
    }
}

#[test]
fn groupby_matches_polars_on_random_frames() {
    let client = client();
    // 40 partitions make a two-level tree; 9 partitions of 5 rows leave some empty.
    for (seed, rows, parts) in [
        (11, 2000, 40),
        (12, 5, 9),
        (13, 300, 3),
        (14, 1, 1),
        (15, 5000, 12),
    ] {
        dataframe_cases::groupby(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("seed {seed}, {rows} rows in {parts}: {e}"));
    }
}

#[test]
fn counts_uniques_joins_and_repartitions_match_polars() {
    let client = client();
    for (seed, rows, parts) in [(41, 2000, 30), (42, 6, 9), (43, 500, 4), (44, 0, 2)] {
        dataframe_cases::relational(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("seed {seed}, {rows} rows in {parts}: {e}"));
    }
}

#[test]
fn split_out_is_chosen_from_statistics() {
    let client = client();
    for (seed, parts) in [(91, 8), (92, 50), (93, 1)] {
        dataframe_cases::automatic_split_out(&client, seed, parts)
            .unwrap_or_else(|e| panic!("seed {seed}, {parts} partitions: {e}"));
    }
    // Bad input: errors that name the column or the size, not panics.
    let frame = dd::DataFrame::from_polars(dataframe_cases::sample(94, 100), 4).unwrap();
    let missing = |r: Result<dd::DataFrame, dd::DataFrameError>| match r {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a missing column was accepted"),
    };
    assert!(missing(frame.value_counts_split_out("nope", 3)).contains("nope"));
    assert!(missing(frame.unique_split_out("nope", 3)).contains("nope"));
    assert!(missing(frame.drop_duplicates_split_out(Some(&["nope"]), 3)).contains("nope"));
    let no_key = frame.groupby(&["nope"]).split_out_auto(&client);
    assert!(no_key
        .err()
        .expect("a missing key is an error")
        .to_string()
        .contains("nope"));
    let zero = frame.groupby(&["key"]).split_out_by_size(0, &client);
    assert!(zero
        .err()
        .expect("0 bytes is an error")
        .to_string()
        .contains("0 bytes"));
}

#[test]
fn shuffles_sorts_shuffle_joins_and_split_out_match_polars() {
    let client = client();
    // More partitions than rows leaves shards empty; 1 partition shuffles to itself.
    for (seed, rows, parts) in [(51, 3000, 12), (52, 5, 9), (53, 400, 1), (54, 0, 3)] {
        dataframe_cases::shuffled(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("seed {seed}, {rows} rows in {parts}: {e}"));
    }
}

#[test]
fn set_index_and_loc_match_polars_on_random_frames() {
    let client = client();
    for (seed, rows, parts) in [(61, 5000, 8), (62, 5, 9), (63, 300, 1), (64, 0, 3)] {
        dataframe_cases::indexed(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("seed {seed}, {rows} rows in {parts}: {e}"));
    }
}

#[test]
fn resample_and_rolling_match_polars_on_random_series() {
    let client = client();
    // 9 partitions of 5 rows leave some empty; a 50-row window spans several.
    // Seed 31 in 20 partitions once combined an hour with no values in any of
    // 8 partials into a NaN mean that spoilt its variance a level up.
    for (seed, rows, parts) in [
        (71, 3000, 8),
        (72, 5, 9),
        (73, 400, 1),
        (74, 0, 3),
        (75, 600, 30),
        (31, 3000, 20),
    ] {
        dataframe_cases::windows(&client, seed, rows, parts)
            .unwrap_or_else(|e| panic!("seed {seed}, {rows} rows in {parts}: {e}"));
    }
}

#[test]
fn resample_and_rolling_give_pandas_numbers() {
    // pandas: s.resample("2s").sum() / .mean() and s.rolling(2).sum(),
    // s.rolling("2s").sum() for x = 1..5 at 0, 1, 2, 5, 6 s.
    let client = client();
    let t = Series::new("t".into(), [0i64, 1000, 2000, 5000, 6000])
        .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))
        .unwrap();
    let frame = DataFrame::new(
        5,
        vec![
            t.into(),
            Series::new("x".into(), [1.0, 2.0, 3.0, 4.0, 5.0]).into(),
        ],
    )
    .unwrap();
    let lazy = dd::DataFrame::from_polars(frame, 3)
        .unwrap()
        .set_index("t", &client)
        .unwrap();
    let floats = |d: DataFrame, c: &str| -> Vec<Option<f64>> {
        d.column(c).unwrap().f64().unwrap().iter().collect()
    };
    let sum = lazy
        .resample("2s")
        .unwrap()
        .sum()
        .unwrap()
        .compute(&client)
        .unwrap();
    assert_eq!(
        floats(sum, "x"),
        [Some(3.0), Some(3.0), Some(4.0), Some(5.0)]
    );
    let mean = lazy
        .resample("2s")
        .unwrap()
        .mean()
        .unwrap()
        .compute(&client)
        .unwrap();
    assert_eq!(
        floats(mean, "x"),
        [Some(1.5), Some(3.0), Some(4.0), Some(5.0)]
    );
    let size = lazy
        .resample("1s")
        .unwrap()
        .size()
        .unwrap()
        .compute(&client)
        .unwrap();
    let sizes: Vec<Option<u32>> = size
        .column("size")
        .unwrap()
        .cast(&DataType::UInt32)
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(sizes, [1, 1, 1, 0, 0, 1, 1].map(Some));
    let rows = lazy
        .rolling(2)
        .unwrap()
        .sum()
        .unwrap()
        .compute(&client)
        .unwrap();
    assert_eq!(
        floats(rows, "x"),
        [None, Some(3.0), Some(5.0), Some(7.0), Some(9.0)]
    );
    let span = lazy
        .rolling("2s")
        .unwrap()
        .sum()
        .unwrap()
        .compute(&client)
        .unwrap();
    assert_eq!(
        floats(span, "x"),
        [Some(1.0), Some(3.0), Some(5.0), Some(4.0), Some(9.0)]
    );

    // Bad input: no index, a calendar or unknown interval, an empty window,
    // an aggregation rolling windows do not take.
    let plain = dd::DataFrame::from_polars(dataframe_cases::series(1, 10), 2).unwrap();
    let message = |r: Result<dd::DataFrame, dd::DataFrameError>| {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    };
    assert!(message(plain.resample("1h").and_then(|r| r.sum())).contains("set_index"));
    assert!(message(plain.rolling("1h").and_then(|r| r.sum())).contains("set_index"));
    assert!(message(lazy.resample("1mo").and_then(|r| r.sum())).contains("\"1mo\""));
    assert!(message(lazy.resample("fortnight").and_then(|r| r.sum())).contains("\"fortnight\""));
    assert!(message(lazy.rolling(0).and_then(|r| r.sum())).contains("at least one row"));
    assert!(
        message(lazy.rolling(3).and_then(|r| r.agg(&[("x", Agg::Nunique)]))).contains("nunique")
    );
    let by_x = lazy.set_index("x", &client).unwrap();
    assert!(message(by_x.resample("1h").and_then(|r| r.sum())).contains("not a datetime"));
}

fn scratch(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("rask-df-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.display().to_string()
}

#[test]
fn files_round_trip_through_every_format() {
    let client = client();
    let frame = dataframe_cases::sample(21, 3000);
    let lazy = dd::DataFrame::from_polars(frame.clone(), 4).unwrap();
    let dir = scratch("formats");
    lazy.to_parquet(&format!("{dir}/pq"), &client).unwrap();
    lazy.to_csv(&format!("{dir}/csv"), &client).unwrap();
    lazy.to_json(&format!("{dir}/json"), &client).unwrap();
    // Small files are read together, in order: at most √4 = 2 a partition.
    let back = dd::read_parquet(&format!("{dir}/pq/*.parquet")).unwrap();
    assert_eq!(back.npartitions(), 2);
    assert!(back.compute(&client).unwrap().equals_missing(&frame));
    let per_file = dd::ParquetOptions {
        minimum_partition_size: 0,
    };
    let each = dd::read_parquet_with(&format!("{dir}/pq/*.parquet"), &per_file).unwrap();
    assert_eq!(each.npartitions(), 4);
    assert!(each.compute(&client).unwrap().equals_missing(&frame));
    let csv = dd::read_csv(
        &format!("{dir}/csv"),
        &CsvOptions {
            dtypes: vec![("group".into(), DataType::Int64)],
            ..Default::default()
        },
    )
    .unwrap();
    assert!(csv.compute(&client).unwrap().equals_missing(&frame));
    let json = dd::read_json(&format!("{dir}/json/part.*.json")).unwrap();
    assert!(json.compute(&client).unwrap().equals_missing(&frame));
    // A filter and a projection after a Parquet read are pushed into it, and
    // the groupby runs over the files.
    let fares = back
        .filter(col("group").eq(lit(1)))
        .unwrap()
        .groupby(&["key"])
        .agg(&[("x", Agg::Mean)])
        .unwrap()
        .compute(&client)
        .unwrap();
    let want = frame
        .lazy()
        .filter(col("group").eq(lit(1)))
        .drop_nulls(Some(Selector::ByName {
            names: ["key".into()].into(),
            strict: true,
        }))
        .group_by([col("key")])
        .agg([col("x").mean()])
        .sort(["key"], Default::default())
        .collect()
        .unwrap();
    dataframe_cases::close(&fares, &want).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn csv_files_split_into_blocks_read_the_same_rows_at_every_blocksize() {
    let client = client();
    let frame = dataframe_cases::sample(22, 3000);
    let dir = scratch("csv-blocks");
    dd::DataFrame::from_polars(frame.clone(), 3)
        .unwrap()
        .to_csv(&format!("{dir}/csv"), &client)
        .unwrap();
    let sizes: Vec<u64> = (0..3)
        .map(|i| {
            std::fs::metadata(format!("{dir}/csv/part.{i}.csv"))
                .unwrap()
                .len()
        })
        .collect();
    for blocksize in [Some(61), Some(997), Some(20_000), Some(1 << 20), None] {
        let options = CsvOptions {
            dtypes: vec![("group".into(), DataType::Int64)],
            blocksize,
            ..Default::default()
        };
        let csv = dd::read_csv(&format!("{dir}/csv"), &options).unwrap();
        let blocks = match blocksize {
            Some(b) => sizes.iter().map(|s| s.div_ceil(b) as usize).sum(),
            None => 3,
        };
        assert_eq!(csv.npartitions(), blocks, "blocksize {blocksize:?}");
        let back = csv.compute(&client).unwrap();
        assert!(back.equals_missing(&frame), "blocksize {blocksize:?}");
    }
    // Without a header, at one byte per block (most blocks hold no line start).
    std::fs::write(format!("{dir}/plain.csv"), "1,x\n2,\n3,zz\n4,w").unwrap();
    let options = CsvOptions {
        header: false,
        blocksize: Some(1),
        ..Default::default()
    };
    let plain = dd::read_csv(&format!("{dir}/plain.csv"), &options)
        .unwrap()
        .compute(&client)
        .unwrap();
    let whole = dd::read_csv(
        &format!("{dir}/plain.csv"),
        &CsvOptions {
            blocksize: None,
            ..options.clone()
        },
    )
    .unwrap()
    .compute(&client)
    .unwrap();
    assert_eq!(plain.height(), 4);
    assert!(plain.equals_missing(&whole), "{plain} {whole}");
    // Blocksize 0 is refused, naming the files.
    let zero = dd::read_csv(
        &format!("{dir}/plain.csv"),
        &CsvOptions {
            blocksize: Some(0),
            ..Default::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        zero.contains("plain.csv") && zero.contains("blocksize"),
        "{zero}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_names_the_file_or_column() {
    let client = client();
    let dir = scratch("bad");
    std::fs::create_dir_all(&dir).unwrap();
    // A missing column is refused when the graph is built.
    let lazy = dd::DataFrame::from_polars(dataframe_cases::sample(1, 10), 2).unwrap();
    let missing = lazy
        .filter(col("nope").gt(lit(1)))
        .err()
        .unwrap()
        .to_string();
    assert!(missing.contains("nope"), "{missing}");
    // A ragged CSV row.
    std::fs::write(format!("{dir}/ragged.csv"), "a,b\n1,2\n3,4,5\n").unwrap();
    let ragged = dd::read_csv(&format!("{dir}/ragged.csv"), &CsvOptions::default())
        .and_then(|d| d.compute(&client))
        .err()
        .unwrap()
        .to_string();
    assert!(ragged.contains("ragged.csv"), "{ragged}");
    // A ragged row in a later block of a split file: the error names the
    // file and the block.
    let rows: String = (0..200).map(|i| format!("{i},{i}\n")).collect();
    std::fs::write(format!("{dir}/late.csv"), format!("a,b\n{rows}3,4,5\n")).unwrap();
    let late = CsvOptions {
        blocksize: Some(256),
        ..Default::default()
    };
    let late = dd::read_csv(&format!("{dir}/late.csv"), &late)
        .and_then(|d| d.compute(&client))
        .err()
        .unwrap()
        .to_string();
    assert!(late.contains("late.csv (the block of bytes"), "{late}");
    // A Parquet file whose footer is garbage.
    let mut bytes = Vec::new();
    ParquetWriter::new(&mut bytes)
        .finish(&mut dataframe_cases::sample(2, 50))
        .unwrap();
    let n = bytes.len();
    bytes[n - 12..n - 4].copy_from_slice(b"garbage!");
    std::fs::write(format!("{dir}/corrupt.parquet"), &bytes).unwrap();
    let corrupt = dd::read_parquet(&format!("{dir}/corrupt.parquet"))
        .and_then(|d| d.compute(&client))
        .err()
        .unwrap()
        .to_string();
    assert!(corrupt.contains("corrupt.parquet"), "{corrupt}");
    // The same file among good ones read together: the error names it.
    let many = format!("{dir}/many");
    std::fs::create_dir_all(&many).unwrap();
    for i in 0..4 {
        let mut good = dataframe_cases::sample(2, 50);
        let file = std::fs::File::create(format!("{many}/part-{i}.parquet")).unwrap();
        ParquetWriter::new(file).finish(&mut good).unwrap();
    }
    std::fs::write(format!("{many}/part-3.parquet"), &bytes).unwrap();
    let fused = dd::read_parquet(&format!("{many}/*.parquet")).unwrap();
    assert_eq!(fused.npartitions(), 2);
    let corrupt = fused.compute(&client).err().unwrap().to_string();
    assert!(corrupt.contains("part-3.parquet"), "{corrupt}");
    assert!(!corrupt.contains("part-2.parquet"), "{corrupt}");
    // A JSON line that is not JSON, in the second file (the first sets the schema).
    std::fs::write(format!("{dir}/a.json"), "{\"v\": 1}\n").unwrap();
    std::fs::write(format!("{dir}/b.json"), "{\"v\": 2}\n{v: oops\n").unwrap();
    let json = dd::read_json(&format!("{dir}/*.json"))
        .and_then(|d| d.compute(&client))
        .err()
        .unwrap()
        .to_string();
    assert!(json.contains("b.json"), "{json}");
    // No files at all.
    let none = dd::read_parquet(&format!("{dir}/nothing/*.parquet"))
        .err()
        .unwrap()
        .to_string();
    assert!(none.contains("no files match"), "{none}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hive_directories_become_columns() {
    let client = client();
    let dir = scratch("hive");
    for (year, rows) in [(2023, 3), (2024, 5)] {
        let mut part = df!("v" => (0..rows).map(|i| i as f64).collect::<Vec<_>>()).unwrap();
        let mut bytes = Vec::new();
        ParquetWriter::new(&mut bytes).finish(&mut part).unwrap();
        let path = format!("{dir}/year={year}/city=x/part.0.parquet");
        std::fs::create_dir_all(std::path::Path::new(&path).parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let read = dd::read_parquet(&format!("{dir}/*/*/*.parquet")).unwrap();
    assert_eq!(read.columns(), ["v", "year", "city"]);
    let counts = read
        .groupby(&["year"])
        .size()
        .unwrap()
        .compute(&client)
        .unwrap();
    let want = df!("year" => [2023i64, 2024], "size" => [3u32, 5]).unwrap();
    assert!(counts.equals_missing(&want), "{counts}");
    std::fs::remove_dir_all(&dir).unwrap();
}

rask::op! {
    /// Adds each row's share of its partition's `x` total (a per-partition
    /// computation no expression step spells as directly).
    fn with_share(part: dd::Partition) -> dd::Partition {
        let total = part.0.column("x").unwrap().as_materialized_series().sum::<f64>().unwrap_or(0.0);
        dd::Partition(
            part.0
                .lazy()
                .with_column((col("x") / lit(total)).alias("share"))
                .collect()
                .unwrap(),
        )
    }
}

#[test]
fn map_partitions_runs_a_registered_op_on_every_partition() {
    let client = client();
    let frame = dataframe_cases::sample(51, 600);
    let lazy = dd::DataFrame::from_polars(frame.clone(), 3).unwrap();
    let mapped = lazy.map_partitions(with_share, None).unwrap();
    assert_eq!(mapped.columns(), ["key", "group", "x", "n", "share"]);
    let got = mapped.compute(&client).unwrap();
    let want = dd::DataFrame::from_polars(frame, 3)
        .unwrap()
        .compute_partitions(&client)
        .unwrap()
        .into_iter()
        .map(|p| with_share::call(dd::Partition(p)).0)
        .reduce(|mut a, b| {
            a.vstack_mut(&b).unwrap();
            a
        })
        .unwrap();
    dataframe_cases::close(&got, &want).unwrap();
    // Shares of each partition add up to one.
    let per_part = mapped.compute_partitions(&client).unwrap();
    for part in per_part {
        let sum = part
            .column("share")
            .unwrap()
            .as_materialized_series()
            .sum::<f64>()
            .unwrap();
        assert!((sum - 1.0).abs() < 1e-9, "{sum}");
    }
}

#[test]
fn steps_fuse_into_one_task_per_partition() {
    let lazy = dd::DataFrame::from_polars(dataframe_cases::sample(3, 100), 4).unwrap();
    let chained = lazy
        .filter(col("x").gt(lit(0.0)))
        .and_then(|d| d.with_column(col("n") * lit(2)))
        .and_then(|d| d.select_columns(&["key", "n"]))
        .unwrap();
    // Four literal partitions and four tasks that run all three steps.
    assert_eq!(chained.ntasks(), 8);
    let grouped = chained.groupby(&["key"]).sum().unwrap();
    // Plus one combining task for four partials.
    assert_eq!(grouped.ntasks(), 9);
    assert!(format!("{grouped}").contains("npartitions=1"));
}

#[test]
fn lazy_and_computed_frames_show_their_structure_and_rows() {
    let frame = df!("<b>" => [1i64, 2, 3], "name" => [Some("x&y"), None, Some("z")]).unwrap();
    let lazy = dd::DataFrame::from_polars(frame.clone(), 2).unwrap();
    let text = lazy.to_string();
    assert!(
        text.contains("npartitions=2") && text.contains("tasks=2"),
        "{text}"
    );
    assert!(text.contains("name: str"), "{text}");
    let html = lazy.to_html();
    assert!(
        html.contains("<th>&lt;b&gt;</th>") && html.contains("<td>i64</td>"),
        "{html}"
    );
    assert!(
        html.contains("npartitions=2") && html.contains("2 tasks"),
        "{html}"
    );
    let client = client();
    let computed = lazy.compute(&client).unwrap();
    let table = dd::to_html(&computed, 2);
    assert!(
        table.contains("<td>x&amp;y</td>") && table.contains("<td>null</td>"),
        "{table}"
    );
    assert!(
        !table.contains("<td>z</td>") && table.contains("3 rows × 2 columns"),
        "{table}"
    );
}

#[test]
fn describe_matches_polars_exactly_for_moments_and_closely_for_quartiles() {
    let client = client();
    let frame = dataframe_cases::sample(61, 5000);
    for parts in [1, 7] {
        let got = dd::DataFrame::from_polars(frame.clone(), parts)
            .unwrap()
            .describe(&client)
            .unwrap();
        let names: Vec<String> = got
            .get_column_names()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(names, ["statistic", "group", "x", "n"], "{got}");
        for column in ["group", "x", "n"] {
            let values = frame
                .column(column)
                .unwrap()
                .cast(&DataType::Float64)
                .unwrap();
            let values = values.f64().unwrap();
            let stat = |row: usize| got.column(column).unwrap().f64().unwrap().get(row);
            let close = |a: Option<f64>, b: Option<f64>, tolerance: f64| {
                let (a, b) = (a.unwrap(), b.unwrap());
                assert!(
                    (a - b).abs() <= tolerance,
                    "{column} in {parts}: {a} vs {b}\n{got}"
                );
            };
            close(
                stat(0),
                Some(values.len() as f64 - values.null_count() as f64),
                0.0,
            );
            close(stat(1), values.mean(), 1e-9);
            close(stat(2), values.std(1), 1e-9);
            close(stat(3), values.min(), 0.0);
            close(stat(7), values.max(), 0.0);
            let range = values.max().unwrap() - values.min().unwrap();
            for (row, q) in [(4, 0.25), (5, 0.5), (6, 0.75)] {
                let exact = values.quantile(q, QuantileMethod::Linear).unwrap();
                let tolerance = if parts == 1 { 1e-9 } else { 0.05 * range };
                close(stat(row), exact, tolerance);
            }
        }
    }
    let text = dd::DataFrame::from_polars(df!("s" => ["a"]).unwrap(), 1)
        .unwrap()
        .describe(&client)
        .unwrap_err()
        .to_string();
    assert!(text.contains("numeric"), "{text}");
}
