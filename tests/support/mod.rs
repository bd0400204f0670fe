//! A cluster of real `rask` processes on 127.0.0.1 for tests: one scheduler and
//! worker processes, killed when the test ends.

#![allow(dead_code)]

pub mod batch;
pub mod chromium;
pub mod kubernetes;
pub mod object_stores;
pub mod plugins;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rask-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child process killed on drop; its stderr goes to a log file.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: &str) {
        kill(self.pid() as u32, signal);
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code().or(Some(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Peak resident memory (VmHWM) in bytes, while the process runs.
    pub fn peak_rss(&self) -> u64 {
        peak_rss(self.pid() as u32)
    }
}

/// Peak resident memory (VmHWM) of process `pid` in bytes, while it runs.
pub fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Sends `signal` (e.g. "KILL") to process `pid`.
pub fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub fn rask_binary() -> &'static str {
    env!("CARGO_BIN_EXE_rask")
}

/// Starts `rask ARGS…` with its stderr in `log`.
pub fn spawn(args: &[String], log: PathBuf) -> Proc {
    let file = std::fs::File::create(&log).expect("log file");
    let child = Command::new(rask_binary())
        .args(args)
        .env("RASK_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("rask starts");
    Proc { child, log }
}

/// A scheduler process and its workers.
pub struct Cluster {
    pub dir: TempDir,
    pub scheduler: Proc,
    pub address: String,
    pub dashboard: String,
    pub workers: Vec<Proc>,
    /// Extra arguments for every process (TLS, token).
    pub common: Vec<String>,
    next_worker: usize,
}

impl Cluster {
    /// Starts a scheduler (any free ports) with `extra` arguments.
    pub fn start(label: &str, common: &[String]) -> Cluster {
        let dir = TempDir::new(label);
        let file = dir.path().join("scheduler.json");
        let mut args: Vec<String> = [
            "scheduler",
            "--port",
            "0",
            "--dashboard-port",
            "0",
            "--scheduler-file",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(file.display().to_string());
        args.extend(common.iter().cloned());
        let mut scheduler = spawn(&args, dir.path().join("scheduler.log"));
        let deadline = Instant::now() + Duration::from_secs(20);
        let json = loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
                    break json;
                }
            }
            if let Ok(Some(status)) = scheduler.child.try_wait() {
                panic!("scheduler exited with {status}: {}", scheduler.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "no scheduler file: {}",
                scheduler.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        Cluster {
            address: json["address"].as_str().expect("address").to_string(),
            dashboard: json["dashboard_address"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            dir,
            scheduler,
            workers: Vec::new(),
            common: common.to_vec(),
            next_worker: 0,
        }
    }

    /// Starts a worker process with `extra` arguments; returns its index.
    pub fn add_worker(&mut self, extra: &[&str]) -> usize {
        let n = self.next_worker;
        self.next_worker += 1;
        let mut args = vec![
            "worker".to_string(),
            self.address.clone(),
            "--name".into(),
            format!("w{n}"),
            "--local-directory".into(),
            self.dir.path().display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(self.common.iter().cloned());
        let log = self.dir.path().join(format!("worker-{n}.log"));
        self.workers.push(spawn(&args, log));
        self.workers.len() - 1
    }

    pub fn scheduler_file(&self) -> PathBuf {
        self.dir.path().join("scheduler.json")
    }

    /// Waits until the scheduler reports `n` workers.
    pub fn wait_for_workers(&self, client: &rask::Client, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let have = client.workers().map(|w| w.len()).unwrap_or(0);
            if have == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{have} workers joined, expected {n}; scheduler log:\n{}",
                self.scheduler.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The process id of the worker named `name` (under its nanny), as the
    /// scheduler knows it.
    pub fn worker_pid(&self, client: &rask::Client, name: &str) -> u32 {
        let workers = client.workers().expect("workers");
        workers
            .iter()
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("no worker {name} among {workers:?}"))
            .pid
    }

    /// Prints every worker's peak RSS against `limit` and asserts it stayed
    /// within 110% of it (the worker processes, not their nannies).
    pub fn assert_peaks_within_limit(&self, client: &rask::Client, limit: u64) {
        for i in 0..self.workers.len() {
            let peak = peak_rss(self.worker_pid(client, &format!("w{i}")));
            println!(
                "worker {i}: peak RSS {:.1} MiB against a {:.0} MiB limit ({:.0}%)",
                peak as f64 / (1 << 20) as f64,
                limit as f64 / (1 << 20) as f64,
                100.0 * peak as f64 / limit as f64
            );
            assert!(
                peak as f64 <= 1.10 * limit as f64,
                "worker {i} peaked at {peak} bytes, over 110% of {limit}:\n{}",
                self.workers[i].log_text()
            );
        }
    }

    /// An HTTP GET or POST on the dashboard port; returns (status, body).
    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        self.http_with(method, path, body, &[])
    }

    /// An HTTP request with extra headers (e.g. `Authorization`).
    pub fn http_with(
        &self,
        method: &str,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, String) {
        http_with(
            self.dashboard.trim_start_matches("http://"),
            method,
            path,
            body,
            headers,
        )
    }
}

/// One HTTP/1.1 request with a JSON body to `host` ("ip:port"), unsigned;
/// returns (status, body).
pub fn http(host: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    http_with(host, method, path, body, &[])
}

/// [`http`] with extra headers (a `Content-Type` among them replaces JSON).
pub fn http_with(
    host: &str,
    method: &str,
    path: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(host).expect("server port");
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    // JSON unless the caller names another type.
    let json = if headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
    {
        ""
    } else {
        "Content-Type: application/json\r\n"
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}{json}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

/// The test venv's Python: `$RASK_TEST_PYTHON` (set by scripts/test.sh, which
/// installs zarr, moto, boto3 and fake-gcs-server into target/test-venv).
pub fn python() -> PathBuf {
    std::env::var("RASK_TEST_PYTHON").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python"),
        PathBuf::from,
    )
}

/// Runs a Python script with extra environment; returns its stdout, failing
/// the test with its output if it fails.
pub fn run_python(script: &str, env: &[(String, String)]) -> String {
    let output = Command::new(python())
        .args(["-c", script])
        .envs(env.iter().cloned())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/test.sh)", python().display()));
    assert!(
        output.status.success(),
        "python failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}
