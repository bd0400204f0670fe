//! Chunked N-dimensional arrays (Dask's `dask.array`): NumPy-like arrays cut into
//! `ndarray` blocks, built lazily into task graphs and computed in parallel on
//! any cluster, bigger than memory.
//!
//! ```
//! use rask::array::{self, DType};
//! use rask::prelude::*;
//!
//! let client = Client::local(LocalCluster::new().workers(2))?;
//! let x = array::ones(&[1000, 1000], 250, DType::F64)?;
//! let y = (&x + &x.t()).mean_axis(0)?;
//! assert_eq!(y.shape(), &[1000]);
//! let values = y.compute::<f64>(&client)?;
//! assert!(values.iter().all(|&v| v == 2.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every block is a task whose op is one of a few registered kernels, so arrays
//! run on worker processes too; parameters travel with the task.

mod blas;
mod blockwise;
mod blosc;
mod chunk;
mod creation;
mod dtype;
mod elementwise;
mod fast_sum;
pub mod grid;
mod kernel;
mod linalg;
mod npy;
mod operand;
mod operators;
mod overlap;
mod reduction;
mod region;
mod reshape;
mod scalar;
mod scan;
mod selection;
mod slicing;
mod summary;
mod zarr;

pub use blas::{gemm_backend, BLAS_ENV};
pub use blockwise::blockwise;
pub use chunk::{chunk_from_bytes, Chunk};
pub use creation::{
    arange, from_array, from_fn, full, linspace, ones, random_normal, random_uniform, zeros,
    BlockInfo,
};
pub use dtype::{DType, Element, Number};
pub use elementwise::{BinaryOp, CompareOp, UnaryOp};
pub use fast_sum::sum_f64;
pub use grid::ChunkSpec;
pub use linalg::tensordot;
pub use npy::{from_npy, parse_header, read_header, read_npy, write_npy, NpyHeader};
pub use operand::{where_, Operand};
pub use operators::IntoScalar;
pub use overlap::Boundary;
pub use reduction::{ReduceOptions, Reduction};
pub use reshape::{concatenate, stack};
pub use scalar::Scalar;
pub use selection::{CompressMask, Selection};
pub use slicing::Slice;
pub use summary::human_bytes;
pub use zarr::{
    decompress_chunk, from_zarr, parse_layout, read_layout, Compression, IntoLocation, ZarrLayout,
    ZarrOptions,
};

use crate::client::lazy::Node;
use crate::client::{Client, Error};
use crate::collections::delayed::Delayed;
use crate::graph::Key;
use ndarray::ArrayD;
use std::sync::Arc;

/// What can go wrong building or computing an array.
#[derive(Debug, thiserror::Error)]
pub enum ArrayError {
    /// Shapes that do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A bad chunk specification.
    #[error("bad chunks: {0}")]
    Chunks(String),
    /// An axis that the array does not have.
    #[error("axis {axis} is out of range for an array with {ndim} dimensions")]
    Axis {
        /// The axis asked for.
        axis: isize,
        /// The array's dimensions.
        ndim: usize,
    },
    /// An operation the element type does not support.
    #[error("{op} is not supported for {dtype} arrays")]
    DType {
        /// The operation.
        op: String,
        /// The element type.
        dtype: DType,
    },
    /// An integer that does not fit the array's type, in arithmetic with it
    /// (NumPy 2 raises OverflowError).
    #[error("{op}: the scalar {scalar} is out of bounds for {dtype} (cast the array first, e.g. astype(DType::I64))")]
    ScalarOutOfRange {
        /// The operation.
        op: String,
        /// The scalar.
        scalar: Scalar,
        /// The array's type.
        dtype: DType,
    },
    /// A bad index or slice.
    #[error("bad index: {0}")]
    Index(String),
    /// Reading or writing a file.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Computing failed on the cluster.
    #[error(transparent)]
    Compute(#[from] Error),
}

/// Bytes of `shape` elements of `itemsize` bytes; `None` if that overflows.
pub(crate) fn checked_bytes(shape: &[usize], itemsize: usize) -> Option<u64> {
    shape
        .iter()
        .try_fold(itemsize as u64, |n, &d| n.checked_mul(d as u64))
}

/// The largest chunk a file's metadata may announce (a bigger one is refused
/// rather than allocated). Dask's chunks are about 128 MiB; Blosc cannot
/// hold more than 2 GiB either.
pub(crate) const MAX_CHUNK_BYTES: u64 = 2 << 30;

impl ArrayError {
    /// A failure reading or writing `path`.
    pub(crate) fn io(path: &std::path::Path, message: impl std::fmt::Display) -> Self {
        Self::at(path.display(), message)
    }

    /// A failure reading or writing `location` (a path or URL).
    pub(crate) fn at(location: impl std::fmt::Display, message: impl std::fmt::Display) -> Self {
        ArrayError::Io {
            path: location.to_string(),
            message: message.to_string(),
        }
    }
}

impl From<crate::io::StoreError> for ArrayError {
    fn from(e: crate::io::StoreError) -> Self {
        ArrayError::Io {
            path: e.location,
            message: e.message,
        }
    }
}

/// A lazy, chunked N-dimensional array.
#[derive(Clone)]
pub struct Array {
    name: Arc<str>,
    shape: Vec<usize>,
    chunks: Vec<Vec<usize>>,
    dtype: DType,
    /// One node per block, in C order over the block grid.
    blocks: Arc<[Arc<Node>]>,
    /// How the array was made, when a reduction can use that instead of
    /// the blocks (see `reduction::linear`).
    origin: Option<Arc<Origin>>,
}

/// What an array was made from, for reductions that push through it.
pub(crate) enum Origin {
    /// `source.transpose(perm)`.
    Transpose { source: Array, perm: Vec<usize> },
    /// `lhs + rhs` or `lhs - rhs` of float64 arrays with the same shape and chunks.
    AddSub {
        lhs: Array,
        rhs: Array,
        subtract: bool,
    },
}

impl Array {
    /// Builds an array whose block `index` is made by `make(index)`.
    pub(crate) fn build(
        prefix: &str,
        shape: Vec<usize>,
        chunks: Vec<Vec<usize>>,
        dtype: DType,
        mut make: impl FnMut(&str, &[usize]) -> Arc<Node>,
    ) -> Array {
        let name: Arc<str> = Arc::from(format!("{prefix}-{}", crate::graph::fresh_token()));
        let blocks = grid::block_indices(&grid::numblocks(&chunks))
            .iter()
            .map(|index| make(&name, index))
            .collect();
        Array {
            name,
            shape,
            chunks,
            dtype,
            blocks,
            origin: None,
        }
    }

    /// The same array, remembering how it was made.
    pub(crate) fn with_origin(mut self, origin: Origin) -> Array {
        self.origin = Some(Arc::new(origin));
        self
    }

    /// The array's name: the part of its keys before the block index.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The length of each axis.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn size(&self) -> usize {
        self.shape.iter().product()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Bytes of the whole array.
    pub fn nbytes(&self) -> usize {
        self.size() * self.dtype.itemsize()
    }

    /// The chunk sizes along each axis (Dask's `.chunks`).
    pub fn chunks(&self) -> &[Vec<usize>] {
        &self.chunks
    }

    /// The largest chunk's shape (Dask's `.chunksize`).
    pub fn chunksize(&self) -> Vec<usize> {
        self.chunks
            .iter()
            .map(|c| c.iter().copied().max().unwrap_or(0))
            .collect()
    }

    /// Blocks along each axis.
    pub fn numblocks(&self) -> Vec<usize> {
        grid::numblocks(&self.chunks)
    }

    /// Number of blocks.
    pub fn npartitions(&self) -> usize {
        self.blocks.len()
    }

    /// The node of block `index`.
    pub(crate) fn block(&self, index: &[usize]) -> &Arc<Node> {
        &self.blocks[grid::flat_index(index, &self.numblocks())]
    }

    /// The key of block `index`.
    pub fn block_key(&self, index: &[usize]) -> Key {
        self.block(index).key.clone()
    }

    /// A picture of the graph computing every chunk: DOT, or SVG for small
    /// graphs (Dask's `visualize`).
    pub fn visualize(&self) -> crate::diagnostics::Visualization {
        crate::diagnostics::Visualization::new(crate::collections::delayed::graph_of(
            &self.to_delayed(),
        ))
    }

    /// One delayed chunk per block, in C order (Dask's `to_delayed`).
    pub fn to_delayed(&self) -> Vec<Delayed<Chunk>> {
        self.blocks
            .iter()
            .map(|node| Delayed::from_arc(node.clone()))
            .collect()
    }

    /// Normalizes a possibly negative axis.
    pub(crate) fn axis(&self, axis: isize) -> Result<usize, ArrayError> {
        let ndim = self.ndim() as isize;
        let resolved = if axis < 0 { axis + ndim } else { axis };
        if resolved < 0 || resolved >= ndim {
            return Err(ArrayError::Axis {
                axis,
                ndim: self.ndim(),
            });
        }
        Ok(resolved as usize)
    }

    /// Starts computing every block; returns their futures in C order.
    pub fn compute_blocks(&self, client: &Client) -> Result<Vec<crate::Future<Chunk>>, ArrayError> {
        Ok(client.compute_many(&self.to_delayed())?)
    }

    /// Computes the array into one `Chunk` in this process.
    pub fn compute_chunk(&self, client: &Client) -> Result<Chunk, ArrayError> {
        let futures = self.compute_blocks(client)?;
        let numblocks = self.numblocks();
        let indices = grid::block_indices(&numblocks);
        let mut out = Chunk::full(self.dtype, &self.shape, 0.0);
        for (future, index) in futures.iter().zip(&indices) {
            let block = future.shared()?;
            let offset = grid::block_offset(&self.chunks, index);
            place(&mut out, &block, &offset)?;
        }
        Ok(out)
    }

    /// Computes the array into an `ndarray` array of `T` (which must be its dtype).
    pub fn compute<T: Element>(&self, client: &Client) -> Result<ArrayD<T>, ArrayError> {
        if T::DTYPE != self.dtype {
            return Err(ArrayError::DType {
                op: format!("computing into {}", T::DTYPE),
                dtype: self.dtype,
            });
        }
        let chunk = self.compute_chunk(client)?;
        match T::view(&chunk) {
            Some(_) => Ok(into_array::<T>(chunk)),
            None => Err(ArrayError::DType {
                op: "computing".into(),
                dtype: chunk.dtype(),
            }),
        }
    }

    /// Computes a 0-dimensional array (a reduction) into its value.
    pub fn compute_scalar<T: Element>(&self, client: &Client) -> Result<T, ArrayError> {
        if self.ndim() != 0 {
            return Err(ArrayError::Shape(format!(
                "compute_scalar on an array of shape {:?}",
                self.shape
            )));
        }
        let array = self.compute::<T>(client)?;
        array
            .iter()
            .next()
            .copied()
            .ok_or_else(|| ArrayError::Shape("an empty result".into()))
    }

    /// Runs one task per block that consumes it (a write to storage), made by
    /// `make(key, index, block)`, and waits for all of them.
    pub(crate) fn for_each_block(
        &self,
        client: &Client,
        prefix: &str,
        mut make: impl FnMut(Key, &[usize], &Arc<Node>) -> Arc<Node>,
    ) -> Result<(), ArrayError> {
        let token = crate::graph::fresh_token();
        let tasks: Vec<Delayed<Chunk>> = grid::block_indices(&self.numblocks())
            .iter()
            .map(|index| {
                let key = Key::new(format!("{prefix}-{token}")).indexed(index);
                Delayed::from_arc(make(key, index, self.block(index)))
            })
            .collect();
        for future in client.compute_many(&tasks)? {
            future.shared()?;
        }
        Ok(())
    }

    /// Computes every block and keeps them on the cluster; the returned array
    /// refers to the stored blocks (Dask's `persist`).
    pub fn persist(&self, client: &Client) -> Result<Array, ArrayError> {
        let futures = self.compute_blocks(client)?;
        let mut iter = futures.into_iter();
        let mut out = Array::build(
            "persisted",
            self.shape.clone(),
            self.chunks.clone(),
            self.dtype,
            |_, _| {
                let future = iter.next().expect("one future per block");
                Delayed::from_future(future).node().clone()
            },
        );
        out.name = self.name.clone();
        Ok(out)
    }
}

/// Copies `block` into `out` at `offset`.
fn place(out: &mut Chunk, block: &Chunk, offset: &[usize]) -> Result<(), ArrayError> {
    macro_rules! copy {
        ($out:ident, $block:ident) => {{
            let region: Vec<ndarray::SliceInfoElem> = offset
                .iter()
                .zip($block.shape())
                .map(|(&start, &len)| ndarray::SliceInfoElem::Slice {
                    start: start as isize,
                    end: Some((start + len) as isize),
                    step: 1,
                })
                .collect();
            $out.slice_mut(region.as_slice()).assign($block);
            Ok(())
        }};
    }
    match (out, block) {
        (Chunk::F64(o), Chunk::F64(b)) => copy!(o, b),
        (Chunk::F32(o), Chunk::F32(b)) => copy!(o, b),
        (Chunk::I64(o), Chunk::I64(b)) => copy!(o, b),
        (Chunk::I32(o), Chunk::I32(b)) => copy!(o, b),
        (Chunk::U8(o), Chunk::U8(b)) => copy!(o, b),
        (Chunk::Bool(o), Chunk::Bool(b)) => copy!(o, b),
        (o, b) => Err(ArrayError::DType {
            op: format!("placing a block into a {} array", o.dtype()),
            dtype: b.dtype(),
        }),
    }
}

fn into_array<T: Element>(chunk: Chunk) -> ArrayD<T> {
    // The caller checked the type; a mismatch would be a bug, so cast then.
    T::take(chunk).unwrap_or_else(|other| other.cast::<T>())
}
