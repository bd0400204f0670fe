//! Bag kernels: the registered ops bag partitions run. Their parameters are
//! plans and reductions as JSON (they hold JSON values), never code.

use super::func::Func;
use super::plan::{self, Compression, Plan};
use super::records::Records;
use super::reduce::{Accumulator, HashKey, Reduction};
use crate::client::lazy::{ArgSource, Node};
use crate::collections::kernel::{self, collection_kernel};
use crate::graph::Key;
use crate::ops::TaskFailure;
use crate::value::{Data, Value};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::sync::Arc;

/// A kernel's parameters as JSON text.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct JsonParams(Vec<u8>);

impl JsonParams {
    pub(super) fn new<T: Serialize>(params: &T) -> JsonParams {
        JsonParams(serde_json::to_vec(params).expect("kernel parameters are plain data"))
    }

    pub(super) fn get<T: DeserializeOwned>(&self, what: &str) -> Result<T, TaskFailure> {
        serde_json::from_slice(&self.0).map_err(|e| fail(format!("{what}: parameters: {e}")))
    }
}

fn fail(message: impl Into<String>) -> TaskFailure {
    TaskFailure::new(message)
}

/// The inputs, as records.
pub(super) fn records(inputs: &[Value], what: &str) -> Result<Vec<Arc<Records>>, TaskFailure> {
    inputs
        .iter()
        .enumerate()
        .map(|(n, v)| {
            v.get::<Records>()
                .map_err(|e| fail(format!("{what}: input {n}: {e}")))
        })
        .collect()
}

collection_kernel! {
    "rask::bag::",
    /// Runs a partition's plan: its items, or a partial reduction of them.
    RunPlan(JsonParams) => |params, inputs| {
        let plan: Plan = params.get("bag plan")?;
        let inputs = records(inputs, "bag plan")?;
        let items = match &plan.reduction {
            None => {
                let mut out: Vec<Json> = Vec::new();
                plan::run(&plan, &inputs, &mut out).map_err(fail)?;
                out
            }
            Some(reduction) => {
                let mut acc = Accumulator::new(reduction, false);
                plan::run(&plan, &inputs, &mut acc).map_err(fail)?;
                acc.finish()
            }
        };
        Ok(Value::new(Records(items)))
    }
}

collection_kernel! {
    "rask::bag::",
    /// Merges partial results of a reduction.
    Merge(JsonParams) => |params, inputs| {
        let reduction: Reduction = params.get("bag reduction")?;
        let mut acc = Accumulator::new(&reduction, true);
        for partial in records(inputs, "bag reduction")? {
            for item in partial.0.iter() {
                acc.push(item.clone(), true).map_err(fail)?;
            }
        }
        Ok(Value::new(Records(acc.finish())))
    }
}

/// Where and how a partition is written as text.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct TextTarget {
    pub location: String,
    pub compression: Compression,
}

collection_kernel! {
    "rask::bag::",
    /// Writes a partition as lines of text (texts as they are, other items as
    /// JSON) and returns the bytes written.
    WriteText(JsonParams) => |params, inputs| {
        let target: TextTarget = params.get("to_textfiles")?;
        let parts = records(inputs, "to_textfiles")?;
        let mut text = Vec::new();
        for item in parts.iter().flat_map(|r| r.0.iter()) {
            match item {
                Json::String(line) => text.extend_from_slice(line.as_bytes()),
                other => serde_json::to_writer(&mut text, other).map_err(|e| fail(e.to_string()))?,
            }
            text.push(b'\n');
        }
        let bytes = plan::compress(text, target.compression)
            .map_err(|e| fail(format!("{}: {e}", target.location)))?;
        let written = bytes.len() as u64;
        crate::io::Location::parse(&target.location)
            .and_then(|location| location.write(bytes))
            .map_err(|e| fail(e.to_string()))?;
        Ok(Value::new(written))
    }
}

/// A node running `plan` on `inputs`.
pub(super) fn run_plan(key: Key, plan: &Plan, inputs: Vec<Arc<Node>>) -> Arc<Node> {
    let params = kernel::params(JsonParams(plan.to_bytes()));
    RunPlan::node(key, &params, inputs)
}

/// A node merging partial results of `reduction`.
pub(super) fn merge(key: Key, reduction: &Reduction, inputs: Vec<Arc<Node>>) -> Arc<Node> {
    let params = kernel::params(JsonParams::new(reduction));
    Merge::node(key, &params, inputs)
}

/// A node holding items as one partition.
pub(super) fn literal(key: Key, items: Vec<Json>) -> Arc<Node> {
    let plan = Plan {
        origin: plan::Origin::Inputs,
        steps: Vec::new(),
        reduction: None,
    };
    let args = vec![
        ArgSource::Literal(Value::new(JsonParams(plan.to_bytes()))),
        ArgSource::Literal(Value::new(Records(items))),
    ];
    kernel::with_args(key, RunPlan::NAME, args)
}

/// A node writing `input` as text to `target`.
pub(super) fn write_text(key: Key, target: &TextTarget, input: Arc<Node>) -> Arc<Node> {
    let params = kernel::params(JsonParams::new(target));
    WriteText::node(key, &params, vec![input])
}

/// Items grouped by key, in order of first appearance: `[key, [items]]`.
pub(super) fn group(pairs: impl Iterator<Item = (Json, Json)>) -> Vec<Json> {
    let mut index: std::collections::HashMap<HashKey, usize, foldhash::fast::RandomState> =
        Default::default();
    let mut groups: Vec<(Json, Vec<Json>)> = Vec::new();
    for (key, item) in pairs {
        let slot = *index.entry(HashKey::of_ref(&key)).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push(item);
    }
    groups
        .into_iter()
        .map(|(k, items)| Json::Array(vec![k, Json::Array(items)]))
        .collect()
}

/// The key `key` gives every item, as `[key, item]` pairs' parts.
pub(super) fn keyed(key: &Func, item: Json) -> Result<(Json, Json), String> {
    Ok((key.key_of(&item)?, item))
}

/// Encodes records for a shuffle shard.
pub(super) fn encode(items: Vec<Json>) -> Result<Vec<u8>, String> {
    Records(items).encode().map_err(|e| e.to_string())
}
