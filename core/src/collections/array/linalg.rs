//! Blocked matrix products: `matmul`/`dot` and 2-D `tensordot`. Output block
//! `(i, j)` sums `A[i, l] @ B[l, j]` over `l`, `split_every` products per task,
//! then adds the partial sums as a tree.

use super::blas;
use super::chunk::Chunk;
use super::dtype::{DType, Element};
use super::grid::{self, ChunkSpec};
use super::kernel::{self, chunks, fail, kernel, output};
use super::{Array, ArrayError};
use crate::client::lazy::Node;
use crate::graph::Key;
use crate::ops::TaskFailure;
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, CowArray, Ix2};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Products per task before partial sums are added.
const SPLIT_EVERY: usize = 8;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Product {
    /// The inputs are `pairs` blocks of A followed by `pairs` blocks of B.
    pairs: usize,
    out: DType,
}

kernel! {
    /// Sums products of block pairs.
    MatmulBlocks(Product) => |p, inputs| {
        let blocks = chunks(inputs)?;
        if blocks.len() != 2 * p.pairs || p.pairs == 0 {
            return Err(fail("matmul: wrong number of blocks"));
        }
        let (a, b) = blocks.split_at(p.pairs);
        output(match p.out {
            DType::F32 => Chunk::F32(products::<f32>(a, b)?.into_dyn()),
            out => Chunk::F64(products::<f64>(a, b)?.into_dyn()).into_dtype(out),
        })
    }
}

kernel! {
    /// Adds partial sums.
    AddBlocks(DType) => |out, inputs| {
        let blocks = chunks(inputs)?;
        let mut iter = blocks.iter();
        let first = iter.next().ok_or_else(|| fail("add: no blocks"))?;
        let mut total = first.cast::<f64>();
        for block in iter {
            if block.shape() != total.shape() {
                return Err(fail("add: blocks of different shapes"));
            }
            match <f64 as Element>::view(block) {
                Some(values) => total += values,
                None => total += &block.cast::<f64>(),
            }
        }
        output(Chunk::F64(total).into_dtype(*out))
    }
}

/// A block as a matrix of `F`, borrowed when it already is one.
fn as_matrix<F: super::dtype::Element>(chunk: &Chunk) -> Result<CowArray<'_, F, Ix2>, TaskFailure> {
    let dynamic: CowArray<'_, F, ndarray::IxDyn> = match F::view(chunk) {
        Some(a) => a.view().into(),
        None => chunk.cast::<F>().into(),
    };
    dynamic
        .into_dimensionality::<Ix2>()
        .map_err(|e| fail(format!("matmul: {e}")))
}

fn products<F>(a: &[Arc<Chunk>], b: &[Arc<Chunk>]) -> Result<Array2<F>, TaskFailure>
where
    F: super::dtype::Element + ndarray::LinalgScalar + 'static,
{
    let mut out: Option<Array2<F>> = None;
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (as_matrix::<F>(x)?, as_matrix::<F>(y)?);
        if x.ncols() != y.nrows() {
            return Err(fail("matmul: inner block sizes differ"));
        }
        let target = out.get_or_insert_with(|| Array2::zeros((x.nrows(), y.ncols())));
        if target.dim() != (x.nrows(), y.ncols()) {
            return Err(fail("matmul: block shapes differ"));
        }
        if !blas::gemm_accumulate(&x.view(), &y.view(), target) {
            general_mat_mul(F::one(), &x, &y, F::one(), target);
        }
    }
    out.ok_or_else(|| fail("matmul: no blocks"))
}

impl Array {
    /// The matrix product of two 2-D arrays (NumPy's `@`).
    pub fn matmul(&self, other: &Array) -> Result<Array, ArrayError> {
        if self.ndim() != 2 || other.ndim() != 2 {
            return Err(ArrayError::Shape(format!(
                "matmul needs 2-D arrays, got shapes {:?} and {:?}",
                self.shape(),
                other.shape()
            )));
        }
        if self.shape()[1] != other.shape()[0] {
            return Err(ArrayError::Shape(format!(
                "matmul of {:?} and {:?}: inner dimensions differ",
                self.shape(),
                other.shape()
            )));
        }
        let out = self.dtype().promote(other.dtype());
        if out == DType::Bool {
            return Err(ArrayError::DType {
                op: "matmul".into(),
                dtype: out,
            });
        }
        // Inner chunks must line up.
        let inner = grid::refine(&self.chunks()[1], &other.chunks()[0]);
        let a = self.rechunk(ChunkSpec::Explicit(vec![
            self.chunks()[0].clone(),
            inner.clone(),
        ]))?;
        let b = other.rechunk(ChunkSpec::Explicit(vec![
            inner.clone(),
            other.chunks()[1].clone(),
        ]))?;
        let inner_blocks = inner.len();
        let token = crate::graph::fresh_token();
        let shape = vec![self.shape()[0], other.shape()[1]];
        let chunks = vec![a.chunks()[0].clone(), b.chunks()[1].clone()];
        Ok(Array::build("matmul", shape, chunks, out, |name, index| {
            let (i, j) = (index[0], index[1]);
            let groups: Vec<Arc<Node>> = (0..inner_blocks)
                .collect::<Vec<_>>()
                .chunks(SPLIT_EVERY)
                .enumerate()
                .map(|(g, ls)| {
                    let mut inputs: Vec<Arc<Node>> =
                        ls.iter().map(|&l| a.block(&[i, l]).clone()).collect();
                    inputs.extend(ls.iter().map(|&l| b.block(&[l, j]).clone()));
                    let params = kernel::params(Product {
                        pairs: ls.len(),
                        out,
                    });
                    let key = if inner_blocks <= SPLIT_EVERY {
                        Key::new(name).indexed(index)
                    } else {
                        Key::new(format!("matmul-products-{token}")).indexed(&[i, j, g])
                    };
                    MatmulBlocks::node(key, &params, inputs)
                })
                .collect();
            add_tree(groups, name, index, &token, out)
        }))
    }

    /// NumPy's `dot` for 2-D arrays (the matrix product).
    pub fn dot(&self, other: &Array) -> Result<Array, ArrayError> {
        self.matmul(other)
    }
}

/// Adds partial sums a few at a time until one is left.
fn add_tree(
    mut level: Vec<Arc<Node>>,
    name: &str,
    index: &[usize],
    token: &str,
    out: DType,
) -> Arc<Node> {
    let params = kernel::params(out);
    let mut depth = 0;
    while level.len() > 1 {
        depth += 1;
        let last = level.len() <= SPLIT_EVERY;
        level = level
            .chunks(SPLIT_EVERY)
            .enumerate()
            .map(|(g, group)| {
                let key = if last {
                    Key::new(name).indexed(index)
                } else {
                    let mut at = index.to_vec();
                    at.push(g);
                    Key::new(format!("matmul-sum{depth}-{token}")).indexed(&at)
                };
                AddBlocks::node(key, &params, group.to_vec())
            })
            .collect();
    }
    level.pop().expect("at least one product")
}

/// NumPy's `tensordot` for 2-D arrays: `axes` 0 (outer product), 1 (matrix
/// product) or 2 (sum of elementwise products).
pub fn tensordot(a: &Array, b: &Array, axes: usize) -> Result<Array, ArrayError> {
    if a.ndim() != 2 || b.ndim() != 2 {
        return Err(ArrayError::Shape(
            "tensordot is implemented for 2-D arrays".into(),
        ));
    }
    match axes {
        0 => {
            // out[i, j, k, l] = a[i, j] * b[k, l]
            let left = a.expand_dims(2)?.expand_dims(3)?;
            let right = b.expand_dims(0)?.expand_dims(0)?;
            left.binary(super::BinaryOp::Mul, &right)
        }
        1 => a.matmul(b),
        2 => {
            if a.shape() != b.shape() {
                return Err(ArrayError::Shape(format!(
                    "tensordot over 2 axes of {:?} and {:?}",
                    a.shape(),
                    b.shape()
                )));
            }
            a.binary(super::BinaryOp::Mul, b)?.sum()
        }
        n => Err(ArrayError::Shape(format!(
            "tensordot with axes={n} of 2-D arrays"
        ))),
    }
}
