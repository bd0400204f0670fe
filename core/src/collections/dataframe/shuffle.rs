//! Dataframe shuffles on the peer-to-peer exchange of
//! [`crate::collections::shuffle`]: rows move to the output partition their
//! key hashes to (shuffle joins, groupbys with `split_out`, `shuffle`), or to
//! the one whose range holds their sort key (`sort_values`, `set_index`).
//!
//! Range bounds come from the data: every input partition contributes evenly
//! spaced values of its sorted key, and one task picks the output bounds from
//! their union (Dask's quantile-based divisions).

use super::partition::Partition;
use super::plan::{Origin, Plan, Step};
use super::{DataFrame, DataFrameError};
use crate::client::lazy::Node;
use crate::collections::kernel::{self, collection_kernel, input};
use crate::collections::shuffle::{self, Layout, Manifest, Shuffle};
use crate::graph::Key;
use crate::ops::TaskFailure;
use crate::value::{Data, Value};
use bytes::Bytes;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Every worker hashes keys with this seed, so equal keys meet.
const HASH_SEED: u64 = 0x7261_736b_5f73_6866;
/// Values each input partition contributes to the range bounds, per output.
const SAMPLES_PER_OUTPUT: usize = 20;

/// How rows pick their output partition.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Split {
    /// By a hash of these columns.
    Hash(Vec<String>),
    /// By where this column's value falls among the bounds (the transfer's
    /// third input); nulls go last.
    Range {
        /// The sort key.
        column: String,
        /// Whether larger values go to earlier partitions.
        descending: bool,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct TransferParams {
    id: String,
    input: u32,
    outputs: u32,
    split: Split,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct OutputParams {
    id: String,
    part: u32,
    /// An empty frame of the output's schema, as a partition's bytes.
    empty: Vec<u8>,
    /// Steps applied to the gathered rows in the same task (a [`Plan`]'s
    /// bytes), if any.
    then: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct SampleParams {
    column: String,
    count: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct BoundsParams {
    outputs: u32,
}

fn fail(message: impl Into<String>) -> TaskFailure {
    TaskFailure::new(message)
}

collection_kernel! {
    "rask::dataframe::shuffle::",
    /// Splits one partition by output and pushes the shards to their owners.
    Transfer(TransferParams) => |params, inputs| {
        let layout = input::<Layout>(inputs, 0, "shuffle transfer")?;
        let frame = &input::<Partition>(inputs, 1, "shuffle transfer")?.0;
        let outputs = params.outputs.max(1);
        let targets = match &params.split {
            Split::Hash(columns) => hash_targets(frame, columns, outputs),
            Split::Range { column, descending } => {
                let bounds = &input::<Partition>(inputs, 2, "shuffle transfer")?.0;
                range_targets(frame, column, bounds, *descending, outputs)
            }
        }
        .map_err(|e| fail(format!("shuffle {}: {e}", params.id)))?;
        let rows = rows_by_target(&targets, outputs);
        let receipt = shuffle::push(&layout, &params.id, params.input, outputs, |parts| {
            encode_rows(frame, &rows, parts)
        })?;
        Ok(Value::new(receipt))
    }
}

collection_kernel! {
    "rask::dataframe::shuffle::",
    /// Gathers one output partition's shards into a frame.
    Output(OutputParams) => |params, inputs| {
        let frame = gather(params, inputs, 0)?;
        let frame = match &params.then {
            Some(then) => run_then(then, frame, &[], &params.id)?,
            None => frame,
        };
        Ok(Value::new(Partition(frame)))
    }
}

/// Two shuffles' output partitions `j`, gathered and joined in one task.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct JoinParams {
    left: OutputParams,
    right: OutputParams,
    /// The join, a [`Plan`]'s bytes whose one side frame is the right rows.
    join: Vec<u8>,
}

collection_kernel! {
    "rask::dataframe::shuffle::",
    /// Gathers partition `j` of both sides of a join and joins them.
    JoinOutputs(JoinParams) => |params, inputs| {
        let left = gather(&params.left, inputs, 0)?;
        let right = gather(&params.right, inputs, 2)?;
        let frame = run_then(&params.join, left, &[right.lazy()], &params.left.id)?;
        Ok(Value::new(Partition(frame)))
    }
}

/// Output partition `params.part` of a shuffle, from its layout and manifest
/// (inputs `at` and `at + 1`); checks every row sent arrived.
fn gather(
    params: &OutputParams,
    inputs: &[Value],
    at: usize,
) -> Result<polars::prelude::DataFrame, TaskFailure> {
    let layout = input::<Layout>(inputs, at, "shuffle output")?;
    let manifest = input::<Manifest>(inputs, at + 1, "shuffle output")?;
    let shards = shuffle::take(&layout, &manifest, &params.id, params.part)?;
    let mut frame = Partition::decode(&params.empty)
        .map_err(|e| fail(e.to_string()))?
        .0;
    for shard in shards {
        let piece =
            Partition::decode(&shard).map_err(|e| fail(format!("shuffle {}: {e}", params.id)))?;
        frame
            .vstack_mut(&piece.0)
            .map_err(|e| fail(format!("shuffle {}: {e}", params.id)))?;
    }
    let expected = shuffle::expected_rows(&manifest, params.part);
    if frame.height() as u64 != expected {
        return Err(fail(format!(
            "shuffle {}, output partition {}: {} rows arrived, {expected} were sent",
            params.id,
            params.part,
            frame.height()
        )));
    }
    Ok(frame)
}

/// A plan's steps on `frame`, with `sides` as its side frames.
fn run_then(
    plan: &[u8],
    frame: polars::prelude::DataFrame,
    sides: &[LazyFrame],
    id: &str,
) -> Result<polars::prelude::DataFrame, TaskFailure> {
    let plan = Plan::from_bytes(plan).map_err(|e| fail(format!("plan: {e}")))?;
    super::plan::run(frame.lazy(), &plan.steps, sides)
        .map_err(|e| fail(format!("shuffle {id}: {e}")))
}

collection_kernel! {
    "rask::dataframe::shuffle::",
    /// Evenly spaced values of one partition's sorted, non-null sort key.
    Sample(SampleParams) => |params, inputs| {
        let frame = &input::<Partition>(inputs, 0, "sort sample")?.0;
        let sample = sample(frame, &params.column, params.count).map_err(|e| fail(e.to_string()))?;
        Ok(Value::new(Partition(sample)))
    }
}

collection_kernel! {
    "rask::dataframe::shuffle::",
    /// The range bounds of the outputs, from every partition's sample.
    Bounds(BoundsParams) => |params, inputs| {
        let mut all: Option<polars::prelude::DataFrame> = None;
        for n in 0..inputs.len() {
            let part = &input::<Partition>(inputs, n, "sort bounds")?.0;
            match &mut all {
                None => all = Some(part.clone()),
                Some(all) => { all.vstack_mut(part).map_err(|e| fail(e.to_string()))?; }
            }
        }
        let all = all.ok_or_else(|| fail("sort bounds: no samples"))?;
        let bounds = bounds(&all, params.outputs as usize).map_err(|e| fail(e.to_string()))?;
        Ok(Value::new(Partition(bounds)))
    }
}

/// The output partition of every row, by a seeded hash of `columns`.
fn hash_targets(
    frame: &polars::prelude::DataFrame,
    columns: &[String],
    outputs: u32,
) -> PolarsResult<Vec<u32>> {
    let mut keys = frame.select(columns.iter().map(|c| c.as_str()))?;
    // Equal keys must hash equally on both sides of a join, whatever their width.
    let widened: Vec<Column> = keys
        .columns()
        .iter()
        .map(|c| {
            let dtype = c.dtype();
            if dtype.is_integer() {
                c.cast(&DataType::Int64)
            } else if dtype.is_float() {
                c.cast(&DataType::Float64)
            } else {
                Ok(c.clone())
            }
        })
        .collect::<PolarsResult<_>>()?;
    keys = polars::prelude::DataFrame::new(keys.height(), widened)?;
    let hashes = keys.hash_rows(Some(PlSeedableRandomStateQuality::seed_from_u64(HASH_SEED)))?;
    let outputs = u64::from(outputs);
    Ok(hashes
        .iter()
        .map(|h| (h.unwrap_or(0) % outputs) as u32)
        .collect())
}

/// The output partition of every row, by where `column` falls among `bounds`.
fn range_targets(
    frame: &polars::prelude::DataFrame,
    column: &str,
    bounds: &polars::prelude::DataFrame,
    descending: bool,
    outputs: u32,
) -> PolarsResult<Vec<u32>> {
    let last = outputs - 1;
    let bounds = bounds.column("bounds")?.as_materialized_series().clone();
    let placed = frame
        .clone()
        .lazy()
        .select([when(col(column).is_null())
            .then(lit(NULL).cast(DataType::UInt32))
            .otherwise(
                lit(bounds)
                    .search_sorted(col(column), SearchSortedSide::Right, false)
                    .cast(DataType::UInt32),
            )
            .alias("part")])
        .collect()?;
    let parts = placed.column("part")?.u32()?.clone();
    Ok(parts
        .iter()
        .map(|p| match p {
            None => last,
            Some(p) if descending => last - p.min(last),
            Some(p) => p.min(last),
        })
        .collect())
}

/// Evenly spaced values of `column`, sorted, nulls left out, in a column `bounds`.
fn sample(
    frame: &polars::prelude::DataFrame,
    column: &str,
    count: usize,
) -> PolarsResult<polars::prelude::DataFrame> {
    let values = frame
        .column(column)?
        .as_materialized_series()
        .drop_nulls()
        .sort(SortOptions::default())?;
    let mut picked = evenly_spaced(&values, count)?;
    if picked.len() < values.len() {
        picked.append(&values.tail(Some(1)))?;
    }
    Ok(df!("bounds" => picked)?)
}

/// `outputs - 1` bounds from the union of samples (the values at evenly
/// spaced ranks), in a column `bounds`.
fn bounds(
    samples: &polars::prelude::DataFrame,
    outputs: usize,
) -> PolarsResult<polars::prelude::DataFrame> {
    let values = samples
        .column("bounds")?
        .as_materialized_series()
        .sort(SortOptions::default())?;
    let n = values.len();
    let wanted = outputs.saturating_sub(1);
    let picks: Vec<IdxSize> = (1..=wanted)
        .filter(|_| n > 0)
        .map(|i| ((i * n / outputs).min(n - 1)) as IdxSize)
        .collect();
    let chosen = values.take(&IdxCa::from_vec("".into(), picks))?;
    Ok(df!("bounds" => chosen)?)
}

fn evenly_spaced(values: &Series, count: usize) -> PolarsResult<Series> {
    let n = values.len();
    if n <= count {
        return Ok(values.clone());
    }
    let picks: Vec<IdxSize> = (0..count).map(|i| (i * n / count) as IdxSize).collect();
    values.take(&IdxCa::from_vec("".into(), picks))
}

/// Row numbers by target partition.
fn rows_by_target(targets: &[u32], outputs: u32) -> Vec<Vec<IdxSize>> {
    let mut rows: Vec<Vec<IdxSize>> = vec![Vec::new(); outputs as usize];
    for (row, &target) in targets.iter().enumerate() {
        rows[target as usize].push(row as IdxSize);
    }
    rows
}

/// The rows of `frame` bound for each of `parts`, encoded, with their counts.
fn encode_rows(
    frame: &polars::prelude::DataFrame,
    rows: &[Vec<IdxSize>],
    parts: &[u32],
) -> Result<Vec<(u32, u64, Bytes)>, String> {
    parts
        .iter()
        .filter(|&&part| !rows[part as usize].is_empty())
        .map(|&part| {
            let rows = &rows[part as usize];
            let count = rows.len() as u64;
            let piece = if rows.len() == frame.height() {
                frame.clone()
            } else {
                frame
                    .take(&IdxCa::from_vec("".into(), rows.clone()))
                    .map_err(|e| e.to_string())?
            };
            let bytes = Partition(piece).encode().map_err(|e| e.to_string())?;
            Ok((part, count, Bytes::from(bytes)))
        })
        .collect()
}

/// The transfers of one shuffle, up to its barrier; [`Exchange::outputs`]
/// then gathers the output partitions.
pub(super) struct Exchange {
    shuffle: Shuffle,
    barrier: Arc<Node>,
    /// An empty frame of the schema, for outputs no row went to.
    empty: Vec<u8>,
}

impl Exchange {
    /// Every partition of `frame` split by `split` into `outputs` partitions
    /// and pushed to their owners; `bounds` is the range split's third input.
    fn start(
        frame: &DataFrame,
        name: &str,
        outputs: usize,
        split: Split,
        bounds: Option<Arc<Node>>,
    ) -> Result<Exchange, DataFrameError> {
        let outputs = u32::try_from(outputs.max(1))
            .map_err(|_| DataFrameError::Unsupported("too many output partitions".into()))?;
        let shuffle = Shuffle::new(name, outputs);
        let transfers = frame
            .partitions
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let params = kernel::params(TransferParams {
                    id: shuffle.id.clone(),
                    input: i as u32,
                    outputs,
                    split: split.clone(),
                });
                let mut inputs = vec![shuffle.layout.clone(), part.clone()];
                inputs.extend(bounds.clone());
                let key = Key::new(format!("shuffle-transfer-{}", shuffle.id)).indexed(&[i]);
                Transfer::node(key, &params, inputs)
            })
            .collect();
        let barrier = shuffle.barrier(transfers);
        let empty = Partition(polars::prelude::DataFrame::empty_with_schema(&frame.schema))
            .encode()
            .map_err(|e| DataFrameError::Polars(e.to_string()))?;
        Ok(Exchange {
            shuffle,
            barrier,
            empty,
        })
    }

    fn output_params(&self, part: u32, then: Option<Vec<u8>>) -> OutputParams {
        OutputParams {
            id: self.shuffle.id.clone(),
            part,
            empty: self.empty.clone(),
            then,
        }
    }

    /// The output partitions, each with `then`'s steps applied in the same task.
    fn outputs(&self, then: &[Step]) -> Result<Vec<Arc<Node>>, DataFrameError> {
        let id = &self.shuffle.id;
        let then = if then.is_empty() {
            None
        } else {
            let plan = Plan {
                origin: Origin::Inputs,
                steps: then.to_vec(),
                sides: 0,
            };
            Some(plan.to_bytes()?)
        };
        Ok((0..self.shuffle.outputs)
            .map(|part| {
                let params = kernel::params(self.output_params(part, then.clone()));
                let inputs = vec![self.shuffle.layout.clone(), self.barrier.clone()];
                kernel::node_annotated(
                    Key::new(format!("shuffle-output-{id}")).indexed(&[part as usize]),
                    Output::NAME,
                    params.value().clone(),
                    inputs,
                    self.shuffle.output_annotations(part),
                )
            })
            .collect())
    }
}

/// `left` and `right` hashed by their keys into `outputs` partitions each,
/// partition `j` of both gathered and joined by `join` (a step whose side
/// frame 0 is the right rows) in one task on their common owner.
pub(super) fn hash_join(
    left: (&DataFrame, &[&str]),
    right: (&DataFrame, &[&str]),
    outputs: usize,
    join: Step,
) -> Result<Vec<Arc<Node>>, DataFrameError> {
    let hash = |frame: &DataFrame, on: &[&str]| -> Result<Exchange, DataFrameError> {
        for column in on {
            frame.schema.try_get(column)?;
        }
        let columns = on.iter().map(|c| c.to_string()).collect();
        Exchange::start(frame, "join", outputs, Split::Hash(columns), None)
    };
    let (l, r) = (hash(left.0, left.1)?, hash(right.0, right.1)?);
    let plan = Plan {
        origin: Origin::Inputs,
        steps: vec![join],
        sides: 1,
    };
    let join = plan.to_bytes()?;
    Ok((0..l.shuffle.outputs)
        .map(|part| {
            let params = kernel::params(JoinParams {
                left: l.output_params(part, None),
                right: r.output_params(part, None),
                join: join.clone(),
            });
            let inputs = vec![
                l.shuffle.layout.clone(),
                l.barrier.clone(),
                r.shuffle.layout.clone(),
                r.barrier.clone(),
            ];
            kernel::node_annotated(
                Key::new(format!("hash-join-{}", l.shuffle.id)).indexed(&[part as usize]),
                JoinOutputs::NAME,
                params.value().clone(),
                inputs,
                l.shuffle.output_annotations(part),
            )
        })
        .collect())
}

impl DataFrame {
    /// The same rows in `npartitions` partitions, each row in the one its
    /// `on` columns hash to (Dask's `shuffle(on, npartitions=…)`): workers
    /// exchange the rows directly, with spill to disk.
    pub fn shuffle(&self, on: &[&str], npartitions: usize) -> Result<DataFrame, DataFrameError> {
        self.shuffle_then(on, npartitions, Vec::new())
    }

    /// [`DataFrame::shuffle`], then `then`'s steps on every output partition
    /// in the same task.
    pub(super) fn shuffle_then(
        &self,
        on: &[&str],
        npartitions: usize,
        then: Vec<Step>,
    ) -> Result<DataFrame, DataFrameError> {
        for column in on {
            self.schema.try_get(column)?;
        }
        let schema = super::schema_after(&self.schema, &then, &[])?;
        let columns = on.iter().map(|c| c.to_string()).collect();
        let exchange = Exchange::start(self, "shuffle", npartitions, Split::Hash(columns), None)?;
        DataFrame::from_nodes("shuffle", schema, exchange.outputs(&then)?)
    }

    /// Sorted by `by` (the first column decides the partition, the rest break
    /// ties), ascending or descending, nulls last (Dask's `sort_values`).
    /// Bounds between partitions come from a sample of every partition's
    /// first key (a first pass that reads only that column); rows then move
    /// to their partition peer to peer.
    pub fn sort_values(&self, by: &[&str], descending: bool) -> Result<DataFrame, DataFrameError> {
        let first = *by
            .first()
            .ok_or_else(|| DataFrameError::Unsupported("sort_values needs a column".into()))?;
        for column in by {
            self.schema.try_get(column)?;
        }
        let outputs = self.npartitions();
        let token = crate::graph::fresh_token();
        let samples = self.range_samples(first, outputs)?;
        let bounds_params = kernel::params(BoundsParams {
            outputs: outputs as u32,
        });
        let bounds = Bounds::node(
            Key::new(format!("sort-bounds-{token}")),
            &bounds_params,
            samples,
        );
        let split = Split::Range {
            column: first.to_string(),
            descending,
        };
        let sort = Step::Sort(
            by.iter().map(|c| c.to_string()).collect(),
            vec![descending; by.len()],
        );
        let sorted =
            Exchange::start(self, "sort", outputs, split, Some(bounds))?.outputs(&[sort])?;
        DataFrame::from_nodes("sort-values", self.schema.clone(), sorted)
    }
}

impl DataFrame {
    /// One task per partition sampling `column` for `outputs` range
    /// partitions: evenly spaced values of its sorted non-null values, its
    /// largest included. The sample reads only that column (a file source
    /// reads that column alone), so no partition is held waiting for bounds.
    pub(super) fn range_samples(
        &self,
        column: &str,
        outputs: usize,
    ) -> Result<Vec<Arc<Node>>, DataFrameError> {
        let token = crate::graph::fresh_token();
        let params = kernel::params(SampleParams {
            column: column.to_string(),
            count: SAMPLES_PER_OUTPUT * outputs,
        });
        Ok(self
            .select_columns(&[column])?
            .partitions
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let key = Key::new(format!("range-sample-{token}")).indexed(&[i]);
                Sample::node(key, &params, vec![part.clone()])
            })
            .collect())
    }

    /// Rows moved peer to peer into `bounds.height() + 1` partitions by
    /// where `column` falls among `bounds` (a one-column frame, ascending;
    /// nulls to the last partition), each then sorted by `column`.
    pub(super) fn range_partitioned(
        &self,
        name: &str,
        column: &str,
        bounds: polars::prelude::DataFrame,
    ) -> Result<DataFrame, DataFrameError> {
        let outputs = bounds.height() + 1;
        let bounds = DataFrame::from_polars(bounds, 1)?.partitions[0].clone();
        let split = Split::Range {
            column: column.to_string(),
            descending: false,
        };
        let sort = Step::Sort(vec![column.to_string()], vec![false]);
        let sorted = Exchange::start(self, name, outputs, split, Some(bounds))?.outputs(&[sort])?;
        DataFrame::from_nodes(name, self.schema.clone(), sorted)
    }
}

/// `outputs - 1` ascending bounds from the union of samples.
pub(super) fn bounds_of(
    samples: &polars::prelude::DataFrame,
    outputs: usize,
) -> PolarsResult<polars::prelude::DataFrame> {
    bounds(samples, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_of_different_widths_hash_to_the_same_partition() {
        let narrow = df!("k" => [1i32, 2, 3, 40_000]).unwrap();
        let wide = df!("k" => [1i64, 2, 3, 40_000]).unwrap();
        let keys = ["k".to_string()];
        assert_eq!(
            hash_targets(&narrow, &keys, 7).unwrap(),
            hash_targets(&wide, &keys, 7).unwrap()
        );
    }

    #[test]
    fn range_targets_follow_the_bounds_both_ways_with_nulls_last() {
        let frame = df!("x" => [Some(5), None, Some(1), Some(9), Some(3)]).unwrap();
        let bounds = df!("bounds" => [3, 6]).unwrap();
        assert_eq!(
            range_targets(&frame, "x", &bounds, false, 3).unwrap(),
            [1, 2, 0, 2, 1]
        );
        assert_eq!(
            range_targets(&frame, "x", &bounds, true, 3).unwrap(),
            [1, 2, 2, 0, 1]
        );
    }
}
