//! Boolean masks that are themselves lazy arrays (`x[x > 0]` in Dask): how
//! many elements survive is not known until the mask is computed, so the
//! result is a [`Selection`], Dask's array with `nan` chunks made a type of
//! its own. It supports what needs no lengths (elementwise maps with scalars,
//! whole reductions, `compute`, `persist`); `compute_chunk_sizes` turns it
//! into an ordinary [`Array`].

use super::chunk::{with_chunk, Chunk};
use super::dtype::{DType, Element};
use super::elementwise::{BinaryOp, CompareOp, UnaryOp};
use super::grid::{self, ChunkSpec};
use super::kernel::{self, chunk_at, fail, kernel, output};
use super::reduction::{ReduceOptions, Reduction};
use super::scalar::Scalar;
use super::{Array, ArrayError};
use crate::client::Client;
use crate::collections::delayed::Delayed;
use crate::graph::Key;
use ndarray::{ArrayD, Axis, IxDyn, Zip};
use std::fmt;

kernel! {
    /// The elements of input 0 where input 1 (a bool block) is true: all of
    /// them in C order when the mask has the block's shape, else whole rows.
    MaskSelect(()) => |_, inputs| {
        let data = chunk_at(inputs, 0)?;
        let mask = chunk_at(inputs, 1)?;
        let mask = mask.view::<bool>().ok_or_else(|| fail("mask: not a bool block"))?;
        if mask.shape() == data.shape() {
            output(with_chunk!(&*data, a => {
                let picked: Vec<_> = Zip::from(a)
                    .and(mask)
                    .fold(Vec::new(), |mut picked, &x, &keep| {
                        if keep {
                            picked.push(x);
                        }
                        picked
                    });
                let n = picked.len();
                Element::wrap(ArrayD::from_shape_vec(IxDyn(&[n]), picked).expect("1-D"))
            }))
        } else if mask.ndim() == 1 && data.shape().first() == Some(&mask.len()) {
            let rows: Vec<usize> = mask.iter().enumerate().filter(|(_, &k)| k).map(|(i, _)| i).collect();
            output(with_chunk!(&*data, a => Element::wrap(a.select(Axis(0), &rows))))
        } else {
            Err(fail(format!("mask of shape {:?} for a block of shape {:?}", mask.shape(), data.shape())))
        }
    }
}

kernel! {
    /// The length of a block's first axis.
    RowCount(()) => |_, inputs| {
        let block = chunk_at(inputs, 0)?;
        let rows = block.shape().first().copied().unwrap_or(1);
        output(Chunk::I64(ArrayD::from_elem(IxDyn(&[]), rows as i64)))
    }
}

/// The elements picked by a lazy boolean mask: an array whose length along
/// its first axis is unknown until computed.
#[derive(Clone)]
pub struct Selection {
    /// The blocks, as an array with a placeholder length of 1 per block along
    /// axis 0. Only operations that never look at lengths reach it.
    blocks: Array,
}

impl Array {
    /// The elements where `mask` (a lazy `bool` array) is true: NumPy's and
    /// Dask's `x[mask]`. A mask with `x`'s shape gives the picked elements in
    /// C order, as one axis; a 1-D mask as long as `x`'s first axis picks
    /// whole rows. Either way the result's length is unknown until computed.
    pub fn select(&self, mask: &Array) -> Result<Selection, ArrayError> {
        if mask.dtype() != DType::Bool {
            return Err(ArrayError::DType {
                op: "masking with a non-bool array".into(),
                dtype: mask.dtype(),
            });
        }
        if self.ndim() == 0 {
            return Err(ArrayError::Index("a 0-d array has no axis to mask".into()));
        }
        let whole = mask.shape() == self.shape();
        if !whole && (mask.ndim() != 1 || mask.shape()[0] != self.shape()[0]) {
            return Err(ArrayError::Index(format!(
                "a mask of shape {:?} for an array of shape {:?} (it needs the array's shape, or its first axis)",
                mask.shape(),
                self.shape()
            )));
        }
        // Rows stay whole, so each block's picks are in C order and blocks
        // concatenate along the first axis only.
        let rows = self.chunks()[0].clone();
        let (data, mask) = if whole {
            let mut spec = vec![rows];
            spec.extend(self.shape()[1..].iter().map(|&n| vec![n]));
            (
                self.rechunk(ChunkSpec::Explicit(spec.clone()))?,
                mask.rechunk(ChunkSpec::Explicit(spec))?,
            )
        } else {
            (self.clone(), mask.rechunk(ChunkSpec::Explicit(vec![rows]))?)
        };
        let nrows = data.numblocks()[0];
        let (shape, chunks) = if whole {
            (vec![nrows], vec![vec![1; nrows]])
        } else {
            let mut shape = vec![nrows];
            shape.extend_from_slice(&data.shape()[1..]);
            let mut chunks = vec![vec![1; nrows]];
            chunks.extend_from_slice(&data.chunks()[1..]);
            (shape, chunks)
        };
        let no_params = kernel::params(());
        let blocks = Array::build(
            "getitem-mask",
            shape,
            chunks,
            self.dtype(),
            |name, index| {
                let mask_index = if whole {
                    let mut full = vec![0; data.ndim()];
                    full[0] = index[0];
                    full
                } else {
                    vec![index[0]]
                };
                let data_index = if whole {
                    mask_index.clone()
                } else {
                    index.to_vec()
                };
                MaskSelect::node(
                    Key::new(name).indexed(index),
                    &no_params,
                    vec![
                        data.block(&data_index).clone(),
                        mask.block(&mask_index).clone(),
                    ],
                )
            },
        );
        Ok(Selection { blocks })
    }
}

impl Selection {
    fn wrap(blocks: Array) -> Selection {
        Selection { blocks }
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.blocks.ndim()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.blocks.dtype()
    }

    /// The shape, with `None` for the unknown first axis.
    pub fn shape(&self) -> Vec<Option<usize>> {
        std::iter::once(None)
            .chain(self.blocks.shape()[1..].iter().map(|&n| Some(n)))
            .collect()
    }

    /// Number of blocks.
    pub fn npartitions(&self) -> usize {
        self.blocks.npartitions()
    }

    /// The blocks as delayed values, in C order over the block grid.
    pub fn to_delayed(&self) -> Vec<Delayed<Chunk>> {
        self.blocks.to_delayed()
    }

    /// A function of each element.
    pub fn map(&self, op: UnaryOp) -> Result<Selection, ArrayError> {
        Ok(Self::wrap(self.blocks.map(op)?))
    }

    /// `self op scalar`.
    pub fn binary_scalar(
        &self,
        op: BinaryOp,
        scalar: impl Into<Scalar>,
    ) -> Result<Selection, ArrayError> {
        Ok(Self::wrap(self.blocks.binary_scalar(op, scalar)?))
    }

    /// A comparison with a scalar; the result is `bool`.
    pub fn compare_scalar(
        &self,
        op: CompareOp,
        scalar: impl Into<Scalar>,
    ) -> Result<Selection, ArrayError> {
        Ok(Self::wrap(self.blocks.compare_scalar(op, scalar)?))
    }

    /// Every element cast to `dtype`.
    pub fn astype(&self, dtype: DType) -> Selection {
        Self::wrap(self.blocks.astype(dtype))
    }

    /// Reduces over every axis (a 0-d array); `argmin`/`argmax` need the
    /// lengths, so they are refused until `compute_chunk_sizes`.
    pub fn reduce(
        &self,
        reduction: Reduction,
        options: ReduceOptions,
    ) -> Result<Array, ArrayError> {
        if reduction.is_arg() {
            return Err(ArrayError::Chunks(format!(
                "{} of an array with unknown chunk sizes: call compute_chunk_sizes() first",
                reduction.name()
            )));
        }
        self.blocks.reduce(reduction, None, options)
    }

    /// The sum of all elements.
    pub fn sum(&self) -> Result<Array, ArrayError> {
        self.reduce(Reduction::Sum, ReduceOptions::default())
    }

    /// The mean of all elements (NaN when nothing was picked).
    pub fn mean(&self) -> Result<Array, ArrayError> {
        self.reduce(Reduction::Mean, ReduceOptions::default())
    }

    /// The variance of all elements with `ddof` delta degrees of freedom.
    pub fn var(&self, ddof: u32) -> Result<Array, ArrayError> {
        self.reduce(Reduction::Var { ddof }, ReduceOptions::default())
    }

    /// The standard deviation of all elements with `ddof` delta degrees of freedom.
    pub fn std(&self, ddof: u32) -> Result<Array, ArrayError> {
        self.reduce(Reduction::Std { ddof }, ReduceOptions::default())
    }

    /// The smallest element (an error when nothing was picked).
    pub fn min(&self) -> Result<Array, ArrayError> {
        self.reduce(Reduction::Min, ReduceOptions::default())
    }

    /// The largest element (an error when nothing was picked).
    pub fn max(&self) -> Result<Array, ArrayError> {
        self.reduce(Reduction::Max, ReduceOptions::default())
    }

    /// Computes every block and keeps it on the cluster.
    pub fn persist(&self, client: &Client) -> Result<Selection, ArrayError> {
        Ok(Self::wrap(self.blocks.persist(client)?))
    }

    /// Computes the blocks (kept on the cluster) and their lengths: an
    /// ordinary [`Array`] over the persisted blocks (Dask's
    /// `compute_chunk_sizes`).
    pub fn compute_chunk_sizes(&self, client: &Client) -> Result<Array, ArrayError> {
        let persisted = self.blocks.persist(client)?;
        let numblocks = persisted.numblocks();
        let token = crate::graph::fresh_token();
        let no_params = kernel::params(());
        let counts: Vec<Delayed<Chunk>> = (0..numblocks[0])
            .map(|row| {
                let mut first = vec![0; numblocks.len()];
                first[0] = row;
                Delayed::from_arc(RowCount::node(
                    Key::new(format!("chunk-sizes-{token}")).indexed(&[row]),
                    &no_params,
                    vec![persisted.block(&first).clone()],
                ))
            })
            .collect();
        let mut rows = Vec::with_capacity(counts.len());
        for future in client.compute_many(&counts)? {
            let count = future.shared()?;
            let n = count
                .view::<i64>()
                .and_then(|a| a.iter().next().copied())
                .ok_or_else(|| ArrayError::Chunks("a block length that is not int64".into()))?;
            rows.push(n.max(0) as usize);
        }
        let mut shape = vec![rows.iter().sum()];
        shape.extend_from_slice(&persisted.shape()[1..]);
        let mut chunks = vec![rows];
        chunks.extend_from_slice(&persisted.chunks()[1..]);
        let blocks: Vec<_> = grid::block_indices(&numblocks)
            .iter()
            .map(|index| persisted.block(index).clone())
            .collect();
        let mut next = blocks.into_iter();
        Ok(Array::build(
            "selected",
            shape,
            chunks,
            persisted.dtype(),
            |_, _| next.next().expect("one block per index"),
        ))
    }

    /// Writes the selection to a `.npy` file: computes its blocks and their
    /// lengths first (they stay on the cluster), then writes as
    /// [`Array::to_npy`] does.
    pub fn to_npy(
        &self,
        path: impl AsRef<std::path::Path>,
        client: &Client,
    ) -> Result<(), ArrayError> {
        self.compute_chunk_sizes(client)?.to_npy(path, client)
    }

    /// Writes the selection as a Zarr store: computes its blocks and their
    /// lengths first, then writes as [`Array::to_zarr`] does (which makes the
    /// irregular chunks regular).
    pub fn to_zarr(
        &self,
        store: impl super::IntoLocation,
        client: &Client,
        options: super::ZarrOptions,
    ) -> Result<(), ArrayError> {
        self.compute_chunk_sizes(client)?
            .to_zarr(store, client, options)
    }

    /// Computes the selection into an `ndarray` array of `T` (its dtype).
    pub fn compute<T: Element>(&self, client: &Client) -> Result<ArrayD<T>, ArrayError> {
        self.compute_chunk_sizes(client)?.compute(client)
    }
}

impl fmt::Display for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shape: Vec<String> = self
            .shape()
            .iter()
            .map(|n| n.map_or("nan".into(), |n| n.to_string()))
            .collect();
        write!(
            f,
            "rask.array<{}, shape=({},), dtype={}, chunksize=unknown, npartitions={}>",
            self.blocks.name(),
            shape.join(", "),
            self.dtype(),
            self.npartitions()
        )
    }
}

impl fmt::Debug for Selection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
