//! Randomized array cases shared by the local-cluster property tests and the
//! multi-process test: every operation is checked against the same computation
//! done directly with `ndarray`, on random shapes and chunkings.

#![allow(dead_code)]

use ndarray::{ArrayD, Axis, IxDyn, SliceInfoElem};
use rask::array::{self, Array, BinaryOp, CompareOp, DType, ReduceOptions, Reduction, UnaryOp};
use rask::Client;

/// A small deterministic generator (SplitMix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }

    pub fn float(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    pub fn shape(&mut self, ndim: usize) -> Vec<usize> {
        (0..ndim).map(|_| self.range(1, 9)).collect()
    }

    pub fn chunks(&mut self, shape: &[usize]) -> Vec<Vec<usize>> {
        shape
            .iter()
            .map(|&d| {
                let mut left = d;
                let mut out = Vec::new();
                while left > 0 {
                    let c = self.range(1, left.min(4));
                    out.push(c);
                    left -= c;
                }
                out
            })
            .collect()
    }

    pub fn data(&mut self, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_fn(IxDyn(shape), |_| (self.float() * 100.0).round() / 10.0)
    }

    /// An ndarray and the same data as a randomly chunked rask array.
    pub fn array(&mut self, shape: &[usize]) -> (ArrayD<f64>, Array) {
        let data = self.data(shape);
        let chunks = self.chunks(shape);
        let array = array::from_array(&data, chunks).expect("valid chunks");
        (data, array)
    }
}

fn close(got: &ArrayD<f64>, want: &ArrayD<f64>, what: &str) -> Result<(), String> {
    if got.shape() != want.shape() {
        return Err(format!(
            "{what}: shape {:?}, expected {:?}",
            got.shape(),
            want.shape()
        ));
    }
    for (g, w) in got.iter().zip(want.iter()) {
        let same = (g.is_nan() && w.is_nan()) || (g - w).abs() <= 1e-9 * (1.0 + w.abs());
        if !same {
            return Err(format!("{what}: got\n{got}\nexpected\n{want}"));
        }
    }
    Ok(())
}

fn compute(client: &Client, a: &Array) -> Result<ArrayD<f64>, String> {
    let chunk = a.compute_chunk(client).map_err(|e| e.to_string())?;
    Ok(chunk.cast::<f64>())
}

fn check(client: &Client, a: &Array, want: &ArrayD<f64>, what: &str) -> Result<(), String> {
    let got = compute(client, a).map_err(|e| format!("{what}: {e}"))?;
    close(&got, want, &format!("{what} ({a})"))
}

fn elementwise(client: &Client, rng: &mut Rng) -> Result<(), String> {
    let ndim = rng.range(1, 3);
    let shape = rng.shape(ndim);
    let (x, xa) = rng.array(&shape);
    let (y, ya) = rng.array(&shape);
    check(client, &(&xa + &ya), &(&x + &y), "x + y")?;
    check(client, &(&xa * &ya), &(&x * &y), "x * y")?;
    check(client, &(&xa - &ya), &(&x - &y), "x - y")?;
    check(client, &(&xa * 2.5), &(&x * 2.5), "x * 2.5")?;
    check(client, &(1.0 - &xa), &x.mapv(|v| 1.0 - v), "1 - x")?;
    let sq = xa.abs().and_then(|a| a.sqrt()).map_err(|e| e.to_string())?;
    check(client, &sq, &x.mapv(|v| v.abs().sqrt()), "sqrt(abs(x))")?;
    let ex = xa.map(UnaryOp::Exp).map_err(|e| e.to_string())?;
    check(client, &ex, &x.mapv(f64::exp), "exp(x)")?;
    let mx = xa.binary(BinaryOp::Max, &ya).map_err(|e| e.to_string())?;
    check(
        client,
        &mx,
        &ndarray::Zip::from(&x)
            .and(&y)
            .map_collect(|&a, &b| a.max(b)),
        "maximum",
    )?;
    // Broadcasting against the last axis.
    let last = *shape.last().unwrap();
    let (row, rowa) = rng.array(&[last]);
    check(client, &(&xa + &rowa), &(&x + &row), "x + row (broadcast)")?;
    // Broadcasting a length-1 axis.
    let mut one = shape.clone();
    one[0] = 1;
    let (col, cola) = rng.array(&one);
    check(client, &(&xa * &cola), &(&x * &col), "x * col (broadcast)")?;
    // Comparisons, where, astype.
    let gt = xa
        .compare_scalar(CompareOp::Gt, 0.3)
        .map_err(|e| e.to_string())?;
    check(
        client,
        &gt,
        &x.mapv(|v| f64::from(u8::from(v > 0.3))),
        "x > 0.3",
    )?;
    let lt = xa.compare(CompareOp::Lt, &ya).map_err(|e| e.to_string())?;
    let picked = array::where_(&lt, &xa, &ya).map_err(|e| e.to_string())?;
    check(
        client,
        &picked,
        &ndarray::Zip::from(&x)
            .and(&y)
            .map_collect(|&a, &b| if a < b { a } else { b }),
        "where(x < y, x, y)",
    )?;
    let ints = (&xa * 10.0).astype(DType::I32);
    check(
        client,
        &ints,
        &x.mapv(|v| (v * 10.0) as i32 as f64),
        "astype(int32)",
    )?;
    let back = ints.astype(DType::F32).astype(DType::F64);
    check(
        client,
        &back,
        &x.mapv(|v| (v * 10.0) as i32 as f64),
        "astype round trip",
    )?;
    let div = ints
        .binary_scalar(BinaryOp::Div, 4i64)
        .map_err(|e| e.to_string())?;
    if div.dtype() != DType::F64 {
        return Err(format!("int32 / int is {}, expected float64", div.dtype()));
    }
    check(
        client,
        &div,
        &x.mapv(|v| (v * 10.0) as i32 as f64 / 4.0),
        "int / 4",
    )?;
    Ok(())
}

fn reduce_direct(x: &ArrayD<f64>, r: Reduction, axes: &[usize], keepdims: bool) -> ArrayD<f64> {
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    let n: f64 = sorted.iter().map(|&a| x.shape()[a] as f64).product();
    let fold = |init: f64, f: &dyn Fn(f64, f64) -> f64| {
        let mut out = x.clone();
        for &a in sorted.iter().rev() {
            out = out.fold_axis(Axis(a), init, |&acc, &v| f(acc, v));
        }
        out
    };
    let mut out = match r {
        Reduction::Sum => fold(0.0, &|a, b| a + b),
        Reduction::Prod => fold(1.0, &|a, b| a * b),
        Reduction::Min => fold(f64::INFINITY, &|a, b| a.min(b)),
        Reduction::Max => fold(f64::NEG_INFINITY, &|a, b| a.max(b)),
        Reduction::Mean => fold(0.0, &|a, b| a + b).mapv(|s| s / n),
        Reduction::Var { .. } | Reduction::Std { .. } => {
            let mut mean = x.clone();
            for &a in sorted.iter().rev() {
                mean = mean.sum_axis(Axis(a));
            }
            let mean = mean.mapv(|s| s / n);
            let mut expanded = mean.clone();
            for &a in &sorted {
                expanded = expanded.insert_axis(Axis(a));
            }
            let mut dev = (x - &expanded).mapv(|d| d * d);
            for &a in sorted.iter().rev() {
                dev = dev.sum_axis(Axis(a));
            }
            let var = dev.mapv(|s| s / n);
            if matches!(r, Reduction::Std { .. }) {
                var.mapv(f64::sqrt)
            } else {
                var
            }
        }
        Reduction::Any => fold(0.0, &|a, b| f64::from(u8::from(a != 0.0 || b != 0.0))),
        Reduction::All => fold(1.0, &|a, b| f64::from(u8::from(a != 0.0 && b != 0.0))),
        Reduction::ArgMin | Reduction::ArgMax => {
            let min = r == Reduction::ArgMin;
            let better = |v: f64, best: f64| if min { v < best } else { v > best };
            if sorted.len() == x.ndim() {
                let mut best = (f64::NAN, 0usize);
                for (i, &v) in x.iter().enumerate() {
                    if i == 0 || better(v, best.0) {
                        best = (v, i);
                    }
                }
                ArrayD::from_elem(IxDyn(&[]), best.1 as f64)
            } else {
                let a = sorted[0];
                let lanes: Vec<f64> = x
                    .lanes(Axis(a))
                    .into_iter()
                    .map(|lane| {
                        let mut best = (lane[0], 0usize);
                        for (i, &v) in lane.iter().enumerate() {
                            if better(v, best.0) {
                                best = (v, i);
                            }
                        }
                        best.1 as f64
                    })
                    .collect();
                let mut shape = x.shape().to_vec();
                shape.remove(a);
                ArrayD::from_shape_vec(IxDyn(&shape), lanes).unwrap()
            }
        }
    };
    if keepdims {
        for &a in &sorted {
            out = out.insert_axis(Axis(a));
        }
    }
    out
}

fn reductions(client: &Client, rng: &mut Rng) -> Result<(), String> {
    let ndim = rng.range(1, 3);
    let shape = rng.shape(ndim);
    let (x, xa) = rng.array(&shape);
    let all = [
        Reduction::Sum,
        Reduction::Prod,
        Reduction::Min,
        Reduction::Max,
        Reduction::Mean,
        Reduction::Var { ddof: 0 },
        Reduction::Std { ddof: 0 },
        Reduction::Any,
        Reduction::All,
        Reduction::ArgMin,
        Reduction::ArgMax,
    ];
    for r in all {
        let axes: Vec<usize> = if matches!(r, Reduction::ArgMin | Reduction::ArgMax) {
            if rng.range(0, 1) == 0 {
                (0..ndim).collect()
            } else {
                vec![rng.range(0, ndim - 1)]
            }
        } else {
            (0..ndim).filter(|_| rng.range(0, 1) == 1).collect()
        };
        let axes = if axes.is_empty() { vec![0] } else { axes };
        let keepdims = rng.range(0, 1) == 1 && !matches!(r, Reduction::ArgMin | Reduction::ArgMax);
        let options = ReduceOptions {
            keepdims,
            split_every: rng.range(2, 5),
        };
        // Products of many values overflow to noise: use values near 1.
        let (input, input_array) = if r == Reduction::Prod {
            (x.mapv(|v| 1.0 + v / 100.0), &(&xa / 100.0) + 1.0)
        } else if matches!(r, Reduction::Any | Reduction::All) {
            (
                x.mapv(|v| f64::from(u8::from(v > 0.5))),
                xa.compare_scalar(CompareOp::Gt, 0.5).unwrap(),
            )
        } else {
            (x.clone(), xa.clone())
        };
        let signed: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
        let got = input_array
            .reduce(r, Some(&signed), options)
            .map_err(|e| e.to_string())?;
        let want = reduce_direct(&input, r, &axes, keepdims);
        check(
            client,
            &got,
            &want,
            &format!(
                "{r:?} over {axes:?} (keepdims {keepdims}, split_every {})",
                options.split_every
            ),
        )?;
    }
    // Cumulative sums along a random axis.
    let axis = rng.range(0, ndim - 1);
    let mut want = x.clone();
    want.accumulate_axis_inplace(Axis(axis), |&prev, cur| *cur += prev);
    check(
        client,
        &xa.cumsum(axis as isize).map_err(|e| e.to_string())?,
        &want,
        &format!("cumsum over {axis}"),
    )?;
    // Integer sums accumulate in int64.
    let ints = (&xa * 10.0).astype(DType::I32);
    let total = ints.sum().map_err(|e| e.to_string())?;
    if total.dtype() != DType::I64 {
        return Err(format!("sum of int32 is {}", total.dtype()));
    }
    let want: i64 = x.iter().map(|&v| (v * 10.0) as i32 as i64).sum();
    let got = total
        .compute_scalar::<i64>(client)
        .map_err(|e| e.to_string())?;
    if got != want {
        return Err(format!("int sum {got}, expected {want}"));
    }
    Ok(())
}

fn random_slice(rng: &mut Rng, dim: usize) -> SliceInfoElem {
    match rng.range(0, 5) {
        0 => SliceInfoElem::Index(
            rng.range(0, dim - 1) as isize
                - if rng.range(0, 1) == 1 {
                    dim as isize
                } else {
                    0
                },
        ),
        1 => SliceInfoElem::from(..),
        _ => {
            let a = rng.range(0, dim);
            let b = rng.range(a, dim);
            let step = [1isize, 2, 3, -1, -2][rng.range(0, 4)];
            SliceInfoElem::Slice {
                start: a as isize,
                end: Some(b as isize),
                step,
            }
        }
    }
}

fn slicing(client: &Client, rng: &mut Rng) -> Result<(), String> {
    let ndim = rng.range(1, 3);
    let shape = rng.shape(ndim);
    let (x, xa) = rng.array(&shape);
    let mut info: Vec<SliceInfoElem> = shape.iter().map(|&d| random_slice(rng, d)).collect();
    if rng.range(0, 2) == 0 {
        info.insert(rng.range(0, info.len()), SliceInfoElem::NewAxis);
    }
    let want = x.slice(info.as_slice()).to_owned();
    let got = xa
        .slice(&info)
        .map_err(|e| format!("slice {info:?}: {e}"))?;
    check(client, &got, &want, &format!("x[{info:?}]"))?;
    // Integer indices and a mask along one axis.
    let axis = rng.range(0, ndim - 1);
    let indices: Vec<isize> = (0..rng.range(0, 6))
        .map(|_| rng.range(0, shape[axis] - 1) as isize)
        .collect();
    let picked: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
    check(
        client,
        &xa.take(&indices, axis as isize)
            .map_err(|e| e.to_string())?,
        &x.select(Axis(axis), &picked),
        "take",
    )?;
    let mask: Vec<bool> = (0..shape[axis]).map(|_| rng.range(0, 1) == 1).collect();
    let kept: Vec<usize> = mask
        .iter()
        .enumerate()
        .filter(|(_, &m)| m)
        .map(|(i, _)| i)
        .collect();
    check(
        client,
        &xa.compress(&mask, axis as isize)
            .map_err(|e| e.to_string())?,
        &x.select(Axis(axis), &kept),
        "compress",
    )?;
    Ok(())
}

/// `x[mask]` with lazy masks: one of `x`'s shape (picked elements in C order)
/// and one along the first axis (whole rows), each chunked its own way.
fn masks(client: &Client, rng: &mut Rng) -> Result<(), String> {
    let ndim = rng.range(1, 3);
    let shape = rng.shape(ndim);
    let (x, xa) = rng.array(&shape);
    let (y, ya) = rng.array(&shape);
    let threshold = rng.float() * 10.0;
    let mask = ya
        .compare_scalar(CompareOp::Gt, threshold)
        .map_err(|e| e.to_string())?;
    let picked: Vec<f64> = x
        .iter()
        .zip(y.iter())
        .filter(|(_, &m)| m > threshold)
        .map(|(&v, _)| v)
        .collect();
    let want = ArrayD::from_shape_vec(IxDyn(&[picked.len()]), picked.clone()).unwrap();
    let selection = xa.select(&mask).map_err(|e| format!("select: {e}"))?;
    let what = format!("x[y > {threshold}] ({selection})");
    let got = selection
        .compute::<f64>(client)
        .map_err(|e| format!("{what}: {e}"))?;
    close(&got, &want, &what)?;
    let known = selection
        .compute_chunk_sizes(client)
        .map_err(|e| format!("{what}: {e}"))?;
    if known.shape() != [picked.len()] || known.chunks()[0].iter().sum::<usize>() != picked.len() {
        return Err(format!("{what}: compute_chunk_sizes gave {known}"));
    }
    check(client, &known, &want, "compute_chunk_sizes")?;
    let sum = picked.iter().sum::<f64>();
    let doubled = selection
        .binary_scalar(BinaryOp::Mul, 2.0)
        .and_then(|s| s.sum())
        .map_err(|e| e.to_string())?;
    check(
        client,
        &doubled,
        &ArrayD::from_elem(IxDyn(&[]), 2.0 * sum),
        "2 * x[m] sum",
    )?;
    let mean = if picked.is_empty() {
        f64::NAN
    } else {
        sum / picked.len() as f64
    };
    let got_mean = selection.mean().map_err(|e| e.to_string())?;
    check(
        client,
        &got_mean,
        &ArrayD::from_elem(IxDyn(&[]), mean),
        "x[m].mean()",
    )?;
    let max = selection.max().map_err(|e| e.to_string())?;
    match picked.iter().copied().reduce(f64::max) {
        Some(want) => check(
            client,
            &max,
            &ArrayD::from_elem(IxDyn(&[]), want),
            "x[m].max()",
        )?,
        None => {
            let error = compute(client, &max).expect_err("max of nothing fails");
            if !error.contains("empty") {
                return Err(format!("max of an empty selection: {error}"));
            }
        }
    }
    // Whole rows.
    let rows: Vec<bool> = (0..shape[0]).map(|_| rng.range(0, 1) == 1).collect();
    let row_chunks = rng.chunks(&[shape[0]]);
    let row_mask = array::from_array(
        &ArrayD::from_shape_vec(IxDyn(&[shape[0]]), rows.clone()).unwrap(),
        row_chunks,
    )
    .map_err(|e| e.to_string())?;
    let kept: Vec<usize> = (0..shape[0]).filter(|&i| rows[i]).collect();
    let got = xa
        .select(&row_mask)
        .and_then(|s| s.compute::<f64>(client))
        .map_err(|e| format!("x[rows]: {e}"))?;
    close(&got, &x.select(Axis(0), &kept), "x[rows]")?;
    // A lazy mask along any axis (Dask's `x[:, mask]`, `compress` with a
    // lazy condition); negative axes count from the end.
    let axis = rng.range(0, shape.len() - 1);
    let picks: Vec<bool> = (0..shape[axis]).map(|_| rng.range(0, 1) == 1).collect();
    let lazy = array::from_array(
        &ArrayD::from_shape_vec(IxDyn(&[shape[axis]]), picks.clone()).unwrap(),
        rng.chunks(&[shape[axis]]),
    )
    .map_err(|e| e.to_string())?;
    let kept: Vec<usize> = (0..shape[axis]).filter(|&i| picks[i]).collect();
    let signed = axis as isize
        - if rng.range(0, 1) == 1 {
            shape.len() as isize
        } else {
            0
        };
    let selection = xa
        .compress(&lazy, signed)
        .map_err(|e| format!("compress(lazy, {signed}): {e}"))?;
    if selection.unknown_axis() != axis {
        return Err(format!(
            "compress(lazy, {signed}) has its unknown axis at {}",
            selection.unknown_axis()
        ));
    }
    let what = format!("compress(lazy, {signed}) of {shape:?} ({selection})");
    let known = selection
        .compute_chunk_sizes(client)
        .map_err(|e| format!("{what}: {e}"))?;
    if known.shape()[axis] != kept.len() {
        return Err(format!(
            "{what}: {} elements along the axis, want {}",
            known.shape()[axis],
            kept.len()
        ));
    }
    let got = known
        .compute::<f64>(client)
        .map_err(|e| format!("{what}: {e}"))?;
    close(&got, &x.select(Axis(axis), &kept), &what)
}

/// Sums and means of `a ± b` with matching chunks, some operands transposed
/// (reductions push through these into their terms' blocks).
fn linear_reductions(client: &Client, rng: &mut Rng) -> Result<(), String> {
    let ndim = rng.range(2, 3);
    let side = rng.range(1, 9);
    let shape = vec![side; ndim];
    let split = rng.chunks(&[side]).remove(0);
    let chunks = vec![split; ndim];
    let x = rng.data(&shape);
    let y = rng.data(&shape);
    let xa = array::from_array(&x, chunks.clone()).map_err(|e| e.to_string())?;
    let ya = array::from_array(&y, chunks).map_err(|e| e.to_string())?;
    let mut perm: Vec<usize> = (0..ndim).collect();
    perm.rotate_left(rng.range(0, ndim - 1));
    // Negative axes count from the end, as in NumPy.
    let signed_perm: Vec<isize> = perm
        .iter()
        .map(|&a| {
            a as isize
                - if rng.range(0, 1) == 1 {
                    ndim as isize
                } else {
                    0
                }
        })
        .collect();
    let xt = xa.transpose(&signed_perm).map_err(|e| e.to_string())?;
    let x_t = x.clone().permuted_axes(IxDyn(&perm)).to_owned();
    let cases = [
        (&xa + &xa.t(), &x + &x.t(), "x + x.T"),
        (&xt - &ya, &x_t - &y, "x.transpose(p) - y"),
        (&ya + &xt, &y + &x_t, "y + x.transpose(p)"),
    ];
    for (lazy, direct, what) in cases {
        for r in [Reduction::Sum, Reduction::Mean] {
            let axes: Vec<usize> = (0..ndim).filter(|_| rng.range(0, 1) == 1).collect();
            let keepdims = rng.range(0, 1) == 1;
            let signed: Vec<isize> = axes.iter().map(|&a| a as isize).collect();
            let got = lazy
                .reduce(
                    r,
                    Some(&signed),
                    ReduceOptions {
                        keepdims,
                        split_every: rng.range(2, 4),
                    },
                )
                .map_err(|e| format!("{what} {r:?} {axes:?}: {e}"))?;
            let want = reduce_direct(&direct, r, &axes, keepdims);
            check(
                client,
                &got,
                &want,
                &format!("({what}).{r:?}({axes:?}, perm {perm:?})"),
            )?;
        }
    }
    Ok(())
}

fn layout(client: &Client, rng: &mut Rng) -> Result<(), String> {
    let ndim = rng.range(1, 3);
    let shape = rng.shape(ndim);
    let (x, xa) = rng.array(&shape);
    check(client, &xa.t(), &x.t().to_owned(), "x.T")?;
    let chunks = rng.chunks(&shape);
    let re = xa.rechunk(chunks.clone()).map_err(|e| e.to_string())?;
    if re.chunks() != chunks.as_slice() {
        return Err(format!("rechunk gave {:?}, asked {chunks:?}", re.chunks()));
    }
    check(client, &re, &x, "rechunk")?;
    let axis = rng.range(0, ndim - 1);
    let mut other_shape = shape.clone();
    other_shape[axis] = rng.range(1, 5);
    let (y, ya) = rng.array(&other_shape);
    let from_end = rng.range(0, 1) == 1;
    let signed =
        |axis: usize, ndim: usize| axis as isize - if from_end { ndim as isize } else { 0 };
    let cat = array::concatenate(&[&xa, &ya], signed(axis, ndim)).map_err(|e| e.to_string())?;
    check(
        client,
        &cat,
        &ndarray::concatenate(Axis(axis), &[x.view(), y.view()]).unwrap(),
        "concatenate",
    )?;
    let (z, za) = rng.array(&shape);
    let stacked =
        array::stack(&[xa.clone(), za], signed(axis, ndim + 1)).map_err(|e| e.to_string())?;
    check(
        client,
        &stacked,
        &ndarray::stack(Axis(axis), &[x.view(), z.view()]).unwrap(),
        "stack",
    )?;
    // Reshape: flatten, then to two factors of the size.
    let size = x.len();
    let flat = xa.reshape(&[size]).map_err(|e| e.to_string())?;
    check(
        client,
        &flat,
        &x.to_shape(IxDyn(&[size])).unwrap().to_owned(),
        "reshape to 1-D",
    )?;
    let divisors: Vec<usize> = (1..=size).filter(|d| size % d == 0).collect();
    let a = divisors[rng.range(0, divisors.len() - 1)];
    let two = xa.reshape(&[a, size / a]).map_err(|e| e.to_string())?;
    check(
        client,
        &two,
        &x.to_shape(IxDyn(&[a, size / a])).unwrap().to_owned(),
        "reshape to 2-D",
    )?;
    // (x + x.T).mean(axis=0) on a square matrix, the first benchmark's shape.
    let n = rng.range(1, 9);
    let (m, ma) = rng.array(&[n, n]);
    let got = (&ma + &ma.t()).mean_axis(0).map_err(|e| e.to_string())?;
    check(
        client,
        &got,
        &(&m + &m.t()).mean_axis(Axis(0)).unwrap(),
        "(x + x.T).mean(axis=0)",
    )?;
    Ok(())
}

fn linalg(client: &Client, rng: &mut Rng) -> Result<(), String> {
    let (m, k, n) = (rng.range(1, 9), rng.range(1, 20), rng.range(1, 9));
    let (a, aa) = rng.array(&[m, k]);
    let (b, ba) = rng.array(&[k, n]);
    let a2 = a.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
    let b2 = b.clone().into_dimensionality::<ndarray::Ix2>().unwrap();
    let got = aa.matmul(&ba).map_err(|e| e.to_string())?;
    check(client, &got, &a2.dot(&b2).into_dyn(), "matmul")?;
    let (c, ca) = rng.array(&[m, k]);
    let full = array::tensordot(&aa, &ca, 2).map_err(|e| e.to_string())?;
    check(
        client,
        &full,
        &ArrayD::from_elem(IxDyn(&[]), (&a * &c).sum()),
        "tensordot axes=2",
    )?;
    Ok(())
}

fn creation(client: &Client, rng: &mut Rng) -> Result<(), String> {
    let n = rng.range(1, 30);
    let c = rng.range(1, 7);
    let r = array::arange(3i64, 3 + 2 * n as i64, 2, c).map_err(|e| e.to_string())?;
    check(
        client,
        &r,
        &ArrayD::from_shape_fn(IxDyn(&[n]), |i| 3.0 + 2.0 * i[0] as f64),
        "arange",
    )?;
    let l = array::linspace(-1.0, 2.0, n, c).map_err(|e| e.to_string())?;
    let want = ndarray::Array1::linspace(-1.0, 2.0, n).into_dyn();
    check(client, &l, &want, "linspace")?;
    let shape = rng.shape(2);
    let f = array::full(&shape, c, DType::I32, 7.0).map_err(|e| e.to_string())?;
    check(client, &f, &ArrayD::from_elem(IxDyn(&shape), 7.0), "full")?;
    // Same seed and chunks: same numbers; a sane distribution.
    let seed = rng.next();
    let u1 = array::random_uniform(seed, 2.0, 3.0, &[200], 30)
        .map_err(|e| e.to_string())?
        .compute::<f64>(client)
        .map_err(|e| e.to_string())?;
    let u2 = array::random_uniform(seed, 2.0, 3.0, &[200], 30)
        .map_err(|e| e.to_string())?
        .compute::<f64>(client)
        .map_err(|e| e.to_string())?;
    if u1 != u2 || u1.iter().any(|&v| !(2.0..3.0).contains(&v)) {
        return Err("random_uniform is not reproducible or out of range".into());
    }
    let normal = array::random_normal(seed, 5.0, 2.0, &[20000], 5000).map_err(|e| e.to_string())?;
    let mean = normal
        .mean()
        .unwrap()
        .compute_scalar::<f64>(client)
        .map_err(|e| e.to_string())?;
    let std = normal
        .std(0)
        .unwrap()
        .compute_scalar::<f64>(client)
        .map_err(|e| e.to_string())?;
    if (mean - 5.0).abs() > 0.1 || (std - 2.0).abs() > 0.1 {
        return Err(format!("normal(5, 2): mean {mean}, std {std}"));
    }
    Ok(())
}

/// Runs every check for one seed.
pub fn run_case(client: &Client, seed: u64) -> Result<(), String> {
    let mut rng = Rng(seed);
    elementwise(client, &mut rng)?;
    reductions(client, &mut rng)?;
    slicing(client, &mut rng)?;
    masks(client, &mut rng)?;
    linear_reductions(client, &mut rng)?;
    layout(client, &mut rng)?;
    linalg(client, &mut rng)?;
    creation(client, &mut rng)?;
    Ok(())
}
