//! `rask dataframebench`: the dask.dataframe comparison workloads on a local
//! cluster, on the files `benches/dask_dataframebench.py generate` writes:
//!
//! - groupby: mean of `value` by `key`, 50M rows in 50 Parquet files, 1,000 keys;
//! - join: 10M rows joined with 1M on `key` (the small side broadcast), then
//!   the sum of the joined `w`;
//! - sort: 10M rows sorted by `x` (a peer-to-peer shuffle), written to Parquet.

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
    let client = args.cluster.client()?;
    let wanted = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let data = args.data.trim_end_matches('/');
    let mut results = serde_json::Map::new();
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
    if args.json {
        println!("{}", serde_json::Value::Object(results));
    } else {
        for (name, seconds) in &results {
            println!("{name}: {seconds:.3}");
        }
    }
    Ok(())
}
