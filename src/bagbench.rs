//! `rask bagbench`: the dask.bag comparison workload on a local cluster, on
//! the files `benches/dask_bagbench.py generate` writes: word frequencies
//! over 1 GB of JSON lines (parse each line, pluck `text`, split on
//! whitespace, flatten, count, the ten commonest).

use anyhow::Result;
use rask::bag::{read_json, Func, Json};
use std::time::Instant;

/// Options of `rask bagbench`.
#[derive(clap::Args)]
pub struct Args {
    /// The directory the data generator wrote.
    #[arg(long)]
    data: String,
    #[command(flatten)]
    cluster: crate::bench_cluster::BenchCluster,
    /// Timed runs; the best is reported.
    #[arg(long, value_parser = crate::counts::at_least_one, default_value_t = 3)]
    repeat: usize,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> Result<()> {
    let client = args.cluster.client()?;
    let data = args.data.trim_end_matches('/');
    let mut best = f64::INFINITY;
    let mut top = Vec::new();
    for _ in 0..args.repeat {
        let start = Instant::now();
        top = read_json(&format!("{data}/*.json"), None)?
            .pluck("text")?
            .map(Func::split_whitespace())?
            .flatten()?
            .frequencies()?
            .topk(10, Some(Func::get(1)))?
            .compute(&client)?;
        best = best.min(start.elapsed().as_secs_f64());
    }
    if args.json {
        println!("{}", serde_json::json!({ "words_s": best, "top": top }));
    } else {
        println!(
            "word frequencies: best of {} {best:.3} s; top: {}",
            args.repeat,
            Json::Array(top)
        );
    }
    Ok(())
}
