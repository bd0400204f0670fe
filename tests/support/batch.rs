//! `rask cluster up` on the real batch systems the test setup starts
//! (scripts/infra/slurm-up.sh, sge-up.sh): a launcher process, a client of its
//! scheduler, and what the queue says.

use super::{kill, rask_binary, Proc, TempDir};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A batch system held by one test (see [`System::lock`]): a lock in this
/// process and a file lock across test processes, both let go on drop.
pub struct BatchLock {
    _file: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

/// A batch system under test.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum System {
    Slurm,
    Sge,
    /// PBS-style qsub/qstat/qdel (Debian's slurm-wlm-torque) over the SLURM.
    Pbs,
}

static SLURM: Mutex<()> = Mutex::new(());
static SGE: Mutex<()> = Mutex::new(());

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Slurm => "slurm",
            System::Sge => "sge",
            System::Pbs => "pbs",
        }
    }

    /// PATH for the launcher: the PBS wrappers first.
    pub fn path(self) -> String {
        let path = std::env::var("PATH").unwrap_or_default();
        match self {
            System::Pbs => {
                let wrappers = std::env::var("RASK_TEST_TORQUE_BIN").expect(
                    "RASK_TEST_TORQUE_BIN: the test command (scripts/test.sh) unpacks the \
                     PBS wrappers with scripts/infra/torque-wrappers.sh",
                );
                format!("{wrappers}:{path}")
            }
            _ => path,
        }
    }

    /// One test at a time per system, so "the queue is empty" means something;
    /// panics with a hint when the system is not running.
    pub fn lock(self) -> BatchLock {
        let guard = match self {
            System::Slurm | System::Pbs => SLURM.lock(),
            System::Sge => SGE.lock(),
        }
        .unwrap_or_else(|poisoned| poisoned.into_inner());
        // And one test process at a time: the test command runs test binaries
        // side by side (the Jupyter kernel's notebooks use SLURM too).
        let family = if self == System::Sge { "sge" } else { "slurm" };
        let path = std::env::temp_dir().join(format!("rask-tests-{family}.lock"));
        let file = std::fs::File::create(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        file.lock()
            .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
        let probe = match self {
            System::Slurm | System::Pbs => Command::new("sinfo").args(["-h", "-o", "%T"]).output(),
            System::Sge => Command::new("qstat").arg("-f").output(),
        };
        let up = probe.is_ok_and(|o| o.status.success());
        assert!(
            up,
            "{} is not running here: the test command (scripts/test.sh) starts it \
             with scripts/infra/{}-up.sh",
            self.name(),
            if self == System::Sge { "sge" } else { "slurm" }
        );
        // A test that failed before its teardown leaves jobs behind: cancel
        // them, so that one failure does not fail the tests after it too.
        if !self.queue().is_empty() {
            let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
            let _ = match self {
                System::Slurm | System::Pbs => Command::new("scancel").args(["-u", &user]).status(),
                System::Sge => Command::new("qdel").args(["-u", &user]).status(),
            };
            self.wait_queue_empty(Duration::from_secs(60));
        }
        BatchLock {
            _file: file,
            _guard: guard,
        }
    }

    /// This user's jobs in the queue, one line each (empty when none).
    pub fn queue(self) -> Vec<String> {
        let output = match self {
            System::Slurm | System::Pbs => {
                Command::new("squeue").args(["-h", "-o", "%i %T"]).output()
            }
            System::Sge => Command::new("qstat").output(),
        }
        .expect("queue command runs");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("job-ID") && !l.starts_with("---"))
            .map(String::from)
            .collect()
    }

    /// Waits until the queue has none of this user's jobs.
    pub fn wait_queue_empty(self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let jobs = self.queue();
            if jobs.is_empty() || Instant::now() > deadline {
                return jobs;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the queue holds exactly `n` jobs; returns how many it holds.
    pub fn wait_queue_empty_but(self, n: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let jobs = self.queue().len();
            if jobs == n || Instant::now() > deadline {
                return jobs;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A config section for 1-core workers of this binary; `extra` are more
    /// YAML lines at the section's indentation.
    pub fn config(self, dir: &TempDir, extra: &str) -> PathBuf {
        let path = dir.path().join(format!("{}.yaml", self.name()));
        // The PBS wrappers pass -e/-o to sbatch as file names, not directories,
        // and know Torque's nodes/ppn resources.
        let text = match self {
            System::Pbs => format!(
                "pbs:\n  cores: 1\n  memory: 400MiB\n  rask: {}\n  resource-spec: nodes=1:ppn=1\n{extra}",
                rask_binary()
            ),
            _ => format!(
                "{}:\n  cores: 1\n  memory: 400MiB\n  rask: {}\n  log-directory: logs\n{extra}",
                self.name(),
                rask_binary()
            ),
        };
        std::fs::write(&path, text).expect("config written");
        path
    }
}

/// A running `rask cluster up`.
pub struct Up {
    pub proc: Proc,
    pub scheduler_file: PathBuf,
    pub client: rask::Client,
}

impl Up {
    /// Starts `rask cluster up CONFIG ARGS…` in `dir` and connects a client.
    pub fn start(system: System, dir: &TempDir, config: &PathBuf, args: &[&str]) -> Up {
        Up::start_with_env(system, dir, config, args, &[])
    }

    /// [`Up::start`] with more environment variables for `rask cluster up`;
    /// the client connects with what the scheduler file says (the token too).
    pub fn start_with_env(
        system: System,
        dir: &TempDir,
        config: &PathBuf,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Up {
        let scheduler_file = dir.path().join("scheduler.json");
        let log = dir.path().join("up.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(rask_binary())
            .args(["cluster", "up"])
            .arg(config)
            .args(args)
            .arg("--scheduler-file")
            .arg(&scheduler_file)
            .arg("--workdir")
            .arg(dir.path())
            .env("RASK_LOG", "info")
            .env("PATH", system.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("rask cluster up starts");
        let proc = Proc { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !scheduler_file.exists() {
            assert!(
                Instant::now() < deadline,
                "no scheduler file; log:\n{}",
                proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let client = rask::ConnectOptions::scheduler_file(&scheduler_file)
            .connect()
            .expect("client connects");
        Up {
            proc,
            scheduler_file,
            client,
        }
    }

    /// Waits until `n` workers are connected; returns how long that took.
    pub fn wait_workers(&self, n: usize, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let have = self.client.workers().map(|w| w.len()).unwrap_or(0);
            if have == n {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < timeout,
                "{have} workers, expected {n}; log:\n{}",
                self.proc.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `rask cluster SUBCOMMAND … --scheduler-file F`; returns stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new(rask_binary())
            .arg("cluster")
            .args(args)
            .arg("--scheduler-file")
            .arg(&self.scheduler_file)
            .output()
            .expect("rask cluster runs");
        assert!(
            output.status.success(),
            "rask cluster {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `rask cluster status` once it contains `wanted` (the launcher looks
    /// once per interval, so it may lag the scheduler a little).
    pub fn status_with(&self, wanted: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.cli(&["status"]);
            if status.contains(wanted) {
                return status;
            }
            assert!(Instant::now() < deadline, "no {wanted:?} in:\n{status}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, and waits for a clean exit; returns the log.
    pub fn stop(mut self) -> String {
        kill(self.proc.pid() as u32, "TERM");
        let code = self.proc.wait_exit(Duration::from_secs(90));
        let log = self.proc.log_text();
        assert_eq!(code, Some(0), "cluster up exit; log:\n{log}");
        assert!(log.contains("no jobs left"), "{log}");
        log
    }
}
