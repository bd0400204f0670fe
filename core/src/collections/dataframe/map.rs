//! `map_partitions`: a registered op (`rask::op!`) run on every partition, as
//! Dask runs a function per pandas partition. The result's schema is the op's
//! output on an empty frame of this schema (Dask's `meta` inference), unless
//! one is given.

use super::{DataFrame, DataFrameError, Partition};
use crate::collections::delayed::{delayed, Delayed};
use crate::ops::{Op, OpRef};
use crate::value::Value;
use polars::prelude::SchemaRef;

impl DataFrame {
    /// Runs `op`, which takes and returns a [`Partition`], on every
    /// partition. `meta` is the result's schema; `None` runs the op once here
    /// on an empty frame to learn it.
    pub fn map_partitions<O>(
        &self,
        op: O,
        meta: Option<SchemaRef>,
    ) -> Result<DataFrame, DataFrameError>
    where
        O: Op<Args = (Partition,), Output = Partition> + Clone,
    {
        let schema = match meta {
            Some(schema) => schema,
            None => infer_schema(&op, self)?,
        };
        let parts: Vec<Delayed<Partition>> = self
            .to_delayed()
            .iter()
            .map(|part| delayed(op.clone(), part))
            .collect();
        DataFrame::from_delayed(&parts, schema)
    }
}

/// The op's output schema on an empty frame of `frame`'s schema.
fn infer_schema<O: Op>(op: &O, frame: &DataFrame) -> Result<SchemaRef, DataFrameError> {
    let unknown = |why: String| {
        DataFrameError::Polars(format!(
            "map_partitions({}): cannot infer the result's schema ({why}); pass it as `meta`",
            op.name()
        ))
    };
    let OpRef::Registered(entry) = op.op_ref() else {
        return Err(unknown("the op is not registered in this binary".into()));
    };
    let empty = polars::prelude::DataFrame::empty_with_schema(frame.schema());
    let out = (entry.run)(&[Value::new(Partition(empty))]).map_err(|e| unknown(e.to_string()))?;
    let part = out.get::<Partition>().map_err(|e| unknown(e.to_string()))?;
    Ok(part.0.schema().clone())
}
