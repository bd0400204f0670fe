//! Your own ops on blocks: `map_blocks` (one block of each input at each
//! position, aligned and broadcast like elementwise operations) and
//! `blockwise` (Dask's index notation, without contraction). The op is a
//! registered `rask::op!` taking one `Chunk` per input and returning a `Chunk`,
//! so it runs on any worker built from the binary that registers it.

use super::chunk::Chunk;
use super::dtype::DType;
use super::elementwise::Aligned;
use super::grid::{self, ChunkSpec};
use super::{Array, ArrayError};
use crate::client::lazy::ArgSource;
use crate::client::lazy::{Node, NodeKind};
use crate::graph::Key;
use crate::ops::{short_name, Op, OpRef};
use std::collections::HashMap;
use std::sync::Arc;

fn op_node(op: &OpRef, key: Key, inputs: Vec<Arc<Node>>) -> Arc<Node> {
    Arc::new(Node {
        key,
        kind: NodeKind::Task {
            op: op.clone(),
            args: inputs.into_iter().map(ArgSource::Node).collect(),
            annotations: Default::default(),
        },
    })
}

impl Array {
    /// Runs `op` on each block of `self` (and the blocks of `others` at the same
    /// position, broadcast and aligned); blocks keep their shapes and the
    /// result's type is `dtype` (Dask's `map_blocks`).
    pub fn map_blocks<O: Op<Output = Chunk>>(
        &self,
        op: O,
        others: &[&Array],
        dtype: DType,
    ) -> Result<Array, ArrayError> {
        let mut inputs = vec![self];
        inputs.extend_from_slice(others);
        let aligned = Aligned::new(&inputs)?;
        let op_ref = op.op_ref();
        Ok(Array::build(
            short_name(op.name()),
            aligned.shape.clone(),
            aligned.chunks.clone(),
            dtype,
            |name, index| {
                op_node(
                    &op_ref,
                    Key::new(name).indexed(index),
                    aligned.blocks(index),
                )
            },
        ))
    }
}

/// Runs `op` on blocks chosen by index notation (Dask's `blockwise` without
/// contraction): `blockwise(op, "ij", &[(&x, "ij"), (&y, "ji")], dtype)` gives
/// output block `(i, j)` from `x`'s block `(i, j)` and `y`'s block `(j, i)`.
/// Every input index must be an output index; an index's length must agree
/// across inputs, and differing chunks are aligned by rechunking.
pub fn blockwise<O: Op<Output = Chunk>>(
    op: O,
    out_index: &str,
    inputs: &[(&Array, &str)],
    dtype: DType,
) -> Result<Array, ArrayError> {
    let out: Vec<char> = out_index.chars().collect();
    let mut sizes: HashMap<char, usize> = HashMap::new();
    let mut cuts: HashMap<char, Vec<usize>> = HashMap::new();
    for (array, index) in inputs {
        let letters: Vec<char> = index.chars().collect();
        if letters.len() != array.ndim() {
            return Err(ArrayError::Shape(format!(
                "index {index:?} for an array with {} dimensions",
                array.ndim()
            )));
        }
        for (axis, &c) in letters.iter().enumerate() {
            if !out.contains(&c) {
                return Err(ArrayError::Shape(format!(
                    "index {c:?} of an input is not in the output index {out_index:?} (contraction is not supported)"
                )));
            }
            let dim = array.shape()[axis];
            match sizes.insert(c, dim) {
                Some(other) if other != dim => {
                    return Err(ArrayError::Shape(format!(
                        "index {c:?} has lengths {other} and {dim}"
                    )))
                }
                _ => {}
            }
            let chunks = &array.chunks()[axis];
            let refined = match cuts.get(&c) {
                Some(have) => grid::refine(have, chunks),
                None => chunks.clone(),
            };
            cuts.insert(c, refined);
        }
    }
    let shape: Vec<usize> = out
        .iter()
        .map(|c| {
            sizes
                .get(c)
                .copied()
                .ok_or_else(|| ArrayError::Shape(format!("output index {c:?} is in no input")))
        })
        .collect::<Result<_, _>>()?;
    let chunks: Vec<Vec<usize>> = out.iter().map(|c| cuts[c].clone()).collect();
    let aligned: Vec<(Array, Vec<usize>)> = inputs
        .iter()
        .map(|(array, index)| {
            let letters: Vec<char> = index.chars().collect();
            let want: Vec<Vec<usize>> = letters.iter().map(|c| cuts[c].clone()).collect();
            let positions = letters
                .iter()
                .map(|c| out.iter().position(|o| o == c).expect("checked above"))
                .collect();
            Ok((array.rechunk(ChunkSpec::Explicit(want))?, positions))
        })
        .collect::<Result<_, ArrayError>>()?;
    let op_ref = op.op_ref();
    Ok(Array::build(
        short_name(op.name()),
        shape,
        chunks,
        dtype,
        |name, index| {
            let blocks = aligned
                .iter()
                .map(|(array, positions)| {
                    let at: Vec<usize> = positions.iter().map(|&p| index[p]).collect();
                    array.block(&at).clone()
                })
                .collect();
            op_node(&op_ref, Key::new(name).indexed(index), blocks)
        },
    ))
}
