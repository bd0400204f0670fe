//! The batch systems' commands: submitting a job script, polling job states,
//! cancelling, and reading what each command prints.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// A batch system rask submits worker jobs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchSystem {
    /// SLURM: sbatch, squeue, scancel (and sacct when accounting is on).
    Slurm,
    /// PBS and Torque: qsub, qstat, qdel.
    Pbs,
    /// Grid Engine: qsub, qstat, qdel.
    Sge,
    /// LSF: bsub, bjobs, bkill.
    Lsf,
}

/// Where a job is in its life, as its batch system reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Queued, held or starting.
    Pending,
    /// Running (or completing).
    Running,
    /// Ended; the batch system's word for how (`COMPLETED`, `FAILED`, `Eqw`, …).
    Ended(String),
}

/// What a poll of the queue found: each listed job's state, for SLURM array
/// tasks (`12_3`) the plain job id their output files are named by, and why
/// pending jobs wait, where the system says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Queue {
    /// States by job id.
    pub states: HashMap<String, JobState>,
    /// Plain job ids of array tasks.
    pub plain_ids: HashMap<String, String>,
    /// Why pending jobs wait, in the batch system's words (SLURM: `Resources`,
    /// `Priority`, `PartitionConfig`, …).
    pub reasons: HashMap<String, String>,
}

/// Pending reasons of SLURM's that no wait resolves: the job asks for more
/// than its partition, account or QOS allows a job, or for nodes that are
/// not there. (Per-user and per-group QOS limits lift as other jobs end.)
pub fn hopeless_reason(system: BatchSystem, reason: &str) -> bool {
    if system != BatchSystem::Slurm {
        return false;
    }
    let word = reason
        .split([',', ' ', '('])
        .find(|w| !w.is_empty())
        .unwrap_or("");
    matches!(
        word,
        "PartitionConfig"
            | "PartitionNodeLimit"
            | "PartitionTimeLimit"
            | "BadConstraints"
            | "ReqNodeNotAvail"
            | "InvalidQOS"
            | "InvalidAccount"
            | "QOSNotAllowed"
            | "AccountNotAllowed"
    ) || ((word.starts_with("QOS") || word.starts_with("Assoc")) && word.contains("PerJob"))
        || word.starts_with("QOSMin")
}

/// A batch command that failed or printed something unexpected.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The command could not be started (not installed, not on PATH).
    #[error("running `{command}`: {error}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        error: std::io::Error,
    },
    /// It exited with an error.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Its output had no job id in it.
    #[error("`{command}` printed no job id: {output:?}")]
    NoJobId {
        /// The command line.
        command: String,
        /// What it printed.
        output: String,
    },
}

/// Runs `program args…` (in `dir`, with `stdin` fed in, if given) and returns its stdout.
fn run_in(
    dir: Option<&Path>,
    program: &str,
    args: &[String],
    stdin: Option<&str>,
) -> Result<String, BatchError> {
    let command = std::iter::once(program.to_string())
        .chain(args.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut command_line = Command::new(program);
    if let Some(dir) = dir {
        command_line.current_dir(dir);
    }
    let mut child = command_line
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| BatchError::Spawn {
            command: command.clone(),
            error,
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        let _ = pipe.write_all(text.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|error| BatchError::Spawn {
            command: command.clone(),
            error,
        })?;
    if !output.status.success() {
        return Err(BatchError::Failed {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn run(program: &str, args: &[String], stdin: Option<&str>) -> Result<String, BatchError> {
    run_in(None, program, args, stdin)
}

impl BatchSystem {
    /// The system's name, as in configs.
    pub fn name(self) -> &'static str {
        match self {
            BatchSystem::Slurm => "slurm",
            BatchSystem::Pbs => "pbs",
            BatchSystem::Sge => "sge",
            BatchSystem::Lsf => "lsf",
        }
    }

    /// Whether one submission can start `n` identical jobs (a job array).
    pub fn has_arrays(self) -> bool {
        matches!(self, BatchSystem::Slurm | BatchSystem::Sge)
    }

    /// The submit command for `script` (a file), as program and arguments;
    /// `array` starts that many copies in one submission.
    pub fn submit_command(self, script: &Path, array: Option<usize>) -> (String, Vec<String>) {
        let path = script.display().to_string();
        let (program, mut args): (&str, Vec<String>) = match self {
            BatchSystem::Slurm => ("sbatch", vec!["--parsable".into()]),
            BatchSystem::Pbs => ("qsub", vec![]),
            BatchSystem::Sge => ("qsub", vec!["-terse".into()]),
            BatchSystem::Lsf => ("bsub", vec![]),
        };
        match (self, array) {
            (BatchSystem::Slurm, Some(n)) => args.push(format!("--array=0-{}", n - 1)),
            (BatchSystem::Sge, Some(n)) => args.extend(["-t".into(), format!("1-{n}")]),
            _ => {}
        }
        if self != BatchSystem::Lsf {
            // bsub reads the script from stdin, so that it sees the #BSUB lines.
            args.push(path);
        }
        (program.into(), args)
    }

    /// Submits `script` from directory `dir` (where the jobs' default output
    /// files go) and returns the ids of the jobs it started.
    pub fn submit(
        self,
        script: &Path,
        array: Option<usize>,
        dir: &Path,
    ) -> Result<Vec<String>, BatchError> {
        let (program, args) = self.submit_command(script, array);
        let stdin = match self {
            BatchSystem::Lsf => {
                Some(
                    std::fs::read_to_string(script).map_err(|error| BatchError::Spawn {
                        command: format!("reading {}", script.display()),
                        error,
                    })?,
                )
            }
            _ => None,
        };
        let output = run_in(Some(dir), &program, &args, stdin.as_deref())?;
        self.parse_submit(&output, array)
            .ok_or_else(|| BatchError::NoJobId {
                command: format!("{program} {}", args.join(" ")),
                output: output.trim().to_string(),
            })
    }

    /// The job ids in what the submit command printed.
    pub fn parse_submit(self, output: &str, array: Option<usize>) -> Option<Vec<String>> {
        let line = output.lines().map(str::trim).find(|l| !l.is_empty())?;
        let base = match self {
            // `123` or `123;cluster`
            BatchSystem::Slurm => line.split(';').next()?.trim().to_string(),
            // `123.server` (Torque, PBS Pro) or `123`
            BatchSystem::Pbs => line.split_whitespace().next()?.to_string(),
            // -terse: `123` or, for arrays, `123.1-3:1`
            BatchSystem::Sge => line.split('.').next()?.trim().to_string(),
            // `Job <123> is submitted to queue <normal>.`
            BatchSystem::Lsf => {
                let start = line.find('<')? + 1;
                let end = start + line[start..].find('>')?;
                line[start..end].to_string()
            }
        };
        let numeric = base.split('.').next().unwrap_or("");
        if numeric.is_empty() || !numeric.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Some(match (self, array) {
            (BatchSystem::Slurm, Some(n)) => (0..n).map(|i| format!("{base}_{i}")).collect(),
            (BatchSystem::Sge, Some(n)) => (1..=n).map(|i| format!("{base}.{i}")).collect(),
            _ => vec![base],
        })
    }

    /// The states of this user's jobs (jobs the system no longer lists are absent).
    pub fn poll(self) -> Result<Queue, BatchError> {
        let (program, args): (&str, Vec<&str>) = match self {
            BatchSystem::Slurm => (
                "squeue",
                vec!["--me", "-h", "-r", "-t", "all", "-o", "%i %T %A %r"],
            ),
            BatchSystem::Pbs => ("qstat", vec![]),
            BatchSystem::Sge => ("qstat", vec![]),
            BatchSystem::Lsf => ("bjobs", vec!["-a", "-noheader", "-o", "jobid stat"]),
        };
        let args: Vec<String> = args.into_iter().map(String::from).collect();
        Ok(self.parse_poll(&run(program, &args, None)?))
    }

    /// Reads what the poll command printed.
    pub fn parse_poll(self, output: &str) -> Queue {
        let mut states = HashMap::new();
        let mut plain_ids = HashMap::new();
        let mut reasons = HashMap::new();
        for line in output.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match self {
                BatchSystem::Slurm if fields.len() >= 2 => {
                    let state = slurm_state(fields[1]);
                    if let Some(plain) = fields.get(2).filter(|p| **p != fields[0]) {
                        plain_ids.insert(fields[0].to_string(), plain.to_string());
                    }
                    let reason = fields.get(3..).unwrap_or_default().join(" ");
                    if state == JobState::Pending && !reason.is_empty() && reason != "None" {
                        reasons.insert(fields[0].to_string(), reason);
                    }
                    states.insert(fields[0].to_string(), state);
                }
                // Job id, Name, User, Time Use, S, Queue
                BatchSystem::Pbs
                    if fields.len() >= 6 && fields[0].contains(|c: char| c.is_ascii_digit()) =>
                {
                    if fields[0].starts_with("---") {
                        continue;
                    }
                    let state = match fields[4] {
                        "Q" | "H" | "W" | "T" | "S" => JobState::Pending,
                        "R" | "E" | "B" => JobState::Running,
                        other => JobState::Ended(other.to_string()),
                    };
                    let id = fields[0].split('.').next().unwrap_or(fields[0]);
                    states.insert(id.to_string(), state);
                }
                BatchSystem::Sge
                    if fields.len() >= 8 && fields[0].chars().all(|c| c.is_ascii_digit()) =>
                {
                    sge_line(&fields, &mut states);
                }
                BatchSystem::Lsf if fields.len() >= 2 => {
                    let state = match fields[1] {
                        "PEND" | "PSUSP" | "WAIT" => JobState::Pending,
                        "RUN" | "USUSP" | "SSUSP" => JobState::Running,
                        other => JobState::Ended(other.to_string()),
                    };
                    states.insert(fields[0].to_string(), state);
                }
                _ => {}
            }
        }
        Queue {
            states,
            plain_ids,
            reasons,
        }
    }

    /// Cancels jobs; ids the system no longer knows are not an error.
    pub fn cancel(self, ids: &[String]) -> Result<(), BatchError> {
        if ids.is_empty() {
            return Ok(());
        }
        let program = match self {
            BatchSystem::Slurm => "scancel",
            BatchSystem::Pbs | BatchSystem::Sge => "qdel",
            BatchSystem::Lsf => "bkill",
        };
        match run(program, ids, None) {
            Ok(_) => Ok(()),
            // Some of them had ended already: the rest were still cancelled.
            Err(BatchError::Failed { stderr, .. })
                if [
                    "Invalid job id",
                    "does not exist",
                    "Unknown Job",
                    "has already finished",
                    "is not in the queue",
                ]
                .iter()
                .any(|s| stderr.contains(s)) =>
            {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// The id the poll output uses for job `id` (PBS lists `123` for `123.server`).
    pub fn poll_key(self, id: &str) -> String {
        match self {
            BatchSystem::Pbs => id.split('.').next().unwrap_or(id).to_string(),
            _ => id.to_string(),
        }
    }

    /// SLURM's final state of a job squeue has forgotten (sacct, when accounting is on).
    pub fn final_state(self, id: &str) -> Option<String> {
        if self != BatchSystem::Slurm {
            return None;
        }
        let args: Vec<String> = ["-n", "-X", "-P", "-o", "State", "-j", id]
            .into_iter()
            .map(String::from)
            .collect();
        let output = run("sacct", &args, None).ok()?;
        output
            .lines()
            .next()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }
}

fn slurm_state(word: &str) -> JobState {
    match word {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "RESIZING" | "SUSPENDED" => {
            JobState::Pending
        }
        "RUNNING" | "COMPLETING" | "STAGE_OUT" | "SIGNALING" => JobState::Running,
        other => JobState::Ended(other.to_string()),
    }
}

/// One line of Grid Engine's `qstat`: job-ID prior name user state date time
/// [queue] slots [ja-task-ID]; scheduled jobs have a queue, waiting ones not.
fn sge_line(fields: &[&str], states: &mut HashMap<String, JobState>) {
    let word = fields[4];
    let state = if word.contains('E') {
        JobState::Ended(word.to_string())
    } else if word.contains('q') || word.contains('h') {
        JobState::Pending
    } else if word.contains('d') {
        JobState::Ended(word.to_string())
    } else {
        JobState::Running
    };
    let with_queue = !word.contains('q');
    let tasks_at = if with_queue { 9 } else { 8 };
    match fields.get(tasks_at) {
        Some(tasks) => {
            for task in expand_tasks(tasks) {
                states.insert(format!("{}.{task}", fields[0]), state.clone());
            }
        }
        None => {
            states.insert(fields[0].to_string(), state);
        }
    }
}

/// Grid Engine task ranges: `1-6:2`, `3`, `1,4,7`.
fn expand_tasks(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = part.split_once(':').unwrap_or((part, "1"));
        let step: u64 = step.parse().unwrap_or(1).max(1);
        let (first, last) = range.split_once('-').unwrap_or((range, range));
        if let (Ok(first), Ok(last)) = (first.parse::<u64>(), last.parse::<u64>()) {
            // A range is at most the array's size; cap what a garbled line could ask.
            out.extend((first..=last.min(first + 100_000)).step_by(step as usize));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_output_gives_job_ids() {
        let slurm = BatchSystem::Slurm;
        assert_eq!(slurm.parse_submit("42\n", None), Some(vec!["42".into()]));
        assert_eq!(
            slurm.parse_submit("42;rask\n", None),
            Some(vec!["42".into()])
        );
        assert_eq!(
            slurm.parse_submit("42\n", Some(3)),
            Some(vec!["42_0".into(), "42_1".into(), "42_2".into()])
        );
        assert_eq!(slurm.parse_submit("sbatch: error\n", None), None);
        let sge = BatchSystem::Sge;
        assert_eq!(sge.parse_submit("17\n", None), Some(vec!["17".into()]));
        assert_eq!(
            sge.parse_submit("17.1-2:1\n", Some(2)),
            Some(vec!["17.1".into(), "17.2".into()])
        );
        let pbs = BatchSystem::Pbs;
        assert_eq!(
            pbs.parse_submit("9.server\n", None),
            Some(vec!["9.server".into()])
        );
        let lsf = BatchSystem::Lsf;
        assert_eq!(
            lsf.parse_submit("Job <311> is submitted to queue <normal>.\n", None),
            Some(vec!["311".into()])
        );
        assert_eq!(lsf.parse_submit("Job <x> is submitted\n", None), None);
    }

    #[test]
    fn poll_output_gives_states() {
        let queue = BatchSystem::Slurm.parse_poll(
            "12 RUNNING 12 None\n13 PENDING 13 PartitionConfig\n14_0 FAILED 15 NonZeroExitCode\n\
             16 PENDING 16 ReqNodeNotAvail, UnavailableNodes:vm\n17 PENDING 17 None\n",
        );
        assert_eq!(queue.reasons["13"], "PartitionConfig");
        assert_eq!(queue.reasons["16"], "ReqNodeNotAvail, UnavailableNodes:vm");
        assert!(!queue.reasons.contains_key("17") && !queue.reasons.contains_key("14_0"));
        assert_eq!(queue.plain_ids["14_0"], "15");
        assert!(!queue.plain_ids.contains_key("12"));
        let slurm = queue.states;
        assert_eq!(slurm["12"], JobState::Running);
        assert_eq!(slurm["13"], JobState::Pending);
        assert_eq!(slurm["14_0"], JobState::Ended("FAILED".into()));

        let sge = BatchSystem::Sge.parse_poll(
            "job-ID  prior   name       user         state submit/start at     queue                          slots ja-task-ID\n\
             -----------------------------------------------------------------------------------------------------------------\n\
             \x20    12 0.55500 rask-worke root         r     11/22/2026 10:00:00 all.q@vm                           1\n\
             \x20    13 0.00000 rask-worke root         qw    11/22/2026 10:00:01                                    1 1-3:1\n\
             \x20    14 0.55500 rask-worke root         r     11/22/2026 10:00:00 all.q@vm                           1 2\n\
             \x20    15 0.00000 rask-worke root         Eqw   11/22/2026 10:00:01                                    1\n",
        ).states;
        assert_eq!(sge["12"], JobState::Running);
        assert_eq!(sge["13.1"], JobState::Pending);
        assert_eq!(sge["13.3"], JobState::Pending);
        assert_eq!(sge["14.2"], JobState::Running);
        assert_eq!(sge["15"], JobState::Ended("Eqw".into()));
        assert_eq!(sge.len(), 6);

        let pbs = BatchSystem::Pbs
            .parse_poll(
                "Job id                    Name             User            Time Use S Queue\n\
             ------------------------- ---------------- --------------- -------- - -----\n\
             7.vm                      rask-worker      root            00:00:00 R debug\n\
             8.vm                      rask-worker      root            0        Q debug\n",
            )
            .states;
        assert_eq!(pbs["7"], JobState::Running);
        assert_eq!(pbs["8"], JobState::Pending);
        assert_eq!(BatchSystem::Pbs.poll_key("7.vm"), "7");

        let lsf = BatchSystem::Lsf
            .parse_poll("311 RUN\n312 PEND\n313 EXIT\n")
            .states;
        assert_eq!(lsf["313"], JobState::Ended("EXIT".into()));
    }

    #[test]
    fn hopeless_reasons_are_told_from_waiting_ones() {
        let slurm = BatchSystem::Slurm;
        for reason in [
            "PartitionConfig",
            "PartitionTimeLimit",
            "ReqNodeNotAvail, UnavailableNodes:vm",
            "QOSMaxCpuPerJobLimit",
            "AssocMaxWallDurationPerJobLimit",
            "QOSMinCpuNotSatisfied",
        ] {
            assert!(hopeless_reason(slurm, reason), "{reason}");
        }
        for reason in [
            "Resources",
            "Priority",
            "QOSMaxCpuPerUserLimit",
            "Dependency",
            "",
        ] {
            assert!(!hopeless_reason(slurm, reason), "{reason}");
        }
        assert!(!hopeless_reason(BatchSystem::Sge, "PartitionConfig"));
    }

    #[test]
    fn task_ranges_expand() {
        assert_eq!(expand_tasks("1-6:2"), vec![1, 3, 5]);
        assert_eq!(expand_tasks("4"), vec![4]);
        assert_eq!(expand_tasks("1,4-5"), vec![1, 4, 5]);
        assert!(expand_tasks("x-y").is_empty());
    }

    #[test]
    fn submit_commands_use_arrays_and_stdin() {
        let path = Path::new("/tmp/job.sh");
        assert_eq!(
            BatchSystem::Slurm.submit_command(path, Some(4)).1,
            vec!["--parsable", "--array=0-3", "/tmp/job.sh"]
        );
        assert_eq!(
            BatchSystem::Sge.submit_command(path, Some(2)).1,
            vec!["-terse", "-t", "1-2", "/tmp/job.sh"]
        );
        assert!(BatchSystem::Lsf.submit_command(path, None).1.is_empty());
    }
}
