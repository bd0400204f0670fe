//! `resample` (pandas' and Dask's name) on a datetime index: rows binned into
//! fixed intervals and aggregated per bin. Bins are grouped by the groupby
//! tree, so a bin whose rows lie in several partitions is still one row; then
//! every bin from the first to the last is filled in, the empty ones with 0
//! for sums, counts, sizes and distinct counts and null for the rest, as
//! pandas does.
//!
//! Bins start at whole multiples of the interval since the Unix epoch
//! (pandas' `origin="epoch"`, which gives the same bins as its default for
//! intervals that divide a day) and are closed and labelled on the left.

use super::groupby::{output_names, Agg};
use super::interval::Interval;
use super::partition::Partition;
use super::{DataFrame, DataFrameError};
use crate::collections::kernel::{self, collection_kernel, input};
use crate::graph::Key;
use crate::ops::TaskFailure;
use crate::value::Value;
use polars::prelude::*;
use serde::{Deserialize, Serialize};

/// Most bins a resample fills in (a typo such as `"1s"` for `"1D"` over
/// years of data would otherwise ask for billions of rows).
const MAX_BINS: i64 = 100_000_000;

/// A frame's rows binned by time, waiting for an aggregation.
pub struct Resample {
    frame: DataFrame,
    index: String,
    /// The interval in ticks of the index column.
    every: i64,
}

/// What the kernel filling in the empty bins needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Bins {
    index: String,
    every: i64,
    /// Columns whose empty bins are 0 rather than null.
    zeros: Vec<String>,
}

collection_kernel! {
    "rask::dataframe::",
    /// Every bin between the first and the last, the missing ones empty.
    FillBins(Bins) => |bins, inputs| {
        let frame = &input::<Partition>(inputs, 0, "resample")?.0;
        let filled = fill_bins(frame, bins).map_err(|e| TaskFailure::new(format!("resample: {e}")))?;
        Ok(Value::new(Partition(filled)))
    }
}

fn fill_bins(
    frame: &polars::prelude::DataFrame,
    bins: &Bins,
) -> PolarsResult<polars::prelude::DataFrame> {
    let index = frame.column(&bins.index)?;
    let ticks = index.cast(&DataType::Int64)?;
    let ticks = ticks.i64()?;
    let (Some(first), Some(last)) = (ticks.min(), ticks.max()) else {
        return Ok(frame.clone());
    };
    let count = (last - first) / bins.every + 1;
    if count > MAX_BINS {
        polars_bail!(ComputeError: "{count} bins of {} ticks from the first to the last, more than {MAX_BINS}", bins.every);
    }
    let all = Int64Chunked::from_iter_values(
        bins.index.as_str().into(),
        (0..count).map(|k| first + k * bins.every),
    )
    .into_series()
    .cast(index.dtype())?;
    let mut args = JoinArgs::new(JoinType::Left);
    args.maintain_order = MaintainOrderJoin::Left;
    polars::prelude::DataFrame::new(count as usize, vec![all.into()])?
        .lazy()
        .join(
            frame.clone().lazy(),
            [col(&*bins.index)],
            [col(&*bins.index)],
            args,
        )
        .with_columns(
            bins.zeros
                .iter()
                .map(|name| {
                    let zero = frame.column(name).map(|c| lit(0).cast(c.dtype().clone()));
                    zero.map(|zero| col(name.as_str()).fill_null(zero))
                })
                .collect::<PolarsResult<Vec<_>>>()?,
        )
        .collect()
}

impl DataFrame {
    /// Rows binned by intervals of the datetime index (Dask's and pandas'
    /// `resample`): `"1h"`, `"15min"`, `"30s"`, `"1D"`, `"1W"`, or a sum
    /// such as `"1h30min"`. The index must be set ([`DataFrame::set_index`])
    /// on a `Datetime` column; calendar intervals (months) are refused.
    pub fn resample(&self, rule: &str) -> Result<Resample, DataFrameError> {
        let index = self.index().ok_or_else(|| {
            DataFrameError::Unsupported(
                "resample needs a datetime index: call set_index on a Datetime column first".into(),
            )
        })?;
        let dtype = self.schema.try_get(index)?;
        let every = Interval::parse(rule)?.ticks(dtype, index)?;
        Ok(Resample {
            frame: self.clone(),
            index: index.to_string(),
            every,
        })
    }
}

impl Resample {
    /// Aggregates `(column, agg)` pairs per bin: one partition, the index
    /// column (each bin's start) then one column per pair, named as
    /// [`super::GroupBy::agg`] names them.
    pub fn agg(&self, aggs: &[(&str, Agg)]) -> Result<DataFrame, DataFrameError> {
        self.agg_named(&output_names(aggs))
    }

    /// Aggregates `(column, agg, output name)` triples per bin.
    pub fn agg_named(&self, aggs: &[(String, Agg, String)]) -> Result<DataFrame, DataFrameError> {
        let index = self.index.as_str();
        let dtype = self.frame.schema.try_get(index)?.clone();
        let ticks = || col(index).cast(DataType::Int64);
        // t - (t mod every), with the remainder in [0, every) whichever sign
        // convention the remainder has.
        let every = || lit(self.every);
        let offset = ((ticks() % every()) + every()) % every();
        let start = (ticks() - offset).cast(dtype).alias(index);
        let grouped = self
            .frame
            .with_column(start)?
            .groupby(&[index])
            .agg_named(aggs)?;
        let zeros = aggs
            .iter()
            .filter(|(_, agg, _)| matches!(agg, Agg::Sum | Agg::Count | Agg::Size | Agg::Nunique))
            .map(|(_, _, out)| out.clone())
            .collect();
        let params = kernel::params(Bins {
            index: self.index.clone(),
            every: self.every,
            zeros,
        });
        let key = Key::new(format!("resample-{}", crate::graph::fresh_token()));
        let node = FillBins::node(key, &params, vec![grouped.partitions[0].clone()]);
        DataFrame::from_nodes("resample", grouped.schema.clone(), vec![node])
    }

    fn all(&self, agg: Agg) -> Result<DataFrame, DataFrameError> {
        let columns: Vec<String> = self
            .frame
            .columns()
            .into_iter()
            .filter(|c| *c != self.index)
            .collect();
        let pairs: Vec<(&str, Agg)> = columns.iter().map(|c| (c.as_str(), agg)).collect();
        self.agg(&pairs)
    }

    /// Every other column's sum per bin (0 for an empty bin).
    pub fn sum(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Sum)
    }

    /// Every other column's mean per bin (null for an empty bin).
    pub fn mean(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Mean)
    }

    /// Every other column's count of non-null values per bin.
    pub fn count(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Count)
    }

    /// Every other column's smallest value per bin.
    pub fn min(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Min)
    }

    /// Every other column's largest value per bin.
    pub fn max(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Max)
    }

    /// Every other column's first non-null value per bin.
    pub fn first(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::First)
    }

    /// Every other column's last non-null value per bin.
    pub fn last(&self) -> Result<DataFrame, DataFrameError> {
        self.all(Agg::Last)
    }

    /// Rows per bin, in a column named `size`.
    pub fn size(&self) -> Result<DataFrame, DataFrameError> {
        self.agg_named(&[(self.index.clone(), Agg::Size, "size".to_string())])
    }
}
