//! The plan of a reduction: a partial per block, partials combined
//! `split_every` at a time along the reduced axes, and each remaining block
//! finished.

use super::super::kernel;
use super::super::{grid, Array};
use super::linear::{linear_terms, Linear, ReduceLinear};
use super::partial::{ReduceBlock, ReduceCombine, ReduceFinish, Step};
use super::{ReduceOptions, Reduction};
use crate::client::lazy::Node;
use crate::graph::Key;
use std::sync::Arc;

/// The graph of `array` reduced over `axes` (sorted, distinct, checked).
pub(super) fn reduce(
    array: &Array,
    reduction: Reduction,
    axes: Vec<usize>,
    options: ReduceOptions,
) -> Array {
    let out = reduction.out(array.dtype);
    let step = |offset: Vec<usize>| Step {
        reduction,
        axes: axes.clone(),
        offset,
        shape: array.shape.clone(),
        keepdims: options.keepdims,
        out,
    };
    // Level 0: one partial per block.
    let mut numblocks = array.numblocks();
    let prefix = reduction.name();
    let token = crate::graph::fresh_token();
    let shared = kernel::params(step(Vec::new()));
    let mut level: Vec<Arc<Node>> = grid::block_indices(&numblocks)
        .iter()
        .map(|index| {
            let key = Key::new(format!("{prefix}-partial-{token}")).indexed(index);
            if matches!(reduction, Reduction::Sum | Reduction::Mean) {
                if let Some((terms, nodes)) = linear_terms(array, index) {
                    let linear = kernel::params(Linear {
                        step: step(Vec::new()),
                        terms,
                    });
                    return ReduceLinear::node(key, &linear, nodes);
                }
            }
            let params = if reduction.is_arg() {
                kernel::params(step(grid::block_offset(&array.chunks, index)))
            } else {
                shared.clone()
            };
            ReduceBlock::node(key, &params, vec![array.block(index).clone()])
        })
        .collect();
    // Combine along the reduced axes until one block is left on each.
    let mut depth = 0;
    while axes.iter().any(|&a| numblocks[a] > 1) {
        let spread = axes.iter().filter(|&&a| numblocks[a] > 1).count() as f64;
        let factor = ((options.split_every.max(2) as f64)
            .powf(1.0 / spread)
            .round() as usize)
            .max(2);
        let next: Vec<usize> = numblocks
            .iter()
            .enumerate()
            .map(|(a, &n)| {
                if axes.contains(&a) {
                    n.div_ceil(factor)
                } else {
                    n
                }
            })
            .collect();
        depth += 1;
        let combined = grid::block_indices(&next)
            .iter()
            .map(|index| {
                let ranges: Vec<Vec<usize>> = index
                    .iter()
                    .enumerate()
                    .map(|(a, &i)| {
                        if axes.contains(&a) {
                            (i * factor..((i + 1) * factor).min(numblocks[a])).collect()
                        } else {
                            vec![i]
                        }
                    })
                    .collect();
                let inputs = grid::cartesian(&ranges)
                    .iter()
                    .map(|old| level[grid::flat_index(old, &numblocks)].clone())
                    .collect();
                let key = Key::new(format!("{prefix}-combine{depth}-{token}")).indexed(index);
                ReduceCombine::node(key, &shared, inputs)
            })
            .collect();
        level = combined;
        numblocks = next;
    }
    // Finish each remaining block.
    let shape: Vec<usize> = array
        .shape
        .iter()
        .enumerate()
        .filter_map(|(a, &d)| match (axes.contains(&a), options.keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect();
    let chunks: Vec<Vec<usize>> = array
        .chunks
        .iter()
        .enumerate()
        .filter_map(|(a, c)| match (axes.contains(&a), options.keepdims) {
            (false, _) => Some(c.clone()),
            (true, true) => Some(vec![1]),
            (true, false) => None,
        })
        .collect();
    let ndim = array.ndim();
    Array::build(prefix, shape, chunks, out, |name, index| {
        // The partial grid's index: reduced axes are at 0.
        let mut full = Vec::with_capacity(ndim);
        let mut rest = index.iter();
        for a in 0..ndim {
            if axes.contains(&a) {
                full.push(0);
                if options.keepdims {
                    rest.next();
                }
            } else {
                full.push(*rest.next().expect("one index per kept axis"));
            }
        }
        let partial = level[grid::flat_index(&full, &numblocks)].clone();
        ReduceFinish::node(Key::new(name).indexed(index), &shared, vec![partial])
    })
}
