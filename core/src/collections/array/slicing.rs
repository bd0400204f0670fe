//! Indexing: basic slices (ndarray's `s![..]` semantics, including steps and
//! new axes), integer arrays along one axis, and boolean masks along one axis.

use super::chunk::with_chunk;
use super::dtype::Element;
use super::grid;
use super::kernel::{self, fail, kernel, output};
use super::{Array, ArrayError};
use crate::graph::Key;
use ndarray::{Axis, IxDyn, SliceInfoElem};
use serde::{Deserialize, Serialize};

/// One axis of a slice, as ndarray's `s![..]` writes it.
pub type Slice = SliceInfoElem;

/// Elements `first, first + step, ...` (`len` of them) along each axis of a
/// block, then an optional reshape (to drop or add axes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TakeParams {
    pub ranges: Vec<(isize, usize, isize)>,
    pub reshape: Option<Vec<usize>>,
}

impl From<Vec<(isize, usize, isize)>> for TakeParams {
    fn from(ranges: Vec<(isize, usize, isize)>) -> Self {
        TakeParams {
            ranges,
            reshape: None,
        }
    }
}

kernel! {
    /// Takes a strided region of one block.
    pub(crate) Take(TakeParams) => |p, inputs| {
        let chunk = kernel::chunk_at(inputs, 0)?;
        if p.ranges.len() != chunk.shape().len() {
            return Err(fail("take: wrong number of axes"));
        }
        for (&(first, len, step), &dim) in p.ranges.iter().zip(chunk.shape()) {
            let last = first + (len as isize - 1).max(0) * step;
            if len > 0 && (first < 0 || last < 0 || first as usize >= dim || last as usize >= dim) {
                return Err(fail("take: a range outside the block"));
            }
        }
        let info: Vec<SliceInfoElem> = p.ranges.iter().map(|&(first, len, step)| to_elem(first, len, step)).collect();
        output(with_chunk!(&*chunk, a => {
            let view = a.slice(info.as_slice());
            let owned = match &p.reshape {
                Some(shape) => view
                    .to_shape((IxDyn(shape), ndarray::Order::RowMajor))
                    .map_err(|e| fail(format!("take: {e}")))?
                    .into_owned(),
                None => view.to_owned(),
            };
            Element::wrap(owned)
        }))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pick {
    axis: usize,
    indices: Vec<usize>,
}

kernel! {
    /// Picks positions along one axis of a block.
    PickIndices(Pick) => |p, inputs| {
        let chunk = kernel::chunk_at(inputs, 0)?;
        if p.axis >= chunk.shape().len() || p.indices.iter().any(|&i| i >= chunk.shape()[p.axis]) {
            return Err(fail("take: an index outside the block"));
        }
        output(with_chunk!(&*chunk, a => Element::wrap(a.select(Axis(p.axis), &p.indices))))
    }
}

/// ndarray's slice element for `len` elements from `first` by `step`.
fn to_elem(first: isize, len: usize, step: isize) -> SliceInfoElem {
    if len == 0 {
        return SliceInfoElem::Slice {
            start: 0,
            end: Some(0),
            step: 1,
        };
    }
    let last = first + (len as isize - 1) * step;
    if step > 0 {
        SliceInfoElem::Slice {
            start: first,
            end: Some(last + 1),
            step,
        }
    } else {
        SliceInfoElem::Slice {
            start: last,
            end: Some(first + 1),
            step,
        }
    }
}

/// The selection along one axis: `(first, len, step)` in ndarray's semantics.
fn resolve(
    start: isize,
    end: Option<isize>,
    step: isize,
    dim: usize,
) -> Result<(isize, usize, isize), ArrayError> {
    if step == 0 {
        return Err(ArrayError::Index("a step of 0".into()));
    }
    let at = |i: isize| if i < 0 { i + dim as isize } else { i };
    let (lo, hi) = (at(start), at(end.unwrap_or(dim as isize)));
    if lo < 0 || hi < 0 || lo as usize > dim || hi as usize > dim {
        return Err(ArrayError::Index(format!(
            "slice {start}..{end:?} is out of bounds for an axis of length {dim}"
        )));
    }
    let span = (hi - lo).max(0) as usize;
    let len = span.div_ceil(step.unsigned_abs());
    Ok(if step > 0 {
        (lo, len, step)
    } else {
        (hi - 1, len, step)
    })
}

/// For a selection along one axis: runs of consecutive selected elements that
/// fall in one block, as (block, local first, len).
fn runs(chunks: &[usize], (first, len, step): (isize, usize, isize)) -> Vec<(usize, isize, usize)> {
    let offsets = grid::offsets(chunks);
    let mut out: Vec<(usize, isize, usize)> = Vec::new();
    for k in 0..len {
        let i = (first + k as isize * step) as usize;
        let block = offsets.partition_point(|&o| o <= i) - 1;
        match out.last_mut() {
            Some((b, _, n)) if *b == block => *n += 1,
            _ => out.push((block, (i - offsets[block]) as isize, 1)),
        }
    }
    out
}

impl Array {
    /// A slice in ndarray's `s![..]` notation: ranges with steps, single
    /// indices (which drop the axis) and `NewAxis`.
    pub fn slice(&self, info: impl AsRef<[SliceInfoElem]>) -> Result<Array, ArrayError> {
        let info = info.as_ref();
        let consumed = info
            .iter()
            .filter(|e| !matches!(e, SliceInfoElem::NewAxis))
            .count();
        if consumed > self.ndim() {
            return Err(ArrayError::Index(format!(
                "{consumed} indices for an array with {} dimensions",
                self.ndim()
            )));
        }
        // Per input axis: the selection, and whether the axis is kept.
        let mut selections = Vec::with_capacity(self.ndim());
        // Output axes: Some(input axis) or None for a new axis.
        let mut out_axes: Vec<Option<usize>> = Vec::new();
        let mut axis = 0;
        for elem in info {
            match *elem {
                SliceInfoElem::Slice { start, end, step } => {
                    selections.push(resolve(start, end, step, self.shape[axis])?);
                    out_axes.push(Some(axis));
                    axis += 1;
                }
                SliceInfoElem::Index(i) => {
                    let dim = self.shape[axis] as isize;
                    let at = if i < 0 { i + dim } else { i };
                    if at < 0 || at >= dim {
                        return Err(ArrayError::Index(format!(
                            "index {i} is out of bounds for axis {axis} of length {dim}"
                        )));
                    }
                    selections.push((at, 1, 1));
                    axis += 1;
                }
                SliceInfoElem::NewAxis => out_axes.push(None),
            }
        }
        while axis < self.ndim() {
            selections.push((0, self.shape[axis], 1));
            out_axes.push(Some(axis));
            axis += 1;
        }
        let per_axis: Vec<Vec<(usize, isize, usize)>> = selections
            .iter()
            .zip(&self.chunks)
            .map(|(&sel, chunks)| {
                let r = runs(chunks, sel);
                if r.is_empty() {
                    vec![(0, 0, 0)]
                } else {
                    r
                }
            })
            .collect();
        let shape: Vec<usize> = out_axes
            .iter()
            .map(|a| a.map_or(1, |a| selections[a].1))
            .collect();
        let chunks: Vec<Vec<usize>> = out_axes
            .iter()
            .map(|a| match a {
                Some(a) => per_axis[*a].iter().map(|r| r.2).collect(),
                None => vec![1],
            })
            .collect();
        let block_chunks = chunks.clone();
        Ok(Array::build(
            "getitem",
            shape,
            chunks,
            self.dtype,
            |name, index| {
                // The run taken along each input axis.
                let mut pick = vec![0usize; self.ndim()];
                for (out_axis, a) in out_axes.iter().enumerate() {
                    if let Some(a) = a {
                        pick[*a] = index[out_axis];
                    }
                }
                let source: Vec<usize> = pick
                    .iter()
                    .enumerate()
                    .map(|(a, &r)| per_axis[a][r].0)
                    .collect();
                let ranges = pick
                    .iter()
                    .enumerate()
                    .map(|(a, &r)| {
                        let (_, first, len) = per_axis[a][r];
                        (first, len, selections[a].2)
                    })
                    .collect();
                let out_shape = grid::block_shape(&block_chunks, index);
                let params = kernel::params(TakeParams {
                    ranges,
                    reshape: Some(out_shape),
                });
                Take::node(
                    Key::new(name).indexed(index),
                    &params,
                    vec![self.block(&source).clone()],
                )
            },
        ))
    }

    /// The elements at `indices` along `axis` (NumPy's `take`, or `x[[1, 5, 2]]`).
    pub fn take(&self, indices: &[isize], axis: isize) -> Result<Array, ArrayError> {
        let axis = self.axis(axis)?;
        let dim = self.shape[axis] as isize;
        let resolved: Vec<usize> = indices
            .iter()
            .map(|&i| {
                let at = if i < 0 { i + dim } else { i };
                if at < 0 || at >= dim {
                    Err(ArrayError::Index(format!(
                        "index {i} is out of bounds for axis {axis} of length {dim}"
                    )))
                } else {
                    Ok(at as usize)
                }
            })
            .collect::<Result<_, _>>()?;
        // Consecutive indices in one block make one output block.
        let offsets = grid::offsets(&self.chunks[axis]);
        let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
        for &i in &resolved {
            let block = offsets.partition_point(|&o| o <= i) - 1;
            let local = i - offsets[block];
            match groups.last_mut() {
                Some((b, list)) if *b == block => list.push(local),
                _ => groups.push((block, vec![local])),
            }
        }
        if groups.is_empty() {
            return self.slice(
                (0..self.ndim())
                    .map(|a| {
                        if a == axis {
                            SliceInfoElem::from(0..0)
                        } else {
                            SliceInfoElem::from(..)
                        }
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let mut shape = self.shape.clone();
        shape[axis] = resolved.len();
        let mut chunks = self.chunks.clone();
        chunks[axis] = groups.iter().map(|g| g.1.len()).collect();
        Ok(Array::build(
            "take",
            shape,
            chunks,
            self.dtype,
            |name, index| {
                let (block, locals) = &groups[index[axis]];
                let mut source = index.to_vec();
                source[axis] = *block;
                let params = kernel::params(Pick {
                    axis,
                    indices: locals.clone(),
                });
                PickIndices::node(
                    Key::new(name).indexed(index),
                    &params,
                    vec![self.block(&source).clone()],
                )
            },
        ))
    }

    /// The slices where the known `mask` is true along `axis` (what
    /// [`Array::compress`] does with booleans in memory).
    pub(crate) fn compress_known(&self, mask: &[bool], axis: isize) -> Result<Array, ArrayError> {
        let resolved = self.axis(axis)?;
        if mask.len() != self.shape[resolved] {
            return Err(ArrayError::Index(format!(
                "a mask of length {} for axis {resolved} of length {}",
                mask.len(),
                self.shape[resolved]
            )));
        }
        let indices: Vec<isize> = mask
            .iter()
            .enumerate()
            .filter(|(_, &m)| m)
            .map(|(i, _)| i as isize)
            .collect();
        self.take(&indices, axis)
    }
}
