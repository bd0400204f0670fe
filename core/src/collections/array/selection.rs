//! Boolean masks that are themselves lazy arrays (`x[x > 0]` and
//! `x[:, mask]` in Dask): how many elements survive is not known until the
//! mask is computed, so the result is a [`Selection`], Dask's array with `nan`
//! chunks on one axis made a type of its own. It supports what needs no
//! lengths (elementwise maps with scalars, whole reductions, `compute`,
//! `persist`, writing); `compute_chunk_sizes` turns it into an ordinary
//! [`Array`].

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
    /// them in C order when the mask has the block's shape, else whole slices
    /// along the axis given.
    MaskSelect(usize) => |axis, inputs| {
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
        } else if mask.ndim() == 1 && data.shape().get(*axis) == Some(&mask.len()) {
            let rows: Vec<usize> = mask.iter().enumerate().filter(|(_, &k)| k).map(|(i, _)| i).collect();
            output(with_chunk!(&*data, a => Element::wrap(a.select(Axis(*axis), &rows))))
        } else {
            Err(fail(format!("mask of shape {:?} for a block of shape {:?}", mask.shape(), data.shape())))
        }
    }
}

kernel! {
    /// The length of a block along the axis given.
    RowCount(usize) => |axis, inputs| {
        let block = chunk_at(inputs, 0)?;
        let rows = block.shape().get(*axis).copied().unwrap_or(1);
        output(Chunk::I64(ArrayD::from_elem(IxDyn(&[]), rows as i64)))
    }
}

/// The elements picked by a lazy boolean mask: an array whose length along
/// one axis is unknown until computed.
#[derive(Clone)]
pub struct Selection {
    /// The blocks, as an array with a placeholder length of 1 per block along
    /// `axis`. Only operations that never look at lengths reach it.
    blocks: Array,
    /// The axis of unknown length.
    axis: usize,
}

/// A mask for [`Array::compress`]: known booleans give an [`Array`], a lazy
/// `bool` array a [`Selection`] (its length is unknown until computed).
pub trait CompressMask {
    /// What compressing with this mask gives.
    type Output;
    /// `x` where the mask is true along `axis`.
    fn compress(self, x: &Array, axis: isize) -> Result<Self::Output, ArrayError>;
}

impl CompressMask for &[bool] {
    type Output = Array;
    fn compress(self, x: &Array, axis: isize) -> Result<Array, ArrayError> {
        x.compress_known(self, axis)
    }
}

impl<const N: usize> CompressMask for &[bool; N] {
    type Output = Array;
    fn compress(self, x: &Array, axis: isize) -> Result<Array, ArrayError> {
        x.compress_known(self, axis)
    }
}

impl CompressMask for &Vec<bool> {
    type Output = Array;
    fn compress(self, x: &Array, axis: isize) -> Result<Array, ArrayError> {
        x.compress_known(self, axis)
    }
}

impl CompressMask for &Array {
    type Output = Selection;
    fn compress(self, x: &Array, axis: isize) -> Result<Selection, ArrayError> {
        x.select_along(self, axis)
    }
}

impl Array {
    /// The elements where `mask` (a lazy `bool` array) is true: NumPy's and
    /// Dask's `x[mask]`. A mask with `x`'s shape gives the picked elements in
    /// C order, as one axis; a 1-D mask as long as `x`'s first axis picks
    /// whole rows. Either way the result's length is unknown until computed.
    pub fn select(&self, mask: &Array) -> Result<Selection, ArrayError> {
        check_mask(mask)?;
        if self.ndim() == 0 {
            return Err(ArrayError::Index("a 0-d array has no axis to mask".into()));
        }
        if mask.shape() != self.shape() {
            if mask.ndim() == 1 {
                return self.select_along(mask, 0);
            }
            return Err(ArrayError::Index(format!(
                "a mask of shape {:?} for an array of shape {:?} (it needs the array's shape, or its first axis)",
                mask.shape(),
                self.shape()
            )));
        }
        // Rows stay whole, so each block's picks are in C order and blocks
        // concatenate along the first axis only.
        let mut spec = vec![self.chunks()[0].clone()];
        spec.extend(self.shape()[1..].iter().map(|&n| vec![n]));
        let data = self.rechunk(ChunkSpec::Explicit(spec.clone()))?;
        let mask = mask.rechunk(ChunkSpec::Explicit(spec))?;
        let nrows = data.numblocks()[0];
        let params = kernel::params(0usize);
        let blocks = Array::build(
            "getitem-mask",
            vec![nrows],
            vec![vec![1; nrows]],
            self.dtype(),
            |name, index| {
                let mut at = vec![0; data.ndim()];
                at[0] = index[0];
                MaskSelect::node(
                    Key::new(name).indexed(index),
                    &params,
                    vec![data.block(&at).clone(), mask.block(&at).clone()],
                )
            },
        );
        Ok(Selection { blocks, axis: 0 })
    }

    /// The slices along `axis` where the 1-D lazy `bool` array `mask` is
    /// true (Dask's `x[:, mask]`, and `compress` with a lazy mask); the
    /// result's length along `axis` is unknown until computed.
    pub fn select_along(&self, mask: &Array, axis: isize) -> Result<Selection, ArrayError> {
        check_mask(mask)?;
        let axis = self.axis(axis)?;
        if mask.ndim() != 1 || mask.shape()[0] != self.shape()[axis] {
            return Err(ArrayError::Index(format!(
                "a mask of shape {:?} for axis {axis} of an array of shape {:?} (it needs that axis' length)",
                mask.shape(),
                self.shape()
            )));
        }
        let mask = mask.rechunk(ChunkSpec::Explicit(vec![self.chunks()[axis].clone()]))?;
        let mut shape = self.shape().to_vec();
        let mut chunks = self.chunks().to_vec();
        let nblocks = self.numblocks()[axis];
        shape[axis] = nblocks;
        chunks[axis] = vec![1; nblocks];
        let params = kernel::params(axis);
        let blocks = Array::build(
            "getitem-mask",
            shape,
            chunks,
            self.dtype(),
            |name, index| {
                MaskSelect::node(
                    Key::new(name).indexed(index),
                    &params,
                    vec![
                        self.block(index).clone(),
                        mask.block(&[index[axis]]).clone(),
                    ],
                )
            },
        );
        Ok(Selection { blocks, axis })
    }

    /// The slices along `axis` where `mask` is true (NumPy's `compress`):
    /// with known booleans (`&[bool]`, `&[bool; N]`, `&Vec<bool>`) an
    /// [`Array`], with a lazy 1-D `bool` array a [`Selection`].
    pub fn compress<M: CompressMask>(&self, mask: M, axis: isize) -> Result<M::Output, ArrayError> {
        mask.compress(self, axis)
    }
}

fn check_mask(mask: &Array) -> Result<(), ArrayError> {
    if mask.dtype() != DType::Bool {
        return Err(ArrayError::DType {
            op: "masking with a non-bool array".into(),
            dtype: mask.dtype(),
        });
    }
    Ok(())
}

impl Selection {
    fn wrap(&self, blocks: Array) -> Selection {
        Selection {
            blocks,
            axis: self.axis,
        }
    }

    /// Number of axes.
    pub fn ndim(&self) -> usize {
        self.blocks.ndim()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.blocks.dtype()
    }

    /// The shape, with `None` for the axis of unknown length.
    pub fn shape(&self) -> Vec<Option<usize>> {
        let mut shape: Vec<Option<usize>> = self.blocks.shape().iter().map(|&n| Some(n)).collect();
        shape[self.axis] = None;
        shape
    }

    /// The axis whose length is unknown.
    pub fn unknown_axis(&self) -> usize {
        self.axis
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
        Ok(self.wrap(self.blocks.map(op)?))
    }

    /// `self op scalar`.
    pub fn binary_scalar(
        &self,
        op: BinaryOp,
        scalar: impl Into<Scalar>,
    ) -> Result<Selection, ArrayError> {
        Ok(self.wrap(self.blocks.binary_scalar(op, scalar)?))
    }

    /// A comparison with a scalar; the result is `bool`.
    pub fn compare_scalar(
        &self,
        op: CompareOp,
        scalar: impl Into<Scalar>,
    ) -> Result<Selection, ArrayError> {
        Ok(self.wrap(self.blocks.compare_scalar(op, scalar)?))
    }

    /// Every element cast to `dtype`.
    pub fn astype(&self, dtype: DType) -> Selection {
        self.wrap(self.blocks.astype(dtype))
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
        Ok(self.wrap(self.blocks.persist(client)?))
    }

    /// Computes the blocks (kept on the cluster) and their lengths: an
    /// ordinary [`Array`] over the persisted blocks (Dask's
    /// `compute_chunk_sizes`).
    pub fn compute_chunk_sizes(&self, client: &Client) -> Result<Array, ArrayError> {
        let persisted = self.blocks.persist(client)?;
        let numblocks = persisted.numblocks();
        let axis = self.axis;
        let token = crate::graph::fresh_token();
        let params = kernel::params(axis);
        let counts: Vec<Delayed<Chunk>> = (0..numblocks[axis])
            .map(|row| {
                let mut first = vec![0; numblocks.len()];
                first[axis] = row;
                Delayed::from_arc(RowCount::node(
                    Key::new(format!("chunk-sizes-{token}")).indexed(&[row]),
                    &params,
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
        let mut shape = persisted.shape().to_vec();
        shape[axis] = rows.iter().sum();
        let mut chunks = persisted.chunks().to_vec();
        chunks[axis] = rows;
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
        let comma = if shape.len() == 1 { "," } else { "" };
        write!(
            f,
            "rask.array<{}, shape=({}{comma}), dtype={}, chunksize=unknown, npartitions={}>",
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
