//! Array kernels: the registered ops that array blocks run (see
//! [`collections::kernel`](crate::collections::kernel)).

use super::chunk::Chunk;
pub(crate) use crate::collections::kernel::{params, with_args};
use crate::ops::TaskFailure;
use crate::value::Value;
use std::sync::Arc;

/// Registers an array kernel: `$name::NAME` runs `$body(&params, inputs)`.
macro_rules! kernel {
    ($(#[$meta:meta])* $vis:vis $name:ident($params:ty) => $body:expr) => {
        $crate::collections::kernel::collection_kernel!("rask::array::", $(#[$meta])* $vis $name($params) => $body);
    };
}
pub(crate) use kernel;

/// Input `n` as a chunk.
pub(crate) fn chunk_at(inputs: &[Value], n: usize) -> Result<Arc<Chunk>, TaskFailure> {
    let value = inputs
        .get(n)
        .ok_or_else(|| TaskFailure::new(format!("array kernel: input {n} is missing")))?;
    value
        .get::<Chunk>()
        .map_err(|e| TaskFailure::new(format!("array kernel: input {n}: {e}")))
}

/// Every input as a chunk.
pub(crate) fn chunks(inputs: &[Value]) -> Result<Vec<Arc<Chunk>>, TaskFailure> {
    (0..inputs.len()).map(|n| chunk_at(inputs, n)).collect()
}

/// Wraps a kernel's result.
pub(crate) fn output(chunk: Chunk) -> Result<Value, TaskFailure> {
    Ok(Value::new(chunk))
}

/// A kernel failure with a message.
pub(crate) fn fail(message: impl Into<String>) -> TaskFailure {
    TaskFailure::new(message)
}
