//! `rask::array` against NumPy itself (NumPy 2, from the test venv): random
//! cases of scalar operands of every dtype (NEP 50: weak scalars, values that
//! do not fit), float and integer floor division and remainder, degenerate
//! reductions (empty axes, all-NaN blocks, `ddof` up to and past the count)
//! and Fortran-ordered .npy files, on random shapes and chunkings. NumPy
//! computes every case in one Python process; rask computes them on an
//! in-process cluster and on `rask worker` processes, and each result must
//! have NumPy's dtype and values, or fail where NumPy raises.

mod support;

use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rask::array::{
    self, Array, BinaryOp, Chunk, ChunkSpec, CompareOp, DType, ReduceOptions, Reduction, Scalar,
};
use rask::Client;
use serde_json::json;
use std::path::Path;
use support::{Cluster, TempDir};

type Rng64 = rand_xoshiro::Xoshiro256PlusPlus;

const DTYPES: [DType; 6] = [
    DType::Bool,
    DType::U8,
    DType::I32,
    DType::I64,
    DType::F32,
    DType::F64,
];

/// What one case computes from its inputs `a` (and `b`).
#[derive(Clone, Debug)]
enum Step {
    /// `a op s`, or `s op a` when `left`.
    Scalar {
        op: BinaryOp,
        scalar: Scalar,
        left: bool,
    },
    /// `a cmp s`.
    Compare { op: CompareOp, scalar: Scalar },
    /// `a op b`, same shape, different chunks.
    Binary { op: BinaryOp },
    /// `where(a > 0, a, s)`.
    Where { scalar: Scalar },
    /// `a.reduce(axis)`.
    Reduce {
        reduction: Reduction,
        axis: Option<isize>,
    },
}

impl Step {
    /// The same step as NumPy code over `a`, `b` and `s`.
    fn numpy(&self) -> String {
        let symbol = |op: BinaryOp| match op {
            BinaryOp::Add => Some("+"),
            BinaryOp::Sub => Some("-"),
            BinaryOp::Mul => Some("*"),
            BinaryOp::Div => Some("/"),
            BinaryOp::FloorDiv => Some("//"),
            BinaryOp::Rem => Some("%"),
            BinaryOp::Pow => Some("**"),
            BinaryOp::Min | BinaryOp::Max => None,
        };
        let call = |op: BinaryOp| match op {
            BinaryOp::Min => "np.minimum",
            _ => "np.maximum",
        };
        match self {
            Step::Scalar { op, left, .. } => {
                let (x, y) = if *left { ("s", "a") } else { ("a", "s") };
                match symbol(*op) {
                    Some(sym) => format!("{x} {sym} {y}"),
                    None => format!("{}({x}, {y})", call(*op)),
                }
            }
            Step::Compare { op, .. } => {
                let sym = match op {
                    CompareOp::Eq => "==",
                    CompareOp::Ne => "!=",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                };
                format!("a {sym} s")
            }
            Step::Binary { op } => match symbol(*op) {
                Some(sym) => format!("a {sym} b"),
                None => format!("{}(a, b)", call(*op)),
            },
            Step::Where { .. } => "np.where(a > 0, a, s)".to_string(),
            Step::Reduce { reduction, axis } => {
                let axis = axis.map_or("None".to_string(), |a| a.to_string());
                match reduction {
                    Reduction::Var { ddof } => format!("np.var(a, axis={axis}, ddof={ddof})"),
                    Reduction::Std { ddof } => format!("np.std(a, axis={axis}, ddof={ddof})"),
                    r => format!("np.{}(a, axis={axis})", r.name_for_numpy()),
                }
            }
        }
    }

    fn rask(&self, a: &Array, b: Option<&Array>) -> Result<Array, String> {
        let e = |e: array::ArrayError| e.to_string();
        match self {
            Step::Scalar {
                op,
                scalar,
                left: false,
            } => a.binary_scalar(*op, *scalar).map_err(e),
            Step::Scalar {
                op,
                scalar,
                left: true,
            } => a.scalar_binary(*scalar, *op).map_err(e),
            Step::Compare { op, scalar } => a.compare_scalar(*op, *scalar).map_err(e),
            Step::Binary { op } => a.binary(*op, b.expect("a second input")).map_err(e),
            Step::Where { scalar } => {
                array::where_(&a.greater(0).map_err(e)?, a, *scalar).map_err(e)
            }
            Step::Reduce { reduction, axis } => a
                .reduce(
                    *reduction,
                    axis.as_ref().map(std::slice::from_ref),
                    ReduceOptions {
                        keepdims: false,
                        split_every: 2,
                    },
                )
                .map_err(e),
        }
    }
}

trait NumpyName {
    fn name_for_numpy(self) -> &'static str;
}

impl NumpyName for Reduction {
    fn name_for_numpy(self) -> &'static str {
        match self {
            Reduction::Min => "min",
            Reduction::Max => "max",
            Reduction::Mean => "mean",
            Reduction::ArgMin => "argmin",
            Reduction::ArgMax => "argmax",
            Reduction::Sum => "sum",
            _ => unreachable!("not generated"),
        }
    }
}

struct Case {
    step: Step,
    a: Chunk,
    a_chunks: Vec<Vec<usize>>,
    b: Option<(Chunk, Vec<Vec<usize>>)>,
}

fn random_chunks(rng: &mut Rng64, shape: &[usize]) -> Vec<Vec<usize>> {
    shape
        .iter()
        .map(|&n| {
            let mut left = n;
            let mut sizes = Vec::new();
            while left > 0 {
                let size = rng.random_range(1..=left.min(4));
                sizes.push(size);
                left -= size;
            }
            if sizes.is_empty() {
                sizes.push(0);
            }
            sizes
        })
        .collect()
}

fn random_shape(rng: &mut Rng64, allow_empty: bool) -> Vec<usize> {
    let ndim = rng.random_range(1..=3);
    (0..ndim)
        .map(|_| {
            if allow_empty && rng.random_bool(0.15) {
                0
            } else {
                rng.random_range(1..=6)
            }
        })
        .collect()
}

/// Random values of `dtype`, with the type's extremes, zeros and (floats)
/// NaN and infinities among them; `nan_rows` makes whole leading rows NaN.
fn random_chunk(rng: &mut Rng64, dtype: DType, shape: &[usize], nan_rows: bool) -> Chunk {
    let n: usize = shape.iter().product();
    let rows = shape.first().copied().unwrap_or(1).max(1);
    let nan_until = if nan_rows {
        n / rows * (rows / 2 + 1)
    } else {
        0
    };
    let float = |rng: &mut Rng64, i: usize| -> f64 {
        if i < nan_until {
            return f64::NAN;
        }
        match rng.random_range(0..12) {
            0 => 0.0,
            1 => f64::NAN,
            2 => f64::INFINITY,
            3 => -7.0,
            4 => 0.1,
            _ => rng.random_range(-50.0..50.0),
        }
    };
    let shape = IxDyn(shape);
    match dtype {
        DType::Bool => ArrayD::from_shape_fn(shape, |_| rng.random_bool(0.5)).into(),
        DType::U8 => ArrayD::from_shape_fn(shape, |_| match rng.random_range(0..6) {
            0 => 0u8,
            1 => 255,
            _ => rng.random(),
        })
        .into(),
        DType::I32 => ArrayD::from_shape_fn(shape, |_| match rng.random_range(0..8) {
            0 => i32::MIN,
            1 => i32::MAX,
            2 => 0,
            _ => rng.random_range(-100..100),
        })
        .into(),
        DType::I64 => ArrayD::from_shape_fn(shape, |_| match rng.random_range(0..8) {
            0 => 0i64,
            1 => -3,
            _ => rng.random_range(-1000..1000),
        })
        .into(),
        DType::F32 => {
            let values: Vec<f32> = (0..n).map(|i| float(rng, i) as f32).collect();
            ArrayD::from_shape_vec(shape, values).unwrap().into()
        }
        DType::F64 => {
            let values: Vec<f64> = (0..n).map(|i| float(rng, i)).collect();
            ArrayD::from_shape_vec(shape, values).unwrap().into()
        }
    }
}

fn random_scalar(rng: &mut Rng64) -> Scalar {
    const INTS: [i64; 12] = [0, 1, -1, 2, 3, 7, 127, 255, 256, 300, 1 << 31, 1 << 40];
    const FLOATS: [f64; 7] = [0.1, -2.5, 0.5, 3.0, 1e10, -0.0, 255.5];
    if rng.random_bool(0.6) {
        let i = INTS[rng.random_range(0..INTS.len())];
        Scalar::Int(if rng.random_bool(0.2) { -i } else { i })
    } else {
        Scalar::Float(FLOATS[rng.random_range(0..FLOATS.len())])
    }
}

fn cases(seed: u64, count: usize) -> Vec<Case> {
    let mut rng = Rng64::seed_from_u64(seed);
    let arith = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::FloorDiv,
        BinaryOp::Rem,
        BinaryOp::Pow,
        BinaryOp::Min,
        BinaryOp::Max,
    ];
    let compare = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ];
    (0..count)
        .map(|_| {
            let kind = rng.random_range(0..5);
            let dtype = DTYPES[rng.random_range(0..DTYPES.len())];
            let shape = random_shape(&mut rng, kind == 3);
            let (step, dtype) = match kind {
                0 => {
                    let op = arith[rng.random_range(0..arith.len())];
                    let mut scalar = random_scalar(&mut rng);
                    if op == BinaryOp::Pow {
                        // Small exponents: NumPy and rask both wrap
                        // integers, but huge powers only test overflow.
                        scalar = match scalar {
                            Scalar::Int(i) => Scalar::Int(i.clamp(-2, 3)),
                            Scalar::Float(_) => Scalar::Float(0.5),
                        };
                    }
                    let dtype = if dtype == DType::Bool && !matches!(op, BinaryOp::Div) {
                        DType::U8
                    } else {
                        dtype
                    };
                    let left = rng.random_bool(0.3);
                    (Step::Scalar { op, scalar, left }, dtype)
                }
                4 => (
                    Step::Where {
                        scalar: random_scalar(&mut rng),
                    },
                    dtype,
                ),
                1 => (
                    Step::Compare {
                        op: compare[rng.random_range(0..compare.len())],
                        scalar: random_scalar(&mut rng),
                    },
                    dtype,
                ),
                2 => {
                    let op = [BinaryOp::FloorDiv, BinaryOp::Rem][rng.random_range(0..2)];
                    let dtype =
                        [DType::F64, DType::F32, DType::I32, DType::I64][rng.random_range(0..4)];
                    (Step::Binary { op }, dtype)
                }
                _ => {
                    let reduction = match rng.random_range(0..8) {
                        0 => Reduction::Mean,
                        1 => Reduction::Min,
                        2 => Reduction::ArgMax,
                        3 => Reduction::ArgMin,
                        4 | 5 => Reduction::Var {
                            ddof: rng.random_range(0..=7),
                        },
                        _ => Reduction::Std {
                            ddof: rng.random_range(0..=7),
                        },
                    };
                    let axis = rng.random_bool(0.6).then(|| {
                        rng.random_range(-(shape.len() as i64)..shape.len() as i64) as isize
                    });
                    let dtype = if dtype == DType::Bool {
                        DType::F64
                    } else {
                        dtype
                    };
                    (Step::Reduce { reduction, axis }, dtype)
                }
            };
            let nan_rows = kind == 3 && rng.random_bool(0.3);
            let a = random_chunk(&mut rng, dtype, &shape, nan_rows);
            let a_chunks = random_chunks(&mut rng, &shape);
            let b = matches!(step, Step::Binary { .. }).then(|| {
                (
                    random_chunk(&mut rng, dtype, &shape, false),
                    random_chunks(&mut rng, &shape),
                )
            });
            Case {
                step,
                a,
                a_chunks,
                b,
            }
        })
        .collect()
}

/// NumPy's answers: `expected/<i>.npy`, or the name of the exception NumPy
/// raised in `expected/<i>.err`.
fn numpy_answers(dir: &Path, cases: &[Case]) {
    let mut manifest = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        array::write_npy(dir.join(format!("a{i}.npy")), &case.a).unwrap();
        if let Some((b, _)) = &case.b {
            array::write_npy(dir.join(format!("b{i}.npy")), b).unwrap();
        }
        let scalar = match &case.step {
            Step::Scalar { scalar, .. } | Step::Compare { scalar, .. } | Step::Where { scalar } => {
                match scalar {
                    Scalar::Int(i) => json!(i),
                    Scalar::Float(f) => json!(format!("{f:?}")),
                }
            }
            _ => json!(null),
        };
        manifest.push(json!({"i": i, "expr": case.step.numpy(), "s": scalar}));
    }
    std::fs::write(
        dir.join("cases.json"),
        serde_json::to_string(&manifest).unwrap(),
    )
    .unwrap();
    support::run_python(
        &format!(
            r#"
import json, os, numpy as np
d = {dir:?}
for case in json.load(open(os.path.join(d, "cases.json"))):
    i = case["i"]
    a = np.load(os.path.join(d, f"a{{i}}.npy"))
    b = np.load(os.path.join(d, f"b{{i}}.npy")) if os.path.exists(os.path.join(d, f"b{{i}}.npy")) else None
    s = case["s"]
    if isinstance(s, str):
        s = float(s)
    try:
        with np.errstate(all="ignore"):
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = np.asarray(eval(case["expr"]))
        np.save(os.path.join(d, f"expected{{i}}.npy"), r)
    except Exception as e:
        open(os.path.join(d, f"expected{{i}}.err"), "w").write(type(e).__name__)
"#,
            dir = dir.display().to_string()
        ),
        &[],
    );
}

/// Whether two chunks hold the same dtype, shape and values (NaN equal to
/// NaN; floats within rounding).
fn same(got: &Chunk, want: &Chunk) -> Result<(), String> {
    if got.dtype() != want.dtype() {
        return Err(format!("dtype {} (NumPy: {})", got.dtype(), want.dtype()));
    }
    if got.shape() != want.shape() {
        return Err(format!(
            "shape {:?} (NumPy: {:?})",
            got.shape(),
            want.shape()
        ));
    }
    let close = |x: f64, y: f64, tolerance: f64| {
        (x.is_nan() && y.is_nan())
            || x == y
            || (x - y).abs() <= tolerance * x.abs().max(y.abs()).max(1.0)
    };
    let tolerance = match got.dtype() {
        DType::F32 => 1e-5,
        DType::F64 => 1e-10,
        _ => 0.0,
    };
    let (g, w) = (got.cast::<f64>(), want.cast::<f64>());
    let (g64, w64) = (got.cast::<i64>(), want.cast::<i64>());
    for ((x, y), (xi, yi)) in g.iter().zip(w.iter()).zip(g64.iter().zip(w64.iter())) {
        let equal = if got.dtype().is_float() {
            close(*x, *y, tolerance)
        } else {
            xi == yi
        };
        if !equal {
            return Err(format!("{got:?}\n  NumPy: {want:?}"));
        }
    }
    Ok(())
}

/// An array cut from `chunk` in `chunks`.
fn lift(chunk: &Chunk, chunks: &[Vec<usize>]) -> Array {
    let spec = ChunkSpec::Explicit(chunks.to_vec());
    match chunk {
        Chunk::Bool(a) => array::from_array(a, spec),
        Chunk::U8(a) => array::from_array(a, spec),
        Chunk::I32(a) => array::from_array(a, spec),
        Chunk::I64(a) => array::from_array(a, spec),
        Chunk::F32(a) => array::from_array(a, spec),
        Chunk::F64(a) => array::from_array(a, spec),
    }
    .unwrap()
}

fn check_cases(client: &Client, dir: &Path, cases: &[Case], label: &str) {
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let a = lift(&case.a, &case.a_chunks);
        let b = case.b.as_ref().map(|(b, chunks)| lift(b, chunks));
        let got = case
            .step
            .rask(&a, b.as_ref())
            .and_then(|r| r.compute_chunk(client).map_err(|e| e.to_string()));
        let error_file = dir.join(format!("expected{i}.err"));
        let what = format!(
            "case {i} ({label}): {} with a: {} {:?} chunks {:?}, step {:?}",
            case.step.numpy(),
            case.a.dtype(),
            case.a.shape(),
            case.a_chunks,
            case.step
        );
        // NumPy's `where` wraps a number that does not fit (`where(m,
        // uint8_array, 300)` holds 44); rask refuses it, as NEP 50 does
        // for arithmetic.
        if let Step::Where { scalar } = &case.step {
            let work = case.a.dtype();
            let fits = scalar.is_float() || work == DType::Bool || scalar.fits(work);
            if !fits {
                if got.is_ok() {
                    failures.push(format!("{what}: an out-of-range scalar was accepted"));
                }
                continue;
            }
        }
        match (got, error_file.exists()) {
            (Ok(got), false) => {
                let want = array::read_npy(dir.join(format!("expected{i}.npy"))).unwrap();
                if let Err(e) = same(&got, &want) {
                    failures.push(format!("{what}: {e}"));
                }
            }
            (Err(_), true) => {}
            (Ok(got), true) => failures.push(format!(
                "{what}: NumPy raised {}, rask gave {got:?}",
                std::fs::read_to_string(&error_file).unwrap()
            )),
            (Err(e), false) => failures.push(format!("{what}: rask failed: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from NumPy:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn scalars_division_and_degenerate_reductions_follow_numpy_locally_and_on_workers() {
    let dir = TempDir::new("numpy-semantics");
    let cases = cases(20261202, 2000);
    numpy_answers(dir.path(), &cases);
    let local = Client::local(rask::LocalCluster::new().workers(2)).unwrap();
    check_cases(&local, dir.path(), &cases, "in-process");
    let mut cluster = Cluster::start("numpy-semantics", &[]);
    cluster.add_worker(&["--nthreads", "1"]);
    cluster.add_worker(&["--nthreads", "1"]);
    let remote = Client::connect(&cluster.address).expect("client connects");
    cluster.wait_for_workers(&remote, 2);
    check_cases(&remote, dir.path(), &cases[..500], "worker processes");
}

#[test]
fn fortran_ordered_npy_files_read_lazily_and_round_trip() {
    let dir = TempDir::new("npy-fortran");
    let d = dir.path().display().to_string();
    support::run_python(
        &format!(
            r#"
import numpy as np
rng = np.random.default_rng(7)
shapes = [(5,), (4, 7), (3, 5, 6), (2, 3, 4, 5), (0, 3)]
types = ["f8", "f4", "i4", "i8", "u1", "?"]
for n, shape in enumerate(shapes):
    for t in types:
        c = (rng.standard_normal(shape) * 100).astype(t)
        np.save(f"{d}/c{{n}}_{{t}}.npy", c)
        np.save(f"{d}/f{{n}}_{{t}}.npy", np.asfortranarray(c))
# A transposed array is what np.save writes Fortran-ordered most often.
np.save(f"{d}/t.npy", np.arange(24.0).reshape(4, 6).T)
"#
        ),
        &[],
    );
    let client = Client::local(rask::LocalCluster::new().workers(2)).unwrap();
    let mut rng = Rng64::seed_from_u64(3);
    let mut checked = 0;
    for n in 0..5 {
        for t in ["f8", "f4", "i4", "i8", "u1", "?"] {
            let c_path = dir.path().join(format!("c{n}_{t}.npy"));
            let f_path = dir.path().join(format!("f{n}_{t}.npy"));
            let header = array::read_header(&f_path).unwrap();
            // NumPy writes 1-D and empty arrays in C order either way.
            let either = header.shape.len() < 2 || header.shape.contains(&0);
            assert!(header.fortran_order || either, "{f_path:?}");
            let want = array::read_npy(&c_path).unwrap();
            assert_eq!(array::read_npy(&f_path).unwrap(), want, "{f_path:?}");
            let chunks = random_chunks(&mut rng, &header.shape);
            let lazy = array::from_npy(&f_path, ChunkSpec::Explicit(chunks.clone())).unwrap();
            assert_eq!(
                lazy.compute_chunk(&client).unwrap(),
                want,
                "{f_path:?} in chunks {chunks:?}"
            );
            // rask writes C order; NumPy reads back the same array.
            lazy.to_npy(dir.path().join(format!("back{n}_{t}.npy")), &client)
                .unwrap();
            checked += 1;
        }
    }
    let transposed = array::from_npy(dir.path().join("t.npy"), [4, 2]).unwrap();
    assert_eq!(transposed.shape(), &[6, 4]);
    let values = transposed.compute::<f64>(&client).unwrap();
    assert_eq!(values[[1, 0]], 1.0);
    assert_eq!(values[[0, 1]], 6.0);
    support::run_python(
        &format!(
            r#"
import numpy as np
for n in range(5):
    for t in ["f8", "f4", "i4", "i8", "u1", "?"]:
        a, b = np.load(f"{d}/f{{n}}_{{t}}.npy"), np.load(f"{d}/back{{n}}_{{t}}.npy")
        assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all(), (n, t)
"#
        ),
        &[],
    );
    assert_eq!(checked, 30);
}
