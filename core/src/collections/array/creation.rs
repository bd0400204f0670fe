//! Making arrays: constants, ranges, existing `ndarray` arrays, a function of the
//! block index, and seeded random numbers.

use super::chunk::{with_dtype, Chunk};
use super::dtype::{DType, Element, Number};
use super::grid::{self, ChunkSpec};
use super::kernel::{self, chunk_at, kernel, output};
use super::scalar::Scalar;
use super::Array;
use crate::client::lazy::ArgSource;
use crate::graph::Key;
use crate::ops::Op;
use crate::value::Value;
use ndarray::{ArrayD, IxDyn};
use rand::SeedableRng;
use rand_distr::Distribution;
use serde::{Deserialize, Serialize};

/// Where a block sits, for [`from_fn`]: its index in the block grid, its shape,
/// where it starts, and the whole array's shape (Dask's `block_info`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// The block's index in the grid.
    pub index: Vec<usize>,
    /// The block's shape.
    pub shape: Vec<usize>,
    /// The block's first element's position in the array.
    pub offset: Vec<usize>,
    /// The whole array's shape.
    pub array_shape: Vec<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Fill {
    Constant(Scalar),
    /// `start + i * step` for the flat position `i` along a 1-D array.
    Range {
        start: f64,
        step: f64,
    },
    /// The last element of a linspace is exactly `stop`.
    Linspace {
        start: f64,
        step: f64,
        num: usize,
        stop: f64,
    },
    Uniform {
        seed: u64,
        low: f64,
        high: f64,
    },
    Normal {
        seed: u64,
        mean: f64,
        std: f64,
    },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Generate {
    fill: Fill,
    dtype: DType,
    shape: Vec<usize>,
    offset: Vec<usize>,
    /// The block's position in C order (seeds random blocks).
    block: u64,
}

kernel! {
    /// Makes a block from nothing: constants, ranges, random numbers.
    Generated(Generate) => |p, _| output(generate(p))
}

kernel! {
    /// A block carried in the task itself (from an in-memory array).
    Literal(()) => |_, inputs| chunk_at(inputs, 0).map(|c| Value::Object(c))
}

fn generate(p: &Generate) -> Chunk {
    let shape = IxDyn(&p.shape);
    let values: ArrayD<f64> = match p.fill {
        Fill::Constant(value) => {
            return with_dtype!(p.dtype, T => T::wrap(ArrayD::from_elem(shape, value.to::<T>())))
        }
        Fill::Range { start, step } => {
            let at = p.offset[0] as f64;
            ArrayD::from_shape_fn(shape, |i| start + (at + i[0] as f64) * step)
        }
        Fill::Linspace {
            start,
            step,
            num,
            stop,
        } => ArrayD::from_shape_fn(shape, |i| {
            let n = p.offset[0] + i[0];
            if n + 1 == num && num > 1 {
                stop
            } else {
                start + n as f64 * step
            }
        }),
        Fill::Uniform { seed, low, high } => {
            use rand::RngCore;
            let mut rng = block_rng(seed, p.block);
            let scale = high - low;
            let n: usize = p.shape.iter().product();
            // 52 random mantissa bits give a float in [1, 2); shift it to [0, 1).
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    let unit = f64::from_bits(0x3FF0_0000_0000_0000 | (rng.next_u64() >> 12)) - 1.0;
                    low + unit * scale
                })
                .collect();
            ArrayD::from_shape_vec(shape, values).expect("sized to the shape")
        }
        Fill::Normal { seed, mean, std } => {
            let mut rng = block_rng(seed, p.block);
            let values: Vec<f64> = (0..p.shape.iter().product::<usize>())
                .map(|_| {
                    let z: f64 = rand_distr::StandardNormal.sample(&mut rng);
                    mean + std * z
                })
                .collect();
            ArrayD::from_shape_vec(shape, values).expect("sized to the shape")
        }
    };
    Chunk::F64(values).into_dtype(p.dtype)
}

/// A generator for one block: the same seed and block give the same numbers,
/// and different blocks get unrelated streams.
fn block_rng(seed: u64, block: u64) -> rand_xoshiro::Xoshiro256PlusPlus {
    rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64(mix(mix(seed) ^ block))
}

/// SplitMix64's finalizer: a bijective 64-bit mix.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn generated(
    prefix: &str,
    shape: &[usize],
    chunks: ChunkSpec,
    dtype: DType,
    fill: Fill,
) -> Result<Array, super::ArrayError> {
    let chunks = grid::normalize(&chunks, shape, dtype.itemsize())?;
    let numblocks = grid::numblocks(&chunks);
    let grid_chunks = chunks.clone();
    Ok(Array::build(
        prefix,
        shape.to_vec(),
        chunks,
        dtype,
        |name, index| {
            let params = kernel::params(Generate {
                fill: fill.clone(),
                dtype,
                shape: grid::block_shape(&grid_chunks, index),
                offset: grid::block_offset(&grid_chunks, index),
                block: grid::flat_index(index, &numblocks) as u64,
            });
            Generated::node(Key::new(name).indexed(index), &params, Vec::new())
        },
    ))
}

/// An array of `value` (Dask's `full`): an integer or a float, taken as
/// `dtype` (an integer that does not fit `dtype` is an error, as in NumPy 2).
pub fn full(
    shape: &[usize],
    chunks: impl Into<ChunkSpec>,
    dtype: DType,
    value: impl Into<Scalar>,
) -> Result<Array, super::ArrayError> {
    let value = value.into();
    value.check_fits(dtype, "full")?;
    generated("full", shape, chunks.into(), dtype, Fill::Constant(value))
}

/// An array of zeros.
pub fn zeros(
    shape: &[usize],
    chunks: impl Into<ChunkSpec>,
    dtype: DType,
) -> Result<Array, super::ArrayError> {
    generated(
        "zeros",
        shape,
        chunks.into(),
        dtype,
        Fill::Constant(Scalar::Int(0)),
    )
}

/// An array of ones.
pub fn ones(
    shape: &[usize],
    chunks: impl Into<ChunkSpec>,
    dtype: DType,
) -> Result<Array, super::ArrayError> {
    generated(
        "ones",
        shape,
        chunks.into(),
        dtype,
        Fill::Constant(Scalar::Int(1)),
    )
}

/// `start, start + step, ...` up to but not including `stop` (NumPy's `arange`);
/// the dtype is `T`'s.
pub fn arange<T: Number>(
    start: T,
    stop: T,
    step: T,
    chunks: usize,
) -> Result<Array, super::ArrayError> {
    let (start, stop, step) = (start.to_f64(), stop.to_f64(), step.to_f64());
    let len = if step == 0.0 {
        0
    } else {
        ((stop - start) / step).ceil().max(0.0) as usize
    };
    generated(
        "arange",
        &[len],
        ChunkSpec::Uniform(chunks),
        T::DTYPE,
        Fill::Range { start, step },
    )
}

/// `num` evenly spaced `float64` values from `start` to `stop` inclusive
/// (NumPy's `linspace`).
pub fn linspace(
    start: f64,
    stop: f64,
    num: usize,
    chunks: usize,
) -> Result<Array, super::ArrayError> {
    let step = if num > 1 {
        (stop - start) / (num - 1) as f64
    } else {
        0.0
    };
    generated(
        "linspace",
        &[num],
        ChunkSpec::Uniform(chunks),
        DType::F64,
        Fill::Linspace {
            start,
            step,
            num,
            stop,
        },
    )
}

/// Uniform `float64` numbers in `[low, high)`; the same seed and chunks give the
/// same array.
pub fn random_uniform(
    seed: u64,
    low: f64,
    high: f64,
    shape: &[usize],
    chunks: impl Into<ChunkSpec>,
) -> Result<Array, super::ArrayError> {
    generated(
        "uniform",
        shape,
        chunks.into(),
        DType::F64,
        Fill::Uniform { seed, low, high },
    )
}

/// Normally distributed `float64` numbers; the same seed and chunks give the
/// same array.
pub fn random_normal(
    seed: u64,
    mean: f64,
    std: f64,
    shape: &[usize],
    chunks: impl Into<ChunkSpec>,
) -> Result<Array, super::ArrayError> {
    generated(
        "normal",
        shape,
        chunks.into(),
        DType::F64,
        Fill::Normal { seed, mean, std },
    )
}

/// An array cut from an in-memory `ndarray` array (Dask's `from_array`); the
/// blocks travel inside their tasks.
pub fn from_array<T: Element>(
    array: &ArrayD<T>,
    chunks: impl Into<ChunkSpec>,
) -> Result<Array, super::ArrayError> {
    let shape = array.shape().to_vec();
    let chunks = grid::normalize(&chunks.into(), &shape, T::DTYPE.itemsize())?;
    let grid_chunks = chunks.clone();
    let unit = kernel::params(());
    Ok(Array::build(
        "array",
        shape,
        chunks,
        T::DTYPE,
        |name, index| {
            let offset = grid::block_offset(&grid_chunks, index);
            let block_shape = grid::block_shape(&grid_chunks, index);
            let region: Vec<ndarray::SliceInfoElem> = offset
                .iter()
                .zip(&block_shape)
                .map(|(&o, &l)| ndarray::SliceInfoElem::from(o..o + l))
                .collect();
            let block = array.slice(region.as_slice()).to_owned();
            kernel::with_args(
                Key::new(name).indexed(index),
                Literal::NAME,
                vec![
                    ArgSource::Literal(unit.value().clone()),
                    ArgSource::Literal(Value::new(T::wrap(block))),
                ],
            )
        },
    ))
}

/// An array whose blocks `op` makes from their [`BlockInfo`]; `dtype` is the
/// type the op returns. A registered op works on every cluster.
pub fn from_fn<O>(
    op: O,
    shape: &[usize],
    chunks: impl Into<ChunkSpec>,
    dtype: DType,
) -> Result<Array, super::ArrayError>
where
    O: Op<Args = (BlockInfo,), Output = Chunk>,
{
    let chunks = grid::normalize(&chunks.into(), shape, dtype.itemsize())?;
    let grid_chunks = chunks.clone();
    let op_ref = op.op_ref();
    Ok(Array::build(
        crate::ops::short_name(op.name()),
        shape.to_vec(),
        chunks,
        dtype,
        |name, index| {
            let info = BlockInfo {
                index: index.to_vec(),
                shape: grid::block_shape(&grid_chunks, index),
                offset: grid::block_offset(&grid_chunks, index),
                array_shape: shape.to_vec(),
            };
            std::sync::Arc::new(crate::client::lazy::Node {
                key: Key::new(name).indexed(index),
                kind: crate::client::lazy::NodeKind::Task {
                    op: op_ref.clone(),
                    args: vec![ArgSource::Literal(Value::new(info))],
                    annotations: Default::default(),
                },
            })
        },
    ))
}
