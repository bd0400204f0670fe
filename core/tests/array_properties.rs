//! Property tests of `rask::array` on an in-process cluster: every operation
//! equals the direct `ndarray` computation on random shapes and chunkings.

mod array_cases;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rask::prelude::*;

#[test]
fn array_operations_match_ndarray_on_random_shapes_and_chunks() {
    let client = Client::local(LocalCluster::new().workers(2).threads_per_worker(2)).unwrap();
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 128,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    runner
        .run(&any::<u64>(), |seed| {
            array_cases::run_case(&client, seed)
                .map_err(|e| TestCaseError::fail(format!("seed {seed}: {e}")))
        })
        .unwrap();
}

#[test]
fn npy_files_round_trip_and_read_lazily_by_block() {
    use rask::array::{self, DType};
    let client = Client::local(LocalCluster::new().workers(2)).unwrap();
    let dir = std::env::temp_dir().join(format!("rask-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = array::arange(0i64, 7 * 9 * 5, 1, 50)
        .unwrap()
        .reshape(&[7, 9, 5])
        .unwrap();
    let path = dir.join("x.npy");
    x.to_npy(&path, &client).unwrap();
    let back = array::read_npy(&path).unwrap();
    assert_eq!(back, x.compute_chunk(&client).unwrap());
    let lazy = array::from_npy(&path, [3, 4, 2]).unwrap();
    assert_eq!(lazy.dtype(), DType::I64);
    assert_eq!(lazy.compute_chunk(&client).unwrap(), back);
    let part = lazy
        .slice(ndarray::s![2..5, 3, ..;2])
        .unwrap()
        .compute::<i64>(&client)
        .unwrap();
    let direct = back
        .view::<i64>()
        .unwrap()
        .slice(ndarray::s![2..5, 3, ..;2])
        .to_owned();
    assert_eq!(part, direct.into_dyn());
    // A file that is not .npy is a clear error naming it.
    let bogus = dir.join("bogus.npy");
    std::fs::write(&bogus, b"hello").unwrap();
    let error = array::from_npy(&bogus, 4).unwrap_err().to_string();
    assert!(
        error.contains("bogus.npy") && error.contains("not a .npy file"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn summaries_show_shape_type_chunks_and_tasks() {
    use rask::array::{self, DType};
    let x = array::ones(&[20000, 20000], 1000, DType::F64).unwrap();
    assert!(array::ones(&[10], 0, DType::F64)
        .unwrap_err()
        .to_string()
        .contains("chunk size of 0"));
    let y = (&x + &x.t()).mean_axis(0).unwrap();
    let line = x.to_string();
    assert!(
        line.contains("shape=(20000, 20000)")
            && line.contains("float64")
            && line.contains("chunksize=(1000, 1000)"),
        "{line}"
    );
    let table = y.summary();
    assert!(
        table.contains("156.2 KiB") || table.contains("KiB"),
        "{table}"
    );
    // 400 blocks of ones, 400 partial sums (the mean pushes through the add and
    // the transpose), then the combining tree.
    assert!((850..900).contains(&y.ntasks()), "{}", y.ntasks());
    let html = x.to_html();
    assert!(
        html.contains("<svg") && html.contains("3.0 GiB") && html.contains("400 chunks"),
        "{html}"
    );
}

rask::op! {
    /// Doubles a block (a user op for map_blocks).
    fn double(block: rask::array::Chunk) -> rask::array::Chunk {
        rask::array::Chunk::from(block.cast::<f64>() * 2.0)
    }
}

rask::op! {
    /// `a + b` with broadcasting.
    fn add_blocks(a: rask::array::Chunk, b: rask::array::Chunk) -> rask::array::Chunk {
        rask::array::Chunk::from(&a.cast::<f64>() + &b.cast::<f64>())
    }
}

rask::op! {
    /// `a + b.T` for 2-D blocks.
    fn add_transposed(a: rask::array::Chunk, b: rask::array::Chunk) -> rask::array::Chunk {
        rask::array::Chunk::from(&a.cast::<f64>() + &b.cast::<f64>().t())
    }
}

#[test]
fn map_blocks_and_blockwise_run_registered_ops_on_aligned_blocks() {
    use rask::array::{self, DType};
    let client = Client::local(LocalCluster::new().workers(2)).unwrap();
    let mut rng = array_cases::Rng(99);
    for _ in 0..16 {
        let shape = rng.shape(2);
        let (x, xa) = rng.array(&shape);
        let (row, rowa) = rng.array(&[shape[1]]);
        let doubled = xa.map_blocks(double, &[], DType::F64).unwrap();
        assert_eq!(doubled.compute::<f64>(&client).unwrap(), &x * 2.0);
        let summed = xa.map_blocks(add_blocks, &[&rowa], DType::F64).unwrap();
        assert_eq!(summed.compute::<f64>(&client).unwrap(), &x + &row);
        let t_shape = [shape[1], shape[0]];
        let (y, ya) = rng.array(&t_shape);
        let both = array::blockwise(
            add_transposed,
            "ij",
            &[(&xa, "ij"), (&ya, "ji")],
            DType::F64,
        )
        .unwrap();
        assert_eq!(both.compute::<f64>(&client).unwrap(), &x + &y.t());
    }
    let (_, xa) = rng.array(&[3, 4]);
    let error = array::blockwise(double, "i", &[(&xa, "ij")], DType::F64).unwrap_err();
    assert!(error.to_string().contains("contraction"), "{error}");
}

/// The five-point stencil (cells beyond the block count as 0).
fn five_point(a: &ndarray::ArrayD<f64>) -> ndarray::ArrayD<f64> {
    let (n, m) = (a.shape()[0] as isize, a.shape()[1] as isize);
    let at = |i: isize, j: isize| {
        if i < 0 || j < 0 || i >= n || j >= m {
            0.0
        } else {
            a[[i as usize, j as usize]]
        }
    };
    ndarray::ArrayD::from_shape_fn(a.raw_dim(), |ix| {
        let (i, j) = (ix[0] as isize, ix[1] as isize);
        at(i, j) + at(i - 1, j) + at(i + 1, j) + at(i, j - 1) + at(i, j + 1)
    })
}

rask::op! {
    /// The five-point stencil on a block.
    fn stencil(block: rask::array::Chunk) -> rask::array::Chunk {
        rask::array::Chunk::from(five_point(&block.cast::<f64>()))
    }
}

#[test]
fn map_overlap_matches_the_stencil_on_the_whole_array() {
    use rask::array::{Boundary, DType};
    let client = Client::local(LocalCluster::new().workers(2)).unwrap();
    let mut rng = array_cases::Rng(7);
    for _ in 0..16 {
        let shape = [rng.range(2, 12), rng.range(2, 12)];
        let (x, xa) = rng.array(&shape);
        let got = xa
            .map_overlap(stencil, &[1, 1], Boundary::None, DType::F64)
            .unwrap();
        assert_eq!(got.compute::<f64>(&client).unwrap(), five_point(&x), "{xa}");
        let zero = xa
            .map_overlap(stencil, &[1, 1], Boundary::Constant(0.0), DType::F64)
            .unwrap();
        assert_eq!(zero.compute::<f64>(&client).unwrap(), five_point(&x));
        // Periodic: the stencil on the wrapped array.
        let (n, m) = (shape[0], shape[1]);
        let wrapped = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[n + 2, m + 2]), |ix| {
            x[[(ix[0] + n - 1) % n, (ix[1] + m - 1) % m]]
        });
        let want = five_point(&wrapped)
            .slice(ndarray::s![1..n + 1, 1..m + 1])
            .to_owned()
            .into_dyn();
        let periodic = xa
            .map_overlap(stencil, &[1, 1], Boundary::Periodic, DType::F64)
            .unwrap();
        let got = periodic.compute::<f64>(&client).unwrap();
        assert!(
            got.iter()
                .zip(want.iter())
                .all(|(a, b)| (a - b).abs() < 1e-12),
            "periodic {xa}"
        );
    }
    let (_, xa) = rng.array(&[6, 6]);
    let thin = xa.rechunk([1, 6]).unwrap();
    let error = thin
        .map_overlap(stencil, &[2, 0], Boundary::None, DType::F64)
        .unwrap_err();
    assert!(error.to_string().contains("smallest chunk"), "{error}");
}

#[test]
fn lazy_masks_have_unknown_lengths_and_refuse_what_needs_them() {
    use rask::array::{self, CompareOp, DType, Reduction};
    let x = array::arange(0i64, 12, 1, 5)
        .unwrap()
        .reshape(&[3, 4])
        .unwrap();
    let selection = x
        .select(&x.compare_scalar(CompareOp::Ge, 5i64).unwrap())
        .unwrap();
    assert_eq!(selection.shape(), vec![None]);
    assert!(
        selection.to_string().contains("shape=(nan,)"),
        "{selection}"
    );
    let arg = selection
        .reduce(Reduction::ArgMax, Default::default())
        .unwrap_err()
        .to_string();
    assert!(arg.contains("compute_chunk_sizes"), "{arg}");
    let not_bool = x.select(&x).unwrap_err().to_string();
    assert!(not_bool.contains("non-bool"), "{not_bool}");
    let wrong = x
        .select(&array::ones(&[4], 2, DType::Bool).unwrap())
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("[4]") && wrong.contains("[3, 4]"), "{wrong}");
    let client = rask::Client::local(rask::LocalCluster::new().workers(2)).unwrap();
    // A selection writes without compute_chunk_sizes first.
    let dir = std::env::temp_dir().join(format!("rask-selection-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    selection.to_npy(dir.join("picked.npy"), &client).unwrap();
    let written = array::read_npy(dir.join("picked.npy")).unwrap();
    assert_eq!(
        written.view::<i64>().unwrap().as_slice().unwrap(),
        &[5, 6, 7, 8, 9, 10, 11]
    );
    selection
        .to_zarr(dir.join("picked.zarr"), &client, Default::default())
        .unwrap();
    let back = array::from_zarr(dir.join("picked.zarr")).unwrap();
    assert_eq!(back.compute_chunk(&client).unwrap(), written);
    std::fs::remove_dir_all(&dir).unwrap();
    let known = selection.compute_chunk_sizes(&client).unwrap();
    assert_eq!(known.shape(), &[7]);
    assert_eq!(
        known
            .argmax()
            .unwrap()
            .compute_scalar::<i64>(&client)
            .unwrap(),
        6
    );
}
