//! What flows between tasks: task arguments and results.
//!
//! A [`Value`] is either a live object ([`Data`], shared by `Arc`, never copied on an
//! in-process cluster) or encoded bytes that arrived from another process and are
//! decoded on first typed use. Any `serde` type is `Data`; collections bring their own
//! chunk types with exact sizes and fast encodings.

mod codec;

pub use codec::{decode, encode};

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::any::Any;
use std::fmt;
use std::sync::Arc;

/// Errors turning values into bytes and back, or into the wrong type.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// A value could not be encoded for transport.
    #[error("cannot encode a value of type {type_name}: {message}")]
    Encode {
        /// The Rust type that failed.
        type_name: &'static str,
        /// What the encoder said.
        message: String,
    },
    /// Bytes could not be decoded into the requested type.
    #[error("cannot decode {len} bytes as {type_name}: {message}")]
    Decode {
        /// The requested Rust type.
        type_name: &'static str,
        /// How many bytes there were.
        len: usize,
        /// What the decoder said.
        message: String,
    },
    /// A task or a client asked for a different type than the value holds.
    #[error("expected a value of type {expected}, found {found}")]
    WrongType {
        /// The requested Rust type.
        expected: &'static str,
        /// The type the value holds.
        found: &'static str,
    },
}

/// A result that can live in a worker's memory and travel between processes.
///
/// Implemented for every `serde` type; implement it by hand for types with a
/// cheaper encoding or a better size estimate (array chunks, dataframe partitions).
pub trait Data: Any + Send + Sync {
    /// The bytes that represent this value on the wire.
    fn encode(&self) -> Result<Vec<u8>, ValueError>;
    /// Rebuilds a value from [`Data::encode`]'s bytes.
    fn decode(bytes: &[u8]) -> Result<Self, ValueError>
    where
        Self: Sized;
    /// Estimated memory held by the value, for placement and memory limits.
    fn nbytes(&self) -> usize;
    /// The Rust type's name, for error messages.
    fn type_name(&self) -> &'static str;
    /// Upcast used by [`Value::get`].
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<T> Data for T
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn encode(&self) -> Result<Vec<u8>, ValueError> {
        codec::encode(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self, ValueError> {
        codec::decode(bytes)
    }

    fn nbytes(&self) -> usize {
        // The encoded size counts heap data (a Vec's elements, a String's bytes).
        std::mem::size_of::<T>() + postcard::experimental::serialized_size(self).unwrap_or(0)
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// One task argument or result.
#[derive(Clone)]
pub enum Value {
    /// A live object in this process.
    Object(Arc<dyn Data>),
    /// Bytes from another process (or a disk), kept as they arrived and
    /// decoded when a task or client asks for a type.
    Encoded(bytes::Bytes),
}

impl Value {
    /// Wraps a live object.
    pub fn new<T: Data>(value: T) -> Self {
        Value::Object(Arc::new(value))
    }

    /// The value as a `T`, shared when it is a live `T`, decoded when it is bytes.
    pub fn get<T: Data>(&self) -> Result<Arc<T>, ValueError> {
        match self {
            Value::Object(object) => {
                let found = object.type_name();
                Arc::clone(object)
                    .into_any()
                    .downcast::<T>()
                    .map_err(|_| ValueError::WrongType {
                        expected: std::any::type_name::<T>(),
                        found,
                    })
            }
            Value::Encoded(bytes) => T::decode(bytes).map(Arc::new),
        }
    }

    /// The value as an owned `T` (a clone when the value is shared).
    pub fn extract<T: Data + Clone>(&self) -> Result<T, ValueError> {
        self.get::<T>()
            .map(|shared| Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone()))
    }

    /// The bytes that carry this value to another process.
    pub fn to_bytes(&self) -> Result<bytes::Bytes, ValueError> {
        match self {
            // The encoded buffer becomes the bytes as it is: no copy.
            Value::Object(object) => object.encode().map(bytes::Bytes::from),
            Value::Encoded(bytes) => Ok(bytes.clone()),
        }
    }

    /// Estimated memory held by the value.
    pub fn nbytes(&self) -> usize {
        match self {
            Value::Object(object) => object.nbytes(),
            Value::Encoded(bytes) => bytes.len(),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Object(object) => write!(f, "Value<{}>", object.type_name()),
            Value::Encoded(bytes) => write!(f, "Value<{} encoded bytes>", bytes.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_values_downcast_and_encoded_values_decode() {
        let live = Value::new(41_i64);
        assert_eq!(*live.get::<i64>().unwrap(), 41);
        let bytes = live.to_bytes().unwrap();
        let remote = Value::Encoded(bytes);
        assert_eq!(remote.extract::<i64>().unwrap(), 41);
    }

    #[test]
    fn wrong_type_names_both_types() {
        let err = Value::new(String::from("x")).get::<i64>().unwrap_err();
        assert_eq!(
            err,
            ValueError::WrongType {
                expected: "i64",
                found: "alloc::string::String"
            }
        );
    }

    #[test]
    fn garbage_bytes_are_a_decode_error() {
        let err = Value::Encoded(bytes::Bytes::from_static(&[0xff_u8; 3]))
            .get::<String>()
            .unwrap_err();
        assert!(matches!(err, ValueError::Decode { .. }), "{err}");
    }
}
