//! Cumulative sums along an axis (`cumsum`): each block is summed on its own,
//! then a running carry (the last row of everything before it) is added, block
//! after block along the axis.

use super::chunk::Chunk;
use super::dtype::DType;
use super::kernel::{self, chunk_at, fail, kernel, output};
use super::{Array, ArrayError};
use crate::client::lazy::Node;
use crate::graph::Key;
use crate::ops::TaskFailure;
use ndarray::{ArrayD, Axis, Slice};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Step {
    /// The block's own cumulative sum.
    Local,
    /// The last row along the axis (what the next blocks carry).
    Last,
    /// `block + carry`, the carry broadcast along the axis.
    AddCarry,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Params {
    step: Step,
    axis: usize,
    out: DType,
}

kernel! {
    /// One step of a cumulative sum.
    Scan(Params) => |p, inputs| output(scan(p, inputs)?)
}

fn scan(p: &Params, inputs: &[crate::value::Value]) -> Result<Chunk, TaskFailure> {
    let block = chunk_at(inputs, 0)?;
    let axis = Axis(p.axis);
    if p.axis >= block.shape().len() {
        return Err(fail("cumsum: axis out of range"));
    }
    macro_rules! steps {
        ($t:ty, $add:expr) => {{
            let a: ArrayD<$t> = block.cast::<$t>();
            match p.step {
                Step::Local => {
                    let mut a = a;
                    a.accumulate_axis_inplace(axis, |&prev, cur| *cur = $add(*cur, prev));
                    Chunk::from(a)
                }
                Step::Last => {
                    let n = a.len_of(axis);
                    let last = a
                        .slice_axis(axis, Slice::from(n.saturating_sub(1)..n))
                        .to_owned();
                    Chunk::from(last)
                }
                Step::AddCarry => {
                    let carry = chunk_at(inputs, 1)?.cast::<$t>();
                    let carry = carry
                        .broadcast(a.raw_dim())
                        .ok_or_else(|| fail("cumsum: the carry does not broadcast"))?;
                    let mut a = a;
                    ndarray::Zip::from(&mut a)
                        .and(&carry)
                        .for_each(|x, &c| *x = $add(*x, c));
                    Chunk::from(a)
                }
            }
        }};
    }
    Ok(match p.out {
        DType::F64 => steps!(f64, |x: f64, y: f64| x + y),
        DType::F32 => steps!(f32, |x: f32, y: f32| x + y),
        _ => steps!(i64, |x: i64, y: i64| x.wrapping_add(y)),
    })
}

impl Array {
    /// Cumulative sum along `axis` (NumPy's `cumsum`; integers accumulate in
    /// `int64`).
    pub fn cumsum(&self, axis: isize) -> Result<Array, ArrayError> {
        let axis = self.axis(axis)?;
        let out = self.dtype.accumulator();
        let params = |step| kernel::params(Params { step, axis, out });
        let (local, last, add) = (
            params(Step::Local),
            params(Step::Last),
            params(Step::AddCarry),
        );
        let token = crate::graph::fresh_token();
        // Carries per block: the running total of the last rows before it.
        let mut carries: std::collections::HashMap<Vec<usize>, Arc<Node>> = Default::default();
        let mut locals: std::collections::HashMap<Vec<usize>, Arc<Node>> = Default::default();
        for index in super::grid::block_indices(&self.numblocks()) {
            let node = Scan::node(
                Key::new(format!("cumsum-local-{token}")).indexed(&index),
                &local,
                vec![self.block(&index).clone()],
            );
            locals.insert(index, node);
        }
        let mut order = super::grid::block_indices(&self.numblocks());
        order.sort_by_key(|index| index[axis]);
        for index in order {
            if index[axis] == 0 {
                continue;
            }
            let mut before = index.clone();
            before[axis] -= 1;
            let tail = Scan::node(
                Key::new(format!("cumsum-last-{token}")).indexed(&before),
                &last,
                vec![locals[&before].clone()],
            );
            // carry(k) = carry(k - 1) + last(k - 1): adding a carry to a last row
            // is the AddCarry step on a one-row block.
            let carry = match carries.get(&before) {
                None => tail,
                Some(previous) => Scan::node(
                    Key::new(format!("cumsum-carry-{token}")).indexed(&index),
                    &add,
                    vec![tail, previous.clone()],
                ),
            };
            carries.insert(index, carry);
        }
        Ok(Array::build(
            "cumsum",
            self.shape.clone(),
            self.chunks.clone(),
            out,
            |name, index| match carries.get(index) {
                None => locals[index].clone(),
                Some(carry) => Scan::node(
                    Key::new(name).indexed(index),
                    &add,
                    vec![locals[index].clone(), carry.clone()],
                ),
            },
        ))
    }
}
