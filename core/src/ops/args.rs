//! Typed arguments inside an op: taking each argument out of the values a task got.

use super::TaskFailure;
use crate::value::{Data, Value};

/// Takes the next argument of an op as a `T`, naming the op and the argument on failure.
pub fn next_arg<'a, T: Data + Clone>(
    args: &mut impl Iterator<Item = &'a Value>,
    op: &str,
    name: &str,
) -> Result<T, TaskFailure> {
    let value = args
        .next()
        .ok_or_else(|| TaskFailure::new(format!("op `{op}`: argument `{name}` is missing")))?;
    value
        .extract::<T>()
        .map_err(|e| TaskFailure::new(format!("op `{op}`: argument `{name}`: {e}")))
}
