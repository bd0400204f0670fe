//! `rask arraybench`: the dask.array comparison workloads on a local cluster.
//!
//! 1. `(x + x.T).mean(axis=0)` of a 20000×20000 random float64 array in 1000×1000
//!    chunks; 2. `sum()` and `std()` of a persisted 4 GB float64 array in 100 MB
//!    chunks, with this machine's read-bandwidth bound (the persisted blocks
//!    themselves summed by plain threads with the widest vectors); 3. rechunking 20000×20000 from row to
//!    column chunks; 4. an 8000×8000 matmul; 5. `std()` of 1e9 random normal
//!    numbers (8 GB, never all in memory). `--fraction` shrinks every size.

use anyhow::{Context, Result};
use rask::array::{self, Array};
use rask::prelude::*;
use std::time::Instant;

/// Options of `rask arraybench`.
#[derive(clap::Args)]
pub struct Args {
    /// Scale every workload's element count by this factor (1 = full size).
    #[arg(long, default_value_t = 1.0)]
    fraction: f64,
    #[command(flatten)]
    cluster: crate::bench_cluster::BenchCluster,
    /// Run only these workloads (1-5), e.g. `--only 2,5`.
    #[arg(long, value_delimiter = ',')]
    only: Vec<u32>,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

fn seconds<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let start = Instant::now();
    let value = f()?;
    Ok((value, start.elapsed().as_secs_f64()))
}

/// Computes every block and waits (Dask's `persist` + `wait`).
fn persist(client: &Client, x: &Array) -> Result<Array> {
    let persisted = x.persist(client)?;
    for future in persisted.compute_blocks(client)? {
        future.shared()?;
    }
    Ok(persisted)
}

/// The median of some timings.
fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A multi-threaded streaming sum over `pieces` with the machine's widest
/// vectors and 32 accumulators per thread: the read-bandwidth bound. The
/// threads take pieces in turn, as a cluster's worker threads take blocks.
fn streaming_sum(pieces: &[&[f64]], threads: usize) -> f64 {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut total = 0.0;
                    loop {
                        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        match pieces.get(n) {
                            Some(piece) => total += rask::array::sum_f64(piece),
                            None => break total,
                        }
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
    })
}

pub fn run(args: Args) -> Result<()> {
    let client = args.cluster.client()?;
    let threads = args.cluster.total_threads();
    let wanted = |n: u32| args.only.is_empty() || args.only.contains(&n);
    let side = |n: f64| ((n * args.fraction.sqrt()).round() as usize).max(1);
    let count = |n: f64| ((n * args.fraction).round() as usize).max(1);
    let mut results = serde_json::Map::new();
    let mut record = |name: &str, value: f64| {
        results.insert(name.to_string(), serde_json::json!(value));
    };

    if wanted(1) {
        let n = side(20000.0);
        let c = side(1000.0);
        let x = array::random_uniform(1, 0.0, 1.0, &[n, n], c)?;
        let (_, t) = seconds(|| Ok((&x + &x.t()).mean_axis(0)?.compute::<f64>(&client)?))?;
        record("transpose_mean_s", t);
    }
    if wanted(2) {
        let len = count(500e6);
        let chunk = count(12.5e6);
        let x = persist(&client, &array::random_uniform(2, 0.0, 1.0, &[len], chunk)?)?;
        // Sub-second runs: the median of five, on both sides (the first sum
        // right after persisting is sometimes far faster than any later one,
        // faster even than the bound below).
        let mut sums = Vec::new();
        let mut stds = Vec::new();
        let mut total = 0.0;
        for _ in 0..5 {
            let (value, t) = seconds(|| Ok(x.sum()?.compute_scalar::<f64>(&client)?))?;
            total = value;
            sums.push(t);
            let (_, t) = seconds(|| Ok(x.std(0)?.compute_scalar::<f64>(&client)?))?;
            stds.push(t);
        }
        let (t_sum, t_std) = (median(sums), median(stds));
        // The bound: the same bytes, where the cluster keeps them, summed
        // by plain threads with no scheduling at all.
        let blocks = x
            .compute_blocks(&client)?
            .iter()
            .map(|f| f.shared())
            .collect::<Result<Vec<_>, _>>()?;
        let pieces: Vec<&[f64]> = blocks
            .iter()
            .filter_map(|b| b.view::<f64>().and_then(|a| a.as_slice_memory_order()))
            .collect();
        anyhow::ensure!(
            pieces.len() == blocks.len(),
            "blocks that are not contiguous float64"
        );
        let mut times = Vec::new();
        for _ in 0..5 {
            let (_, t) = seconds(|| Ok(streaming_sum(&pieces, threads)))?;
            times.push(t);
        }
        let best = median(times);
        drop(pieces);
        drop(blocks);
        drop(x);
        record("persisted_sum_s", t_sum);
        record("persisted_std_s", t_std);
        record("bandwidth_sum_s", best);
        record("bandwidth_gb_per_s", (len * 8) as f64 / best / 1e9);
        anyhow::ensure!(total.is_finite(), "the sum is {total}");
    }
    if wanted(3) {
        let n = side(20000.0);
        let c = side(1000.0);
        let x = persist(
            &client,
            &array::random_uniform(3, 0.0, 1.0, &[n, n], [c, n])?,
        )?;
        // New memory costs a different amount from run to run in this VM
        // (freed pages go back to the host): the median of three, on both sides.
        let mut times = Vec::new();
        for _ in 0..3 {
            let (out, t) = seconds(|| persist(&client, &x.rechunk([n, c])?))?;
            drop(out);
            times.push(t);
        }
        times.sort_by(f64::total_cmp);
        record("rechunk_s", times[1]);
    }
    if wanted(4) {
        let n = side(8000.0);
        let c = side(1000.0);
        let a = persist(&client, &array::random_uniform(4, 0.0, 1.0, &[n, n], c)?)?;
        let b = persist(&client, &array::random_uniform(5, 0.0, 1.0, &[n, n], c)?)?;
        // Ten seconds each, and the VM's speed drifts: the median of three.
        let mut times = Vec::new();
        for _ in 0..3 {
            let (out, t) = seconds(|| persist(&client, &a.matmul(&b)?))?;
            drop(out);
            times.push(t);
        }
        record("matmul_s", median(times));
    }
    if wanted(5) {
        let len = count(1e9);
        let chunk = count(12.5e6);
        let x = array::random_normal(6, 0.0, 1.0, &[len], chunk)?;
        let (std, t) = seconds(|| Ok(x.std(0)?.compute_scalar::<f64>(&client)?))?;
        anyhow::ensure!((std - 1.0).abs() < 0.01, "std of normal numbers is {std}");
        record("normal_std_s", t);
    }
    if wanted(4) {
        results.insert("gemm".into(), serde_json::json!(array::gemm_backend()));
    }
    results.insert("fraction".into(), serde_json::json!(args.fraction));
    results.insert("threads".into(), serde_json::json!(threads));
    let json = serde_json::Value::Object(results);
    if args.json {
        println!("{json}");
    } else {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).context("printing")?
        );
    }
    Ok(())
}
