//! `rask jobqueuebench`: how fast `rask cluster up` gets workers on a batch
//! system. (1) From starting `rask cluster up CONFIG --workers N` until N
//! workers are connected; (2) with `--adapt 0:N` and an idle cluster, from a
//! burst of 20·N one-second tasks until the first and the N-th worker connect.
//! benches/jobqueue.sh runs it beside dask-jobqueue's SLURMCluster.

use anyhow::{bail, Context, Result};
use rask::ops::builtin::sleep_then;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Options of `rask jobqueuebench`.
#[derive(clap::Args)]
pub struct Args {
    /// The YAML cluster config (a job-queue backend).
    config: PathBuf,
    /// Workers to reach.
    #[arg(long, default_value_t = 4)]
    workers: u32,
    /// Repetitions (the median is reported).
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Print one JSON line instead of text.
    #[arg(long)]
    json: bool,
}

struct Up {
    child: Child,
    client: rask::Client,
}

impl Up {
    fn start(config: &Path, scaling: &[String], dir: &Path) -> Result<Up> {
        let file = dir.join("scheduler.json");
        let _ = std::fs::remove_file(&file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("up.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .args(["cluster", "up"])
            .arg(config)
            .args(scaling)
            .arg("--scheduler-file")
            .arg(&file)
            .arg("--workdir")
            .arg(dir)
            .env("RASK_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting rask cluster up")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !file.exists() {
            if Instant::now() > deadline {
                bail!("rask cluster up wrote no scheduler file");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let client = rask::ConnectOptions::scheduler_file(&file).connect()?;
        Ok(Up { child, client })
    }

    fn wait_workers(&self, n: usize) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while self.client.workers()?.len() < n {
            if Instant::now() > deadline {
                bail!("{n} workers did not connect within 120 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }

    fn stop(self) -> Result<()> {
        let Up { mut child, client } = self;
        // The client goes first, so it does not report the scheduler leaving.
        drop(client);
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait()?;
        if !status.success() {
            bail!("rask cluster up exited with {status}");
        }
        Ok(())
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

pub fn run(args: Args) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("rask-jobqueuebench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let n = args.workers;
    let (mut up_times, mut first_times, mut all_times) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.repeat.max(1) {
        let started = Instant::now();
        let up = Up::start(&args.config, &["--workers".into(), n.to_string()], &dir)?;
        up.wait_workers(n as usize)?;
        up_times.push(started.elapsed().as_secs_f64());
        up.stop()?;

        let up = Up::start(&args.config, &["--adapt".into(), format!("0:{n}")], &dir)?;
        std::thread::sleep(Duration::from_secs(2));
        let burst = Instant::now();
        // 20 s of work per wanted worker, in 1-s tasks: even at the 0.5 s
        // guessed for tasks never seen, that asks for all of them.
        let tasks = up
            .client
            .map(sleep_then, (0..u64::from(20 * n)).map(|i| (1000u64, i)))?;
        up.wait_workers(1)?;
        first_times.push(burst.elapsed().as_secs_f64());
        up.wait_workers(n as usize)
            .with_context(|| format!("adaptive scale-up; see {}", dir.join("up.log").display()))?;
        all_times.push(burst.elapsed().as_secs_f64());
        up.client.cancel(&tasks)?;
        drop(tasks);
        up.stop()?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (up, first, all) = (median(up_times), median(first_times), median(all_times));
    if args.json {
        println!(
            "{{\"up_s\": {up:.4}, \"adapt_first_s\": {first:.4}, \"adapt_all_s\": {all:.4}, \"workers\": {n}}}"
        );
    } else {
        println!("cluster up until {n} workers: {up:.3} s");
        println!("adaptive, burst until the first worker: {first:.3} s, until {n}: {all:.3} s");
    }
    Ok(())
}
