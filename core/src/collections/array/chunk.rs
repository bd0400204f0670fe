//! One block of an array: an `ndarray` array of one of the element types, with a
//! compact encoding (a small header and the raw little-endian elements).

use super::dtype::{DType, Element};
use crate::value::{Data, ValueError};
use ndarray::{ArrayD, IxDyn};
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One block of an array.
#[derive(Clone, Debug, PartialEq)]
pub enum Chunk {
    /// `float64` elements.
    F64(ArrayD<f64>),
    /// `float32` elements.
    F32(ArrayD<f32>),
    /// `int64` elements.
    I64(ArrayD<i64>),
    /// `int32` elements.
    I32(ArrayD<i32>),
    /// `uint8` elements.
    U8(ArrayD<u8>),
    /// `bool` elements.
    Bool(ArrayD<bool>),
}

/// Runs `$body` with `$a` bound to the chunk's array, whatever its element type.
#[macro_export]
#[doc(hidden)]
macro_rules! with_chunk {
    ($chunk:expr, $a:ident => $body:expr) => {
        match $chunk {
            $crate::collections::array::Chunk::F64($a) => $body,
            $crate::collections::array::Chunk::F32($a) => $body,
            $crate::collections::array::Chunk::I64($a) => $body,
            $crate::collections::array::Chunk::I32($a) => $body,
            $crate::collections::array::Chunk::U8($a) => $body,
            $crate::collections::array::Chunk::Bool($a) => $body,
        }
    };
}
pub use with_chunk;

/// Runs `$body` with `$t` standing for the Rust type of `$dtype`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_dtype {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            $crate::collections::array::DType::F64 => {
                type $t = f64;
                $body
            }
            $crate::collections::array::DType::F32 => {
                type $t = f32;
                $body
            }
            $crate::collections::array::DType::I64 => {
                type $t = i64;
                $body
            }
            $crate::collections::array::DType::I32 => {
                type $t = i32;
                $body
            }
            $crate::collections::array::DType::U8 => {
                type $t = u8;
                $body
            }
            $crate::collections::array::DType::Bool => {
                type $t = bool;
                $body
            }
        }
    };
}
pub use with_dtype;

impl Chunk {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            Chunk::F64(_) => DType::F64,
            Chunk::F32(_) => DType::F32,
            Chunk::I64(_) => DType::I64,
            Chunk::I32(_) => DType::I32,
            Chunk::U8(_) => DType::U8,
            Chunk::Bool(_) => DType::Bool,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        with_chunk!(self, a => a.shape())
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_chunk!(self, a => a.len())
    }

    /// Whether the chunk has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the elements.
    pub fn nbytes(&self) -> usize {
        self.len() * self.dtype().itemsize()
    }

    /// A copy of the chunk with every element cast to `dtype` (see
    /// [`Chunk::into_dtype`] to avoid the copy when it already has that type).
    pub fn astype(&self, dtype: DType) -> Chunk {
        if self.dtype() == dtype {
            return self.clone();
        }
        with_dtype!(dtype, T => T::wrap(self.cast::<T>()))
    }

    /// The chunk as `dtype`, without a copy when it already is.
    pub fn into_dtype(self, dtype: DType) -> Chunk {
        if self.dtype() == dtype {
            self
        } else {
            self.astype(dtype)
        }
    }

    /// The chunk as an array of `T`, borrowed when it already is one.
    pub fn as_type<T: Element>(&self) -> ndarray::CowArray<'_, T, IxDyn> {
        match T::view(self) {
            Some(array) => array.view().into(),
            None => self.cast::<T>().into(),
        }
    }

    /// The elements cast to `T`.
    pub fn cast<T: Element>(&self) -> ArrayD<T> {
        with_chunk!(self, a => a.mapv(T::cast))
    }

    /// The array, when the chunk holds `T`s.
    pub fn view<T: Element>(&self) -> Option<&ArrayD<T>> {
        T::view(self)
    }

    /// A chunk of `shape` filled with `value` cast to `dtype`.
    pub fn full(dtype: DType, shape: &[usize], value: f64) -> Chunk {
        with_dtype!(dtype, T => T::wrap(ArrayD::from_elem(IxDyn(shape), T::from_f64(value))))
    }
}

impl<T: Element> From<ArrayD<T>> for Chunk {
    fn from(array: ArrayD<T>) -> Self {
        T::wrap(array)
    }
}

fn dtype_code(dtype: DType) -> u8 {
    match dtype {
        DType::Bool => 0,
        DType::U8 => 1,
        DType::I32 => 2,
        DType::I64 => 3,
        DType::F32 => 4,
        DType::F64 => 5,
    }
}

fn code_dtype(code: u8) -> Option<DType> {
    Some(match code {
        0 => DType::Bool,
        1 => DType::U8,
        2 => DType::I32,
        3 => DType::I64,
        4 => DType::F32,
        5 => DType::F64,
        _ => return None,
    })
}

/// The elements' bytes in little-endian order, borrowed when the array is
/// contiguous on a little-endian machine.
fn element_bytes<T: Element>(array: &ArrayD<T>) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(target_endian = "little")]
    if let Some(slice) = array.as_slice() {
        return std::borrow::Cow::Borrowed(bytemuck::cast_slice(slice));
    }
    let standard = array.as_standard_layout();
    let slice = standard.as_slice().expect("standard layout is contiguous");
    let mut bytes = Vec::with_capacity(std::mem::size_of_val(slice));
    for value in slice {
        bytes.extend_from_slice(bytemuck::bytes_of(value));
    }
    #[cfg(target_endian = "big")]
    for element in bytes.chunks_exact_mut(std::mem::size_of::<T>()) {
        element.reverse();
    }
    std::borrow::Cow::Owned(bytes)
}

/// Little-endian element bytes into numbers (one copy; any alignment).
fn pod_elements<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
    #[cfg(target_endian = "big")]
    {
        let mut out: Vec<T> = bytemuck::pod_collect_to_vec(bytes);
        for value in &mut out {
            bytemuck::bytes_of_mut(value).reverse();
        }
        out
    }
    #[cfg(target_endian = "little")]
    bytemuck::pod_collect_to_vec(bytes)
}

/// Rebuilds a chunk from its dtype, shape and little-endian element bytes;
/// a size that does not match the shape is an error, never a panic.
pub fn chunk_from_bytes(dtype: DType, shape: &[usize], bytes: &[u8]) -> Result<Chunk, String> {
    let len = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or("shape overflows")?;
    if Some(bytes.len()) != len.checked_mul(dtype.itemsize()) {
        return Err(format!(
            "{} bytes for {len} {dtype} elements of shape {shape:?}",
            bytes.len()
        ));
    }
    let shape = IxDyn(shape);
    let bad = |e: ndarray::ShapeError| e.to_string();
    Ok(match dtype {
        DType::F64 => Chunk::F64(ArrayD::from_shape_vec(shape, pod_elements(bytes)).map_err(bad)?),
        DType::F32 => Chunk::F32(ArrayD::from_shape_vec(shape, pod_elements(bytes)).map_err(bad)?),
        DType::I64 => Chunk::I64(ArrayD::from_shape_vec(shape, pod_elements(bytes)).map_err(bad)?),
        DType::I32 => Chunk::I32(ArrayD::from_shape_vec(shape, pod_elements(bytes)).map_err(bad)?),
        DType::U8 => Chunk::U8(ArrayD::from_shape_vec(shape, bytes.to_vec()).map_err(bad)?),
        DType::Bool => Chunk::Bool(
            ArrayD::from_shape_vec(shape, bytes.iter().map(|&b| b != 0).collect()).map_err(bad)?,
        ),
    })
}

impl Chunk {
    /// The elements as little-endian bytes in C order.
    pub fn to_le_bytes(&self) -> std::borrow::Cow<'_, [u8]> {
        with_chunk!(self, a => element_bytes(a))
    }
}

/// A chunk borrowed for serde, in its wire form: `(dtype code, shape, element
/// bytes)`; the bytes are written as one block, so encoding costs one copy at
/// memory speed.
pub struct WireRef<'a>(pub &'a Chunk);

/// A chunk decoded from its wire form.
pub struct Wire(pub Chunk);

impl Serialize for WireRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let chunk = self.0;
        let shape: Vec<u64> = chunk.shape().iter().map(|&d| d as u64).collect();
        let mut tuple = serializer.serialize_tuple(3)?;
        tuple.serialize_element(&dtype_code(chunk.dtype()))?;
        tuple.serialize_element(&shape)?;
        tuple.serialize_element(&BytesRef(&chunk.to_le_bytes()))?;
        tuple.end()
    }
}

/// A byte slice serialized as bytes (not as a sequence of numbers).
struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

struct ByteVisitor;

impl<'de> Visitor<'de> for ByteVisitor {
    type Value = std::borrow::Cow<'de, [u8]>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("chunk element bytes")
    }
    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_vec()))
    }
    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v))
    }
}

struct Bytes<'de>(std::borrow::Cow<'de, [u8]>);

impl<'de> Deserialize<'de> for Bytes<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(ByteVisitor).map(Bytes)
    }
}

impl<'de> Deserialize<'de> for Wire {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ChunkVisitor;
        impl<'de> Visitor<'de> for ChunkVisitor {
            type Value = Chunk;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array chunk")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Chunk, A::Error> {
                let code: u8 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let shape: Vec<u64> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let bytes: Bytes<'de> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(2, &self))?;
                let dtype = code_dtype(code)
                    .ok_or_else(|| de::Error::custom(format!("unknown dtype code {code}")))?;
                let shape: Vec<usize> = shape
                    .iter()
                    .map(|&d| usize::try_from(d))
                    .collect::<Result<_, _>>()
                    .map_err(de::Error::custom)?;
                chunk_from_bytes(dtype, &shape, &bytes.0).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_tuple(3, ChunkVisitor).map(Wire)
    }
}

/// `#[serde(with = "wire")]` for chunk fields of serde structs.
pub mod wire {
    use super::{Chunk, Wire, WireRef};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes a chunk in its wire form.
    pub fn serialize<S: Serializer>(chunk: &Chunk, serializer: S) -> Result<S::Ok, S::Error> {
        WireRef(chunk).serialize(serializer)
    }

    /// Deserializes a chunk from its wire form.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Chunk, D::Error> {
        Wire::deserialize(deserializer).map(|w| w.0)
    }
}

/// `#[serde(with = "wire_option")]` for optional chunk fields.
pub mod wire_option {
    use super::{Chunk, Wire, WireRef};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes an optional chunk.
    pub fn serialize<S: Serializer>(
        chunk: &Option<Chunk>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        chunk.as_ref().map(WireRef).serialize(serializer)
    }

    /// Deserializes an optional chunk.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Chunk>, D::Error> {
        Option::<Wire>::deserialize(deserializer).map(|w| w.map(|w| w.0))
    }
}

/// Chunks encode to their wire form and count their elements' bytes (never
/// encoding to measure themselves).
impl Data for Chunk {
    fn encode(&self) -> Result<Vec<u8>, ValueError> {
        crate::value::encode(&WireRef(self))
    }

    fn decode(bytes: &[u8]) -> Result<Self, ValueError> {
        crate::value::decode::<Wire>(bytes).map(|w| w.0)
    }

    fn nbytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.nbytes() + 8 * self.shape().len()
    }

    fn type_name(&self) -> &'static str {
        "rask::array::Chunk"
    }

    fn into_any(self: std::sync::Arc<Self>) -> std::sync::Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_through_their_encoding() {
        let chunks = [
            Chunk::F64(ArrayD::from_shape_fn(IxDyn(&[3, 4]), |i| {
                i[0] as f64 - i[1] as f64 * 0.5
            })),
            Chunk::I32(ArrayD::from_shape_fn(IxDyn(&[5]), |i| i[0] as i32 - 2)),
            Chunk::Bool(ArrayD::from_shape_fn(IxDyn(&[2, 2, 2]), |i| i[1] == 1)),
            Chunk::U8(ArrayD::from_elem(IxDyn(&[0, 3]), 7)),
            // A transposed (non-contiguous) view encodes in C order.
            Chunk::F32(
                ArrayD::from_shape_fn(IxDyn(&[2, 3]), |i| (i[0] * 3 + i[1]) as f32).reversed_axes(),
            ),
        ];
        for chunk in chunks {
            let bytes = Data::encode(&chunk).unwrap();
            let back = <Chunk as Data>::decode(&bytes).unwrap();
            assert_eq!(back, chunk);
        }
    }

    #[test]
    fn a_lying_shape_is_an_error() {
        assert!(chunk_from_bytes(DType::F64, &[3], &[0; 16]).is_err());
        assert!(chunk_from_bytes(DType::F64, &[usize::MAX, 2], &[]).is_err());
    }
}
