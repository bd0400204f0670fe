//! The byte encoding of values and task arguments (postcard: compact, serde-based).

use super::ValueError;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encodes any serde value, into a buffer of exactly the right size (a large
/// value costs one copy of itself while encoding, not two or three).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ValueError> {
    let fail = |e: postcard::Error| ValueError::Encode {
        type_name: std::any::type_name::<T>(),
        message: e.to_string(),
    };
    let size = postcard::experimental::serialized_size(value).map_err(fail)?;
    postcard::to_extend(value, Vec::with_capacity(size)).map_err(fail)
}

/// Decodes bytes made by [`encode`]; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ValueError> {
    let fail = |message: String| ValueError::Decode {
        type_name: std::any::type_name::<T>(),
        len: bytes.len(),
        message,
    };
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| fail(e.to_string()))?;
    if !rest.is_empty() {
        return Err(fail(format!("{} trailing bytes", rest.len())));
    }
    Ok(value)
}
