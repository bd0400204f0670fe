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
use polars_buffer::Buffer;
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
        let result = match &plan.origin {
            Origin::Files(files, format, read) => read_and_run(files, format, read.as_ref(), &plan, &sides)?,
            Origin::Inputs => {
                let mut iter = rows.iter();
                let mut stacked = iter
                    .next()
                    .map(|p| p.0.clone())
                    .ok_or_else(|| fail("no input partitions"))?;
                for part in iter {
                    stacked.vstack_mut(&part.0).map_err(|e| fail(e.to_string()))?;
                }
                plan::run(stacked.lazy(), &plan.steps, &sides).map_err(|e| fail(e.to_string()))?
            }
        };
        Ok(Value::new(Partition(result)))
    }
}

/// Reads `files` (stacked in order) and runs the plan's steps on them. A
/// Parquet object whose query reads only some of it (`read`) fetches only
/// that; if that fails, or the query on what was fetched does, the files are
/// read whole.
fn read_and_run(
    files: &[plan::FileRef],
    format: &plan::Format,
    read: Option<&super::ranged::ReadSet>,
    plan: &Plan,
    sides: &[LazyFrame],
) -> Result<DataFrame, TaskFailure> {
    if let (plan::Format::Parquet, Some(read)) = (format, read) {
        let fetched: PolarsResult<Vec<Option<Buffer<u8>>>> = files
            .iter()
            .map(|(location, _)| super::ranged::fetch(location, read))
            .collect();
        let partial = fetched.and_then(|buffers| {
            if buffers.iter().all(Option::is_none) {
                return Ok(None);
            }
            let frame = parquet_files(files, buffers)?;
            plan::run(frame, &plan.steps, sides).map(Some)
        });
        match partial {
            Ok(Some(result)) => return Ok(result),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(files = files.len(), first = %files[0].0, error = %e, "ranged Parquet read failed; reading whole files")
            }
        }
    }
    let whole = || -> Result<LazyFrame, TaskFailure> {
        if let plan::Format::Parquet = format {
            // Read errors name their file.
            let buffers = files.iter().map(|_| None).collect();
            return parquet_files(files, buffers).map_err(|e| fail(e.to_string()));
        }
        let (location, hive) = &files[0];
        plan::scan_file(location, format, hive)
            .map_err(|e| fail(plan::in_file(&format.part_name(location), e)))
    };
    plan::run(whole()?, &plan.steps, sides)
        .map_err(|e| fail(failed_in(files, format, plan, sides, e)))
}

/// One lazy scan of Parquet `files` from their bytes, `None` to read the
/// file whole: a single scan when no file has hive columns, else the files'
/// scans stacked.
fn parquet_files(
    files: &[plan::FileRef],
    buffers: Vec<Option<Buffer<u8>>>,
) -> PolarsResult<LazyFrame> {
    let buffers = files
        .iter()
        .zip(buffers)
        .map(|((location, _), buffer)| match buffer {
            Some(buffer) => Ok(buffer),
            None => plan::read_bytes(location),
        })
        .collect::<PolarsResult<Vec<Buffer<u8>>>>()?;
    if files.iter().all(|(_, hive)| hive.is_empty()) {
        return plan::scan_buffers(buffers, &plan::Format::Parquet);
    }
    let scans = files
        .iter()
        .zip(buffers)
        .map(|((_, hive), buffer)| {
            plan::scan_buffer(buffer, &plan::Format::Parquet)
                .map(|scan| plan::with_hive(scan, hive))
        })
        .collect::<PolarsResult<Vec<_>>>()?;
    concat(scans, UnionArgs::default())
}

/// The message of a query's error `e` on `files`, naming the file it came
/// from: with several files, the first whose query alone fails (else all).
fn failed_in(
    files: &[plan::FileRef],
    format: &plan::Format,
    plan: &Plan,
    sides: &[LazyFrame],
    e: PolarsError,
) -> String {
    if let [(location, _)] = files {
        return plan::in_file(&format.part_name(location), e);
    }
    for file in files {
        let alone = parquet_files(std::slice::from_ref(file), vec![None])
            .and_then(|frame| plan::run(frame, &plan.steps, sides));
        if let Err(e) = alone {
            return plan::in_file(&file.0, e);
        }
    }
    let names: Vec<&str> = files
        .iter()
        .map(|(location, _)| location.as_str())
        .collect();
    format!("{}: {e}", names.join(", "))
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
