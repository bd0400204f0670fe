//! A region of a block that shares the block's memory. Rechunking cuts input
//! blocks into pieces this way, so in one process every element is copied
//! once, into its output block, as NumPy views make it for Dask. A region that
//! leaves the process (to another worker, or to disk) travels as a plain chunk
//! of just its elements.

use super::chunk::{with_chunk, Chunk};
use super::dtype::Element;
use super::kernel::{self, fail, kernel};
use crate::ops::TaskFailure;
use crate::value::{Data, Value, ValueError};
use ndarray::SliceInfoElem;
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::sync::Arc;

/// Elements `ranges` (one per axis) of `source`.
pub(crate) struct ChunkRegion {
    source: Arc<Chunk>,
    ranges: Vec<Range<usize>>,
}

impl ChunkRegion {
    fn whole(source: Arc<Chunk>) -> ChunkRegion {
        let ranges = source.shape().iter().map(|&n| 0..n).collect();
        ChunkRegion { source, ranges }
    }

    /// The element type.
    pub(crate) fn dtype(&self) -> super::DType {
        self.source.dtype()
    }

    fn shape(&self) -> Vec<usize> {
        self.ranges.iter().map(|r| r.len()).collect()
    }

    fn info(&self) -> Vec<SliceInfoElem> {
        self.ranges.iter().map(|r| r.clone().into()).collect()
    }

    /// The region's elements as a block of their own (a copy).
    fn to_chunk(&self) -> Chunk {
        let info = self.info();
        with_chunk!(&*self.source, a => Element::wrap(a.slice(info.as_slice()).to_owned()))
    }

    /// The region of input `n`: a region kernel's output as it is, any other
    /// block whole.
    pub(crate) fn input(inputs: &[Value], n: usize) -> Result<ChunkRegion, TaskFailure> {
        let value = inputs
            .get(n)
            .ok_or_else(|| fail(format!("array kernel: input {n} is missing")))?;
        if let Ok(region) = value.get::<ChunkRegion>() {
            return Ok(ChunkRegion {
                source: Arc::clone(&region.source),
                ranges: region.ranges.clone(),
            });
        }
        kernel::chunk_at(inputs, n).map(ChunkRegion::whole)
    }

    /// Copies the region into `out` with its first element at `offset`.
    pub(crate) fn paste_into(&self, out: &mut Chunk, offset: &[usize]) -> Result<(), TaskFailure> {
        let shape = self.shape();
        if offset.len() != out.shape().len()
            || shape.len() != offset.len()
            || offset
                .iter()
                .zip(&shape)
                .zip(out.shape())
                .any(|((&o, &l), &d)| o + l > d)
        {
            return Err(fail("assemble: a piece does not fit"));
        }
        let target: Vec<SliceInfoElem> = offset
            .iter()
            .zip(&shape)
            .map(|(&o, &l)| (o..o + l).into())
            .collect();
        let info = self.info();
        // Cast only when the types differ: a same-typed piece is copied straight in.
        let cast;
        let source = if self.source.dtype() == out.dtype() {
            &*self.source
        } else {
            cast = self.source.astype(out.dtype());
            &cast
        };
        with_chunk!(out, o => {
            let a = Element::view(source).ok_or_else(|| fail("assemble: mixed types"))?;
            o.slice_mut(target.as_slice()).assign(&a.slice(info.as_slice()));
            Ok(())
        })
    }
}

impl Data for ChunkRegion {
    fn encode(&self) -> Result<Vec<u8>, ValueError> {
        self.to_chunk().encode()
    }

    fn decode(bytes: &[u8]) -> Result<Self, ValueError> {
        Chunk::decode(bytes).map(|chunk| ChunkRegion::whole(Arc::new(chunk)))
    }

    fn nbytes(&self) -> usize {
        // As much as a copy would hold: the memory it keeps alive may be
        // released by its block's other holders.
        let elements: usize = self.ranges.iter().map(|r| r.len()).product();
        std::mem::size_of::<Self>() + elements * self.source.dtype().itemsize()
    }

    fn type_name(&self) -> &'static str {
        "rask::array::ChunkRegion"
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn std::any::Any + Send + Sync> {
        self
    }
}

/// `start..start + len` along each axis of a block.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RegionParams {
    pub ranges: Vec<(usize, usize)>,
}

kernel! {
    /// A region of one block, sharing its memory.
    pub(crate) TakeRegion(RegionParams) => |p, inputs| {
        let source = kernel::chunk_at(inputs, 0)?;
        let shape = source.shape();
        if p.ranges.len() != shape.len()
            || p.ranges.iter().zip(shape).any(|(&(start, len), &dim)| start + len > dim)
        {
            return Err(fail("take region: a range outside the block"));
        }
        let ranges = p.ranges.iter().map(|&(start, len)| start..start + len).collect();
        Ok(Value::new(ChunkRegion { source, ranges }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    fn block() -> Arc<Chunk> {
        let a = ArrayD::from_shape_fn(ndarray::IxDyn(&[4, 6]), |i| (i[0] * 10 + i[1]) as f64);
        Arc::new(Chunk::F64(a))
    }

    #[test]
    fn a_region_pastes_its_elements_and_travels_as_a_plain_chunk() {
        let region = ChunkRegion {
            source: block(),
            ranges: vec![1..3, 2..5],
        };
        let mut out = Chunk::full(super::super::DType::F64, &[3, 4], -1.0);
        region.paste_into(&mut out, &[1, 0]).unwrap();
        let Chunk::F64(o) = &out else { unreachable!() };
        assert_eq!(o[[0, 0]], -1.0);
        assert_eq!(o[[1, 0]], 12.0);
        assert_eq!(o[[2, 2]], 24.0);
        assert_eq!(o[[1, 3]], -1.0);
        // Over the wire: just the 2×3 elements, which decode as a chunk.
        let bytes = region.encode().unwrap();
        let chunk = Chunk::decode(&bytes).unwrap();
        assert_eq!(chunk.shape(), &[2, 3]);
        assert_eq!(chunk, region.to_chunk());
        let back = ChunkRegion::input(&[Value::Encoded(bytes::Bytes::from(bytes))], 0).unwrap();
        assert_eq!(back.to_chunk(), chunk);
        // A piece that does not fit is an error, not a panic.
        assert!(region.paste_into(&mut out, &[2, 2]).is_err());
    }

    #[test]
    fn a_region_of_another_type_is_cast() {
        let region = ChunkRegion::whole(block());
        let mut out = Chunk::full(super::super::DType::I64, &[4, 6], 0.0);
        region.paste_into(&mut out, &[0, 0]).unwrap();
        assert_eq!(out, block().astype(super::super::DType::I64));
    }
}
