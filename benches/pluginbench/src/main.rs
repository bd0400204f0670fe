//! `pluginbench worker ADDR TOKEN`: a worker process with the fixture's ops
//! compiled in. `pluginbench client ADDR TOKEN TASKS [PLUGIN]`: waits for 2
//! workers, uploads PLUGIN if given, then maps the fixture's `score` over
//! TASKS items three times and prints the median seconds as JSON.

use anyhow::{bail, Context, Result};
use rask::comm::security::Security;
use rask::worker::memory::Thresholds;
use rask::worker::process::{run_worker, WorkerOptions};
use rask::ConnectOptions;
use std::time::{Duration, Instant};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["worker", address, token] => worker(address, token),
        ["client", address, token, tasks, rest @ ..] => {
            client(address, token, tasks.parse()?, rest.first().copied())
        }
        _ => bail!("usage: pluginbench worker ADDR TOKEN | client ADDR TOKEN TASKS [PLUGIN]"),
    }
}

fn worker(address: &str, token: &str) -> Result<()> {
    let options = WorkerOptions {
        scheduler: address.parse()?,
        nthreads: 1,
        memory_limit: 0,
        thresholds: Thresholds::default(),
        name: None,
        local_directory: std::env::temp_dir(),
        resources: Vec::new(),
        host: "127.0.0.1".into(),
        security: Security::none().with_token(Some(token.to_string())),
        lifetime: None,
        death_timeout: Some(Duration::from_secs(30)),
        no_plugins: false,
    };
    run_worker(options).context("worker")?;
    Ok(())
}

fn client(address: &str, token: &str, tasks: i64, plugin: Option<&str>) -> Result<()> {
    let client = ConnectOptions::new(address).token(token).connect()?;
    client.wait_for_workers(2, Duration::from_secs(60))?;
    if let Some(plugin) = plugin {
        let report = client.upload_plugin(plugin)?;
        anyhow::ensure!(
            report.loaded.len() == 2,
            "not loaded everywhere: {report:?}"
        );
    }
    let mut times = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let futures = client.map(rask_plugin_fixture::score, 0..tasks)?;
        let results = client.gather(&futures)?;
        times.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(results[7] == 50, "wrong result");
    }
    times.sort_by(f64::total_cmp);
    println!("{{\"tasks\":{tasks},\"seconds\":{:.3}}}", times[1]);
    Ok(())
}
