//! The dataframe part of `rask demo`: a generated table written to Parquet,
//! read back by glob, filtered and grouped on the cluster, the result written
//! and read again; every number checked against Polars on the whole table.

use anyhow::{ensure, Result};
use rask::dataframe::polars::prelude::*;
use rask::dataframe::{self as dd, Agg};
use rask::prelude::*;
use std::time::Instant;

/// Rows of the generated table.
const ROWS: usize = 1_000_000;

/// A deterministic table of trips: vendor, passengers, distance, fare.
fn trips() -> Result<DataFrame> {
    let vendors = ["acme", "blue", "city", "delta", "echo"];
    let mut state = 2026u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut vendor, mut passengers, mut distance) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROWS {
        let r = next();
        vendor.push(vendors[(r % 5) as usize]);
        passengers.push(((r >> 8) % 6 + 1) as i64);
        distance.push(((r >> 16) % 3000) as f64 / 100.0);
    }
    let frame = df!("vendor" => vendor, "passengers" => passengers, "distance" => distance)?;
    Ok(frame
        .lazy()
        .with_column((lit(3.0) + col("distance") * lit(2.5)).alias("fare"))
        .collect()?)
}

/// Runs the workload on `client` and prints what it found.
pub fn run(client: &Client) -> Result<()> {
    let table = trips()?;
    let dir = std::env::temp_dir().join(format!("rask-demo-{}", std::process::id()));
    let dir_text = dir.display().to_string();
    let started = Instant::now();
    dd::DataFrame::from_polars(table.clone(), 8)?
        .to_parquet(&format!("{dir_text}/trips"), client)?;
    let read = dd::read_parquet(&format!("{dir_text}/trips/*.parquet"))?;
    let busy = read.filter(col("passengers").gt(lit(2)))?;
    let by_vendor = busy.groupby(&["vendor"]).agg(&[
        ("fare", Agg::Mean),
        ("fare", Agg::Sum),
        ("distance", Agg::Max),
        ("passengers", Agg::Count),
    ])?;
    by_vendor.to_parquet(&format!("{dir_text}/by_vendor"), client)?;
    let got = dd::read_parquet(&format!("{dir_text}/by_vendor"))?.compute(client)?;
    let elapsed = started.elapsed();
    std::fs::remove_dir_all(&dir)?;
    println!("{read}");
    println!("{got}");

    let want = table
        .lazy()
        .filter(col("passengers").gt(lit(2)))
        .group_by([col("vendor")])
        .agg([
            col("fare").mean().alias("fare_mean"),
            col("fare").sum().alias("fare_sum"),
            col("distance").max(),
            col("passengers").count(),
        ])
        .sort(["vendor"], Default::default())
        .collect()?;
    ensure!(got.shape() == want.shape(), "{got}\nPolars says\n{want}");
    for name in want.get_column_names() {
        let (a, b) = (got.column(name)?, want.column(name)?);
        let same = if a.dtype().is_float() {
            let diff = (a.as_materialized_series() - b.as_materialized_series())?;
            let worst = diff
                .f64()?
                .iter()
                .flatten()
                .fold(0.0f64, |m, d| m.max(d.abs()));
            worst < 1e-6 * (1.0 + ROWS as f64)
        } else {
            a.as_materialized_series()
                .equals_missing(b.as_materialized_series())
        };
        ensure!(same, "column {name} differs from Polars':\n{got}\n{want}");
    }
    println!(
        "dataframes: {ROWS} rows to 8 Parquet files, read back by glob, filtered and grouped \
         by vendor, the result written and read again in {:.3} s (matches Polars)",
        elapsed.as_secs_f64()
    );
    Ok(())
}
