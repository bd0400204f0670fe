//! `groupby`: items move to the output partition their key hashes to over the
//! peer-to-peer shuffle ([`crate::collections::shuffle`]), and each output
//! partition groups what arrived: `[key, [items]]`, keys in order of first
//! appearance, items in input order.

use super::func::Func;
use super::kernels::{self, JsonParams};
use super::records::Records;
use super::reduce::HashKey;
use super::{Bag, BagError};
use crate::collections::kernel::{self as kernel_api, collection_kernel, input};
use crate::collections::shuffle::{self, Layout, Manifest, Shuffle};
use crate::graph::Key;
use crate::ops::TaskFailure;
use crate::value::{Data, Value};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct TransferParams {
    id: String,
    input: u32,
    outputs: u32,
    key: Func,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct OutputParams {
    id: String,
    part: u32,
}

fn fail(message: impl Into<String>) -> TaskFailure {
    TaskFailure::new(message)
}

collection_kernel! {
    "rask::bag::",
    /// Sends each item of a partition, with its key, to its key's output.
    GroupTransfer(JsonParams) => |params, inputs| {
        let params: TransferParams = params.get("bag groupby")?;
        let layout = input::<Layout>(inputs, 0, "bag groupby")?;
        let items = input::<Records>(inputs, 1, "bag groupby")?;
        let outputs = params.outputs.max(1);
        let mut by_part: Vec<Vec<Json>> = vec![Vec::new(); outputs as usize];
        for item in items.0.iter() {
            let (key, item) = kernels::keyed(&params.key, item.clone())
                .map_err(|e| fail(format!("bag groupby: {e}")))?;
            let part = (HashKey::of_ref(&key).stable_hash() % u64::from(outputs)) as usize;
            by_part[part].push(Json::Array(vec![key, item]));
        }
        let receipt = shuffle::push(&layout, &params.id, params.input, outputs, |parts| {
            let mut shards = Vec::new();
            for &p in parts {
                let shard = std::mem::take(&mut by_part[p as usize]);
                if !shard.is_empty() {
                    let rows = shard.len() as u64;
                    shards.push((p, rows, Bytes::from(kernels::encode(shard)?)));
                }
            }
            Ok(shards)
        })?;
        Ok(Value::new(receipt))
    }
}

collection_kernel! {
    "rask::bag::",
    /// Gathers one output partition's items and groups them by key.
    GroupOutput(JsonParams) => |params, inputs| {
        let params: OutputParams = params.get("bag groupby")?;
        let layout = input::<Layout>(inputs, 0, "bag groupby")?;
        let manifest = input::<Manifest>(inputs, 1, "bag groupby")?;
        let shards = shuffle::take(&layout, &manifest, &params.id, params.part)?;
        let mut pairs = Vec::new();
        for shard in shards {
            let records = Records::decode(&shard).map_err(|e| fail(format!("shuffle {}: {e}", params.id)))?;
            for pair in records.0 {
                match pair {
                    Json::Array(mut kv) if kv.len() == 2 => {
                        let item = kv.pop().unwrap_or(Json::Null);
                        pairs.push((kv.pop().unwrap_or(Json::Null), item));
                    }
                    _ => return Err(fail(format!("shuffle {}: a shard item is not a pair", params.id))),
                }
            }
        }
        let expected = shuffle::expected_rows(&manifest, params.part);
        if pairs.len() as u64 != expected {
            return Err(fail(format!(
                "shuffle {}, output partition {}: {} items arrived, {expected} were sent",
                params.id, params.part, pairs.len()
            )));
        }
        Ok(Value::new(Records(kernels::group(pairs.into_iter()))))
    }
}

impl Bag {
    /// Items grouped by `key` (Dask's `groupby`): `[key, [items]]` pairs in
    /// `npartitions` partitions (this bag's count when `None`), moved by a
    /// peer-to-peer shuffle. For a reduction per group, `foldby` is cheaper.
    pub fn groupby(&self, key: Func, npartitions: Option<usize>) -> Result<Bag, BagError> {
        key.check().map_err(BagError::Invalid)?;
        let outputs = u32::try_from(npartitions.unwrap_or(self.npartitions()).max(1))
            .map_err(|_| BagError::Invalid("too many output partitions".into()))?;
        let shuffle = Shuffle::new("bag-groupby", outputs);
        let transfers = self
            .partitions
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let params = kernel_api::params(JsonParams::new(&TransferParams {
                    id: shuffle.id.clone(),
                    input: i as u32,
                    outputs,
                    key: key.clone(),
                }));
                let key = Key::new(format!("shuffle-transfer-{}", shuffle.id)).indexed(&[i]);
                GroupTransfer::node(key, &params, vec![shuffle.layout.clone(), part.clone()])
            })
            .collect();
        let barrier = shuffle.barrier(transfers);
        let outputs = (0..outputs)
            .map(|part| {
                let params = JsonParams::new(&OutputParams {
                    id: shuffle.id.clone(),
                    part,
                });
                kernel_api::node_annotated(
                    Key::new(format!("shuffle-output-{}", shuffle.id)).indexed(&[part as usize]),
                    GroupOutput::NAME,
                    Value::new(params),
                    vec![shuffle.layout.clone(), barrier.clone()],
                    shuffle.output_annotations(part),
                )
            })
            .collect();
        Ok(Bag::from_nodes("groupby", outputs))
    }
}
