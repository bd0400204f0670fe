//! `describe`: count, mean, std, min, quartiles and max of every numeric
//! column (Dask's and pandas' summary). Each partition summarises itself in one
//! row (moments, extremes and 21 evenly spaced percentiles); the client merges
//! the rows: moments exactly (Chan's formula for the variance), quartiles
//! approximately from the partitions' percentiles weighted by their counts, as
//! Dask merges percentile summaries.

use super::{DataFrame, DataFrameError};
use crate::client::Client;
use polars::prelude::*;

/// Percentiles each partition reports, evenly spaced from 0 to 100%.
const POINTS: usize = 21;
/// The statistics, in Dask's order and names.
const STATISTICS: [&str; 8] = ["count", "mean", "std", "min", "25%", "50%", "75%", "max"];

impl DataFrame {
    /// A frame with a `statistic` column (count, mean, std, min, 25%, 50%,
    /// 75%, max) and one `f64` column per numeric column (Dask's
    /// `describe().compute()`). Nulls are left out; std has `ddof` 1.
    pub fn describe(&self, client: &Client) -> Result<polars::prelude::DataFrame, DataFrameError> {
        let numeric: Vec<String> = self
            .schema
            .iter()
            .filter(|(_, dtype)| dtype.is_primitive_numeric())
            .map(|(name, _)| name.to_string())
            .collect();
        if numeric.is_empty() {
            return Err(DataFrameError::Unsupported(
                "describe needs a numeric column".into(),
            ));
        }
        let mut exprs = Vec::new();
        for (i, name) in numeric.iter().enumerate() {
            let x = || col(name.as_str()).cast(DataType::Float64);
            let deviation = x() - x().mean();
            exprs.extend([
                x().count().cast(DataType::Float64).alias(format!("{i}_n")),
                x().mean().alias(format!("{i}_mean")),
                (deviation.clone() * deviation)
                    .sum()
                    .alias(format!("{i}_m2")),
                x().min().alias(format!("{i}_min")),
                x().max().alias(format!("{i}_max")),
            ]);
            for k in 0..POINTS {
                let q = k as f64 / (POINTS - 1) as f64;
                exprs.push(
                    x().quantile(lit(q), QuantileMethod::Linear)
                        .alias(format!("{i}_q{k}")),
                );
            }
        }
        let partials = self.select(exprs)?.compute(client)?;
        let mut columns = vec![Column::new("statistic".into(), STATISTICS)];
        for (i, name) in numeric.iter().enumerate() {
            let get = |what: &str| -> Result<Vec<Option<f64>>, DataFrameError> {
                Ok(partials
                    .column(&format!("{i}_{what}"))?
                    .f64()?
                    .iter()
                    .collect())
            };
            let (n, mean, m2) = (get("n")?, get("mean")?, get("m2")?);
            let (min, max) = (get("min")?, get("max")?);
            let points: Vec<Vec<Option<f64>>> = (0..POINTS)
                .map(|k| get(&format!("q{k}")))
                .collect::<Result<_, _>>()?;
            let stats = merge(&n, &mean, &m2, &min, &max, &points);
            columns.push(Column::new(name.as_str().into(), stats));
        }
        Ok(polars::prelude::DataFrame::new(STATISTICS.len(), columns)?)
    }
}

/// The eight statistics of one column from its partitions' summaries.
fn merge(
    n: &[Option<f64>],
    mean: &[Option<f64>],
    m2: &[Option<f64>],
    min: &[Option<f64>],
    max: &[Option<f64>],
    points: &[Vec<Option<f64>>],
) -> Vec<Option<f64>> {
    let parts: Vec<usize> = (0..n.len())
        .filter(|&p| n[p].unwrap_or(0.0) > 0.0)
        .collect();
    let count: f64 = parts.iter().map(|&p| n[p].unwrap_or(0.0)).sum();
    if parts.is_empty() {
        return vec![Some(0.0), None, None, None, None, None, None, None];
    }
    let total_mean = parts
        .iter()
        .map(|&p| n[p].unwrap_or(0.0) * mean[p].unwrap_or(0.0))
        .sum::<f64>()
        / count;
    let spread: f64 = parts
        .iter()
        .map(|&p| {
            let d = mean[p].unwrap_or(0.0) - total_mean;
            m2[p].unwrap_or(0.0) + n[p].unwrap_or(0.0) * d * d
        })
        .sum();
    let std = (count > 1.0).then(|| (spread / (count - 1.0)).sqrt());
    let low = parts
        .iter()
        .filter_map(|&p| min[p])
        .fold(f64::INFINITY, f64::min);
    let high = parts
        .iter()
        .filter_map(|&p| max[p])
        .fold(f64::NEG_INFINITY, f64::max);
    // Every partition's percentile points, each standing for an equal share
    // of its rows.
    let mut weighted: Vec<(f64, f64)> = Vec::new();
    for &p in &parts {
        let weight = n[p].unwrap_or(0.0) / POINTS as f64;
        weighted.extend(points.iter().filter_map(|k| k[p]).map(|v| (v, weight)));
    }
    weighted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let quantile = |q: f64| -> Option<f64> {
        if parts.len() == 1 {
            // One partition's own percentiles are exact at the quartiles.
            let k = (q * (POINTS - 1) as f64).round() as usize;
            return points.get(k).and_then(|k| k[parts[0]]);
        }
        let target = q * count;
        let mut seen = 0.0;
        for &(value, weight) in &weighted {
            seen += weight;
            if seen >= target {
                return Some(value);
            }
        }
        weighted.last().map(|w| w.0)
    };
    vec![
        Some(count),
        Some(total_mean),
        std,
        Some(low),
        quantile(0.25),
        quantile(0.5),
        quantile(0.75),
        Some(high),
    ]
}
