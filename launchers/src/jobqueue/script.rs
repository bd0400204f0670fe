//! Job scripts rendered from a typed config. Every user value is either
//! checked to be one line (directives, which the batch system parses) or
//! single-quoted for the shell (the worker command), so no value can run a
//! command. The prologue and epilogue lines are shell by design.

use crate::config::{Backend, JobQueue};
use rask::comm::TlsFiles;

/// Quotes `text` for a POSIX shell: `'…'`, with each `'` as `'\''`.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
    {
        return text.to_string();
    }
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Where the workers of a job connect to.
#[derive(Clone, Debug)]
pub enum ScriptTarget {
    /// A scheduler address (`tcp://host:port`).
    Address(String),
    /// A scheduler file on a shared file system.
    SchedulerFile(String),
}

/// How a job's workers prove themselves to a scheduler that authenticates
/// peers. The token goes into the script as `RASK_TOKEN` (not onto the worker's
/// command line, which every user of the node can see), so the script must be
/// readable by its owner only; TLS files are named by path, which compute
/// nodes must see (a shared file system, as for dask-jobqueue's `security`).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The scheduler's token.
    pub token: Option<String>,
    /// CA, certificate and key for mutual TLS.
    pub tls: Option<TlsFiles>,
}

/// The directive prefix, and the POSIX shell line that sets `rask_job_id` to
/// the id the launcher knows the job by (array tasks included). PBS jobs run
/// by PBS-style wrappers over SLURM (slurm-wlm-torque) have no `PBS_JOBID`.
fn dialect(backend: &Backend) -> Option<(&'static str, &'static str)> {
    Some(match backend {
        Backend::Slurm(_) => (
            "#SBATCH",
            "rask_job_id=${SLURM_JOB_ID}; if [ -n \"${SLURM_ARRAY_TASK_ID:-}\" ]; then rask_job_id=${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}; fi",
        ),
        Backend::Pbs(_) => ("#PBS", "rask_job_id=${PBS_JOBID:-${SLURM_JOB_ID:-}}"),
        Backend::Sge(_) => (
            "#$",
            "rask_job_id=${JOB_ID}; if [ \"${SGE_TASK_ID:-undefined}\" != undefined ]; then rask_job_id=${JOB_ID}.${SGE_TASK_ID}; fi",
        ),
        Backend::Lsf(_) => ("#BSUB", "rask_job_id=${LSB_JOBID}"),
        Backend::Local(_) | Backend::Kubernetes(_) => return None,
    })
}

/// How long before its walltime ends a worker retires: a tenth of the
/// walltime, at least 5 s and at most 5 minutes (1 h → 55 min of work, as
/// dask-jobqueue advises with `--lifetime`).
pub fn walltime_margin(walltime_seconds: u64) -> u64 {
    (walltime_seconds / 10)
        .clamp(5, 300)
        .min(walltime_seconds / 2)
}

/// The scheduler's own directives for `j`, before extras and skips.
fn directives(backend: &Backend, j: &JobQueue) -> Vec<String> {
    let log = j
        .log_directory
        .as_ref()
        .map(|d| d.0.trim_end_matches('/').to_string());
    let name = &j.name;
    let mut out = Vec::new();
    match backend {
        Backend::Slurm(_) => {
            out.push(format!("-J {name}"));
            if let Some(log) = &log {
                out.push(format!("-e {log}/{name}-%J.err"));
                out.push(format!("-o {log}/{name}-%J.out"));
            }
            if let Some(q) = &j.queue {
                out.push(format!("-p {q}"));
            }
            if let Some(a) = &j.account {
                out.push(format!("-A {a}"));
            }
            out.push("-n 1".into());
            out.push(format!("--cpus-per-task={}", j.job_cpu.unwrap_or(j.cores)));
            out.push(format!(
                "--mem={}M",
                j.job_mem.unwrap_or(j.memory).mebibytes()
            ));
            if let Some(w) = j.walltime {
                out.push(format!("-t {}", w.hms()));
            }
        }
        Backend::Pbs(_) => {
            out.push(format!("-N {name}"));
            if let Some(q) = &j.queue {
                out.push(format!("-q {q}"));
            }
            if let Some(a) = &j.account {
                out.push(format!("-A {a}"));
            }
            match &j.resource_spec {
                Some(spec) => out.push(format!("-l {spec}")),
                None => out.push(format!(
                    "-l select=1:ncpus={}:mem={}MB",
                    j.cores,
                    j.memory.mebibytes()
                )),
            }
            if let Some(w) = j.walltime {
                out.push(format!("-l walltime={}", w.hms()));
            }
            if let Some(log) = &log {
                out.push(format!("-e {log}/"));
                out.push(format!("-o {log}/"));
            }
        }
        Backend::Sge(_) => {
            out.push(format!("-N {name}"));
            if let Some(q) = &j.queue {
                out.push(format!("-q {q}"));
            }
            if let Some(p) = &j.project {
                out.push(format!("-P {p}"));
            }
            if let Some(spec) = &j.resource_spec {
                out.push(format!("-l {spec}"));
            }
            if let Some(w) = j.walltime {
                out.push(format!("-l h_rt={}", w.hms()));
            }
            out.push("-cwd".into());
            out.push("-j y".into());
            if let Some(log) = &log {
                out.push(format!("-e {log}/"));
                out.push(format!("-o {log}/"));
            }
        }
        Backend::Lsf(_) => {
            out.push(format!("-J {name}"));
            if let Some(log) = &log {
                out.push(format!("-e {log}/{name}-%J.err"));
                out.push(format!("-o {log}/{name}-%J.out"));
            }
            if let Some(q) = &j.queue {
                out.push(format!("-q {q}"));
            }
            if let Some(p) = &j.project {
                out.push(format!("-P {p}"));
            }
            out.push(format!("-n {}", j.cores));
            match &j.resource_spec {
                Some(spec) => out.push(format!("-R \"{spec}\"")),
                None => out.push("-R \"span[hosts=1]\"".into()),
            }
            out.push(format!("-M {}MB", j.memory.mebibytes()));
            if let Some(w) = j.walltime {
                out.push(format!("-W {}", w.hm()));
            }
        }
        Backend::Local(_) | Backend::Kubernetes(_) => {}
    }
    out
}

/// The program the job runs: the config's `rask:`, or else this executable
/// (compute nodes see the same path on a shared file system, as for
/// dask-jobqueue's `sys.executable`).
pub fn rask_program(j: &JobQueue) -> String {
    match &j.rask {
        Some(program) => program.0.clone(),
        None => std::env::current_exe()
            .ok()
            .and_then(|path| path.to_str().map(String::from))
            .unwrap_or_else(|| "rask".into()),
    }
}

/// The `rask worker` command line(s) of one job: `processes` workers sharing
/// the job's cores and memory, each named after the job id.
fn worker_commands(j: &JobQueue, target: &ScriptTarget, tls: Option<&TlsFiles>) -> Vec<String> {
    let threads = (j.cores / j.processes).max(1);
    let memory = j.memory.0 / j.processes as u64;
    (0..j.processes)
        .map(|i| {
            let mut args = vec![shell_quote(&rask_program(j)), "worker".into()];
            match target {
                ScriptTarget::Address(a) => args.push(shell_quote(a)),
                ScriptTarget::SchedulerFile(f) => {
                    args.push("--scheduler-file".into());
                    args.push(shell_quote(f));
                }
            }
            args.push("--nthreads".into());
            args.push(threads.to_string());
            args.push("--memory-limit".into());
            args.push(memory.to_string());
            // The job id comes from the batch system: double quotes expand it
            // and nothing else is inside them.
            args.push("--name".into());
            args.push(format!("\"{}-${{rask_job_id}}-{i}\"", j.name));
            if let Some(w) = j.walltime {
                // Retire (handing data and tasks over) before the batch system kills the job.
                args.push("--lifetime".into());
                args.push((w.0 - walltime_margin(w.0)).to_string());
            }
            if let Some(dir) = &j.local_directory {
                args.push("--local-directory".into());
                args.push(shell_quote(&dir.0));
            }
            if let Some(interface) = &j.interface {
                args.push("--interface".into());
                args.push(shell_quote(&interface.0));
            }
            if let Some(timeout) = j.death_timeout {
                args.push("--death-timeout".into());
                args.push(timeout.to_string());
            }
            if let Some(tls) = tls {
                for (flag, path) in [
                    ("--tls-ca-file", &tls.ca),
                    ("--tls-cert", &tls.cert),
                    ("--tls-key", &tls.key),
                ] {
                    args.push(flag.into());
                    args.push(shell_quote(&path.to_string_lossy()));
                }
            }
            args.extend(j.worker_extra_args.iter().map(|a| shell_quote(&a.0)));
            args.join(" ")
        })
        .collect()
}

/// The script one job runs; `None` for the local backend (no jobs).
pub fn job_script(
    backend: &Backend,
    target: &ScriptTarget,
    credentials: &Credentials,
) -> Option<String> {
    let (prefix, job_id_line) = dialect(backend)?;
    let (Backend::Slurm(j) | Backend::Pbs(j) | Backend::Sge(j) | Backend::Lsf(j)) = backend else {
        return None;
    };
    let mut lines = vec![j.shebang.0.clone(), String::new()];
    let skip = |d: &str| j.job_directives_skip.iter().any(|s| d.contains(&s.0));
    for directive in directives(backend, j)
        .into_iter()
        .chain(j.job_extra_directives.iter().map(|d| d.0.clone()))
    {
        if !skip(&directive) {
            lines.push(format!("{prefix} {directive}"));
        }
    }
    lines.push(String::new());
    lines.extend(j.job_script_prologue.iter().map(|l| l.0.clone()));
    lines.push(job_id_line.to_string());
    if let Some(token) = &credentials.token {
        lines.push(format!("export RASK_TOKEN={}", shell_quote(token)));
    }
    let commands = worker_commands(j, target, credentials.tls.as_ref());
    if commands.len() == 1 {
        lines.push(commands[0].clone());
    } else {
        // Several workers per job: start them all, stop them all together.
        for command in &commands {
            lines.push(format!("{command} &"));
        }
        lines.push("trap 'kill $(jobs -p) 2>/dev/null' TERM INT".into());
        lines.push("wait".into());
    }
    lines.extend(j.job_script_epilogue.iter().map(|l| l.0.clone()));
    lines.push(String::new());
    Some(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_everything_literal() {
        assert_eq!(shell_quote("tcp://h:8786"), "tcp://h:8786");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's $(x)"), r"'it'\''s $(x)'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn credentials_reach_the_workers_but_not_their_command_lines() {
        let config = crate::config::ClusterConfig::parse(
            "slurm:\n  cores: 2\n  memory: 1GiB\n  processes: 2\n  rask: /opt/rask\n",
            "c.yaml",
        )
        .expect("valid config");
        let credentials = Credentials {
            token: Some("s3cr'et".into()),
            tls: Some(TlsFiles {
                ca: "/shared/ca.pem".into(),
                cert: "/shared/my cert.pem".into(),
                key: "/shared/key.pem".into(),
            }),
        };
        let target = ScriptTarget::Address("tls://10.0.0.1:8786".into());
        let script = job_script(&config.backend, &target, &credentials).expect("a script");
        let token_line = "export RASK_TOKEN='s3cr'\\''et'";
        assert_eq!(script.matches(token_line).count(), 1, "{script}");
        let workers: Vec<&str> = script.lines().filter(|l| l.contains(" worker ")).collect();
        assert_eq!(workers.len(), 2, "{script}");
        for line in workers {
            assert!(!line.contains("s3cr"), "{line}");
            assert!(
                line.contains(
                    "--tls-ca-file /shared/ca.pem --tls-cert '/shared/my cert.pem' \
                     --tls-key /shared/key.pem"
                ),
                "{line}"
            );
        }
        let plain =
            job_script(&config.backend, &target, &Credentials::default()).expect("a script");
        assert!(
            !plain.contains("RASK_TOKEN") && !plain.contains("--tls"),
            "{plain}"
        );
    }

    #[test]
    fn margins_leave_most_of_the_walltime() {
        assert_eq!(walltime_margin(3600), 300);
        assert_eq!(walltime_margin(600), 60);
        assert_eq!(walltime_margin(30), 5);
        assert_eq!(walltime_margin(6), 3);
    }
}
