//! Dataframe kernels: the registered ops partitions run. Their parameters are
//! a [`Plan`] in Polars' encoding, so the work is data, not code.

use super::io::WriteFormat;
use super::partition::Partition;
use super::plan::{self, Origin, Plan};
use super::DataFrameError;
use crate::client::lazy::{ArgSource, Node};
use crate::collections::kernel::{self, collection_kernel};
use crate::graph::Key;
use crate::ops::TaskFailure;
use crate::value::Value;
use polars::prelude::*;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A plan's bytes, as a kernel's parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlanBytes(Vec<u8>);

/// Where and how a partition is written.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Target {
    location: String,
    format: WriteFormat,
}

fn fail(message: impl Into<String>) -> TaskFailure {
    TaskFailure::new(message)
}

fn partitions(inputs: &[Value]) -> Result<Vec<Arc<Partition>>, TaskFailure> {
    inputs
        .iter()
        .enumerate()
        .map(|(n, v)| {
            v.get::<Partition>()
                .map_err(|e| fail(format!("dataframe kernel: input {n}: {e}")))
        })
        .collect()
}

collection_kernel! {
    "rask::dataframe::",
    /// Runs a partition's plan: read or stack its inputs, then its steps.
    RunPlan(PlanBytes) => |bytes, inputs| {
        let plan = Plan::from_bytes(&bytes.0).map_err(|e| fail(format!("plan: {e}")))?;
        let parts = partitions(inputs)?;
        let split = parts.len().checked_sub(plan.sides).ok_or_else(|| fail("plan: fewer inputs than side frames"))?;
        let (rows, sides) = parts.split_at(split);
        let sides: Vec<LazyFrame> = sides.iter().map(|p| p.0.clone().lazy()).collect();
        if let Origin::File(location, plan::Format::Parquet, hive, Some(columns)) = &plan.origin {
            // Only the columns the query reads, from an object store; read
            // whole below if that fails (or is not worth it).
            let partial = super::ranged::scan(location, hive, columns).and_then(|frame| {
                frame
                    .map(|f| plan::run(f, &plan.steps, &sides))
                    .transpose()
            });
            match partial {
                Ok(Some(result)) => return Ok(Value::new(Partition(result))),
                Ok(None) => {}
                Err(e) => tracing::debug!(location, error = %e, "ranged Parquet read failed; reading the whole file"),
            }
        }
        let (frame, place) = match &plan.origin {
            Origin::File(location, format, hive, _) => {
                let place = format.part_name(location);
                (
                    plan::scan_file(location, format, hive).map_err(|e| fail(in_file(&place, e)))?,
                    Some(place),
                )
            }
            Origin::Inputs => {
                let mut iter = rows.iter();
                let mut stacked = iter
                    .next()
                    .map(|p| p.0.clone())
                    .ok_or_else(|| fail("no input partitions"))?;
                for part in iter {
                    stacked.vstack_mut(&part.0).map_err(|e| fail(e.to_string()))?;
                }
                (stacked.lazy(), None)
            }
        };
        let result = plan::run(frame, &plan.steps, &sides)
            .map_err(|e| match place {
                Some(place) => fail(in_file(&place, e)),
                None => fail(e.to_string()),
            })?;
        Ok(Value::new(Partition(result)))
    }
}

collection_kernel! {
    "rask::dataframe::",
    /// Writes its input partition to a file and returns the bytes written.
    WritePartition(Target) => |target, inputs| {
        let parts = partitions(inputs)?;
        let part = parts.first().ok_or_else(|| fail("no partition to write"))?;
        let bytes = target.format.encode(&part.0).map_err(|e| fail(format!("{}: {e}", target.location)))?;
        let written = bytes.len() as u64;
        crate::io::Location::parse(&target.location)
            .and_then(|location| location.write(bytes))
            .map_err(|e| fail(e.to_string()))?;
        Ok(Value::new(written))
    }
}

/// A Polars error while reading `location`, naming it once.
fn in_file(location: &str, e: PolarsError) -> String {
    let message = e.to_string();
    if message.contains(location) {
        message
    } else {
        format!("{location}: {message}")
    }
}

/// A node running `plan` on `inputs`.
pub(super) fn run_plan(
    key: Key,
    plan: &Plan,
    inputs: Vec<Arc<Node>>,
) -> Result<Arc<Node>, DataFrameError> {
    let params = kernel::params(PlanBytes(plan.to_bytes()?));
    Ok(RunPlan::node(key, &params, inputs))
}

/// A node holding an in-memory frame as one partition.
pub(super) fn literal(frame: DataFrame) -> Result<Arc<Node>, DataFrameError> {
    let plan = Plan {
        origin: Origin::Inputs,
        steps: Vec::new(),
        sides: 0,
    };
    let key = Key::new(format!("from-polars-{}", crate::graph::fresh_token()));
    let args = vec![
        ArgSource::Literal(Value::new(PlanBytes(plan.to_bytes()?))),
        ArgSource::Literal(Value::new(Partition(frame))),
    ];
    Ok(kernel::with_args(key, RunPlan::NAME, args))
}

/// A node writing `input` to `location` as `format`.
pub(super) fn write(key: Key, location: &str, format: WriteFormat, input: Arc<Node>) -> Arc<Node> {
    let params = kernel::params(Target {
        location: location.to_string(),
        format,
    });
    WritePartition::node(key, &params, vec![input])
}
