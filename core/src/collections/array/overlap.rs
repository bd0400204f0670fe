//! `map_overlap`: stencils across block edges. Each block is extended by a
//! halo of `depth` cells taken from its neighbours (halo exchange), your op runs
//! on the extended block, and the halo is trimmed off again.

use super::chunk::Chunk;
use super::dtype::DType;
use super::grid;
use super::kernel;
use super::reshape::{Assemble, AssembleBlock};
use super::slicing::{Take, TakeParams};
use super::{Array, ArrayError};
use crate::client::lazy::ArgSource;
use crate::client::lazy::{Node, NodeKind};
use crate::graph::Key;
use crate::ops::{short_name, Op};
use std::sync::Arc;

/// What lies beyond the array's edges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Boundary {
    /// Nothing: edge blocks get no halo on their outer sides.
    None,
    /// This value.
    Constant(f64),
    /// The other end of the array (wrap around).
    Periodic,
}

impl Array {
    /// Runs `op` on every block extended by `depth[axis]` neighbouring cells on
    /// each side, then trims the halo (Dask's `map_overlap`). `op` must keep
    /// the block's shape; `depth` may not exceed the smallest chunk.
    pub fn map_overlap<O: Op<Output = Chunk>>(
        &self,
        op: O,
        depth: &[usize],
        boundary: Boundary,
        dtype: DType,
    ) -> Result<Array, ArrayError> {
        if depth.len() != self.ndim() {
            return Err(ArrayError::Shape(format!(
                "{} depths for an array with {} dimensions",
                depth.len(),
                self.ndim()
            )));
        }
        for (axis, (&d, chunks)) in depth.iter().zip(self.chunks()).enumerate() {
            if chunks.iter().any(|&c| c < d) {
                return Err(ArrayError::Chunks(format!(
                    "depth {d} along axis {axis} is more than its smallest chunk ({:?}); rechunk first",
                    chunks.iter().min()
                )));
            }
        }
        let numblocks = self.numblocks();
        let op_ref = op.op_ref();
        let token = crate::graph::fresh_token();
        let fill = match boundary {
            Boundary::Constant(v) => v,
            _ => 0.0,
        };
        let ndim = self.ndim();
        Ok(Array::build(
            short_name(op.name()),
            self.shape.clone(),
            self.chunks.clone(),
            dtype,
            |name, index| {
                // Per axis: halo before and after, and the neighbours to take it from:
                // (block along the axis, first cell inside it, cells, where in the
                // extended block).
                let mut halo = Vec::with_capacity(ndim);
                let mut sources: Vec<Vec<(usize, usize, usize, usize)>> = Vec::with_capacity(ndim);
                for axis in 0..ndim {
                    let (b, n, d) = (index[axis], numblocks[axis], depth[axis]);
                    let size = self.chunks[axis][b];
                    let has_before = b > 0 || boundary != Boundary::None;
                    let has_after = b + 1 < n || boundary != Boundary::None;
                    let before = if has_before { d } else { 0 };
                    let after = if has_after { d } else { 0 };
                    let mut list = Vec::new();
                    if before > 0 {
                        if b > 0 {
                            list.push((b - 1, self.chunks[axis][b - 1] - d, d, 0));
                        } else if boundary == Boundary::Periodic {
                            list.push((n - 1, self.chunks[axis][n - 1] - d, d, 0));
                        }
                    }
                    list.push((b, 0, size, before));
                    if after > 0 {
                        if b + 1 < n {
                            list.push((b + 1, 0, d, before + size));
                        } else if boundary == Boundary::Periodic {
                            list.push((0, 0, d, before + size));
                        }
                    }
                    halo.push((before, after, size));
                    sources.push(list);
                }
                // One piece per combination of neighbours along the axes.
                let picks: Vec<Vec<usize>> =
                    sources.iter().map(|l| (0..l.len()).collect()).collect();
                let mut inputs = Vec::new();
                let mut places = Vec::new();
                for pick in grid::cartesian(&picks) {
                    let source: Vec<usize> = pick
                        .iter()
                        .enumerate()
                        .map(|(a, &p)| sources[a][p].0)
                        .collect();
                    let ranges: Vec<(isize, usize, isize)> = pick
                        .iter()
                        .enumerate()
                        .map(|(a, &p)| (sources[a][p].1 as isize, sources[a][p].2, 1))
                        .collect();
                    places.push(
                        pick.iter()
                            .enumerate()
                            .map(|(a, &p)| sources[a][p].3)
                            .collect(),
                    );
                    let key = Key::new(format!("overlap-piece-{token}"))
                        .indexed(&[index.to_vec(), pick.clone()].concat());
                    inputs.push(Take::node(
                        key,
                        &kernel::params(TakeParams::from(ranges)),
                        vec![self.block(&source).clone()],
                    ));
                }
                let extended_shape: Vec<usize> = halo.iter().map(|&(b, a, s)| b + s + a).collect();
                let extended = AssembleBlock::node(
                    Key::new(format!("overlap-{token}")).indexed(index),
                    &kernel::params(Assemble {
                        shape: extended_shape,
                        offsets: places,
                        fill,
                    }),
                    inputs,
                );
                let applied = Arc::new(Node {
                    key: Key::new(format!("{name}-halo")).indexed(index),
                    kind: NodeKind::Task {
                        op: op_ref.clone(),
                        args: vec![ArgSource::Node(extended)],
                        annotations: Default::default(),
                    },
                });
                let trim: Vec<(isize, usize, isize)> =
                    halo.iter().map(|&(b, _, s)| (b as isize, s, 1)).collect();
                Take::node(
                    Key::new(name).indexed(index),
                    &kernel::params(TakeParams::from(trim)),
                    vec![applied],
                )
            },
        ))
    }
}
