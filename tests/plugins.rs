//! Op plugins on real processes: a crate of ops built with `rask plugin build`,
//! uploaded by a client, run by stock `rask worker` processes — those present
//! at the upload, one that joins later and one its nanny restarted — and every
//! way an upload can be refused.

mod support;

use rask::array::{self, DType};
use rask::{Client, ConnectOptions};
use rask_plugin_fixture::{explode, score, triple_plus_one};
use std::path::Path;
use std::time::{Duration, Instant};
use support::plugins::{build_plugin, dataframe_plugin, fixture_plugin};
use support::Cluster;

const TOKEN: &str = "plugin-tests";

fn common() -> Vec<String> {
    vec!["--token".into(), TOKEN.into()]
}

fn connect(cluster: &Cluster) -> Client {
    ConnectOptions::new(&cluster.address)
        .token(TOKEN)
        .connect()
        .expect("client connects")
}

/// Waits until `check` holds, or fails after 60 s saying `what`.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scores_are_right(client: &Client, n: i64) {
    let futures = client.map(score, 0..n).expect("map");
    let got = client.gather(&futures).expect("gather");
    let want: Vec<i64> = (0..n).map(|x| x * x + 1).collect();
    assert_eq!(got, want);
}

#[test]
fn stock_workers_run_an_uploaded_plugin_also_after_joining_late_or_restarting() {
    let plugin = fixture_plugin();
    let mut cluster = Cluster::start("plugins", &common());
    for _ in 0..3 {
        cluster.add_worker(&["--nthreads", "1"]);
    }
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 3);

    let report = client.upload_plugin(plugin).expect("upload");
    assert_eq!(report.loaded.len(), 3, "{report:?}");
    assert!(report.refused.is_empty(), "{report:?}");
    for (_, ops) in &report.loaded {
        assert!(ops.iter().any(|op| op.ends_with("::score")), "{ops:?}");
    }
    // A scalar op over the three workers.
    scores_are_right(&client, 300);
    // An array kernel (map_blocks).
    let x = array::arange(0.0f64, 1000.0, 1.0, 100).expect("arange");
    let y = x
        .map_blocks(triple_plus_one, &[], DType::F64)
        .expect("map_blocks");
    let got: Vec<f64> = y
        .compute::<f64>(&client)
        .expect("compute")
        .iter()
        .copied()
        .collect();
    let want: Vec<f64> = (0..1000).map(|i| i as f64 * 3.0 + 1.0).collect();
    assert_eq!(got, want);
    // A panic fails its task with the message, naming the task and the
    // worker it failed on; the workers keep serving.
    let boom = client
        .submit(explode, "kaboom".to_string())
        .expect("submit");
    let error = boom.result().expect_err("the op panics");
    let shown = error.to_string();
    assert!(shown.contains("kaboom"), "{shown}");
    assert!(shown.contains(&boom.key().to_string()), "{shown}");
    assert!(
        (0..3).any(|n| shown.contains(&format!("on worker w{n}:"))),
        "{shown}"
    );
    // `unwrap()` shows the same message (the error's Debug is its Display).
    assert_eq!(format!("{error:?}"), shown);
    scores_are_right(&client, 30);

    // A worker that joins after the upload loads it when it joins: with the
    // others retired, it runs every task.
    let late = cluster.add_worker(&["--nthreads", "1"]);
    cluster.wait_for_workers(&client, 4);
    let first_three: Vec<_> = client
        .workers()
        .expect("workers")
        .into_iter()
        .filter(|w| w.name != "w3")
        .map(|w| w.id)
        .collect();
    client.retire_workers(&first_three, 0).expect("retire");
    cluster.wait_for_workers(&client, 1);
    scores_are_right(&client, 50);

    // Its nanny restarts it after a kill; the new process loads the plugin too.
    let pid = cluster.worker_pid(&client, "w3");
    support::kill(pid, "KILL");
    wait_until("the restarted worker", || {
        client
            .workers()
            .is_ok_and(|w| w.len() == 1 && w[0].pid != pid)
    });
    scores_are_right(&client, 50);
    let log = cluster.workers[late].log_text();
    assert_eq!(log.matches("loaded a plugin").count(), 2, "{log}");
}

/// A dataframe op from a plugin, over the partitions of a frame, on stock
/// workers. Polars makes the library larger than a message frame (about
/// 100 MB): it travels as a blob, to the scheduler and on to every worker.
#[test]
fn stock_workers_run_a_dataframe_plugin_larger_than_a_message() {
    use rask::dataframe::polars::prelude::{df, DataFrame as Frame, IntoLazy};
    use rask::dataframe::{col, lit, DataFrame};
    use rask_plugin_dataframe::fare_per_mile;

    let plugin = dataframe_plugin();
    let size = std::fs::metadata(&plugin).expect("the library").len();
    let frame_limit = u64::from(rask::comm::frame::Limits::default().max_message);
    assert!(
        size > frame_limit,
        "the dataframe plugin ({size} bytes) no longer tests a library larger than a message"
    );
    let mut cluster = Cluster::start("plugins-dataframe", &common());
    for _ in 0..2 {
        cluster.add_worker(&["--nthreads", "1"]);
    }
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 2);
    let report = client.upload_plugin(&plugin).expect("upload");
    assert_eq!(report.loaded.len(), 2, "{report:?}");

    let n = 10_000;
    let miles: Vec<f64> = (0..n).map(|i| 1.0 + (i % 17) as f64).collect();
    let fare: Vec<f64> = (0..n).map(|i| 2.5 + (i % 53) as f64).collect();
    let trips: Frame = df!("miles" => miles, "fare" => fare).expect("a frame");
    let frame = DataFrame::from_polars(trips.clone(), 8).expect("partitions");
    let got = frame
        .map_partitions(fare_per_mile, None)
        .expect("map_partitions")
        .compute(&client)
        .expect("compute");
    let want = trips
        .lazy()
        .with_column((col("fare") / col("miles")).alias("fare_per_mile"))
        .filter(col("fare_per_mile").gt(lit(2.0)))
        .collect()
        .expect("polars");
    assert!(
        want.height() > 1000 && want.height() < n,
        "{}",
        want.height()
    );
    assert!(got.equals(&want), "got {got}\nwant {want}");
    for worker in &cluster.workers {
        let log = worker.log_text();
        assert!(log.contains("loaded a plugin"), "{log}");
    }
}

#[test]
fn bad_plugins_and_uploads_are_refused_with_clear_errors() {
    let plugin = fixture_plugin();
    let future = build_plugin("tests/plugin-future/Cargo.toml");
    let mut cluster = Cluster::start("plugin-refusals", &common());
    cluster.add_worker(&[]);
    cluster.add_worker(&["--no-plugins"]);
    let client = connect(&cluster);
    cluster.wait_for_workers(&client, 2);

    // A --no-plugins worker refuses; the other loads it.
    let report = client.upload_plugin(plugin).expect("upload");
    assert_eq!(report.loaded.len(), 1, "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert!(report.refused[0].1.contains("--no-plugins"), "{report:?}");
    // `client.workers()` shows which worker takes plugin tasks and what it loaded.
    let workers = client.workers().expect("workers");
    let offers = |w: &rask::comm::protocol::WorkerSummary| {
        w.resources
            .iter()
            .any(|(name, _)| name == rask::plugin::RESOURCE)
    };
    let (loading, refusing): (Vec<_>, Vec<_>) = workers.iter().partition(|w| offers(w));
    assert_eq!((loading.len(), refusing.len()), (1, 1), "{workers:?}");
    assert_eq!(
        loading[0].plugins,
        ["librask_plugin_fixture.so"],
        "{workers:?}"
    );
    assert!(refusing[0].plugins.is_empty(), "{workers:?}");

    let dir = &cluster.dir;
    let refused = |path: &Path| {
        client
            .upload_plugin(path)
            .expect_err("every worker refuses it")
            .to_string()
    };
    // A plugin of another interface version: both versions named.
    let error = refused(&future);
    assert!(
        error.contains("interface version 999") && error.contains("speaks version 1"),
        "{error}"
    );
    // A file that is not a library.
    let text = dir.path().join("notes.so");
    std::fs::write(&text, "not a library\n").unwrap();
    let error = refused(&text);
    assert!(error.contains("not a loadable shared library"), "{error}");
    // A truncated library.
    let bytes = std::fs::read(plugin).unwrap();
    let truncated = dir.path().join("truncated.so");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let error = refused(&truncated);
    assert!(error.contains("not a loadable shared library"), "{error}");
    // A shared library that is not a rask plugin (the C library).
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let libc = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.contains("/libc.so"))
        .expect("libc is mapped");
    let error = refused(Path::new(libc));
    assert!(error.contains("is not a rask plugin"), "{error}");
    // A file over the 1 GiB a plugin may have is refused before it is read
    // (it is sparse: nothing is written).
    let huge = dir.path().join("huge.so");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len((1 << 30) + 1))
        .unwrap();
    let error = client
        .upload_plugin(&huge)
        .expect_err("too large")
        .to_string();
    assert!(error.contains("more than the"), "{error}");
    // Nothing crashed: the plugin's ops still run.
    scores_are_right(&client, 20);
    assert!(cluster
        .workers
        .iter_mut()
        .all(|w| w.wait_exit(Duration::ZERO).is_none()));

    // Without the token there is no connection at all.
    assert!(Client::connect(&cluster.address).is_err());
    // A scheduler that authenticates nobody takes no plugins.
    let open = Cluster::start("plugin-open", &[]);
    let open_client = Client::connect(&open.address).expect("connects");
    let error = open_client
        .upload_plugin(plugin)
        .expect_err("refused")
        .to_string();
    assert!(error.contains("does not authenticate clients"), "{error}");
}
