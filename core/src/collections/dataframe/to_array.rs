//! A dataframe's numeric columns as a 2-D [`Array`] with known chunk sizes
//! (Dask's `to_dask_array(lengths=True)`): one block of rows per partition,
//! all columns in one block across.

use super::partition::Partition;
use super::{DataFrame, DataFrameError};
use crate::client::Client;
use crate::collections::array::{Array, Chunk, DType};
use crate::collections::kernel::{self, collection_kernel};
use crate::ops::TaskFailure;
use crate::value::Value;
use ndarray::Array2;
use polars::prelude::*;

fn fail(message: impl Into<String>) -> TaskFailure {
    TaskFailure::new(message)
}

/// A partition's columns as a rows × columns block of `dtype`.
fn to_chunk(frame: &polars::prelude::DataFrame, dtype: DType) -> Result<Chunk, String> {
    let (rows, cols) = (frame.height(), frame.width());
    let nulls =
        |name: &str| format!("to_array: column {name:?} has nulls; fill or drop them first");
    match dtype {
        DType::I64 => {
            let mut block = Array2::<i64>::zeros((rows, cols));
            for (j, column) in frame.columns().iter().enumerate() {
                let cast = column.cast(&DataType::Int64).map_err(|e| e.to_string())?;
                for (i, v) in cast.i64().map_err(|e| e.to_string())?.iter().enumerate() {
                    block[(i, j)] = v.ok_or_else(|| nulls(column.name()))?;
                }
            }
            Ok(Chunk::I64(block.into_dyn()))
        }
        _ => {
            let mut block = Array2::<f64>::zeros((rows, cols));
            for (j, column) in frame.columns().iter().enumerate() {
                let cast = column.cast(&DataType::Float64).map_err(|e| e.to_string())?;
                for (i, v) in cast.f64().map_err(|e| e.to_string())?.iter().enumerate() {
                    // Nulls of float columns are NaN, as in pandas.
                    block[(i, j)] = v.unwrap_or(f64::NAN);
                }
            }
            Ok(Chunk::F64(block.into_dyn()))
        }
    }
}

collection_kernel! {
    "rask::dataframe::",
    /// A partition as one block of a 2-D array.
    ToChunk(DType) => |dtype, inputs| {
        let part = inputs
            .first()
            .ok_or_else(|| fail("to_array: no partition"))?
            .get::<Partition>()
            .map_err(|e| fail(format!("to_array: {e}")))?;
        let chunk = to_chunk(&part.0, *dtype).map_err(fail)?;
        Ok(Value::new(chunk))
    }
}

impl DataFrame {
    /// The numeric columns (all of them must be) as a rows × columns array:
    /// `int64` when every column is an integer, else `float64` (nulls NaN).
    /// Counts each partition's rows first, so the chunks are known (Dask's
    /// `to_dask_array(lengths=True)`).
    pub fn to_array(&self, client: &Client) -> Result<Array, DataFrameError> {
        let mut integer = true;
        for (name, dtype) in self.schema.iter() {
            if !dtype.is_primitive_numeric() && !dtype.is_bool() {
                return Err(DataFrameError::Unsupported(format!(
                    "to_array: column {name:?} is {dtype}, not a number; select the numeric columns"
                )));
            }
            integer &= dtype.is_integer() || dtype.is_bool();
        }
        let dtype = if integer { DType::I64 } else { DType::F64 };
        let counted = self.select(vec![len().alias("len")])?;
        let lengths: Vec<usize> = counted
            .compute_partitions(client)?
            .iter()
            .map(|part| Ok(part.column("len")?.u32()?.get(0).unwrap_or(0) as usize))
            .collect::<Result<_, DataFrameError>>()?;
        let rows = lengths.iter().sum();
        let cols = self.schema.len();
        let params = kernel::params(dtype);
        let parts = self.partitions.clone();
        Ok(Array::build(
            "to-array",
            vec![rows, cols],
            vec![lengths, vec![cols]],
            dtype,
            |name, index| {
                let key = crate::graph::Key::new(name).indexed(index);
                ToChunk::node(key, &params, vec![parts[index[0]].clone()])
            },
        ))
    }
}
