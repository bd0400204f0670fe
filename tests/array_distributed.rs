//! `rask::array` on worker processes: the same randomized checks as the
//! in-process property tests, with blocks computed and moved between `rask
//! worker` processes over TCP.

mod support;

#[path = "../core/tests/array_cases/mod.rs"]
mod array_cases;

use rask::array::{self, DType};
use rask::Client;
use support::Cluster;

#[test]
fn array_operations_match_ndarray_on_worker_processes() {
    let mut cluster = Cluster::start("array", &[]);
    cluster.add_worker(&["--nthreads", "2"]);
    cluster.add_worker(&["--nthreads", "1"]);
    let client = Client::connect(&cluster.address).expect("client connects");
    cluster.wait_for_workers(&client, 2);
    for seed in 0..24u64 {
        if let Err(error) = array_cases::run_case(&client, seed) {
            panic!("seed {seed}: {error}");
        }
    }
    // Larger arrays whose blocks and partials cross processes.
    let local = Client::local(rask::LocalCluster::new().workers(1)).unwrap();
    let x = array::random_normal(7, 0.0, 1.0, &[1500, 1500], [250, 300]).unwrap();
    let remote_std = x.std(0).unwrap().compute_scalar::<f64>(&client).unwrap();
    let local_std = x.std(0).unwrap().compute_scalar::<f64>(&local).unwrap();
    assert!(
        (remote_std - local_std).abs() < 1e-12,
        "{remote_std} vs {local_std}"
    );
    let sums = (&x + &x.t()).sum_axis(1).unwrap();
    assert_eq!(sums.dtype(), DType::F64);
    let remote = sums.compute::<f64>(&client).unwrap();
    let direct = sums.compute::<f64>(&local).unwrap();
    assert_eq!(remote.len(), 1500);
    assert!(remote
        .iter()
        .zip(direct.iter())
        .all(|(a, b)| (a - b).abs() < 1e-9));
    // Rows to columns: each piece is a region sharing its row block's memory,
    // and travels between processes as a plain block of just its elements.
    let rows = array::random_uniform(8, 0.0, 1.0, &[600, 600], [100, 600]).unwrap();
    let columns = rows.rechunk([600, 100]).unwrap();
    assert_eq!(columns.chunks()[1], vec![100; 6]);
    let remote = columns.compute::<f64>(&client).unwrap();
    assert_eq!(remote, rows.compute::<f64>(&local).unwrap());
}
