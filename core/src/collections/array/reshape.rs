//! Moving blocks around: rechunk (memory-bounded: at most one input block and
//! one output block per task), transpose, concatenate, stack, expand_dims.

use super::chunk::{with_chunk, Chunk};
use super::dtype::Element;
use super::grid::{self, ChunkSpec};
use super::kernel::{self, fail, kernel, output};
use super::region::{ChunkRegion, RegionParams, TakeRegion};
use super::slicing::Take;
use super::{Array, ArrayError};
use crate::client::lazy::Node;
use crate::graph::Key;
use ndarray::IxDyn;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Assemble {
    /// The output block's shape.
    pub shape: Vec<usize>,
    /// Where each input goes in it.
    pub offsets: Vec<Vec<usize>>,
    /// The value of cells no input covers.
    pub fill: f64,
}

kernel! {
    /// Puts pieces together into one block.
    pub(crate) AssembleBlock(Assemble) => |p, inputs| {
        if inputs.is_empty() {
            return Err(fail("assemble: no pieces"));
        }
        if inputs.len() != p.offsets.len() {
            return Err(fail("assemble: pieces and offsets differ in number"));
        }
        let pieces = (0..inputs.len())
            .map(|n| ChunkRegion::input(inputs, n))
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = Chunk::full(pieces[0].dtype(), &p.shape, p.fill);
        for (piece, offset) in pieces.iter().zip(&p.offsets) {
            piece.paste_into(&mut out, offset)?;
        }
        output(out)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Layout {
    /// Axes in this order.
    Transpose(Vec<usize>),
    /// The same elements in C order with this shape.
    Reshape(Vec<usize>),
}

kernel! {
    /// Transposes or reshapes one block.
    Relayout(Layout) => |p, inputs| {
        let chunk = kernel::chunk_at(inputs, 0)?;
        output(match p {
            Layout::Transpose(perm) => with_chunk!(&*chunk, a => {
                if perm.len() != a.ndim() {
                    return Err(fail("transpose: wrong number of axes"));
                }
                Element::wrap(a.clone().permuted_axes(IxDyn(perm)))
            }),
            Layout::Reshape(shape) => with_chunk!(&*chunk, a => {
                let reshaped = a
                    .to_shape((IxDyn(shape), ndarray::Order::RowMajor))
                    .map_err(|e| fail(format!("reshape: {e}")))?;
                Element::wrap(reshaped.into_owned())
            }),
        })
    }
}

/// For each piece of `fine` along one axis: which block of `coarse` holds it
/// and where it starts inside that block.
fn locate(coarse: &[usize], fine: &[usize]) -> Vec<(usize, usize)> {
    let starts = grid::offsets(coarse);
    let mut out = Vec::with_capacity(fine.len());
    let mut at = 0;
    let mut block = 0;
    for &len in fine {
        while block + 1 < coarse.len() && starts[block + 1] <= at {
            block += 1;
        }
        out.push((block, at - starts[block]));
        at += len;
    }
    out
}

impl Array {
    /// The same array cut into different chunks (Dask's `rechunk`). Each task
    /// holds at most one input and one output block: input blocks are first cut
    /// at every boundary of either chunking, and the pieces are then assembled.
    pub fn rechunk(&self, chunks: impl Into<ChunkSpec>) -> Result<Array, ArrayError> {
        let target = grid::normalize(&chunks.into(), &self.shape, self.dtype.itemsize())?;
        if target == self.chunks {
            return Ok(self.clone());
        }
        let pieces: Vec<Vec<usize>> = self
            .chunks
            .iter()
            .zip(&target)
            .map(|(old, new)| grid::refine(old, new))
            .collect();
        // Where each piece goes in the output, per axis: (output block, offset).
        let placed: Vec<Vec<(usize, usize)>> = target
            .iter()
            .zip(&pieces)
            .map(|(new, fine)| locate(new, fine))
            .collect();
        // Stage 1: cut input blocks into pieces (whole blocks are used as they are).
        // A piece that is a whole output block is copied out; the others are
        // regions sharing their input block's memory until stage 2 copies them.
        // The pieces inside each output block, per axis.
        let pieces_of_block: Vec<Vec<Vec<usize>>> = placed
            .iter()
            .zip(&target)
            .map(|(axis, blocks)| {
                let mut of_block = vec![Vec::new(); blocks.len()];
                for (piece, &(block, _)) in axis.iter().enumerate() {
                    of_block[block].push(piece);
                }
                of_block
            })
            .collect();
        let alone = |index: &[usize]| {
            index
                .iter()
                .enumerate()
                .all(|(a, &i)| pieces_of_block[a][placed[a][i].0].len() == 1)
        };
        let token = crate::graph::fresh_token();
        let piece_numblocks = grid::numblocks(&pieces);
        let located: Vec<Vec<(usize, usize)>> = self
            .chunks
            .iter()
            .zip(&pieces)
            .map(|(old, fine)| locate(old, fine))
            .collect();
        let piece_nodes: Vec<Arc<Node>> = grid::block_indices(&piece_numblocks)
            .iter()
            .map(|index| {
                let source: Vec<usize> = index
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| located[a][i].0)
                    .collect();
                let whole = index
                    .iter()
                    .enumerate()
                    .all(|(a, &i)| pieces[a][i] == self.chunks[a][source[a]]);
                let input = self.block(&source).clone();
                if whole {
                    return input;
                }
                let key = Key::new(format!("rechunk-split-{token}")).indexed(index);
                if alone(index) {
                    let ranges: Vec<(isize, usize, isize)> = index
                        .iter()
                        .enumerate()
                        .map(|(a, &i)| (located[a][i].1 as isize, pieces[a][i], 1))
                        .collect();
                    return Take::node(
                        key,
                        &kernel::params(super::slicing::TakeParams::from(ranges)),
                        vec![input],
                    );
                }
                let ranges = index
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| (located[a][i].1, pieces[a][i]))
                    .collect();
                TakeRegion::node(key, &kernel::params(RegionParams { ranges }), vec![input])
            })
            .collect();
        // Stage 2: assemble output blocks from pieces.
        let dtype = self.dtype;
        let shape = self.shape.clone();
        let out_chunks = target.clone();
        Ok(Array::build(
            "rechunk",
            shape,
            target,
            dtype,
            |name, index| {
                let per_axis: Vec<Vec<usize>> = index
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| pieces_of_block[a][i].clone())
                    .collect();
                let members = grid::cartesian(&per_axis);
                if members.len() == 1 {
                    return piece_nodes[grid::flat_index(&members[0], &piece_numblocks)].clone();
                }
                let offsets = members
                    .iter()
                    .map(|p| p.iter().enumerate().map(|(a, &i)| placed[a][i].1).collect())
                    .collect();
                let inputs = members
                    .iter()
                    .map(|p| piece_nodes[grid::flat_index(p, &piece_numblocks)].clone())
                    .collect();
                let params = kernel::params(Assemble {
                    shape: grid::block_shape(&out_chunks, index),
                    offsets,
                    fill: 0.0,
                });
                AssembleBlock::node(Key::new(name).indexed(index), &params, inputs)
            },
        ))
    }

    /// The array with its axes in the order `perm` (NumPy's `transpose`;
    /// negative axes count from the end).
    pub fn transpose(&self, perm: &[isize]) -> Result<Array, ArrayError> {
        let perm: Vec<usize> = perm
            .iter()
            .map(|&a| self.axis(a))
            .collect::<Result<_, _>>()?;
        let perm = perm.as_slice();
        let mut sorted = perm.to_vec();
        sorted.sort_unstable();
        if sorted != (0..self.ndim()).collect::<Vec<_>>() {
            return Err(ArrayError::Shape(format!(
                "{perm:?} is not a permutation of the {} axes",
                self.ndim()
            )));
        }
        let shape = perm.iter().map(|&a| self.shape[a]).collect();
        let chunks = perm.iter().map(|&a| self.chunks[a].clone()).collect();
        let params = kernel::params(Layout::Transpose(perm.to_vec()));
        Ok(
            Array::build("transpose", shape, chunks, self.dtype, |name, index| {
                let mut source = vec![0; perm.len()];
                for (out_axis, &in_axis) in perm.iter().enumerate() {
                    source[in_axis] = index[out_axis];
                }
                Relayout::node(
                    Key::new(name).indexed(index),
                    &params,
                    vec![self.block(&source).clone()],
                )
            })
            .with_origin(super::Origin::Transpose {
                source: self.clone(),
                perm: perm.to_vec(),
            }),
        )
    }

    /// The array with its axes reversed (NumPy's `.T`).
    pub fn t(&self) -> Array {
        let perm: Vec<isize> = (0..self.ndim() as isize).rev().collect();
        self.transpose(&perm).expect("a reversal is a permutation")
    }

    /// The array with a new axis of length 1 at `axis` (NumPy's
    /// `expand_dims`: negative axes count from the end of the result).
    pub fn expand_dims(&self, axis: isize) -> Result<Array, ArrayError> {
        let axis = new_axis(axis, self.ndim())?;
        let mut shape = self.shape.clone();
        shape.insert(axis, 1);
        let mut chunks = self.chunks.clone();
        chunks.insert(axis, vec![1]);
        let block_chunks = chunks.clone();
        Ok(Array::build(
            "expand-dims",
            shape,
            chunks,
            self.dtype,
            |name, index| {
                let mut source = index.to_vec();
                source.remove(axis);
                let params =
                    kernel::params(Layout::Reshape(grid::block_shape(&block_chunks, index)));
                Relayout::node(
                    Key::new(name).indexed(index),
                    &params,
                    vec![self.block(&source).clone()],
                )
            },
        ))
    }
}

/// Joins arrays along an existing axis (NumPy's `concatenate`); other axes
/// must match. Types are promoted; no data moves unless chunks must align.
/// Takes arrays or references to them (`&[x, y]` or `&[&x, &y]`); negative
/// axes count from the end.
pub fn concatenate<A: Borrow<Array>>(arrays: &[A], axis: isize) -> Result<Array, ArrayError> {
    let arrays: Vec<&Array> = arrays.iter().map(Borrow::borrow).collect();
    let first = *arrays
        .first()
        .ok_or_else(|| ArrayError::Shape("concatenate of no arrays".into()))?;
    let ndim = first.ndim();
    let axis = first.axis(axis)?;
    let mut dtype = first.dtype();
    for a in &arrays {
        if a.ndim() != ndim || (0..ndim).any(|i| i != axis && a.shape()[i] != first.shape()[i]) {
            return Err(ArrayError::Shape(format!(
                "cannot concatenate shapes {:?} and {:?} along axis {axis}",
                first.shape(),
                a.shape()
            )));
        }
        dtype = dtype.promote(a.dtype());
    }
    // Common chunks on the other axes.
    let mut common: Vec<Vec<usize>> = first.chunks().to_vec();
    for a in &arrays[1..] {
        for i in (0..ndim).filter(|&i| i != axis) {
            common[i] = grid::refine(&common[i], &a.chunks()[i]);
        }
    }
    let aligned: Vec<Array> = arrays
        .iter()
        .map(|a| {
            let mut want = common.clone();
            want[axis] = a.chunks()[axis].clone();
            a.astype(dtype).rechunk(ChunkSpec::Explicit(want))
        })
        .collect::<Result<_, _>>()?;
    let mut shape = first.shape().to_vec();
    shape[axis] = aligned.iter().map(|a| a.shape()[axis]).sum();
    let mut chunks = common;
    chunks[axis] = aligned
        .iter()
        .flat_map(|a| a.chunks()[axis].clone())
        .collect();
    // Which input and which of its blocks each output block along `axis` is.
    let owners: Vec<(usize, usize)> = aligned
        .iter()
        .enumerate()
        .flat_map(|(n, a)| (0..a.numblocks()[axis]).map(move |b| (n, b)))
        .collect();
    let mut out = Array::build("concatenate", shape, chunks, dtype, |_, index| {
        let (n, b) = owners[index[axis]];
        let mut source = index.to_vec();
        source[axis] = b;
        aligned[n].block(&source).clone()
    });
    // Keys stay the inputs' (no new tasks); the name is only for display.
    out.name = Arc::from(format!("concatenate-{}", crate::graph::fresh_token()));
    Ok(out)
}

/// Joins arrays of one shape along a new axis (NumPy's `stack`); takes
/// arrays or references, and negative axes count from the end of the result.
pub fn stack<A: Borrow<Array>>(arrays: &[A], axis: isize) -> Result<Array, ArrayError> {
    let ndim = arrays.first().map_or(0, |a| a.borrow().ndim());
    let axis = new_axis(axis, ndim)? as isize;
    let expanded: Vec<Array> = arrays
        .iter()
        .map(|a| a.borrow().expand_dims(axis))
        .collect::<Result<_, _>>()?;
    concatenate(&expanded, axis)
}

/// Where a new axis goes in a result of `ndim + 1` axes (negative: from its end).
fn new_axis(axis: isize, ndim: usize) -> Result<usize, ArrayError> {
    let out = ndim as isize + 1;
    let resolved = if axis < 0 { axis + out } else { axis };
    if resolved < 0 || resolved >= out {
        return Err(ArrayError::Axis {
            axis,
            ndim: out as usize,
        });
    }
    Ok(resolved as usize)
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Array {
    /// The same elements in C order with another shape (NumPy's `reshape`).
    ///
    /// Chunk-aware: the input is cut into row blocks whose flat ranges are whole
    /// rows of both shapes, each block is reshaped on its own, and the result
    /// keeps those row blocks (rechunk it afterwards for other chunks). Blocks
    /// are as small as the row lengths allow, so no task holds more than needed.
    pub fn reshape(&self, shape: &[usize]) -> Result<Array, ArrayError> {
        if shape.iter().product::<usize>() != self.size() {
            return Err(ArrayError::Shape(format!(
                "cannot reshape {:?} ({} elements) into {shape:?}",
                self.shape,
                self.size()
            )));
        }
        if shape == self.shape.as_slice() {
            return Ok(self.clone());
        }
        let row = |s: &[usize]| s.iter().skip(1).product::<usize>().max(1);
        let (in_row, out_row) = (row(&self.shape), row(shape));
        // A flat boundary every `unit` elements is a row boundary of both shapes.
        let unit = in_row / gcd(in_row, out_row) * out_row;
        let total = self.size();
        let lead_chunk = self
            .chunks
            .first()
            .map_or(1, |c| c.iter().copied().max().unwrap_or(1));
        let target_elements = (lead_chunk * in_row).max(unit);
        let step = target_elements / unit * unit;
        let mut flat_cuts: Vec<usize> = Vec::new();
        let mut at = 0;
        while at < total {
            let next = (at + step).min(total);
            flat_cuts.push(next - at);
            at = next;
        }
        if flat_cuts.is_empty() || self.ndim() == 0 || shape.is_empty() {
            flat_cuts = vec![total];
        }
        // Input row blocks covering those flat ranges.
        let mut in_chunks: Vec<Vec<usize>> = self.shape.iter().map(|&d| vec![d]).collect();
        if let Some(first) = in_chunks.first_mut() {
            *first = flat_cuts.iter().map(|&n| n / in_row).collect();
        }
        let rows = if self.ndim() == 0 {
            self.clone()
        } else {
            self.rechunk(ChunkSpec::Explicit(in_chunks))?
        };
        let mut out_chunks: Vec<Vec<usize>> = shape.iter().map(|&d| vec![d]).collect();
        if let Some(first) = out_chunks.first_mut() {
            *first = flat_cuts.iter().map(|&n| n / out_row).collect();
        }
        let block_chunks = out_chunks.clone();
        let ndim_in = rows.ndim();
        Ok(Array::build(
            "reshape",
            shape.to_vec(),
            out_chunks,
            self.dtype,
            |name, index| {
                let mut source = vec![0; ndim_in];
                if ndim_in > 0 && !index.is_empty() {
                    source[0] = index[0];
                }
                let params =
                    kernel::params(Layout::Reshape(grid::block_shape(&block_chunks, index)));
                Relayout::node(
                    Key::new(name).indexed(index),
                    &params,
                    vec![rows.block(&source).clone()],
                )
            },
        ))
    }
}
