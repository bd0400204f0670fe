//! Reductions of whole dataframes to one partition, as trees: each partition
//! reduces its own rows, then the partial results are stacked and reduced a
//! few at a time (`split_every`) until one is left. Groupby aggregations,
//! `value_counts`, `unique`, `nunique` and `drop_duplicates` are all this;
//! their `split_out` forms shuffle the partial results instead.

use super::plan::{Origin, Plan, Step};
use super::{kernels, DataFrame, DataFrameError};
use crate::client::Client;
use crate::graph::Key;
use polars::prelude::*;

/// Partials stacked and reduced per task.
pub(super) const SPLIT_EVERY: usize = 8;

/// `partial` (already `frame`'s last steps) reduced by `combine` until at most
/// [`SPLIT_EVERY`] are left, then by `last` into one partition.
pub(super) fn tree(
    prefix: &str,
    partial: &DataFrame,
    combine: Vec<Step>,
    last: Vec<Step>,
) -> Result<DataFrame, DataFrameError> {
    let schema = super::schema_after(partial.schema(), &last, &[])?;
    let token = crate::graph::fresh_token();
    let mut level: Vec<_> = partial.partitions.to_vec();
    let mut depth = 0;
    loop {
        depth += 1;
        let is_last = level.len() <= SPLIT_EVERY;
        let plan = Plan {
            origin: Origin::Inputs,
            steps: if is_last {
                last.clone()
            } else {
                combine.clone()
            },
            sides: 0,
        };
        level = level
            .chunks(SPLIT_EVERY)
            .enumerate()
            .map(|(g, group)| {
                let key = Key::new(format!("{prefix}{depth}-{token}")).indexed(&[g]);
                kernels::run_plan(key, &plan, group.to_vec())
            })
            .collect::<Result<_, _>>()?;
        if is_last {
            break;
        }
    }
    DataFrame::from_nodes(prefix, schema, level)
}

impl DataFrame {
    /// How often each non-null value of `column` occurs, most frequent
    /// first, in columns `column` and `count` (Dask's `value_counts`).
    pub fn value_counts(&self, column: &str) -> Result<DataFrame, DataFrameError> {
        let (partial, combine, order) = self.value_count_stages(column)?;
        tree(
            "value-counts",
            &partial,
            vec![combine.clone()],
            vec![combine, order],
        )
    }

    /// [`DataFrame::value_counts`] into `n` partitions (Dask's `split_out`):
    /// the partial counts are shuffled by value, peer to peer, so no task
    /// holds every value. Each partition is sorted most frequent first; a
    /// value is in exactly one partition.
    pub fn value_counts_split_out(
        &self,
        column: &str,
        n: usize,
    ) -> Result<DataFrame, DataFrameError> {
        if n <= 1 {
            return self.value_counts(column);
        }
        let (partial, combine, order) = self.value_count_stages(column)?;
        partial.shuffle_then(&[column], n, vec![combine, order])
    }

    /// Each partition's counts, the step that adds counts up, and the order.
    fn value_count_stages(&self, column: &str) -> Result<(DataFrame, Step, Step), DataFrameError> {
        let key = || vec![col(column)];
        // The null value's count is dropped after counting (cheaper than
        // filtering every row first, as in groupby).
        let partial = self
            .then(
                "value-counts",
                Step::GroupBy(key(), vec![len().cast(DataType::UInt64).alias("count")]),
            )?
            .then(
                "value-counts",
                Step::DropNulls(Some(vec![column.to_string()])),
            )?;
        let combine = Step::GroupBy(key(), vec![col("count").sum()]);
        let order = Step::Sort(
            vec!["count".to_string(), column.to_string()],
            vec![true, false],
        );
        Ok((partial, combine, order))
    }

    /// The distinct values of `column`, nulls included, in order of first
    /// appearance (Dask's `unique`).
    pub fn unique(&self, column: &str) -> Result<DataFrame, DataFrameError> {
        let unique = Step::Unique(None);
        let partial = self
            .then("unique", Step::Select(vec![col(column)]))?
            .then("unique", unique.clone())?;
        tree("unique", &partial, vec![unique.clone()], vec![unique])
    }

    /// [`DataFrame::unique`] into `n` partitions (Dask's `split_out`), by a
    /// peer-to-peer shuffle of each partition's distinct values; a value is
    /// in exactly one partition.
    pub fn unique_split_out(&self, column: &str, n: usize) -> Result<DataFrame, DataFrameError> {
        if n <= 1 {
            return self.unique(column);
        }
        let partial = self
            .then("unique", Step::Select(vec![col(column)]))?
            .then("unique", Step::Unique(None))?;
        partial.shuffle_then(&[column], n, vec![Step::Unique(None)])
    }

    /// How many distinct non-null values `column` holds (Dask's `nunique`).
    pub fn nunique(&self, column: &str, client: &Client) -> Result<usize, DataFrameError> {
        self.dropna(Some(&[column]))?.unique(column)?.len(client)
    }

    /// Rows whose `subset` columns (all when `None`) repeat an earlier row
    /// dropped, keeping the first; one partition (Dask's `drop_duplicates`
    /// with `split_out=1`).
    pub fn drop_duplicates(&self, subset: Option<&[&str]>) -> Result<DataFrame, DataFrameError> {
        let subset = subset.map(|s| s.iter().map(|c| c.to_string()).collect::<Vec<_>>());
        let unique = Step::Unique(subset);
        let partial = self.then("drop-duplicates", unique.clone())?;
        tree(
            "drop-duplicates",
            &partial,
            vec![unique.clone()],
            vec![unique],
        )
    }

    /// [`DataFrame::drop_duplicates`] into `n` partitions (Dask's
    /// `split_out`): each partition's distinct rows are shuffled by their
    /// `subset` columns (all when `None`), peer to peer, and made distinct
    /// again; the first of equal rows is kept, in partition order.
    pub fn drop_duplicates_split_out(
        &self,
        subset: Option<&[&str]>,
        n: usize,
    ) -> Result<DataFrame, DataFrameError> {
        if n <= 1 {
            return self.drop_duplicates(subset);
        }
        let columns: Vec<String> = match subset {
            Some(subset) => subset.iter().map(|c| c.to_string()).collect(),
            None => self.columns(),
        };
        let on: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
        let unique = Step::Unique(subset.map(|_| columns.clone()));
        let partial = self.then("drop-duplicates", unique.clone())?;
        partial.shuffle_then(&on, n, vec![unique])
    }
}
