//! `rask cluster up` on a real single-node SLURM and a real Grid Engine,
//! started by the test command (scripts/infra/*-up.sh): jobs are submitted,
//! workers join and run graphs, scale by hand and adaptively, retire before
//! their walltime ends without losing results, and teardown empties the queue.

mod support;

use rask::ops::builtin::{add, inc, sleep_then};
use rask::prelude::*;
use std::time::{Duration, Instant};
use support::batch::{System, Up};
use support::TempDir;

/// `sum(inc(i) for i in 0..n)` as a tree, on the cluster.
fn tree_sum(client: &Client, n: u64) -> u64 {
    let mut level: Vec<Delayed<u64>> = (0..n).map(|i| delayed(inc, i)).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => delayed(add, (a, b)),
                [a] => a.clone(),
                _ => unreachable!(),
            })
            .collect();
    }
    level[0].compute(client).expect("tree computes")
}

fn up_runs_a_graph_scales_and_tears_down(system: System) {
    let _one_at_a_time = system.lock();
    let dir = TempDir::new(&format!("{}-up", system.name()));
    let config = system.config(&dir, "  walltime: \"00:10:00\"\n");
    let up = Up::start(system, &dir, &config, &["--workers", "2"]);
    up.wait_workers(2, Duration::from_secs(60));
    assert_eq!(tree_sum(&up.client, 1000), (1..=1000).sum::<u64>());

    let status = up.status_with(
        &format!("{}: 2 worker(s) connected, target 2", system.name()),
        Duration::from_secs(10),
    );
    assert_eq!(status.matches(" running ").count(), 2, "{status}");
    assert_eq!(system.queue().len(), 2, "{:?}", system.queue());

    // By hand: down to 1 (a whole job retires and leaves the queue), up to 3.
    up.cli(&["scale", "1"]);
    up.wait_workers(1, Duration::from_secs(60));
    assert_eq!(system.wait_queue_empty_but(1, Duration::from_secs(30)), 1);
    up.cli(&["scale", "3"]);
    up.wait_workers(3, Duration::from_secs(60));
    assert_eq!(tree_sum(&up.client, 300), (1..=300).sum::<u64>());

    let log = up.stop();
    assert!(log.contains("submitted job(s)"), "{log}");
    let left = system.wait_queue_empty(Duration::from_secs(30));
    assert!(left.is_empty(), "jobs left after teardown: {left:?}");
}

fn adaptive_goes_from_0_to_3_and_back(system: System) {
    let _one_at_a_time = system.lock();
    let dir = TempDir::new(&format!("{}-adapt", system.name()));
    let config = system.config(
        &dir,
        "  adaptive:\n    minimum: 0\n    maximum: 3\n    wait-count: 2\n    interval: 0.5\n",
    );
    let up = Up::start(system, &dir, &config, &[]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(up.client.workers().unwrap().len(), 0);
    assert!(system.queue().is_empty(), "{:?}", system.queue());

    // 60 tasks of 0.5 s: 30 s of work asks for 6 workers, capped at 3, and
    // keeps asking for 3 while a busy batch system starts the last job.
    let futures = up
        .client
        .map(sleep_then, (0..60u64).map(|i| (500u64, i)))
        .unwrap();
    let reached = up.wait_workers(3, Duration::from_secs(60));
    let values = up.client.gather(&futures).unwrap();
    assert_eq!(values, (0..60u64).collect::<Vec<_>>());
    assert!(up.client.workers().unwrap().len() <= 3);
    drop(futures);

    // Idle: back to 0 workers and an empty queue.
    up.wait_workers(0, Duration::from_secs(60));
    let left = system.wait_queue_empty(Duration::from_secs(30));
    assert!(left.is_empty(), "jobs left when idle: {left:?}");
    let status = up.cli(&["status"]);
    assert!(status.contains("(adaptive 0..3)"), "{status}");
    eprintln!("{}: 3 workers {reached:?} after the burst", system.name());
    up.stop();
}

fn walltime_end_retires_without_lost_results(system: System) {
    let _one_at_a_time = system.lock();
    let dir = TempDir::new(&format!("{}-walltime", system.name()));
    // 30 s walltime: workers retire after 25 s; a replacement is submitted at 20 s.
    let config = system.config(&dir, "  walltime: \"00:00:30\"\n");
    let up = Up::start(system, &dir, &config, &["--workers", "1"]);
    up.wait_workers(1, Duration::from_secs(60));
    let started = Instant::now();
    // 45 s of 0.5-s tasks on one thread: longer than a worker lives, and every
    // result is held until the end.
    let futures = up
        .client
        .map(sleep_then, (0..90u64).map(|i| (500u64, i)))
        .unwrap();
    let values = up.client.gather(&futures).unwrap();
    assert_eq!(values, (0..90u64).collect::<Vec<_>>());
    let elapsed = started.elapsed();
    let status = up.cli(&["status"]);
    let log = up.stop();
    assert!(log.contains("nears its walltime"), "{log}");
    assert!(log.contains("reason=\"retired\""), "{log}");
    assert!(!log.contains("lost"), "a result was lost: {log}");
    let submitted: u32 = status
        .lines()
        .last()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(submitted >= 2, "no replacement job was submitted: {status}");
    eprintln!(
        "{}: 90 tasks over {elapsed:?} through {submitted} jobs",
        system.name()
    );
}

fn failed_job_is_reported_with_its_stderr(system: System) {
    let _one_at_a_time = system.lock();
    let dir = TempDir::new(&format!("{}-failing", system.name()));
    let config = system.config(&dir, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("rask: {}", support::rask_binary()),
        "rask: /nonexistent/rask",
    );
    std::fs::write(&config, text).unwrap();
    let up = Up::start(system, &dir, &config, &["--workers", "1"]);
    // HyperQueue's backoff: the first failure is retried at once, the second
    // waits a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !up.proc.log_text().contains("next submission in 60 s") {
        assert!(
            Instant::now() < deadline,
            "no second failure reported:\n{}",
            up.proc.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    let log = up.proc.log_text();
    assert_eq!(log.matches("submitted job(s)").count(), 2, "{log}");
    let first = log
        .lines()
        .find(|l| l.contains("before its workers connected; next submission in 0 s"))
        .unwrap_or_else(|| panic!("no first failure in:\n{log}"));
    let path = first.rsplit("see ").next().unwrap().trim();
    let stderr = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(stderr.contains("/nonexistent/rask"), "{path}: {stderr}");
    up.stop();
}

/// Two workers per job, adaptive up to 3 workers: the burst brings two whole
/// jobs (4 workers), which stay until the work is done and then leave as
/// whole jobs; no job is resubmitted and no single worker is retired
/// (dask-jobqueue #498).
fn two_workers_per_job_adapt_without_flapping(system: System) {
    let _one_at_a_time = system.lock();
    let dir = TempDir::new(&format!("{}-processes", system.name()));
    let config = dir.path().join("two.yaml");
    std::fs::write(
        &config,
        format!(
            "{}:\n  cores: 2\n  processes: 2\n  memory: 800MiB\n  rask: {}\n  log-directory: logs\n  \
             adaptive:\n    minimum: 0\n    maximum: 3\n    wait-count: 2\n    interval: 0.5\n",
            system.name(),
            support::rask_binary()
        ),
    )
    .unwrap();
    let up = Up::start(system, &dir, &config, &[]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(up.client.workers().unwrap().len(), 0);

    // 80 tasks of 0.5 s: 10 s of work for 4 workers.
    let futures = up
        .client
        .map(sleep_then, (0..80u64).map(|i| (500u64, i)))
        .unwrap();
    up.wait_workers(4, Duration::from_secs(60));
    // Workers and the launcher's log are sampled, then the scheduler is asked
    // whether work is left: only samples it answers yes to count, because
    // scaling down once the scheduler is idle is right, and on a busy machine
    // it comes before this client has seen its last results.
    let mut fewest = 4;
    let mut log_during_work = String::new();
    loop {
        let workers = up.client.workers().unwrap().len();
        let log = up.proc.log_text();
        if up.client.work_progress().unwrap().pending == 0 {
            break;
        }
        fewest = fewest.min(workers);
        log_during_work = log;
        std::thread::sleep(Duration::from_millis(100));
    }
    let values = up.client.gather(&futures).unwrap();
    assert_eq!(values, (0..80u64).collect::<Vec<_>>());
    assert_eq!(fewest, 4, "a worker left while there was work");
    assert!(
        !log_during_work.contains("scaling down"),
        "{log_during_work}"
    );
    drop(futures);

    up.wait_workers(0, Duration::from_secs(60));
    let left = system.wait_queue_empty(Duration::from_secs(30));
    assert!(left.is_empty(), "jobs left when idle: {left:?}");
    let status = up.cli(&["status"]);
    assert!(status.contains("  2 job(s) submitted in all"), "{status}");
    let log = up.proc.log_text();
    assert_eq!(log.matches(" joined (").count(), 4, "{log}");
    up.stop();
}

/// `rask cluster dry-run`: a config the batch system accepts is submitted and
/// cancelled at once; one naming a queue that does not exist is refused with
/// the batch system's own words.
fn dry_run_submits_and_cancels_or_reports_the_refusal(system: System) {
    let _one_at_a_time = system.lock();
    let dir = TempDir::new(&format!("{}-dry-run", system.name()));
    let dry_run = |config: &std::path::Path| {
        std::process::Command::new(support::rask_binary())
            .args(["cluster", "dry-run"])
            .arg(config)
            .env("PATH", system.path())
            .output()
            .expect("rask cluster dry-run runs")
    };
    let good = system.config(&dir, "  walltime: \"00:05:00\"\n");
    let output = dry_run(&good);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("{} accepted the job (", system.name()))
            && stdout.contains("cancelled it"),
        "{stdout}"
    );
    let left = system.wait_queue_empty(Duration::from_secs(30));
    assert!(left.is_empty(), "the dry run left jobs: {left:?}");

    let bad = dir.path().join("bad-queue.yaml");
    let text = std::fs::read_to_string(&good).unwrap() + "  queue: nosuchqueue\n";
    std::fs::write(&bad, text).unwrap();
    let output = dry_run(&bad);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a bad queue was accepted");
    assert!(
        stderr.contains(&format!(
            "bad-queue.yaml: {} refused the job",
            system.name()
        )) && stderr.contains("nosuchqueue"),
        "{stderr}"
    );
    assert!(system.queue().is_empty(), "{:?}", system.queue());
}

#[test]
fn slurm_up_runs_a_graph_scales_and_tears_down() {
    up_runs_a_graph_scales_and_tears_down(System::Slurm);
}

#[test]
fn slurm_adaptive_goes_from_0_to_3_and_back() {
    adaptive_goes_from_0_to_3_and_back(System::Slurm);
}

#[test]
fn slurm_walltime_end_retires_without_lost_results() {
    walltime_end_retires_without_lost_results(System::Slurm);
}

#[test]
fn slurm_failed_job_is_reported_with_its_stderr() {
    failed_job_is_reported_with_its_stderr(System::Slurm);
}

#[test]
fn sge_up_runs_a_graph_scales_and_tears_down() {
    up_runs_a_graph_scales_and_tears_down(System::Sge);
}

#[test]
fn sge_adaptive_goes_from_0_to_3_and_back() {
    adaptive_goes_from_0_to_3_and_back(System::Sge);
}

#[test]
fn sge_walltime_end_retires_without_lost_results() {
    walltime_end_retires_without_lost_results(System::Sge);
}

#[test]
fn sge_failed_job_is_reported_with_its_stderr() {
    failed_job_is_reported_with_its_stderr(System::Sge);
}

#[test]
fn pbs_up_runs_a_graph_scales_and_tears_down() {
    up_runs_a_graph_scales_and_tears_down(System::Pbs);
}

#[test]
fn pbs_failed_job_is_reported_with_its_stderr() {
    failed_job_is_reported_with_its_stderr(System::Pbs);
}

#[test]
fn slurm_two_workers_per_job_adapt_without_flapping() {
    two_workers_per_job_adapt_without_flapping(System::Slurm);
}

#[test]
fn sge_two_workers_per_job_adapt_without_flapping() {
    two_workers_per_job_adapt_without_flapping(System::Sge);
}

#[test]
fn slurm_dry_run_submits_and_cancels_or_reports_the_refusal() {
    dry_run_submits_and_cancels_or_reports_the_refusal(System::Slurm);
}

#[test]
fn sge_dry_run_submits_and_cancels_or_reports_the_refusal() {
    dry_run_submits_and_cancels_or_reports_the_refusal(System::Sge);
}

/// A config without `rask:` (as a new user writes it after `cargo build`)
/// starts workers from the executable that runs `cluster up`, not from a
/// `rask` on PATH.
#[test]
fn slurm_config_without_a_rask_key_runs_the_rask_that_submits() {
    let system = System::Slurm;
    let _one_at_a_time = system.lock();
    let dir = TempDir::new("slurm-default-rask");
    let config = dir.path().join("slurm.yaml");
    std::fs::write(
        &config,
        "slurm:\n  cores: 1\n  memory: 400MiB\n  log-directory: logs\n  walltime: \"00:10:00\"\n",
    )
    .unwrap();
    let script = std::process::Command::new(support::rask_binary())
        .args(["cluster", "job-script"])
        .arg(&config)
        .output()
        .expect("rask cluster job-script runs");
    let script = String::from_utf8_lossy(&script.stdout);
    assert!(
        script.contains(&format!("{} worker ", support::rask_binary())),
        "{script}"
    );
    // No `rask` on the jobs' PATH: only the absolute path can start them.
    assert!(
        !std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .any(|dir| std::path::Path::new(dir).join("rask").exists()),
        "a rask on PATH would hide the bug this test is for"
    );
    let up = Up::start(system, &dir, &config, &["--workers", "1"]);
    up.wait_workers(1, Duration::from_secs(60));
    assert_eq!(tree_sum(&up.client, 500), (1..=500).sum::<u64>());
    up.stop();
    let left = system.wait_queue_empty(Duration::from_secs(30));
    assert!(left.is_empty(), "jobs left after teardown: {left:?}");
}

/// Every job in SLURM's `-t all` listing (cancelled and finished ones stay
/// listed for MinJobAge, 300 s here).
fn slurm_jobs_ever() -> usize {
    let output = std::process::Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i"])
        .output()
        .expect("squeue runs");
    String::from_utf8_lossy(&output.stdout).lines().count()
}

/// Jobs SLURM can never start: one bigger than any node is refused by
/// `dry-run` before anything is submitted (`sbatch --test-only`); one that
/// `--test-only` passes but whose partition can never run it (the `tiny`
/// partition allows 5 minutes) is submitted, found pending for a hopeless
/// reason, cancelled and reported with SLURM's reason, by `dry-run` and by
/// `cluster up` alike.
#[test]
fn slurm_jobs_that_can_never_start_are_reported_with_slurms_reason() {
    let system = System::Slurm;
    let _one_at_a_time = system.lock();
    let dir = TempDir::new("slurm-hopeless");
    let dry_run = |config: &std::path::Path| {
        std::process::Command::new(support::rask_binary())
            .args(["cluster", "dry-run"])
            .arg(config)
            .output()
            .expect("rask cluster dry-run runs")
    };

    // More cores than the node has (8).
    let big = system.config(&dir, "  job-cpu: 64\n");
    let before = slurm_jobs_ever();
    let output = dry_run(&big);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a 64-core job passed the dry run");
    assert!(
        stderr.contains("sbatch --test-only")
            && stderr.contains("Requested node configuration is not available"),
        "{stderr}"
    );
    assert_eq!(slurm_jobs_ever(), before, "the dry run submitted a job");

    // An hour on a partition that allows five minutes.
    let long = dir.path().join("long.yaml");
    let text = std::fs::read_to_string(system.config(&dir, ""))
        .unwrap()
        .replace(
            "slurm:\n",
            "slurm:\n  queue: tiny\n  walltime: \"01:00:00\"\n",
        );
    std::fs::write(&long, text).unwrap();
    let output = dry_run(&long);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a job that never starts passed the dry run"
    );
    assert!(
        stderr.contains("but it can never start: Partition"),
        "{stderr}"
    );
    let left = system.wait_queue_empty(Duration::from_secs(30));
    assert!(left.is_empty(), "the dry run left jobs: {left:?}");

    // `cluster up` with the same config says so instead of waiting silently,
    // and backs off as for any failed submission: the first is retried at
    // once, the second waits a minute.
    let up = Up::start(system, &dir, &long, &["--workers", "1"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let log = loop {
        let log = up.proc.log_text();
        if log.contains("next submission in 60 s") {
            break log;
        }
        assert!(Instant::now() < deadline, "no second report:\n{log}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let first = log
        .lines()
        .find(|l| l.contains("can never start as configured"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        first.contains("(Partition") && first.contains("next submission in 0 s"),
        "{log}"
    );
    let left = system.wait_queue_empty(Duration::from_secs(30));
    up.stop();
    assert!(
        left.is_empty(),
        "the hopeless job was not cancelled: {left:?}"
    );
}

/// cluster-configs/sbatch-allocation.sh: scheduler, two srun workers and a
/// client program in one allocation, meeting through a scheduler file.
#[test]
fn slurm_sbatch_allocation_runs_scheduler_workers_and_program() {
    let _one_at_a_time = System::Slurm.lock();
    let dir = TempDir::new("sbatch-allocation");
    let recipe = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("cluster-configs")
        .join("sbatch-allocation.sh");
    let rask = support::rask_binary();
    let output = std::process::Command::new("sbatch")
        .arg("--wait")
        .arg("-o")
        .arg(dir.path().join("job.out"))
        .arg(&recipe)
        .args([
            "bash",
            "-c",
            // Both srun workers first: on a busy machine the second one can
            // join after 2000 tasks are done.
            r#""$0" microbench --scheduler-file "$RASK_SCHEDULER_FILE" --wait-for-workers 2 --tasks 2000 --json"#,
            rask,
        ])
        .current_dir(dir.path())
        .env("RASK", rask)
        .output()
        .expect("sbatch runs");
    let out = std::fs::read_to_string(dir.path().join("job.out")).unwrap_or_default();
    assert!(
        output.status.success(),
        "sbatch: {}\njob output:\n{out}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("{\"cluster\""))
        .unwrap_or_else(|| panic!("no microbench result in:\n{out}"));
    assert!(
        line.contains("\"cluster\":\"tcp\"") && line.contains("\"n\":2000"),
        "{line}"
    );
    // The scheduler's log (in the job's output) saw both srun workers.
    assert_eq!(out.matches("worker joined").count(), 2, "{out}");
    let left = System::Slurm.wait_queue_empty(Duration::from_secs(30));
    assert!(left.is_empty(), "{left:?}");
}

/// Op plugins on workers that sbatch starts: `rask cluster up` with a token
/// (from the environment) hands it to the workers through the job script and
/// to clients through the scheduler file, both readable by their owner only;
/// an uploaded plugin runs on the workers present and on those submitted later.
#[test]
fn slurm_up_with_a_token_runs_an_uploaded_plugin_on_sbatch_workers() {
    use rask::array::{self, DType};
    use rask_plugin_fixture::{score, triple_plus_one};
    use std::os::unix::fs::PermissionsExt;
    const TOKEN: &str = "slurm-plugin-token-7f3a";

    let plugin = support::plugins::fixture_plugin();
    let system = System::Slurm;
    let _one_at_a_time = system.lock();
    let dir = TempDir::new("slurm-plugins");
    let config = system.config(&dir, "  walltime: \"00:10:00\"\n");
    let up = Up::start_with_env(
        system,
        &dir,
        &config,
        &["--workers", "2"],
        &[("RASK_TOKEN", TOKEN)],
    );
    up.wait_workers(2, Duration::from_secs(60));

    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&up.scheduler_file), 0o600);
    let file = rask::client::read_scheduler_file(&up.scheduler_file).expect("scheduler file");
    assert_eq!(file.token.as_deref(), Some(TOKEN));
    let script = dir
        .path()
        .join(format!("rask-{}", up.proc.pid()))
        .join("rask-worker");
    assert_eq!(mode(&script), 0o600);
    // The token is on no command line (every user of a node can read those).
    let shown: Vec<String> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(TOKEN))
        .collect();
    assert!(shown.is_empty(), "the token is on command lines: {shown:?}");
    // A client without it is turned away.
    let stranger = rask::ConnectOptions::new(&file.address.to_string()).connect();
    assert!(stranger.is_err(), "a client without the token connected");

    let report = up.client.upload_plugin(plugin).expect("upload");
    assert_eq!(report.loaded.len(), 2, "{report:?}");
    let scores = |n: i64| {
        let futures = up.client.map(score, 0..n).expect("map");
        let got: Vec<i64> = up.client.gather(&futures).expect("gather");
        assert_eq!(got, (0..n).map(|x| x * x + 1).collect::<Vec<_>>());
    };
    scores(200);
    let x = array::arange(0.0f64, 400.0, 1.0, 50).expect("arange");
    let y = x
        .map_blocks(triple_plus_one, &[], DType::F64)
        .expect("map_blocks");
    let got = y.compute::<f64>(&up.client).expect("compute");
    let want: Vec<f64> = (0..400).map(|i| i as f64 * 3.0 + 1.0).collect();
    assert_eq!(got.iter().copied().collect::<Vec<_>>(), want);

    // A worker submitted after the upload loads it when it joins: with the
    // first two retired, the tasks run where sbatch started it (and on any
    // replacement the launcher submits, also after the upload).
    let first: Vec<_> = up
        .client
        .workers()
        .expect("workers")
        .iter()
        .map(|w| w.id)
        .collect();
    up.cli(&["scale", "3"]);
    up.wait_workers(3, Duration::from_secs(60));
    up.client.retire_workers(&first, 0).expect("retire");
    let deadline = Instant::now() + Duration::from_secs(60);
    while up
        .client
        .workers()
        .expect("workers")
        .iter()
        .any(|w| first.contains(&w.id))
    {
        assert!(
            Instant::now() < deadline,
            "the first workers did not retire"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    scores(100);

    up.stop();
    let left = system.wait_queue_empty(Duration::from_secs(30));
    assert!(left.is_empty(), "jobs left after teardown: {left:?}");
}
