//! `merge` (Dask's name; Polars' `join`) and `repartition`. Joins broadcast
//! the smaller side: its partitions are stacked into one frame that every
//! partition of the other side's task takes whole.

use super::plan::{Origin, Plan, Step};
use super::{kernels, DataFrame, DataFrameError, Side};
use crate::graph::Key;
use polars::prelude::JoinType;

/// A side with at most this many partitions is broadcast.
const BROADCAST_PARTITIONS: usize = 8;

/// Which rows a join keeps (pandas' and Dask's `how`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum How {
    /// Rows whose keys are on both sides.
    Inner,
    /// Every left row.
    Left,
    /// Every right row.
    Right,
    /// Every row of either side.
    Outer,
}

impl How {
    fn join_type(self) -> JoinType {
        match self {
            How::Inner => JoinType::Inner,
            How::Left => JoinType::Left,
            How::Right => JoinType::Right,
            How::Outer => JoinType::Full,
        }
    }
}

impl DataFrame {
    /// Joins with `other` on key columns of the same names (Dask's
    /// `merge(other, on=…, how=…)`); clashing columns of `other` get `_right`.
    pub fn merge(
        &self,
        other: &DataFrame,
        on: &[&str],
        how: How,
    ) -> Result<DataFrame, DataFrameError> {
        self.merge_on(other, on, on, how)
    }

    /// Joins this frame's `left_on` columns with `other`'s `right_on` columns.
    ///
    /// Inner and left joins broadcast `other` when it has at most 8
    /// partitions; right and outer joins, and any join of two larger frames,
    /// need the shuffle join that is not built yet, except when both sides
    /// have at most 8 partitions (then one task joins them).
    pub fn merge_on(
        &self,
        other: &DataFrame,
        left_on: &[&str],
        right_on: &[&str],
        how: How,
    ) -> Result<DataFrame, DataFrameError> {
        let names = |cols: &[&str]| cols.iter().map(|c| c.to_string()).collect::<Vec<_>>();
        let small = |frame: &DataFrame| frame.npartitions() <= BROADCAST_PARTITIONS;
        let rows = match how {
            How::Inner | How::Left if small(other) => self.clone(),
            _ if small(self) && small(other) => self.repartition(1)?,
            _ => {
                return Err(DataFrameError::Unsupported(format!(
                    "a {how:?} join of {} and {} partitions needs a shuffle join, which is not built yet \
                     (repartition one side to at most {BROADCAST_PARTITIONS} partitions to broadcast it)",
                    self.npartitions(),
                    other.npartitions()
                )))
            }
        };
        let whole = other.repartition(1)?;
        let side = Side {
            node: whole.partitions[0].clone(),
            schema: whole.schema.clone(),
        };
        let step = Step::Join {
            side: rows.sides.len(),
            left_on: names(left_on),
            right_on: names(right_on),
            how: how.join_type(),
            suffix: "_right".into(),
        };
        rows.then_with("merge", step, Some(side))
    }

    /// The same rows in `n` partitions (Dask's `repartition(npartitions=n)`):
    /// neighbours stacked when there are fewer, each split into row ranges
    /// when there are more. Row order is kept.
    pub fn repartition(&self, n: usize) -> Result<DataFrame, DataFrameError> {
        let n = n.max(1);
        let have = self.npartitions();
        if n == have {
            return Ok(self.clone());
        }
        let token = crate::graph::fresh_token();
        let key = |i: usize| Key::new(format!("repartition-{token}")).indexed(&[i]);
        let nodes = if n < have {
            let plan = Plan {
                origin: Origin::Inputs,
                steps: Vec::new(),
                sides: 0,
            };
            (0..n)
                .map(|g| {
                    let group = self.partitions[have * g / n..have * (g + 1) / n].to_vec();
                    kernels::run_plan(key(g), &plan, group)
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            let mut nodes = Vec::with_capacity(n);
            for (i, node) in self.partitions.iter().enumerate() {
                let pieces = n * (i + 1) / have - n * i / have;
                for part in 0..pieces {
                    let plan = Plan {
                        origin: Origin::Inputs,
                        steps: vec![Step::Slice { part, of: pieces }],
                        sides: 0,
                    };
                    nodes.push(kernels::run_plan(
                        key(nodes.len()),
                        &plan,
                        vec![node.clone()],
                    )?);
                }
            }
            nodes
        };
        DataFrame::from_nodes("repartition", self.schema.clone(), nodes)
    }
}
