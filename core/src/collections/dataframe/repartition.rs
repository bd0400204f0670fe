//! `repartition` (Dask's name): the same rows in another number of
//! partitions, or in partitions of about a given size in memory. Row order is
//! kept either way.

use super::kernels;
use super::partition::Partition;
use super::plan::{Origin, Plan, Step};
use super::{DataFrame, DataFrameError};
use crate::client::lazy::Node;
use crate::client::Client;
use crate::collections::kernel::{self, collection_kernel, input};
use crate::graph::Key;
use crate::value::Value;
use polars::prelude::*;
use std::sync::Arc;

collection_kernel! {
    "rask::dataframe::",
    /// A partition's size in memory, in bytes (Polars' estimate), and its
    /// rows, as a one-row frame with `bytes` and `rows` columns.
    PartitionBytes(()) => |_, inputs| {
        let frame = &input::<Partition>(inputs, 0, "partition size")?.0;
        let (bytes, rows) = (frame.estimated_size() as u64, frame.height() as u64);
        let row = df!("bytes" => [bytes], "rows" => [rows])
            .map_err(|e| crate::ops::TaskFailure::new(e.to_string()))?;
        Ok(Value::new(Partition(row)))
    }
}

impl DataFrame {
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

    /// The same rows in partitions of at most about `bytes` bytes in memory
    /// each (Dask's `repartition(partition_size=…)`): a partition larger than
    /// that is split into even row ranges, and neighbouring pieces are
    /// stacked while they fit. Like Dask's, it computes the frame once now to
    /// measure its partitions (persist it first to compute it only once).
    pub fn repartition_size(
        &self,
        bytes: u64,
        client: &Client,
    ) -> Result<DataFrame, DataFrameError> {
        if bytes == 0 {
            return Err(DataFrameError::Invalid(
                "repartition_size: a partition size must be more than 0 bytes".into(),
            ));
        }
        let token = crate::graph::fresh_token();
        let params = kernel::params(());
        let measured: Vec<Arc<Node>> = self
            .partitions
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let key = Key::new(format!("partition-bytes-{token}")).indexed(&[i]);
                PartitionBytes::node(key, &params, vec![part.clone()])
            })
            .collect();
        let schema = Arc::new(Schema::from_iter([
            Field::new("bytes".into(), DataType::UInt64),
            Field::new("rows".into(), DataType::UInt64),
        ]));
        let sizes = DataFrame::from_nodes("partition-bytes", schema, measured)?.compute(client)?;
        let sizes: Vec<(u64, u64)> = sizes
            .column("bytes")?
            .u64()?
            .iter()
            .zip(sizes.column("rows")?.u64()?.iter())
            .map(|(bytes, rows)| (bytes.unwrap_or(0), rows.unwrap_or(0)))
            .collect();
        if sizes.is_empty() {
            return Ok(self.clone());
        }
        let groups = size_groups(&sizes, bytes);
        let key = |i: usize| Key::new(format!("repartition-size-{token}")).indexed(&[i]);
        let mut nodes = Vec::with_capacity(groups.len());
        for group in groups {
            let node = match group.as_slice() {
                [Piece {
                    partition, of: 1, ..
                }] => self.partitions[*partition].clone(),
                pieces => {
                    let inputs = pieces
                        .iter()
                        .map(|piece| self.piece(piece, &token))
                        .collect::<Result<Vec<_>, _>>()?;
                    let plan = Plan {
                        origin: Origin::Inputs,
                        steps: Vec::new(),
                        sides: 0,
                    };
                    kernels::run_plan(key(nodes.len()), &plan, inputs)?
                }
            };
            nodes.push(node);
        }
        DataFrame::from_nodes("repartition-size", self.schema.clone(), nodes)
    }

    /// The node of one piece of a partition.
    fn piece(&self, piece: &Piece, token: &str) -> Result<Arc<Node>, DataFrameError> {
        let node = self.partitions[piece.partition].clone();
        if piece.of == 1 {
            return Ok(node);
        }
        let plan = Plan {
            origin: Origin::Inputs,
            steps: vec![Step::Slice {
                part: piece.part,
                of: piece.of,
            }],
            sides: 0,
        };
        let key =
            Key::new(format!("repartition-piece-{token}")).indexed(&[piece.partition, piece.part]);
        kernels::run_plan(key, &plan, vec![node])
    }
}

/// Row range `part` of `of` of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    partition: usize,
    part: usize,
    of: usize,
}

/// Partitions of `(bytes, rows)` cut into pieces of at most `limit` bytes
/// (but no more pieces than rows), and neighbouring pieces grouped while a
/// group stays within `limit`; every group holds at least one piece, and there
/// is at least one group.
fn size_groups(sizes: &[(u64, u64)], limit: u64) -> Vec<Vec<Piece>> {
    let mut groups: Vec<Vec<Piece>> = Vec::new();
    let mut current: Vec<Piece> = Vec::new();
    let mut filled = 0u64;
    for (partition, &(size, rows)) in sizes.iter().enumerate() {
        let of = size.div_ceil(limit).min(rows).max(1) as usize;
        let each = size.div_ceil(of as u64);
        for part in 0..of {
            if !current.is_empty() && filled + each > limit {
                groups.push(std::mem::take(&mut current));
                filled = 0;
            }
            current.push(Piece {
                partition,
                part,
                of,
            });
            filled += each;
        }
    }
    if !current.is_empty() || groups.is_empty() {
        groups.push(current);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_fit_and_keep_order() {
        let sizes = [10, 250, 0, 40, 40, 40, 100].map(|bytes| (bytes, 1000));
        let groups = size_groups(&sizes, 100);
        let flat: Vec<(usize, usize)> = groups
            .iter()
            .flatten()
            .map(|p| (p.partition, p.part))
            .collect();
        // Every piece once, in order.
        let want: Vec<(usize, usize)> = [
            (0, 0),
            (1, 0),
            (1, 1),
            (1, 2),
            (2, 0),
            (3, 0),
            (4, 0),
            (5, 0),
            (6, 0),
        ]
        .into();
        assert_eq!(flat, want);
        for group in &groups {
            let bytes: u64 = group
                .iter()
                .map(|p| sizes[p.partition].0.div_ceil(p.of as u64))
                .sum();
            assert!(bytes <= 100 || group.len() == 1, "{group:?}");
        }
        // 10 + 84; 84; 84 + 0; 40 + 40; 40; 100.
        assert_eq!(groups.len(), 6);
        assert_eq!(size_groups(&[], 5).len(), 1);
        assert_eq!(size_groups(&[(0, 0); 3], 5).len(), 1);
        // No more pieces than rows.
        assert_eq!(size_groups(&[(1000, 3)], 1).len(), 3);
    }
}
