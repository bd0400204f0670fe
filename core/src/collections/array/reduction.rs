//! Reductions over any axes as a tree (Dask's `split_every`): each block is
//! reduced to a partial result, partials are combined a few at a time, and the
//! last one is finished (a mean divides, a standard deviation takes a root).
//! Variances combine with Chan's parallel formula, so they stay accurate.

use super::chunk::{with_chunk, Chunk};
use super::dtype::{DType, Element};
use super::grid;
use super::kernel::{self, fail, kernel, output};
use super::{Array, ArrayError};
use crate::collections::delayed::Node;
use crate::graph::Key;
use crate::ops::TaskFailure;
use crate::value::Value;
use ndarray::{ArrayD, Axis, IxDyn, Zip};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a reduction computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reduction {
    /// Sum (integers accumulate in `int64`).
    Sum,
    /// Product.
    Prod,
    /// Smallest element (NaN wins).
    Min,
    /// Largest element (NaN wins).
    Max,
    /// Whether any element is true (nonzero).
    Any,
    /// Whether every element is true (nonzero).
    All,
    /// Arithmetic mean.
    Mean,
    /// Variance with `ddof` delta degrees of freedom.
    Var {
        /// Delta degrees of freedom (0: population variance).
        ddof: u32,
    },
    /// Standard deviation with `ddof` delta degrees of freedom.
    Std {
        /// Delta degrees of freedom.
        ddof: u32,
    },
    /// Index of the smallest element (flat, or along one axis).
    ArgMin,
    /// Index of the largest element (flat, or along one axis).
    ArgMax,
}

impl Reduction {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "sum",
            Reduction::Prod => "prod",
            Reduction::Min => "min",
            Reduction::Max => "max",
            Reduction::Any => "any",
            Reduction::All => "all",
            Reduction::Mean => "mean",
            Reduction::Var { .. } => "var",
            Reduction::Std { .. } => "std",
            Reduction::ArgMin => "argmin",
            Reduction::ArgMax => "argmax",
        }
    }

    pub(crate) fn is_arg(self) -> bool {
        matches!(self, Reduction::ArgMin | Reduction::ArgMax)
    }

    /// The type partial values are kept in.
    fn work(self, dtype: DType) -> DType {
        match self {
            Reduction::Sum | Reduction::Prod => dtype.accumulator(),
            Reduction::Any | Reduction::All => DType::Bool,
            Reduction::Mean | Reduction::Var { .. } | Reduction::Std { .. } => DType::F64,
            _ => dtype,
        }
    }

    /// The result's type.
    fn out(self, dtype: DType) -> DType {
        match self {
            Reduction::Mean | Reduction::Var { .. } | Reduction::Std { .. } => dtype.float(),
            Reduction::ArgMin | Reduction::ArgMax => DType::I64,
            r => r.work(dtype),
        }
    }
}

/// How a reduction is shaped.
#[derive(Clone, Copy, Debug)]
pub struct ReduceOptions {
    /// Keep reduced axes with length 1 (NumPy's `keepdims`).
    pub keepdims: bool,
    /// How many partials one task combines (Dask's `split_every`).
    pub split_every: usize,
}

impl Default for ReduceOptions {
    fn default() -> Self {
        ReduceOptions {
            keepdims: false,
            split_every: 16,
        }
    }
}

/// A reduction's intermediate result for one block or group of blocks. Reduced
/// axes have length 1.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Partial {
    /// How many elements each cell stands for.
    count: f64,
    /// The running value: sum, product, extreme, flag, mean, or best value.
    #[serde(with = "super::chunk::wire")]
    value: Chunk,
    /// Variance: the sum of squared deviations from `value` (the mean).
    #[serde(with = "super::chunk::wire_option")]
    m2: Option<Chunk>,
    /// Arg reductions: where `value` was found (flat, or along the axis).
    #[serde(with = "super::chunk::wire_option")]
    index: Option<Chunk>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Step {
    reduction: Reduction,
    /// The axes reduced (of the input array).
    axes: Vec<usize>,
    /// Arg reductions: the block's offset and the array's shape.
    offset: Vec<usize>,
    shape: Vec<usize>,
    keepdims: bool,
    /// The result's type.
    out: DType,
}

kernel! {
    /// Reduces one block to a partial.
    ReduceBlock(Step) => |p, inputs| {
        let chunk = kernel::chunk_at(inputs, 0)?;
        Ok(Value::new(block_partial(p, &chunk)?))
    }
}

/// One term of a sum of blocks: its sign, and the axis order of the block it
/// reads when that block is the untransposed source of a transposed array.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Term {
    sign: f64,
    perm: Option<Vec<usize>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Linear {
    step: Step,
    terms: Vec<Term>,
}

kernel! {
    /// The partial sum of `±a ± b ...` from the partial sums of its terms
    /// (sums are linear), each reduced in its own memory order: a transposed
    /// term is its source block reduced over the matching axes.
    ReduceLinear(Linear) => |p, inputs| {
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
fn linear_terms(array: &Array, index: &[usize]) -> Option<(Vec<Term>, Vec<Arc<Node>>)> {
    let super::Origin::AddSub { lhs, rhs, subtract } = array.origin.as_deref()? else {
        return None;
    };
    let mut terms = Vec::new();
    let mut nodes = Vec::new();
    for (operand, sign) in [(lhs, 1.0), (rhs, if *subtract { -1.0 } else { 1.0 })] {
        match operand.origin.as_deref() {
            Some(super::Origin::Transpose { source, perm }) => {
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

kernel! {
    /// Combines partials of neighbouring blocks.
    ReduceCombine(Step) => |p, inputs| {
        let partials = inputs
            .iter()
            .map(|v| v.get::<Partial>().map_err(|e| fail(format!("reduce: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let mut iter = partials.iter();
        let first = iter.next().ok_or_else(|| fail("reduce: nothing to combine"))?;
        let mut acc = (**first).clone();
        for next in iter {
            acc = combine(p.reduction, &acc, next)?;
        }
        Ok(Value::new(acc))
    }
}

kernel! {
    /// Turns the last partial into the result.
    ReduceFinish(Step) => |p, inputs| {
        let partial = inputs
            .first()
            .ok_or_else(|| fail("reduce: no partial"))?
            .get::<Partial>()
            .map_err(|e| fail(format!("reduce: {e}")))?;
        output(finish(p, &partial)?)
    }
}

/// Folds `a` over `axes`, keeping them with length 1.
fn fold_axes<T: Element>(
    a: &ArrayD<T>,
    axes: &[usize],
    init: T,
    f: impl Fn(T, T) -> T + Copy,
) -> ArrayD<T> {
    let mut out = a.to_owned();
    for &axis in axes {
        out = out
            .fold_axis(Axis(axis), init, |&acc, &x| f(acc, x))
            .insert_axis(Axis(axis));
    }
    out
}

/// Sums over `axes`, keeping them with length 1; the first sum reads the
/// input where it lies.
fn sum_axes<T>(a: &ndarray::ArrayViewD<'_, T>, axes: &[usize]) -> ArrayD<T>
where
    T: Clone + std::ops::Add<Output = T> + num_traits::Zero,
{
    let Some((&first, rest)) = axes.split_first() else {
        return a.to_owned();
    };
    let mut out = a.sum_axis(Axis(first)).insert_axis(Axis(first));
    for &axis in rest {
        out = out.sum_axis(Axis(axis)).insert_axis(Axis(axis));
    }
    out
}

/// Folds every element (fast path for a whole block).
fn fold_all<T: Element>(a: &ArrayD<T>, init: T, f: impl Fn(T, T) -> T) -> T {
    match a.as_slice_memory_order() {
        Some(slice) => slice.iter().fold(init, |acc, &x| f(acc, x)),
        None => a.iter().fold(init, |acc, &x| f(acc, x)),
    }
}

fn keepdims_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect()
}

fn extreme<T: Element>(min: bool) -> impl Fn(T, T) -> T + Copy {
    move |acc: T, x: T| {
        if acc.is_nan() {
            acc
        } else if x.is_nan() || (min && x < acc) || (!min && x > acc) {
            x
        } else {
            acc
        }
    }
}

fn sum_chunk(chunk: &Chunk, axes: &[usize], all: bool, work: DType) -> Chunk {
    let shape = keepdims_shape(chunk.shape(), axes);
    macro_rules! sum {
        ($t:ty, $a:expr) => {{
            let a: ndarray::CowArray<'_, $t, IxDyn> = match <$t>::view(chunk) {
                Some(v) => v.view().into(),
                None => chunk.cast::<$t>().into(),
            };
            if all {
                let total: $t = match a.as_slice_memory_order() {
                    Some(s) => s
                        .iter()
                        .copied()
                        .fold(<$t as super::dtype::Number>::ZERO, |x, y| {
                            super::dtype::Number::arith(super::elementwise::BinaryOp::Add, x, y)
                        }),
                    None => a
                        .iter()
                        .copied()
                        .fold(<$t as super::dtype::Number>::ZERO, |x, y| {
                            super::dtype::Number::arith(super::elementwise::BinaryOp::Add, x, y)
                        }),
                };
                <$t>::wrap(ArrayD::from_elem(IxDyn(&shape), total))
            } else {
                <$t>::wrap(sum_axes(&a.view(), axes))
            }
        }};
    }
    match work {
        DType::F64 => {
            // Contiguous float64 blocks: ndarray's unrolled sum (vectorised).
            if all {
                if let Some(a) = chunk.view::<f64>() {
                    return Chunk::F64(ArrayD::from_elem(IxDyn(&shape), a.sum()));
                }
            }
            sum!(f64, chunk)
        }
        DType::F32 => sum!(f32, chunk),
        _ => sum!(i64, chunk),
    }
}

/// Mean and sum of squared deviations of a contiguous run, in cache-sized
/// pieces merged with Chan's formula: one pass over memory, accurate.
fn moments_of(values: &[f64]) -> (f64, f64, f64) {
    const PIECE: usize = 2048;
    let (mut n, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
    for piece in values.chunks(PIECE) {
        let k = piece.len() as f64;
        let m = piece.iter().sum::<f64>() / k;
        let s = piece.iter().map(|&x| (x - m) * (x - m)).sum::<f64>();
        let total = n + k;
        let delta = m - mean;
        mean += delta * k / total;
        m2 += s + delta * delta * n * k / total;
        n = total;
    }
    (n, mean, m2)
}

fn block_partial(p: &Step, chunk: &Chunk) -> Result<Partial, TaskFailure> {
    let axes = &p.axes;
    let all = axes.len() == chunk.shape().len();
    let shape = keepdims_shape(chunk.shape(), axes);
    let count: f64 = axes.iter().map(|&a| chunk.shape()[a] as f64).product();
    let work = p.reduction.work(chunk.dtype());
    let simple = |value: Chunk| Partial {
        count,
        value,
        m2: None,
        index: None,
    };
    Ok(match p.reduction {
        Reduction::Sum => simple(sum_chunk(chunk, axes, all, work)),
        Reduction::Mean => simple(sum_chunk(chunk, axes, all, DType::F64)),
        Reduction::Prod => simple(match work {
            DType::F64 => Chunk::F64(fold_axes(&chunk.cast::<f64>(), axes, 1.0, |a, b| a * b)),
            DType::F32 => Chunk::F32(fold_axes(&chunk.cast::<f32>(), axes, 1.0, |a, b| a * b)),
            _ => Chunk::I64(fold_axes(&chunk.cast::<i64>(), axes, 1, i64::wrapping_mul)),
        }),
        Reduction::Min | Reduction::Max => {
            let min = p.reduction == Reduction::Min;
            if chunk.is_empty() {
                // Stands for nothing: combining skips it (empty blocks are
                // common after a boolean mask).
                return Ok(simple(Chunk::full(chunk.dtype(), &shape, 0.0)));
            }
            simple(with_chunk!(chunk, a => {
                let first = *a.iter().next().expect("not empty");
                if all {
                    Element::wrap(ArrayD::from_elem(IxDyn(&shape), fold_all(a, first, extreme(min))))
                } else {
                    let mut out = a.to_owned();
                    for &axis in axes {
                        let init = out.index_axis(Axis(axis), 0).to_owned();
                        out = out
                            .axis_iter(Axis(axis))
                            .fold(init, |mut acc, lane| {
                                Zip::from(&mut acc).and(&lane).for_each(|x, &y| *x = extreme(min)(*x, y));
                                acc
                            })
                            .insert_axis(Axis(axis));
                    }
                    Element::wrap(out)
                }
            }))
        }
        Reduction::Any => simple(Chunk::Bool(fold_axes(
            &chunk.cast::<bool>(),
            axes,
            false,
            |a, b| a || b,
        ))),
        Reduction::All => simple(Chunk::Bool(fold_axes(
            &chunk.cast::<bool>(),
            axes,
            true,
            |a, b| a && b,
        ))),
        Reduction::Var { .. } | Reduction::Std { .. } => {
            let x = chunk.as_type::<f64>();
            if all {
                let (n, mean, m2) = match x.as_slice_memory_order() {
                    Some(values) => moments_of(values),
                    None => moments_of(&x.iter().copied().collect::<Vec<_>>()),
                };
                Partial {
                    count: n,
                    value: Chunk::F64(ArrayD::from_elem(IxDyn(&shape), mean)),
                    m2: Some(Chunk::F64(ArrayD::from_elem(IxDyn(&shape), m2))),
                    index: None,
                }
            } else {
                let mut mean = sum_axes(&x.view(), axes);
                mean.mapv_inplace(|s| s / count);
                let deviations = &x - &mean;
                let m2 = sum_axes(&deviations.mapv(|d| d * d).view(), axes);
                Partial {
                    count,
                    value: Chunk::F64(mean),
                    m2: Some(Chunk::F64(m2)),
                    index: None,
                }
            }
        }
        Reduction::ArgMin | Reduction::ArgMax if chunk.is_empty() => Partial {
            index: Some(Chunk::full(DType::I64, &shape, 0.0)),
            ..simple(Chunk::full(chunk.dtype(), &shape, 0.0))
        },
        Reduction::ArgMin | Reduction::ArgMax => arg_partial(p, chunk, count)?,
    })
}

fn better<T: Element>(min: bool, x: T, best: T) -> bool {
    if best.is_nan() {
        return false;
    }
    x.is_nan() || (min && x < best) || (!min && x > best)
}

fn arg_partial(p: &Step, chunk: &Chunk, count: f64) -> Result<Partial, TaskFailure> {
    let min = p.reduction == Reduction::ArgMin;
    if chunk.is_empty() {
        return Err(fail("argmin/argmax of an empty block"));
    }
    let all = p.axes.len() == chunk.shape().len();
    let (value, index) = with_chunk!(chunk, a => {
        if all {
            let mut best = *a.iter().next().expect("not empty");
            let mut at = 0usize;
            for (i, &x) in a.iter().enumerate() {
                if better(min, x, best) {
                    best = x;
                    at = i;
                }
            }
            // Local flat position → global flat index.
            let mut rest = at;
            let mut local = vec![0; a.ndim()];
            for axis in (0..a.ndim()).rev() {
                local[axis] = rest % a.shape()[axis];
                rest /= a.shape()[axis];
            }
            let global = local
                .iter()
                .zip(&p.offset)
                .zip(&p.shape)
                .fold(0i64, |flat, ((&l, &o), &d)| flat * d as i64 + (l + o) as i64);
            let shape = keepdims_shape(a.shape(), &p.axes);
            (
                Element::wrap(ArrayD::from_elem(IxDyn(&shape), best)),
                Chunk::I64(ArrayD::from_elem(IxDyn(&shape), global)),
            )
        } else {
            let axis = p.axes[0];
            let base = p.offset[axis] as i64;
            let lanes = a.lanes(Axis(axis));
            let mut values = Vec::with_capacity(lanes.into_iter().len());
            let mut indices = Vec::with_capacity(values.capacity());
            for lane in a.lanes(Axis(axis)) {
                let mut best = lane[0];
                let mut at = 0usize;
                for (i, &x) in lane.iter().enumerate() {
                    if better(min, x, best) {
                        best = x;
                        at = i;
                    }
                }
                values.push(best);
                indices.push(base + at as i64);
            }
            let mut reduced: Vec<usize> = a.shape().to_vec();
            reduced.remove(axis);
            let values = ArrayD::from_shape_vec(IxDyn(&reduced), values)
                .map_err(|e| fail(e.to_string()))?
                .insert_axis(Axis(axis));
            let indices = ArrayD::from_shape_vec(IxDyn(&reduced), indices)
                .map_err(|e| fail(e.to_string()))?
                .insert_axis(Axis(axis));
            (Element::wrap(values), Chunk::I64(indices))
        }
    });
    Ok(Partial {
        count,
        value,
        m2: None,
        index: Some(index),
    })
}

fn zip_values(a: &Chunk, b: &Chunk, f: impl Fn(f64, f64) -> f64) -> Result<Chunk, TaskFailure> {
    match (a, b) {
        (Chunk::F64(x), Chunk::F64(y)) if x.shape() == y.shape() => Ok(Chunk::F64(
            Zip::from(x).and(y).map_collect(|&p, &q| f(p, q)),
        )),
        _ => Err(fail("reduce: partials do not line up")),
    }
}

fn combine(reduction: Reduction, a: &Partial, b: &Partial) -> Result<Partial, TaskFailure> {
    if a.value.shape() != b.value.shape() || a.value.dtype() != b.value.dtype() {
        return Err(fail("reduce: partials do not line up"));
    }
    // A partial of no elements (an empty block) adds nothing.
    if a.count == 0.0 {
        return Ok(b.clone());
    }
    if b.count == 0.0 {
        return Ok(a.clone());
    }
    let count = a.count + b.count;
    macro_rules! zip {
        ($f:expr) => {
            match (&a.value, &b.value) {
                (Chunk::F64(x), Chunk::F64(y)) => {
                    Chunk::F64(Zip::from(x).and(y).map_collect(|&p, &q| $f(p, q)))
                }
                (Chunk::F32(x), Chunk::F32(y)) => {
                    Chunk::F32(Zip::from(x).and(y).map_collect(|&p, &q| $f(p, q)))
                }
                (Chunk::I64(x), Chunk::I64(y)) => {
                    Chunk::I64(Zip::from(x).and(y).map_collect(|&p, &q| $f(p, q)))
                }
                (Chunk::I32(x), Chunk::I32(y)) => {
                    Chunk::I32(Zip::from(x).and(y).map_collect(|&p, &q| $f(p, q)))
                }
                (Chunk::U8(x), Chunk::U8(y)) => {
                    Chunk::U8(Zip::from(x).and(y).map_collect(|&p, &q| $f(p, q)))
                }
                (Chunk::Bool(x), Chunk::Bool(y)) => {
                    Chunk::Bool(Zip::from(x).and(y).map_collect(|&p, &q| $f(p, q)))
                }
                _ => return Err(fail("reduce: partials do not line up")),
            }
        };
    }
    let simple = |value| Partial {
        count,
        value,
        m2: None,
        index: None,
    };
    Ok(match reduction {
        Reduction::Sum | Reduction::Mean => simple(match (&a.value, &b.value) {
            (Chunk::F64(x), Chunk::F64(y)) => Chunk::F64(x + y),
            (Chunk::F32(x), Chunk::F32(y)) => Chunk::F32(x + y),
            (Chunk::I64(x), Chunk::I64(y)) => {
                Chunk::I64(Zip::from(x).and(y).map_collect(|p, q| p.wrapping_add(*q)))
            }
            _ => return Err(fail("reduce: partials do not line up")),
        }),
        Reduction::Prod => simple(match (&a.value, &b.value) {
            (Chunk::F64(x), Chunk::F64(y)) => Chunk::F64(x * y),
            (Chunk::F32(x), Chunk::F32(y)) => Chunk::F32(x * y),
            (Chunk::I64(x), Chunk::I64(y)) => {
                Chunk::I64(Zip::from(x).and(y).map_collect(|p, q| p.wrapping_mul(*q)))
            }
            _ => return Err(fail("reduce: partials do not line up")),
        }),
        Reduction::Min => simple(zip!(|p, q| extreme(true)(p, q))),
        Reduction::Max => simple(zip!(|p, q| extreme(false)(p, q))),
        Reduction::Any | Reduction::All => simple(match (&a.value, &b.value) {
            (Chunk::Bool(x), Chunk::Bool(y)) => {
                let any = reduction == Reduction::Any;
                Chunk::Bool(
                    Zip::from(x)
                        .and(y)
                        .map_collect(|&p, &q| if any { p || q } else { p && q }),
                )
            }
            _ => return Err(fail("reduce: partials do not line up")),
        }),
        Reduction::Var { .. } | Reduction::Std { .. } => {
            let (na, nb) = (a.count, b.count);
            let delta = zip_values(&b.value, &a.value, |mb, ma| mb - ma)?;
            let mean = zip_values(&a.value, &delta, |ma, d| ma + d * nb / count)?;
            let (Some(m2a), Some(m2b)) = (&a.m2, &b.m2) else {
                return Err(fail("reduce: a variance partial without m2"));
            };
            let sum = zip_values(m2a, m2b, |x, y| x + y)?;
            let m2 = zip_values(&sum, &delta, |s, d| s + d * d * na * nb / count)?;
            Partial {
                count,
                value: mean,
                m2: Some(m2),
                index: None,
            }
        }
        Reduction::ArgMin | Reduction::ArgMax => {
            let min = reduction == Reduction::ArgMin;
            let (Some(Chunk::I64(ia)), Some(Chunk::I64(ib))) = (&a.index, &b.index) else {
                return Err(fail("reduce: an arg partial without indices"));
            };
            let mut index = ia.clone();
            let value = with_chunk!(&a.value, x => {
                let y = Element::view(&b.value).ok_or_else(|| fail("reduce: partials do not line up"))?;
                let mut value = x.clone();
                Zip::from(&mut value)
                    .and(&mut index)
                    .and(y)
                    .and(ib)
                    .for_each(|v, i, &w, &j| {
                        if better(min, w, *v) || (w == *v && j < *i) || (w.is_nan() && v.is_nan() && j < *i) {
                            *v = w;
                            *i = j;
                        }
                    });
                Element::wrap(value)
            });
            Partial {
                count,
                value,
                m2: None,
                index: Some(Chunk::I64(index)),
            }
        }
    })
}

fn finish(p: &Step, partial: &Partial) -> Result<Chunk, TaskFailure> {
    let extreme = matches!(
        p.reduction,
        Reduction::Min | Reduction::Max | Reduction::ArgMin | Reduction::ArgMax
    );
    if extreme && partial.count == 0.0 {
        return Err(fail(format!(
            "{} of an empty array (it has no identity)",
            p.reduction.name()
        )));
    }
    let value = match p.reduction {
        Reduction::Mean => {
            let n = partial.count;
            match &partial.value {
                Chunk::F64(sum) => Chunk::F64(sum.mapv(|s| s / n)),
                _ => return Err(fail("mean: a partial that is not float64")),
            }
        }
        Reduction::Var { ddof } | Reduction::Std { ddof } => {
            let Some(Chunk::F64(m2)) = &partial.m2 else {
                return Err(fail("var: a partial without m2"));
            };
            let n = partial.count - f64::from(ddof);
            let std = matches!(p.reduction, Reduction::Std { .. });
            Chunk::F64(m2.mapv(|m| {
                let var = if n > 0.0 { m / n } else { f64::NAN };
                if std {
                    var.sqrt()
                } else {
                    var
                }
            }))
        }
        Reduction::ArgMin | Reduction::ArgMax => partial
            .index
            .clone()
            .ok_or_else(|| fail("argmin: a partial without indices"))?,
        _ => partial.value.clone(),
    };
    let out = value.astype(p.out);
    if p.keepdims {
        return Ok(out);
    }
    let mut axes = p.axes.clone();
    axes.sort_unstable();
    Ok(with_chunk!(out, a => {
        let mut a = a;
        for &axis in axes.iter().rev() {
            a = a.index_axis_move(Axis(axis), 0);
        }
        Element::wrap(a)
    }))
}

impl Array {
    /// Reduces over `axes` (all of them for `None`) as a tree.
    pub fn reduce(
        &self,
        reduction: Reduction,
        axes: Option<&[isize]>,
        options: ReduceOptions,
    ) -> Result<Array, ArrayError> {
        let mut axes: Vec<usize> = match axes {
            None => (0..self.ndim()).collect(),
            Some(list) => list
                .iter()
                .map(|&a| self.axis(a))
                .collect::<Result<_, _>>()?,
        };
        axes.sort_unstable();
        axes.dedup();
        if reduction.is_arg() && axes.len() != 1 && axes.len() != self.ndim() {
            return Err(ArrayError::Shape(format!(
                "{} over several axes {axes:?}",
                reduction.name()
            )));
        }
        if matches!(
            reduction,
            Reduction::Min | Reduction::Max | Reduction::ArgMin | Reduction::ArgMax
        ) && axes.iter().any(|&a| self.shape[a] == 0)
        {
            return Err(ArrayError::Shape(format!(
                "{} of an empty axis",
                reduction.name()
            )));
        }
        let out = reduction.out(self.dtype);
        let step = |offset: Vec<usize>| Step {
            reduction,
            axes: axes.clone(),
            offset,
            shape: self.shape.clone(),
            keepdims: options.keepdims,
            out,
        };
        // Level 0: one partial per block.
        let mut numblocks = self.numblocks();
        let prefix = reduction.name();
        let token = crate::graph::fresh_token();
        let shared = kernel::params(step(Vec::new()));
        let mut level: Vec<Arc<Node>> = grid::block_indices(&numblocks)
            .iter()
            .map(|index| {
                let key = Key::new(format!("{prefix}-partial-{token}")).indexed(index);
                if matches!(reduction, Reduction::Sum | Reduction::Mean) {
                    if let Some((terms, nodes)) = linear_terms(self, index) {
                        let linear = kernel::params(Linear {
                            step: step(Vec::new()),
                            terms,
                        });
                        return ReduceLinear::node(key, &linear, nodes);
                    }
                }
                let params = if reduction.is_arg() {
                    kernel::params(step(grid::block_offset(&self.chunks, index)))
                } else {
                    shared.clone()
                };
                ReduceBlock::node(key, &params, vec![self.block(index).clone()])
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
        let shape: Vec<usize> = self
            .shape
            .iter()
            .enumerate()
            .filter_map(|(a, &d)| match (axes.contains(&a), options.keepdims) {
                (false, _) => Some(d),
                (true, true) => Some(1),
                (true, false) => None,
            })
            .collect();
        let chunks: Vec<Vec<usize>> = self
            .chunks
            .iter()
            .enumerate()
            .filter_map(|(a, c)| match (axes.contains(&a), options.keepdims) {
                (false, _) => Some(c.clone()),
                (true, true) => Some(vec![1]),
                (true, false) => None,
            })
            .collect();
        let ndim = self.ndim();
        Ok(Array::build(prefix, shape, chunks, out, |name, index| {
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
        }))
    }

    fn reduce_all(&self, reduction: Reduction) -> Result<Array, ArrayError> {
        self.reduce(reduction, None, ReduceOptions::default())
    }

    fn reduce_axis(&self, reduction: Reduction, axis: isize) -> Result<Array, ArrayError> {
        self.reduce(reduction, Some(&[axis]), ReduceOptions::default())
    }

    /// Sum of all elements.
    pub fn sum(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::Sum)
    }
    /// Sum along one axis.
    pub fn sum_axis(&self, axis: isize) -> Result<Array, ArrayError> {
        self.reduce_axis(Reduction::Sum, axis)
    }
    /// Product of all elements.
    pub fn prod(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::Prod)
    }
    /// Mean of all elements.
    pub fn mean(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::Mean)
    }
    /// Mean along one axis.
    pub fn mean_axis(&self, axis: isize) -> Result<Array, ArrayError> {
        self.reduce_axis(Reduction::Mean, axis)
    }
    /// Population variance of all elements.
    pub fn var(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::Var { ddof: 0 })
    }
    /// Population standard deviation of all elements.
    pub fn std(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::Std { ddof: 0 })
    }
    /// Smallest element.
    pub fn min(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::Min)
    }
    /// Largest element.
    pub fn max(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::Max)
    }
    /// Whether any element is nonzero.
    pub fn any(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::Any)
    }
    /// Whether every element is nonzero.
    pub fn all(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::All)
    }
    /// Flat index of the smallest element.
    pub fn argmin(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::ArgMin)
    }
    /// Flat index of the largest element.
    pub fn argmax(&self) -> Result<Array, ArrayError> {
        self.reduce_all(Reduction::ArgMax)
    }
}
