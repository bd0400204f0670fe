//! Sums pushed through how an array was made: the partial sum of `a ± b`
//! (either possibly transposed) is the sum of its terms' partials, each read
//! in its own memory order, so `(x + x.T).sum(axis=0)` never materialises
//! `x + x.T` or the transposed blocks.

use super::super::chunk::{with_chunk, Chunk};
use super::super::dtype::Element;
use super::super::kernel::{self, fail, kernel};
use super::super::Array;
use super::partial::{block_partial, Partial, Step};
use crate::client::lazy::Node;
use crate::value::Value;
use ndarray::IxDyn;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One term of a sum of blocks: its sign, and the axis order of the block it
/// reads when that block is the untransposed source of a transposed array.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Term {
    sign: f64,
    perm: Option<Vec<usize>>,
}

/// What a linear partial sum is told: the reduction and the terms.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Linear {
    pub(super) step: Step,
    pub(super) terms: Vec<Term>,
}

kernel! {
    /// The partial sum of `±a ± b ...` from the partial sums of its terms
    /// (sums are linear), each reduced in its own memory order: a transposed
    /// term is its source block reduced over the matching axes.
    pub(super) ReduceLinear(Linear) => |p, inputs| {
        let mut total: Option<Partial> = None;
        for (n, term) in p.terms.iter().enumerate() {
            let chunk = kernel::chunk_at(inputs, n)?;
            let partial = match &term.perm {
                None => block_partial(&p.step, &chunk)?,
                Some(perm) => {
                    let mut step = p.step.clone();
                    step.axes = p.step.axes.iter().map(|&k| perm[k]).collect();
                    step.axes.sort_unstable();
                    let mut partial = block_partial(&step, &chunk)?;
                    partial.value = with_chunk!(&partial.value, v => Element::wrap(
                        v.clone().permuted_axes(IxDyn(perm)).as_standard_layout().into_owned()
                    ));
                    partial
                }
            };
            let Chunk::F64(value) = &partial.value else {
                return Err(fail("reduce: a linear term that is not float64"));
            };
            let scaled = value.mapv(|v| v * term.sign);
            total = Some(match total {
                None => Partial { value: Chunk::F64(scaled), ..partial },
                Some(mut sum) => {
                    match &mut sum.value {
                        Chunk::F64(acc) if acc.shape() == scaled.shape() => *acc += &scaled,
                        _ => return Err(fail("reduce: linear terms do not line up")),
                    }
                    sum
                }
            });
        }
        Ok(Value::new(total.ok_or_else(|| fail("reduce: no terms"))?))
    }
}

/// A level-0 partial that pushes a sum through how `array` was made, when it
/// is `a ± b` of float64 arrays (possibly transposed): the sum of the terms'
/// partials, each read in its own memory order, so `(x + x.T).sum(axis=0)`
/// never materialises `x + x.T` or the transposed blocks.
pub(super) fn linear_terms(array: &Array, index: &[usize]) -> Option<(Vec<Term>, Vec<Arc<Node>>)> {
    let super::super::Origin::AddSub { lhs, rhs, subtract } = array.origin.as_deref()? else {
        return None;
    };
    let mut terms = Vec::new();
    let mut nodes = Vec::new();
    for (operand, sign) in [(lhs, 1.0), (rhs, if *subtract { -1.0 } else { 1.0 })] {
        match operand.origin.as_deref() {
            Some(super::super::Origin::Transpose { source, perm }) => {
                let mut at = vec![0; perm.len()];
                for (k, &p) in perm.iter().enumerate() {
                    at[p] = index[k];
                }
                nodes.push(source.block(&at).clone());
                terms.push(Term {
                    sign,
                    perm: Some(perm.clone()),
                });
            }
            _ => {
                nodes.push(operand.block(index).clone());
                terms.push(Term { sign, perm: None });
            }
        }
    }
    Some((terms, nodes))
}
