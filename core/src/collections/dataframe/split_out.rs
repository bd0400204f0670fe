//! Choosing a groupby's `split_out` from statistics (Dask's `split_out=True`):
//! the first, middle and last partitions are grouped by the keys once, and
//! from how many groups each holds and how much the samples' groups overlap,
//! the number of groups in the whole frame is estimated. A tree reduction
//! puts them all in one partition; when that would be more than the target
//! size, they are shuffled into as many partitions as it takes.

use super::groupby::GroupBy;
use super::plan::Step;
use super::{DataFrame, DataFrameError};
use crate::client::Client;
use polars::prelude::*;

/// Dask's default partition size: about 128 MiB.
pub const DEFAULT_PARTITION_BYTES: u64 = 128 << 20;

/// Bytes a group's aggregates are taken to add to its keys.
const AGGREGATE_BYTES: f64 = 32.0;

/// How many partitions are looked at.
const SAMPLES: usize = 3;

/// What the samples say about the whole frame's groups.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupEstimate {
    /// Groups in the whole frame, estimated.
    pub groups: f64,
    /// Bytes of one group's keys and aggregates, estimated.
    pub bytes_per_group: f64,
}

impl GroupEstimate {
    /// Output partitions for groups of at most `bytes` each (at least 1).
    pub fn split_out(&self, bytes: u64, npartitions: usize) -> usize {
        let needed = (self.groups * self.bytes_per_group / bytes.max(1) as f64).ceil();
        (needed as usize).clamp(1, npartitions.max(1))
    }
}

/// The partitions sampled out of `n`: first, middle and last.
fn samples(n: usize) -> Vec<usize> {
    let mut picked = vec![0, n / 2, n.saturating_sub(1)];
    picked.dedup();
    picked.truncate(SAMPLES.min(n));
    picked
}

fn exprs_of(keys: &[String]) -> Vec<Expr> {
    keys.iter().map(|k| col(k.as_str())).collect()
}

/// Estimates the groups of `frame` by `keys` from sampled partitions.
pub(super) fn estimate_groups(
    frame: &DataFrame,
    keys: &[String],
    client: &Client,
) -> Result<GroupEstimate, DataFrameError> {
    let n = frame.npartitions();
    let grouped = frame
        .then(
            "split-out-probe",
            Step::GroupBy(exprs_of(keys), vec![len()]),
        )?
        .then("split-out-probe", Step::DropNulls(Some(keys.to_vec())))?;
    let picked = samples(n);
    let nodes = picked
        .iter()
        .map(|&i| grouped.partitions[i].clone())
        .collect();
    let parts = DataFrame::from_nodes("split-out-sample", grouped.schema.clone(), nodes)?
        .compute_partitions(client)?;
    let groups: Vec<f64> = parts.iter().map(|p| p.height() as f64).collect();
    let sum: f64 = groups.iter().sum();
    let largest = groups.iter().copied().fold(0.0, f64::max);
    if parts.is_empty() {
        return Ok(GroupEstimate {
            groups: 0.0,
            bytes_per_group: AGGREGATE_BYTES,
        });
    }
    let sampled: Vec<LazyFrame> = parts.into_iter().map(IntoLazy::lazy).collect();
    let union = concat(sampled, UnionArgs::default())?
        .select(exprs_of(keys))
        .unique(None, UniqueKeepStrategy::Any)
        .collect()?;
    let distinct = union.height() as f64;
    let key_bytes = if union.height() > 0 {
        union.estimated_size() as f64 / distinct
    } else {
        0.0
    };
    // 0: every sample holds the same groups; 1: no two share one.
    let overlap = if sum > largest {
        ((distinct - largest) / (sum - largest)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let unseen = (n - picked.len()) as f64;
    let mean = sum / picked.len().max(1) as f64;
    Ok(GroupEstimate {
        groups: distinct + overlap * mean * unseen,
        bytes_per_group: key_bytes + AGGREGATE_BYTES,
    })
}

impl GroupBy {
    /// Chooses `split_out` from statistics (Dask's `split_out=True`) for
    /// output partitions of about [`DEFAULT_PARTITION_BYTES`]: 1 (a tree
    /// reduction) for few groups, a shuffle into several partitions for many.
    /// Runs the first, middle and last partitions' grouping once to see.
    pub fn split_out_auto(self, client: &Client) -> Result<GroupBy, DataFrameError> {
        self.split_out_by_size(DEFAULT_PARTITION_BYTES, client)
    }

    /// Like [`GroupBy::split_out_auto`], for output partitions of about
    /// `bytes` each.
    pub fn split_out_by_size(self, bytes: u64, client: &Client) -> Result<GroupBy, DataFrameError> {
        if bytes == 0 {
            return Err(DataFrameError::Invalid(
                "split_out_by_size: a partition size must be more than 0 bytes".into(),
            ));
        }
        let estimate = estimate_groups(self.frame(), self.keys(), client)?;
        let n = estimate.split_out(bytes, self.frame().npartitions());
        tracing::debug!(?estimate, split_out = n, "split_out chosen from statistics");
        Ok(self.split_out(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_first_middle_and_last() {
        assert_eq!(samples(1), vec![0]);
        assert_eq!(samples(2), vec![0, 1]);
        assert_eq!(samples(3), vec![0, 1, 2]);
        assert_eq!(samples(50), vec![0, 25, 49]);
    }

    #[test]
    fn split_out_grows_with_the_groups_bytes() {
        let few = GroupEstimate {
            groups: 1000.0,
            bytes_per_group: 40.0,
        };
        assert_eq!(few.split_out(DEFAULT_PARTITION_BYTES, 50), 1);
        let many = GroupEstimate {
            groups: 50e6,
            bytes_per_group: 40.0,
        };
        assert_eq!(many.split_out(DEFAULT_PARTITION_BYTES, 50), 15);
        assert_eq!(
            many.split_out(DEFAULT_PARTITION_BYTES, 4),
            4,
            "at most one per partition"
        );
    }
}
