//! [`Partition`]: one dataframe partition, a Polars frame, as a task value.
//! It travels as an Arrow IPC stream (columns written as they are, no
//! per-value encoding) and reports Polars' estimate of its memory.

use crate::value::{Data, ValueError};
use polars::prelude::{DataFrame, IpcStreamReader, IpcStreamWriter, SerReader, SerWriter};
use std::any::Any;
use std::io::Cursor;
use std::sync::Arc;

/// One partition of a [`DataFrame`](super::DataFrame): a Polars frame.
#[derive(Clone, Debug)]
pub struct Partition(pub DataFrame);

impl Data for Partition {
    fn encode(&self) -> Result<Vec<u8>, ValueError> {
        let mut bytes = Vec::with_capacity(self.0.estimated_size() + 1024);
        let mut frame = self.0.clone();
        IpcStreamWriter::new(&mut bytes)
            .finish(&mut frame)
            .map_err(|e| ValueError::Encode {
                type_name: "rask::dataframe::Partition",
                message: e.to_string(),
            })?;
        Ok(bytes)
    }

    fn decode(bytes: &[u8]) -> Result<Self, ValueError> {
        IpcStreamReader::new(Cursor::new(bytes))
            .finish()
            .map(Partition)
            .map_err(|e| ValueError::Decode {
                type_name: "rask::dataframe::Partition",
                len: bytes.len(),
                message: e.to_string(),
            })
    }

    fn nbytes(&self) -> usize {
        self.0.estimated_size() + std::mem::size_of::<Self>()
    }

    fn type_name(&self) -> &'static str {
        "rask::dataframe::Partition"
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    #[test]
    fn partitions_travel_as_ipc_and_garbage_is_an_error() {
        let frame = df!("k" => ["a", "b", "a"], "v" => [Some(1.5), None, Some(3.0)]).unwrap();
        let back = Partition::decode(&Partition(frame.clone()).encode().unwrap()).unwrap();
        assert!(back.0.equals_missing(&frame));
        assert!(Partition::decode(b"not an ipc stream").is_err());
    }
}
