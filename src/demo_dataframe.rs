//! The dataframe part of `rask demo`: a generated table written to Parquet,
//! read back by glob, filtered and grouped on the cluster, the result written
//! and read again; the trips joined with their vendors' regions and sorted by
//! fare (a peer-to-peer shuffle); every number checked against Polars on the
//! whole table.

use anyhow::{ensure, Result};
use rask::dataframe::polars::prelude::*;
use rask::dataframe::{self as dd, Agg, How};
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
    let regions = df!(
        "vendor" => ["acme", "blue", "city", "delta", "echo"],
        "region" => ["north", "south", "north", "east", "west"]
    )?;
    let by_fare = busy
        .merge(
            &dd::DataFrame::from_polars(regions.clone(), 1)?,
            &["vendor"],
            How::Inner,
        )?
        .sort_values(&["fare"], true)?;
    let top = by_fare.head(5, client)?;
    let fares = by_fare.select_columns(&["fare"])?.compute(client)?;
    let elapsed = started.elapsed();
    std::fs::remove_dir_all(&dir)?;
    println!("{read}");
    println!("{got}");
    println!("the dearest trips, with their regions:\n{top}");

    let want = table
        .clone()
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
    let want_fares = table
        .lazy()
        .filter(col("passengers").gt(lit(2)))
        .join(
            regions.lazy(),
            [col("vendor")],
            [col("vendor")],
            JoinArgs::new(JoinType::Inner),
        )
        .select([col("fare")])
        .sort(
            ["fare"],
            SortMultipleOptions::default().with_order_descending(true),
        )
        .collect()?;
    ensure!(
        fares.equals(&want_fares),
        "the fares sorted on the cluster differ from Polars'"
    );
    ensure!(top.height() == 5 && top.column("region").is_ok(), "{top}");
    println!(
        "dataframes: {ROWS} rows to 8 Parquet files, read back by glob, filtered and grouped \
         by vendor, the result written and read again, joined with the vendors' regions \
         and sorted by fare, in {:.3} s (matches Polars)",
        elapsed.as_secs_f64()
    );
    Ok(())
}
