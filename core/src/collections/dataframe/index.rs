//! `set_index` and `loc` (Dask's names): a frame sorted by one column into
//! partitions whose value ranges are known (its divisions), so that a range
//! of values reads only the partitions that can hold it.
//!
//! Polars frames have no index, so the index stays an ordinary column; the
//! frame remembers which column it is and the divisions. Steps that keep
//! rows in order and leave that column alone (filters, new columns, drops of
//! other columns, renames) keep the divisions; anything else forgets them.

use super::plan::Step;
use super::{DataFrame, DataFrameError};
use crate::client::Client;
use polars::prelude::*;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

/// The column a frame is sorted and partitioned by, and where each
/// partition's values start.
#[derive(Clone, Debug)]
pub(super) struct Index {
    /// The index column.
    pub(super) column: String,
    /// `npartitions + 1` values: partition `i` holds the values `v` with
    /// `divisions[i] <= v < divisions[i + 1]` (the last one inclusive), and
    /// the nulls are in the last partition. Empty when the column had no
    /// values.
    pub(super) divisions: Series,
}

/// A value of an index column (`loc`'s bounds).
pub trait IndexValue {
    /// The value as a one-element series.
    fn series(self) -> Series;
}

macro_rules! index_values {
    ($($t:ty),*) => {$(
        impl IndexValue for $t {
            fn series(self) -> Series {
                Series::new("".into(), [self])
            }
        }
    )*};
}
index_values!(i32, i64, u32, u64, f32, f64, bool, &str, String);

impl IndexValue for Series {
    fn series(self) -> Series {
        self
    }
}

impl DataFrame {
    /// Sorted by `column` into as many partitions, with known divisions
    /// (Dask's `set_index`). Like Dask, it computes now: a first pass reads
    /// only `column` and samples every partition for the divisions; the
    /// returned frame's rows move peer to peer when it is computed.
    pub fn set_index(&self, column: &str, client: &Client) -> Result<DataFrame, DataFrameError> {
        let dtype = self.schema.try_get(column)?.clone();
        let outputs = self.npartitions();
        let schema = Arc::new(Schema::from_iter([Field::new("bounds".into(), dtype)]));
        let samples = self.range_samples(column, outputs)?;
        let samples = DataFrame::from_nodes("index-sample", schema, samples)?.compute(client)?;
        let bounds = super::shuffle::bounds_of(&samples, outputs)?;
        let sorted = samples
            .column("bounds")?
            .as_materialized_series()
            .sort(SortOptions::default())?;
        let divisions = if sorted.is_empty() {
            sorted
        } else {
            let mut divisions = sorted.head(Some(1));
            divisions.append(bounds.column("bounds")?.as_materialized_series())?;
            divisions.append(&sorted.tail(Some(1)))?;
            divisions
        };
        let mut frame = self.range_partitioned("set-index", column, bounds)?;
        frame.index = Some(Arc::new(Index {
            column: column.to_string(),
            divisions: divisions.with_name(column.into()),
        }));
        Ok(frame)
    }

    /// The index column, after [`DataFrame::set_index`].
    pub fn index(&self) -> Option<&str> {
        self.index.as_deref().map(|index| index.column.as_str())
    }

    /// Where each partition's index values start, and the last one's
    /// largest (`npartitions + 1` values, Dask's `divisions`); `None` without
    /// an index or when it has no values.
    pub fn divisions(&self) -> Option<&Series> {
        self.index
            .as_deref()
            .map(|index| &index.divisions)
            .filter(|divisions| !divisions.is_empty())
    }

    /// The rows whose index value is in `range`, reading only the partitions
    /// that can hold them (Dask's `loc[a:b]`, whose ends are both included:
    /// here `a..=b`; `a..b`, `a..` and `..=b` work too). The index must
    /// be set.
    pub fn loc<T: IndexValue + Clone>(
        &self,
        range: impl RangeBounds<T>,
    ) -> Result<DataFrame, DataFrameError> {
        let index = self.index.clone().ok_or_else(|| {
            DataFrameError::Unsupported("loc needs an index: call set_index first".into())
        })?;
        let column = index.column.as_str();
        let dtype = self.schema.try_get(column)?.clone();
        let value = |bound: &T| -> Result<Series, DataFrameError> {
            bound.clone().series().strict_cast(&dtype).map_err(|e| {
                DataFrameError::Polars(format!(
                    "loc: a bound is not a {dtype} like index {column}: {e}"
                ))
            })
        };
        let start = match range.start_bound() {
            Bound::Included(b) => Some((value(b)?, true)),
            Bound::Excluded(b) => Some((value(b)?, false)),
            Bound::Unbounded => None,
        };
        let end = match range.end_bound() {
            Bound::Included(b) => Some((value(b)?, true)),
            Bound::Excluded(b) => Some((value(b)?, false)),
            Bound::Unbounded => None,
        };
        // Partitions `first..=last` can hold the range.
        let n = self.npartitions();
        let (first, last) = if index.divisions.is_empty() {
            (0, n - 1)
        } else {
            let inner = index.divisions.slice(1, n - 1);
            let place = |value: &Series| -> Result<usize, DataFrameError> {
                let at = search_sorted(&inner, value, SearchSortedSide::Right, false)?;
                Ok(at.first().unwrap_or(0) as usize)
            };
            let first = start
                .as_ref()
                .map(|(v, _)| place(v))
                .transpose()?
                .unwrap_or(0);
            let last = end
                .as_ref()
                .map(|(v, _)| place(v))
                .transpose()?
                .unwrap_or(n - 1);
            (first.min(n - 1), last.min(n - 1))
        };
        let mut keep = lit(true);
        if let Some((v, inclusive)) = start {
            let v = lit(v).first();
            keep = keep.and(if inclusive {
                col(column).gt_eq(v)
            } else {
                col(column).gt(v)
            });
        }
        if let Some((v, inclusive)) = end {
            let v = lit(v).first();
            keep = keep.and(if inclusive {
                col(column).lt_eq(v)
            } else {
                col(column).lt(v)
            });
        }
        let parts = if first > last {
            // An empty range: one partition, filtered to nothing.
            vec![self.partitions[first.min(n - 1)].clone()]
        } else {
            self.partitions[first..=last].to_vec()
        };
        let kept = parts.len();
        let mut subset = DataFrame::from_nodes("loc", self.schema.clone(), parts)?;
        subset.index = Some(Arc::new(Index {
            column: column.to_string(),
            divisions: if index.divisions.is_empty() || first > last {
                index.divisions.clear()
            } else {
                index.divisions.slice(first as i64, kept + 1)
            },
        }));
        subset.filter(keep)
    }
}

impl Index {
    /// The index after `step`, if the step keeps it.
    pub(super) fn after(self: &Arc<Index>, step: &Step) -> Option<Arc<Index>> {
        let column = self.column.as_str();
        let is_index = |e: &Expr| matches!(e, Expr::Column(name) if name.as_str() == column);
        // Only a named column or an alias surely leaves the index alone.
        let leaves_index = |e: &Expr| match e {
            Expr::Alias(_, name) | Expr::Column(name) => name.as_str() != column,
            _ => false,
        };
        let keeps = match step {
            Step::Filter(_) | Step::DropNulls(_) | Step::Head(_) | Step::Tail(_) => true,
            Step::Unique(_) => true,
            Step::WithColumns(exprs) => exprs.iter().all(leaves_index),
            Step::Select(exprs) => exprs.iter().any(is_index),
            Step::Drop(columns) => !columns.iter().any(|c| c == column),
            Step::Rename(old, new) => {
                if let Some(at) = old.iter().position(|c| c == column) {
                    let mut renamed = (**self).clone();
                    renamed.column = new[at].clone();
                    renamed.divisions = renamed.divisions.with_name(new[at].as_str().into());
                    return Some(Arc::new(renamed));
                }
                true
            }
            _ => false,
        };
        keeps.then(|| self.clone())
    }
}
