//! `rask demo`: the showcase workload on an embedded local cluster.
//!
//! A 10,000-leaf delayed graph reduced by a pairwise tree, then the same through
//! futures; every result is checked against a sequential computation. Then
//! arrays (checked against `ndarray`) and dataframes (checked against Polars).

use anyhow::{ensure, Context, Result};
use rask::prelude::*;
use rask::progress;
use std::time::Instant;

/// Options of `rask demo`.
#[derive(clap::Args)]
pub struct Args {
    /// Leaves of the tree reduction.
    #[arg(long, default_value_t = 10_000)]
    leaves: u64,
    /// Workers in the local cluster (default: one per core).
    #[arg(long, value_parser = crate::counts::at_least_one)]
    workers: Option<usize>,
    /// Threads per worker.
    #[arg(long, value_parser = crate::counts::at_least_one, default_value_t = 1)]
    threads: usize,
    /// Write a performance report of the whole run here (HTML: task stream,
    /// tasks by op, memory over time; opens in any browser, offline).
    #[arg(long, value_name = "PATH")]
    performance_report: Option<std::path::PathBuf>,
}

rask::op! {
    /// A leaf: a little arithmetic standing in for loading a chunk.
    pub fn load(i: u64) -> u64 { (0..100).fold(i, |acc, j| acc.wrapping_mul(31).wrapping_add(j) % 1_000_003) }
}

rask::op! {
    /// Combines two partial results.
    pub fn combine(a: u64, b: u64) -> u64 { (a + b) % 1_000_000_007 }
}

fn sequential(leaves: u64) -> u64 {
    let mut level: Vec<u64> = (0..leaves).map(load::call).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                if pair.len() == 2 {
                    combine::call(pair[0], pair[1])
                } else {
                    pair[0]
                }
            })
            .collect();
    }
    level.first().copied().unwrap_or(0)
}

/// Pairwise tree reduction over delayed values; returns the root and every node.
fn delayed_tree(leaves: u64) -> (Delayed<u64>, Vec<Delayed<u64>>) {
    let mut all: Vec<Delayed<u64>> = (0..leaves).map(|i| delayed(load, i)).collect();
    let mut level = all.clone();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len() / 2 + 1);
        for pair in level.chunks(2) {
            match pair {
                [a, b] => {
                    let node = delayed(combine, (a, b));
                    all.push(node.clone());
                    next.push(node);
                }
                _ => next.extend(pair.iter().cloned()),
            }
        }
        level = next;
    }
    (level.swap_remove(0), all)
}

pub fn run(args: Args) -> Result<()> {
    ensure!(args.leaves > 0, "--leaves must be at least 1");
    let mut cluster = LocalCluster::new().threads_per_worker(args.threads);
    if let Some(n) = args.workers {
        cluster = cluster.workers(n);
    }
    let client = Client::local(cluster).context("starting the local cluster")?;
    let report = match &args.performance_report {
        Some(path) => Some(client.performance_report(path)?),
        None => None,
    };
    let workers = client.cluster().map_or(0, |c| c.worker_ids().len());
    println!(
        "rask demo: local cluster with {workers} workers × {} threads",
        args.threads
    );

    let started = Instant::now();
    let expected = sequential(args.leaves);
    let sequential_time = started.elapsed();

    // 1. A delayed graph: leaves and a pairwise tree reduction, computed in one submission.
    let started = Instant::now();
    let (root, nodes) = delayed_tree(args.leaves);
    let futures = client
        .compute_many(&nodes)
        .context("submitting the delayed graph")?;
    let failed = progress(&futures, "delayed");
    ensure!(failed == 0, "{failed} tasks failed");
    let total = client
        .compute(&root)?
        .result()
        .context("computing the tree's root")?;
    let delayed_time = started.elapsed();
    ensure!(
        total == expected,
        "delayed tree gave {total}, sequential gave {expected}"
    );
    println!(
        "delayed tree reduction: {} tasks, result {total} (matches sequential) in {:.3} s",
        futures.len(),
        delayed_time.as_secs_f64()
    );
    drop(futures);

    // 2. Futures: map the leaves, then reduce pairwise with submit.
    let started = Instant::now();
    let mut level = client.map(load, 0..args.leaves)?;
    let mut all = level.clone();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len() / 2 + 1);
        for pair in level.chunks(2) {
            match pair {
                [a, b] => {
                    let future = client.submit(combine, (a, b))?;
                    all.push(future.clone());
                    next.push(future);
                }
                _ => next.extend(pair.iter().cloned()),
            }
        }
        level = next;
    }
    let failed = progress(&all, "futures");
    ensure!(failed == 0, "{failed} tasks failed");
    let total = level[0].result()?;
    let futures_time = started.elapsed();
    ensure!(
        total == expected,
        "futures tree gave {total}, sequential gave {expected}"
    );
    println!(
        "futures tree reduction: {} tasks, result {total} (matches sequential) in {:.3} s",
        all.len(),
        futures_time.as_secs_f64()
    );
    println!(
        "sequential reference: {:.3} s.",
        sequential_time.as_secs_f64()
    );

    // 3. Arrays: a symmetric matrix, its column means and spread, and a product.
    arrays(&client)?;
    // 4. Dataframes: Parquet written, read, filtered, grouped, written again.
    crate::demo_dataframe::run(&client)?;
    // 5. Bags: JSON lines written, read, words counted, grouped, made a dataframe.
    crate::demo_bag::run(&client)?;
    println!("All results checked.");
    if let Some(report) = report {
        let path = report.save()?;
        println!("Performance report: {}", path.display());
    }
    Ok(())
}

/// `rask::array` on the same cluster, checked against `ndarray` directly.
fn arrays(client: &Client) -> Result<()> {
    use ndarray::Axis;
    use rask::array::{self, UnaryOp};
    let started = Instant::now();
    let x = array::random_normal(2026, 0.0, 1.0, &[4000, 4000], 500)?;
    let symmetric = &(&x + &x.t()) * 0.5;
    let means = symmetric.mean_axis(0)?;
    let spread = symmetric.map(UnaryOp::Abs)?.max()?;
    let product = x
        .slice(ndarray::s![..1000, ..1000])?
        .matmul(&x.slice(ndarray::s![1000..2000, ..1000])?)?;
    println!("{means}");
    print!("{}", symmetric.summary());
    let got_means = means.compute::<f64>(client)?;
    let got_spread = spread.compute_scalar::<f64>(client)?;
    let got_product = product.compute::<f64>(client)?;
    let array_time = started.elapsed();

    // The same numbers, directly.
    let data = x
        .compute::<f64>(client)?
        .into_dimensionality::<ndarray::Ix2>()?;
    let direct = (&data + &data.t()) * 0.5;
    let want_means = direct
        .mean_axis(Axis(0))
        .context("mean of an empty array")?;
    let want_spread = direct.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let want_product = data
        .slice(ndarray::s![..1000, ..1000])
        .dot(&data.slice(ndarray::s![1000..2000, ..1000]));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + b.abs());
    ensure!(
        got_means
            .iter()
            .zip(want_means.iter())
            .all(|(a, b)| close(*a, *b)),
        "column means differ from ndarray's"
    );
    ensure!(
        close(got_spread, want_spread),
        "max |x| is {got_spread}, ndarray says {want_spread}"
    );
    ensure!(
        got_product
            .iter()
            .zip(want_product.iter())
            .all(|(a, b)| close(*a, *b)),
        "the matrix product differs from ndarray's"
    );
    println!(
        "arrays: (x + x.T) / 2 of a 4000×4000 random matrix, its column means and max |x|, \
         and a 1000×1000 matmul in {:.3} s (all match ndarray)",
        array_time.as_secs_f64()
    );
    Ok(())
}
