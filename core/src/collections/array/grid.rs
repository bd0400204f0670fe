//! Chunk grids: how an array's axes are cut into blocks.

use super::ArrayError;

/// How to cut an array into chunks (Dask's `chunks=`).
#[derive(Clone, Debug, PartialEq)]
pub enum ChunkSpec {
    /// Square-ish chunks of about 128 MiB.
    Auto,
    /// This many elements per chunk along every axis (the last chunk may be smaller).
    Uniform(usize),
    /// A chunk size per axis.
    PerAxis(Vec<usize>),
    /// Every chunk's size along every axis.
    Explicit(Vec<Vec<usize>>),
}

impl From<usize> for ChunkSpec {
    fn from(size: usize) -> Self {
        ChunkSpec::Uniform(size)
    }
}

impl From<&[usize]> for ChunkSpec {
    fn from(sizes: &[usize]) -> Self {
        ChunkSpec::PerAxis(sizes.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for ChunkSpec {
    fn from(sizes: [usize; N]) -> Self {
        ChunkSpec::PerAxis(sizes.to_vec())
    }
}

impl From<Vec<Vec<usize>>> for ChunkSpec {
    fn from(chunks: Vec<Vec<usize>>) -> Self {
        ChunkSpec::Explicit(chunks)
    }
}

/// Bytes per chunk that [`ChunkSpec::Auto`] aims for (Dask's default).
pub const AUTO_CHUNK_BYTES: usize = 128 << 20;

/// Cuts `dim` elements into pieces of `size` (the last one smaller).
pub fn split(dim: usize, size: usize) -> Vec<usize> {
    if dim == 0 {
        return vec![0];
    }
    let size = size.clamp(1, dim);
    let mut out = vec![size; dim / size];
    if !dim.is_multiple_of(size) {
        out.push(dim % size);
    }
    out
}

/// The chunk sizes per axis that `spec` gives an array of `shape`.
pub fn normalize(
    spec: &ChunkSpec,
    shape: &[usize],
    itemsize: usize,
) -> Result<Vec<Vec<usize>>, ArrayError> {
    match spec {
        ChunkSpec::Auto => {
            let elements = (AUTO_CHUNK_BYTES / itemsize.max(1)).max(1) as f64;
            let edge = elements.powf(1.0 / shape.len().max(1) as f64).floor() as usize;
            Ok(shape.iter().map(|&d| split(d, edge.max(1))).collect())
        }
        ChunkSpec::Uniform(size) => {
            if *size == 0 {
                return Err(ArrayError::Chunks("a chunk size of 0".into()));
            }
            Ok(shape.iter().map(|&d| split(d, *size)).collect())
        }
        ChunkSpec::PerAxis(sizes) => {
            if sizes.len() != shape.len() {
                return Err(ArrayError::Chunks(format!(
                    "{} chunk sizes for {} axes",
                    sizes.len(),
                    shape.len()
                )));
            }
            if sizes.contains(&0) {
                return Err(ArrayError::Chunks(format!(
                    "a chunk size of 0 in {sizes:?}"
                )));
            }
            Ok(shape
                .iter()
                .zip(sizes)
                .map(|(&d, &s)| split(d, s))
                .collect())
        }
        ChunkSpec::Explicit(chunks) => {
            if chunks.len() != shape.len() {
                return Err(ArrayError::Chunks(format!(
                    "chunks for {} axes, the array has {}",
                    chunks.len(),
                    shape.len()
                )));
            }
            for (axis, (sizes, &dim)) in chunks.iter().zip(shape).enumerate() {
                if sizes.iter().sum::<usize>() != dim || sizes.is_empty() {
                    return Err(ArrayError::Chunks(format!(
                        "chunks {sizes:?} along axis {axis} do not add up to its length {dim}"
                    )));
                }
            }
            Ok(chunks.clone())
        }
    }
}

/// Where each chunk along one axis starts (one more entry: the axis length).
pub fn offsets(sizes: &[usize]) -> Vec<usize> {
    let mut out = Vec::with_capacity(sizes.len() + 1);
    let mut at = 0;
    out.push(0);
    for &s in sizes {
        at += s;
        out.push(at);
    }
    out
}

/// Number of blocks along each axis.
pub fn numblocks(chunks: &[Vec<usize>]) -> Vec<usize> {
    chunks.iter().map(Vec::len).collect()
}

/// Every block index of a grid, in C order.
pub fn block_indices(numblocks: &[usize]) -> Vec<Vec<usize>> {
    let total: usize = numblocks.iter().product();
    let mut out = Vec::with_capacity(total);
    if total == 0 {
        return out;
    }
    let mut index = vec![0; numblocks.len()];
    loop {
        out.push(index.clone());
        let mut axis = numblocks.len();
        loop {
            if axis == 0 {
                return out;
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < numblocks[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}

/// The position of block `index` in C order.
pub fn flat_index(index: &[usize], numblocks: &[usize]) -> usize {
    index
        .iter()
        .zip(numblocks)
        .fold(0, |flat, (&i, &n)| flat * n + i)
}

/// The shape of block `index`.
pub fn block_shape(chunks: &[Vec<usize>], index: &[usize]) -> Vec<usize> {
    chunks.iter().zip(index).map(|(c, &i)| c[i]).collect()
}

/// Where block `index` starts.
pub fn block_offset(chunks: &[Vec<usize>], index: &[usize]) -> Vec<usize> {
    chunks
        .iter()
        .zip(index)
        .map(|(c, &i)| c[..i].iter().sum())
        .collect()
}

/// The common refinement of two chunkings of one axis: every boundary of either.
pub fn refine(a: &[usize], b: &[usize]) -> Vec<usize> {
    let (oa, ob) = (offsets(a), offsets(b));
    let mut bounds: Vec<usize> = oa.iter().chain(ob.iter()).copied().collect();
    bounds.sort_unstable();
    bounds.dedup();
    let out: Vec<usize> = bounds.windows(2).map(|w| w[1] - w[0]).collect();
    if out.is_empty() {
        vec![0]
    } else {
        out
    }
}

/// Every combination of one entry per list, in C order.
pub fn cartesian(lists: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let sizes: Vec<usize> = lists.iter().map(Vec::len).collect();
    block_indices(&sizes)
        .into_iter()
        .map(|pick| pick.iter().zip(lists).map(|(&i, l)| l[i]).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids() {
        assert_eq!(split(10, 4), vec![4, 4, 2]);
        assert_eq!(split(0, 4), vec![0]);
        assert_eq!(refine(&[4, 4, 2], &[5, 5]), vec![4, 1, 3, 2]);
        assert_eq!(block_indices(&[2, 2]).len(), 4);
        assert_eq!(flat_index(&[1, 1], &[2, 3]), 4);
        assert_eq!(block_offset(&[vec![4, 4, 2]], &[2]), vec![8]);
        let auto = normalize(&ChunkSpec::Auto, &[20000, 20000], 8).unwrap();
        assert_eq!(auto[0][0], 4096);
        assert!(normalize(&ChunkSpec::Explicit(vec![vec![3, 3]]), &[7], 8).is_err());
    }
}
