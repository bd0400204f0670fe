//! An in-process cluster keeps the memory its blocks free for reuse while it
//! computes, and gives it back to the system once the process has been quiet
//! for a few seconds. (A test binary of its own: it measures this process's
//! resident memory.)

use rask::array;
use rask::prelude::*;
use std::time::{Duration, Instant};

/// This process's resident memory in bytes.
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn freed_blocks_go_back_to_the_system_once_the_cluster_is_quiet() {
    let client = Client::local(LocalCluster::new().workers(1).threads_per_worker(2)).unwrap();
    let before = resident();
    // 2 GB in 16 row blocks of 128 MB: heap memory, kept for reuse when freed.
    let x = array::random_uniform(1, 0.0, 1.0, &[16000, 16000], [1000, 16000])
        .unwrap()
        .persist(&client)
        .unwrap();
    let mean = x.mean().unwrap().compute_scalar::<f64>(&client).unwrap();
    assert!((mean - 0.5).abs() < 0.01, "{mean}");
    let held = resident();
    assert!(held > before + 1_800_000_000, "{before} -> {held}");
    drop(x);
    let started = Instant::now();
    while resident() > before + 300_000_000 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still {} bytes resident, {before} before",
            resident()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!(
        "{held} bytes resident while held; {} within {:?} of the release",
        resident(),
        started.elapsed()
    );
}
