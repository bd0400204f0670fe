//! `merge` (Dask's name; Polars' `join`). Joins broadcast
//! a small side: its partitions are stacked into one frame that every
//! partition of the other side's task takes whole. Larger joins shuffle both
//! sides by key, peer to peer, and join matching partitions.

use super::plan::Step;
use super::{DataFrame, DataFrameError, Side};
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

/// The join of a task's rows with its side frame `side`.
fn join_step(side: usize, left_on: &[&str], right_on: &[&str], how: How) -> Step {
    let names = |cols: &[&str]| cols.iter().map(|c| c.to_string()).collect::<Vec<_>>();
    Step::Join {
        side,
        left_on: names(left_on),
        right_on: names(right_on),
        how: how.join_type(),
        suffix: "_right".into(),
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
    /// partitions; two frames of at most 8 partitions each are joined by one
    /// task; any other join shuffles both sides by their keys (peer to peer)
    /// into as many partitions as the larger side has and joins them pairwise.
    pub fn merge_on(
        &self,
        other: &DataFrame,
        left_on: &[&str],
        right_on: &[&str],
        how: How,
    ) -> Result<DataFrame, DataFrameError> {
        let small = |frame: &DataFrame| frame.npartitions() <= BROADCAST_PARTITIONS;
        let rows = match how {
            How::Inner | How::Left if small(other) => self.clone(),
            _ if small(self) && small(other) => self.repartition(1)?,
            _ => return self.shuffle_join(other, left_on, right_on, how),
        };
        let whole = other.repartition(1)?;
        let side = Side {
            node: whole.partitions[0].clone(),
            schema: whole.schema.clone(),
        };
        let step = join_step(rows.sides.len(), left_on, right_on, how);
        rows.then_with("merge", step, Some(side))
    }

    /// Both sides shuffled by their keys into the same number of partitions,
    /// joined pairwise (Dask's hash join).
    fn shuffle_join(
        &self,
        other: &DataFrame,
        left_on: &[&str],
        right_on: &[&str],
        how: How,
    ) -> Result<DataFrame, DataFrameError> {
        let n = self.npartitions().max(other.npartitions());
        let step = join_step(0, left_on, right_on, how);
        let schema = super::schema_after(
            &self.schema,
            std::slice::from_ref(&step),
            std::slice::from_ref(&other.schema),
        )?;
        let nodes = super::shuffle::hash_join((self, left_on), (other, right_on), n, step)?;
        DataFrame::from_nodes("hash-join", schema, nodes)
    }
}
