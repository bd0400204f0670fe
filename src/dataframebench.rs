//! `rask dataframebench`: the dask.dataframe comparison workloads on a local
//! cluster, on the files `benches/dask_dataframebench.py generate` writes:
//!
//! - groupby: mean of `value` by `key`, 50M rows in 50 Parquet files, 1,000 keys;
//! - join: 10M rows joined with 1M on `key` (the small side broadcast), then
//!   the sum of the joined `w`;
//! - sort: 10M rows sorted by `x` (a peer-to-peer shuffle), written to Parquet.
//!
//! With `--polars-alone` the same queries run on the Polars crate rask links,
//! with no cluster: the per-node limit of rask's engine (Python's Polars, which
//! the script also runs, is a newer release of that engine).

use anyhow::{Context, Result};
use rask::dataframe::{col, read_parquet, How};
use std::time::Instant;

/// Options of `rask dataframebench`.
#[derive(clap::Args)]
pub struct Args {
    /// The directory the data generator wrote.
    #[arg(long)]
    data: String,
    #[command(flatten)]
    cluster: crate::bench_cluster::BenchCluster,
    /// Run only these workloads (groupby, join, sort), e.g. `--only groupby,sort`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Timed runs of each workload; the best is reported.
    #[arg(long, value_parser = crate::counts::at_least_one, default_value_t = 3)]
    repeat: usize,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
    /// Run the queries on the linked Polars crate alone, without rask (local
    /// files only); results are named `polars_rs_<workload>_s`.
    #[arg(long)]
    polars_alone: bool,
}

/// The best of `repeat` timed runs of `f`.
fn best(repeat: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut times = Vec::with_capacity(repeat);
    for _ in 0..repeat {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(times.into_iter().fold(f64::INFINITY, f64::min))
}

pub fn run(args: Args) -> Result<()> {
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let data = args.data.trim_end_matches('/');
    let mut results = serde_json::Map::new();
    if args.polars_alone {
        polars_alone(data, args.repeat, &wanted, &mut results)?;
        print(&results, args.json);
        return Ok(());
    }
    let client = args.cluster.client()?;
    if wanted("groupby") {
        let seconds = best(args.repeat, || {
            let means = read_parquet(&format!("{data}/groupby/*.parquet"))?
                .groupby(&["key"])
                .mean()?
                .compute(&client)?;
            anyhow::ensure!(
                means.height() == 1000,
                "expected 1,000 groups, got {}",
                means.height()
            );
            Ok(())
        })
        .context("groupby")?;
        results.insert("groupby_s".into(), seconds.into());
    }
    if wanted("join") {
        let seconds = best(args.repeat, || {
            let left = read_parquet(&format!("{data}/join/left/*.parquet"))?;
            let right = read_parquet(&format!("{data}/join/right/*.parquet"))?;
            let partials = left
                .merge(&right, &["key"], How::Inner)?
                .select(vec![col("w").sum()])?
                .compute(&client)?;
            let total: f64 = partials.column("w")?.f64()?.iter().flatten().sum();
            anyhow::ensure!(total > 0.0, "the join matched nothing");
            Ok(())
        })
        .context("join")?;
        results.insert("join_s".into(), seconds.into());
    }
    if wanted("sort") {
        let target = format!("{data}/out/rask-sort");
        let seconds = best(args.repeat, || {
            let _ = std::fs::remove_dir_all(&target);
            read_parquet(&format!("{data}/sort/*.parquet"))?
                .sort_values(&["x"], false)?
                .to_parquet(&target, &client)?;
            Ok(())
        })
        .context("sort")?;
        results.insert("sort_s".into(), seconds.into());
    }
    print(&results, args.json);
    Ok(())
}

fn print(results: &serde_json::Map<String, serde_json::Value>, json: bool) {
    if json {
        println!("{}", serde_json::Value::Object(results.clone()));
    } else {
        for (name, seconds) in results {
            println!("{name}: {seconds:.3}");
        }
    }
}

/// The workloads as single queries on the Polars crate rask links: the
/// groupby on its streaming engine (as rask's partitions run it), the join and
/// the sort on its default in-memory engine, as Polars' own `collect`.
fn polars_alone(
    data: &str,
    repeat: usize,
    wanted: &dyn Fn(&str) -> bool,
    results: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    use rask::dataframe::polars::prelude::{
        col, Engine, JoinArgs, JoinType, LazyFrame, ParquetWriter, PlRefPath, SortMultipleOptions,
    };
    let scan = |glob: &str| {
        LazyFrame::scan_parquet(PlRefPath::new(format!("{data}/{glob}")), Default::default())
    };
    if wanted("groupby") {
        let seconds = best(repeat, || {
            let means = scan("groupby/*.parquet")?
                .group_by([col("key")])
                .agg([col("value").mean()])
                .collect_with_engine(Engine::Streaming)?
                .unwrap_single();
            anyhow::ensure!(means.height() == 1000, "expected 1,000 groups");
            Ok(())
        })?;
        results.insert("polars_rs_groupby_s".into(), seconds.into());
    }
    if wanted("join") {
        let seconds = best(repeat, || {
            scan("join/left/*.parquet")?
                .join(
                    scan("join/right/*.parquet")?,
                    [col("key")],
                    [col("key")],
                    JoinArgs::new(JoinType::Inner),
                )
                .select([col("w").sum()])
                .collect()?;
            Ok(())
        })?;
        results.insert("polars_rs_join_s".into(), seconds.into());
    }
    if wanted("sort") {
        let target = format!("{data}/out/polars-rs-sort.parquet");
        let seconds = best(repeat, || {
            let mut sorted = scan("sort/*.parquet")?
                .sort(["x"], SortMultipleOptions::default())
                .collect()?;
            let file = std::fs::File::create(&target).with_context(|| target.clone())?;
            ParquetWriter::new(file).finish(&mut sorted)?;
            Ok(())
        })?;
        results.insert("polars_rs_sort_s".into(), seconds.into());
    }
    Ok(())
}
