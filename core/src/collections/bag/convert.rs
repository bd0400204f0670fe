//! Bags to dataframes and back: a bag of JSON objects becomes a dataframe with
//! one row per object (Dask's `Bag.to_dataframe`), and a dataframe's rows
//! become objects (`DataFrame::to_bag`, Dask's `to_bag(format="dict")`).

use super::kernels::records;
use super::records::Records;
use super::{Bag, BagError};
use crate::client::Client;
use crate::collections::dataframe::{DataFrame, DataFrameError, Partition};
use crate::collections::kernel::{self, collection_kernel};
use crate::graph::Key;
use crate::ops::TaskFailure;
use crate::value::{Data, Value};
use polars::prelude::{JsonFormat, JsonReader, JsonWriter, SchemaRef, SerReader, SerWriter};
use serde_json::Value as Json;
use std::io::Cursor;

/// Items looked at to infer a schema when none is given.
const INFER_ITEMS: usize = 1000;

fn fail(message: impl Into<String>) -> TaskFailure {
    TaskFailure::new(message)
}

/// Objects as a Polars frame of `schema` (inferred when `None`).
fn objects_to_frame(
    items: &[Json],
    schema: Option<SchemaRef>,
) -> Result<polars::prelude::DataFrame, String> {
    if let Some(at) = items.iter().position(|item| !item.is_object()) {
        return Err(format!(
            "to_dataframe: item {at} is not an object: {}",
            super::func::show(&items[at])
        ));
    }
    if items.is_empty() {
        if let Some(schema) = &schema {
            return Ok(polars::prelude::DataFrame::empty_with_schema(schema));
        }
    }
    let mut lines = Vec::new();
    for item in items {
        serde_json::to_writer(&mut lines, item).map_err(|e| e.to_string())?;
        lines.push(b'\n');
    }
    let mut reader = JsonReader::new(Cursor::new(lines)).with_json_format(JsonFormat::JsonLines);
    if let Some(schema) = schema {
        reader = reader.with_schema(schema);
    }
    reader.finish().map_err(|e| format!("to_dataframe: {e}"))
}

collection_kernel! {
    "rask::bag::",
    /// A partition of objects as a dataframe partition of the given schema
    /// (an empty frame's bytes).
    ToFrame(Vec<u8>) => |empty, inputs| {
        let schema = Partition::decode(empty).map_err(|e| fail(e.to_string()))?.0.schema().clone();
        let parts = records(inputs, "to_dataframe")?;
        let items: Vec<Json> = parts.iter().flat_map(|r| r.0.iter().cloned()).collect();
        let frame = objects_to_frame(&items, Some(schema)).map_err(fail)?;
        Ok(Value::new(Partition(frame)))
    }
}

collection_kernel! {
    "rask::bag::",
    /// A dataframe partition's rows as JSON objects.
    FromFrame(()) => |_params, inputs| {
        let part = inputs
            .first()
            .ok_or_else(|| fail("to_bag: no partition"))?
            .get::<Partition>()
            .map_err(|e| fail(format!("to_bag: {e}")))?;
        let mut frame = part.0.clone();
        let mut lines = Vec::new();
        JsonWriter::new(&mut lines)
            .with_json_format(JsonFormat::JsonLines)
            .finish(&mut frame)
            .map_err(|e| fail(format!("to_bag: {e}")))?;
        let items = Records::decode(&lines).map_err(|e| fail(format!("to_bag: {e}")))?;
        Ok(Value::new(items))
    }
}

impl Bag {
    /// A dataframe with one row per item, each item a JSON object (Dask's
    /// `to_dataframe`). With `schema` `None`, the first items (up to
    /// 1,000, computed now) decide the columns and types, as Dask's `meta`.
    pub fn to_dataframe(
        &self,
        schema: Option<SchemaRef>,
        client: &Client,
    ) -> Result<DataFrame, BagError> {
        let schema = match schema {
            Some(schema) => schema,
            None => {
                let first = self.take(INFER_ITEMS, client)?;
                if first.is_empty() {
                    return Err(BagError::Invalid(
                        "to_dataframe: the bag is empty; pass a schema".into(),
                    ));
                }
                objects_to_frame(&first, None)
                    .map_err(BagError::Invalid)?
                    .schema()
                    .clone()
            }
        };
        let empty = Partition(polars::prelude::DataFrame::empty_with_schema(&schema))
            .encode()
            .map_err(|e| BagError::Invalid(e.to_string()))?;
        let params = kernel::params(empty);
        let token = crate::graph::fresh_token();
        let nodes: Vec<_> = self
            .partitions
            .iter()
            .enumerate()
            .map(|(i, node)| {
                let key = Key::new(format!("to-dataframe-{token}")).indexed(&[i]);
                crate::collections::delayed::Delayed::<Partition>::from_arc(ToFrame::node(
                    key,
                    &params,
                    vec![node.clone()],
                ))
            })
            .collect();
        Ok(DataFrame::from_delayed(&nodes, schema)?)
    }
}

impl DataFrame {
    /// One JSON object per row, `{column: value}`, a partition per partition
    /// (Dask's `to_bag(format="dict")`).
    pub fn to_bag(&self) -> Result<Bag, DataFrameError> {
        let params = kernel::params(());
        let token = crate::graph::fresh_token();
        let nodes = self
            .to_delayed()
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let key = Key::new(format!("to-bag-{token}")).indexed(&[i]);
                FromFrame::node(key, &params, vec![part.node().clone()])
            })
            .collect();
        Ok(Bag::from_nodes("to-bag", nodes))
    }
}
