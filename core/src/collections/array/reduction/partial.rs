//! A reduction's partial results: one per block, combined a few at a time,
//! finished into the result; the kernels that run them and their arithmetic.

use super::super::chunk::{with_chunk, Chunk};
use super::super::dtype::{DType, Element};
use super::super::kernel::{self, fail, kernel, output};
use super::Reduction;
use crate::ops::TaskFailure;
use crate::value::Value;
use ndarray::{ArrayD, Axis, IxDyn, Zip};
use serde::{Deserialize, Serialize};

/// A reduction's intermediate result for one block or group of blocks. Reduced
/// axes have length 1.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Partial {
    /// How many elements each cell stands for.
    pub(super) count: f64,
    /// The running value: sum, product, extreme, flag, mean, or best value.
    #[serde(with = "super::super::chunk::wire")]
    pub(super) value: Chunk,
    /// Variance: the sum of squared deviations from `value` (the mean).
    #[serde(with = "super::super::chunk::wire_option")]
    pub(super) m2: Option<Chunk>,
    /// Arg reductions: where `value` was found (flat, or along the axis).
    #[serde(with = "super::super::chunk::wire_option")]
    pub(super) index: Option<Chunk>,
}

/// What each reduction task is told: the reduction, its axes and result type.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Step {
    pub(super) reduction: Reduction,
    /// The axes reduced (of the input array).
    pub(super) axes: Vec<usize>,
    /// Arg reductions: the block's offset and the array's shape.
    pub(super) offset: Vec<usize>,
    pub(super) shape: Vec<usize>,
    pub(super) keepdims: bool,
    /// The result's type.
    pub(super) out: DType,
}

kernel! {
    /// Reduces one block to a partial.
    pub(super) ReduceBlock(Step) => |p, inputs| {
        let chunk = kernel::chunk_at(inputs, 0)?;
        Ok(Value::new(block_partial(p, &chunk)?))
    }
}

kernel! {
    /// Combines partials of neighbouring blocks.
    pub(super) ReduceCombine(Step) => |p, inputs| {
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
    pub(super) ReduceFinish(Step) => |p, inputs| {
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
                let total: $t =
                    match a.as_slice_memory_order() {
                        Some(s) => s.iter().copied().fold(
                            <$t as super::super::dtype::Number>::ZERO,
                            |x, y| {
                                super::super::dtype::Number::arith(
                                    super::super::elementwise::BinaryOp::Add,
                                    x,
                                    y,
                                )
                            },
                        ),
                        None => a.iter().copied().fold(
                            <$t as super::super::dtype::Number>::ZERO,
                            |x, y| {
                                super::super::dtype::Number::arith(
                                    super::super::elementwise::BinaryOp::Add,
                                    x,
                                    y,
                                )
                            },
                        ),
                    };
                <$t>::wrap(ArrayD::from_elem(IxDyn(&shape), total))
            } else {
                <$t>::wrap(sum_axes(&a.view(), axes))
            }
        }};
    }
    match work {
        DType::F64 => {
            // Contiguous float64 blocks: the machine's fastest read loop.
            if all {
                if let Some(values) = chunk.view::<f64>().and_then(|a| a.as_slice_memory_order()) {
                    let total = super::super::fast_sum::sum_f64(values);
                    return Chunk::F64(ArrayD::from_elem(IxDyn(&shape), total));
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

pub(super) fn block_partial(p: &Step, chunk: &Chunk) -> Result<Partial, TaskFailure> {
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
            // NumPy divides by max(n - ddof, 0): with no degrees of freedom
            // left a spread gives inf and no spread (or no data) NaN.
            let n = (partial.count - f64::from(ddof)).max(0.0);
            let std = matches!(p.reduction, Reduction::Std { .. });
            Chunk::F64(m2.mapv(|m| {
                let var = m / n;
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
