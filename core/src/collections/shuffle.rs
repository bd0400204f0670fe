//! Peer-to-peer shuffles (Dask's P2P shuffle): workers send each other the
//! rows bound for each output partition directly, and the graph stays O(N):
//!
//! ```text
//! layout ─┬─ transfer 0 ─┐             ┌─ output 0 (on its owner)
//!         ├─ transfer 1 ─┼── barrier ──┼─ output 1
//!         └─ transfer N ─┘             └─ output M
//! ```
//!
//! The client that submits the graph gives every output partition an owner
//! among the workers it sees and writes them into the layout task; the
//! scheduler runs each output task on its owner when it can (a loose
//! restriction). A transfer splits its input partition, pushes each owner its
//! shards and returns a receipt once they are kept; the owners hold shards in
//! memory up to a budget and spill the rest to disk
//! ([`crate::worker::shuffle_buffers`]). The barrier adds the receipts up, so
//! each output task knows how many inputs and rows to expect, never giving a
//! silently short result. A worker lost midway restarts the shuffle from its
//! layout (`crate::scheduler`'s `shuffle_restart`); the layout then leaves out
//! workers that are gone. An output task that runs elsewhere takes its shards
//! from the owner over the network.
//!
//! This module is the collection-independent part; dataframes split and join
//! their partitions around it.

use super::kernel::{self, collection_kernel, Params};
use crate::client::lazy::Node;
use crate::graph::{Annotations, Key, ShuffleRole};
use crate::ops::TaskFailure;
use crate::scheduler::WorkerId;
use crate::value::Value;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Who owns which output partition of one run of a shuffle.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Layout {
    /// Worker ids; output partition `j` belongs to `owners[j % owners.len()]`.
    pub owners: Vec<u32>,
    /// Tells this run's shards from those of an earlier run of the same
    /// shuffle (a restart, or the same graph computed again): the serial of
    /// the scheduler's assignment that computed this layout. Owners refuse
    /// shards of runs up to the serial a release of the layout was stamped with.
    pub run: u32,
}

impl Layout {
    /// The owner of output partition `part`.
    pub fn owner(&self, part: u32) -> WorkerId {
        WorkerId(self.owners[part as usize % self.owners.len()])
    }

    /// The name owners keep this run's shards of shuffle `id` under.
    pub fn buffer_id(&self, id: &str) -> String {
        crate::worker::shuffle_buffers::run_buffer_id(id, self.run)
    }
}

/// What one transfer pushed: per output partition that got rows, how many.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Receipt {
    /// The input partition.
    pub input: u32,
    /// `(output partition, rows)` for every non-empty shard.
    pub sent: Vec<(u32, u64)>,
}

/// What every output partition should receive: from how many inputs, how many rows.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Manifest {
    /// Per output partition: `(inputs that sent rows, rows)`.
    pub expected: Vec<(u32, u64)>,
}

/// The parameters of a barrier: how many output partitions.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct BarrierParams {
    outputs: u32,
}

collection_kernel! {
    "rask::shuffle::",
    /// Decides the owners: those of the client's choice this worker still
    /// reaches (a shuffle restarted after a worker died leaves it out), or else
    /// every worker this one reaches.
    LayoutTask(Vec<u32>) => |owners, _inputs| {
        let worker = crate::worker::runtime::current_worker()
            .ok_or_else(|| TaskFailure::new("a shuffle runs only on workers"))?;
        let reachable: Vec<u32> = worker.reachable_workers().into_iter().map(|w| w.0).collect();
        let chosen: Vec<u32> = owners.iter().copied().filter(|w| reachable.contains(w)).collect();
        let owners = if chosen.is_empty() { reachable } else { chosen };
        let run = crate::worker::runtime::current_assignment()
            .ok_or_else(|| TaskFailure::new("a shuffle runs only on workers"))?
            .serial();
        Ok(Value::new(Layout { owners, run }))
    }
}

collection_kernel! {
    "rask::shuffle::",
    /// Adds the transfers' receipts up into what each output should receive.
    Barrier(BarrierParams) => |params, inputs| {
        let mut expected = vec![(0u32, 0u64); params.outputs as usize];
        for (n, input) in inputs.iter().enumerate() {
            let receipt = input
                .get::<Receipt>()
                .map_err(|e| TaskFailure::new(format!("shuffle barrier: input {n}: {e}")))?;
            for &(part, rows) in &receipt.sent {
                let slot = expected.get_mut(part as usize).ok_or_else(|| {
                    TaskFailure::new(format!("shuffle barrier: output partition {part} out of range"))
                })?;
                slot.0 += 1;
                slot.1 += rows;
            }
        }
        Ok(Value::new(Manifest { expected }))
    }
}

/// The graph around a shuffle of one collection: its layout node, and how to
/// name and annotate its transfers, barrier and outputs.
pub(crate) struct Shuffle {
    /// Names the shuffle's keys and buffers.
    pub id: String,
    /// How many output partitions.
    pub outputs: u32,
    /// The layout node, every transfer's first input.
    pub layout: Arc<Node>,
}

impl Shuffle {
    /// A new shuffle into `outputs` partitions.
    pub fn new(name: &str, outputs: u32) -> Shuffle {
        let id = format!("{name}-{}", crate::graph::fresh_token());
        let layout = kernel::node_annotated(
            Key::new(format!("{}{id}", ShuffleRole::LAYOUT_KEY_PREFIX)),
            LayoutTask::NAME,
            // The client writes the owners here when it submits the graph.
            Value::new(Vec::<u32>::new()),
            vec![],
            Annotations {
                shuffle: Some(ShuffleRole::Layout {
                    id: id.clone(),
                    outputs,
                }),
                ..Default::default()
            },
        );
        Shuffle {
            id,
            outputs,
            layout,
        }
    }

    /// The barrier after `transfers` (each returning a [`Receipt`]).
    pub fn barrier(&self, transfers: Vec<Arc<Node>>) -> Arc<Node> {
        let params: Params<BarrierParams> = kernel::params(BarrierParams {
            outputs: self.outputs,
        });
        Barrier::node(
            Key::new(format!("{}{}", ShuffleRole::BARRIER_KEY_PREFIX, self.id)),
            &params,
            transfers,
        )
    }

    /// Annotations of output task `part`: it prefers its owner.
    pub fn output_annotations(&self, part: u32) -> Annotations {
        Annotations {
            shuffle: Some(ShuffleRole::Output {
                id: self.id.clone(),
                part,
            }),
            allow_other_workers: true,
            ..Default::default()
        }
    }
}

/// Inside a transfer: for each owner in turn, `shards(parts)` makes the
/// `(output partition, rows, bytes)` shards of input partition `input` for the
/// output partitions it owns, and they are pushed before the next owner's are
/// made (so a transfer holds one owner's shards at a time). Returns the
/// receipt once all are kept.
pub(crate) fn push(
    layout: &Layout,
    id: &str,
    input: u32,
    outputs: u32,
    mut shards: impl FnMut(&[u32]) -> Result<Vec<(u32, u64, Bytes)>, String>,
) -> Result<Receipt, TaskFailure> {
    let worker = crate::worker::runtime::current_worker()
        .ok_or_else(|| TaskFailure::new("a shuffle runs only on workers"))?;
    if layout.owners.is_empty() {
        return Err(TaskFailure::new(format!(
            "shuffle {id}: no worker to send to"
        )));
    }
    let mut by_owner: BTreeMap<WorkerId, Vec<u32>> = BTreeMap::new();
    for part in 0..outputs {
        by_owner.entry(layout.owner(part)).or_default().push(part);
    }
    let mut receipt = Receipt {
        input,
        sent: Vec::new(),
    };
    for (owner, parts) in by_owner {
        let made = shards(&parts).map_err(|e| TaskFailure::new(format!("shuffle {id}: {e}")))?;
        let mut outgoing = Vec::with_capacity(made.len());
        for (part, rows, bytes) in made {
            if rows > 0 {
                receipt.sent.push((part, rows));
                outgoing.push(crate::worker::shuffle_buffers::Shard { input, part, bytes });
            }
        }
        if outgoing.is_empty() {
            continue;
        }
        worker
            .push_shards(owner, &layout.buffer_id(id), outgoing)
            .map_err(|e| TaskFailure::new(format!("shuffle {id}: {e}")))?;
    }
    Ok(receipt)
}

/// Inside an output task: takes partition `part`'s shards (from this worker,
/// or from its owner if it ran elsewhere) and checks every input that sent
/// rows is there. Returns the shards in input order.
pub(crate) fn take(
    layout: &Layout,
    manifest: &Manifest,
    id: &str,
    part: u32,
) -> Result<Vec<Bytes>, TaskFailure> {
    let (inputs, _) = manifest
        .expected
        .get(part as usize)
        .copied()
        .ok_or_else(|| {
            TaskFailure::new(format!(
                "shuffle {id}: output partition {part} out of range"
            ))
        })?;
    if inputs == 0 {
        return Ok(Vec::new());
    }
    let worker = crate::worker::runtime::current_worker()
        .ok_or_else(|| TaskFailure::new("a shuffle runs only on workers"))?;
    let owner = layout.owner(part);
    let shards = worker
        .take_shards(owner, &layout.buffer_id(id), part)
        .map_err(|e| TaskFailure::new(format!("shuffle {id}, output partition {part}: {e}")))?;
    if shards.len() != inputs as usize {
        return Err(TaskFailure::new(format!(
            "shuffle {id}, output partition {part}: {} of {inputs} inputs' shards are on {owner}; \
             the rest were lost (the worker restarted, or the output ran twice); compute again",
            shards.len()
        )));
    }
    Ok(shards.into_values().collect())
}

/// The rows an output partition should have, to check against after decoding.
pub(crate) fn expected_rows(manifest: &Manifest, part: u32) -> u64 {
    manifest
        .expected
        .get(part as usize)
        .map_or(0, |&(_, rows)| rows)
}
