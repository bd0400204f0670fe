//! The nanny: by default `rask worker` runs the worker as a child process and
//! restarts it when it dies on its own, like Dask's Nanny. A worker that passed
//! its memory limit's terminate threshold (exit code 75) or was killed by a
//! signal (the kernel's OOM killer, a crash) comes back after a short backoff;
//! one that was closed, retired or misconfigured does not. SIGTERM and SIGINT
//! are passed on, so the worker retires gracefully; a second one kills it.

use crate::worker::EXIT_MEMORY;
use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::ExitStatus;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// A worker that ran this long before dying starts a fresh count of restarts.
const STABLE_RUN: Duration = Duration::from_secs(60);
/// The first wait between quick restarts; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What the nanny does after its worker process ended.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Exit with this code: the worker finished, or restarting would not help.
    Exit(u8),
    /// Start a new worker; the old one died for this reason.
    Restart(String),
}

fn judge(status: ExitStatus) -> Verdict {
    match (status.code(), status.signal()) {
        (Some(code), _) if code == i32::from(EXIT_MEMORY) => {
            Verdict::Restart("it passed 95% of its memory limit".into())
        }
        (Some(code), _) => Verdict::Exit(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => Verdict::Restart(format!("it was killed by signal {signal}")),
        (None, None) => Verdict::Restart("it ended without an exit code".into()),
    }
}

/// The wait before the `n`th restart in a row (0 for the first).
fn backoff(n: u32) -> Duration {
    match n {
        0 => Duration::ZERO,
        n => FIRST_BACKOFF
            .saturating_mul(1 << (n - 1).min(16))
            .min(MAX_BACKOFF),
    }
}

/// Runs `exe worker_args` and restarts it when it dies on its own, giving up
/// after `max_restarts` quick restarts in a row. Returns the exit code.
pub fn supervise(worker_args: Vec<OsString>, max_restarts: u32) -> Result<u8> {
    let exe = std::env::current_exe().context("finding the rask executable")?;
    // A current-thread runtime: the worker is spawned from the main thread, which
    // lives as long as the nanny (the parent-death signal follows that thread).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the nanny's runtime")?;
    runtime.block_on(async move {
        let mut terminate = signal(SignalKind::terminate()).context("installing SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("installing SIGINT")?;
        let mut quick_restarts = 0u32;
        loop {
            let started = Instant::now();
            let mut child = spawn(&exe, &worker_args)?;
            tracing::info!(pid = child.id(), "nanny started the worker");
            let status = tokio::select! {
                status = child.wait() => status.context("waiting for the worker")?,
                _ = terminate.recv() => return stop(child, &mut terminate, &mut interrupt).await,
                _ = interrupt.recv() => return stop(child, &mut terminate, &mut interrupt).await,
            };
            let reason = match judge(status) {
                Verdict::Exit(code) => return Ok(code),
                Verdict::Restart(reason) => reason,
            };
            if started.elapsed() >= STABLE_RUN {
                quick_restarts = 0;
            }
            if quick_restarts >= max_restarts {
                bail!(
                    "the worker died {} times in a row within {} s of starting (last time {reason}); \
                     giving up (--max-restarts {max_restarts})",
                    quick_restarts + 1,
                    STABLE_RUN.as_secs()
                );
            }
            let wait = backoff(quick_restarts);
            quick_restarts += 1;
            tracing::warn!(%reason, restart = quick_restarts, wait = ?wait, "the worker died; restarting it");
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = terminate.recv() => return Ok(0),
                _ = interrupt.recv() => return Ok(0),
            }
        }
    })
}

fn spawn(exe: &std::path::Path, args: &[OsString]) -> Result<Child> {
    let nanny = std::process::id();
    let mut command = std::process::Command::new(exe);
    command.args(args);
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid).
    unsafe {
        command.pre_exec(move || {
            // If the nanny dies (even by SIGKILL), the worker retires instead of
            // lingering as an orphan.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != nanny as libc::pid_t {
                return Err(std::io::Error::other("the nanny exited"));
            }
            Ok(())
        });
    }
    Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the worker process {}", exe.display()))
}

/// Passes a stop signal on to the worker (which retires) and waits for it; a
/// second signal kills it at once.
async fn stop(mut child: Child, terminate: &mut Signal, interrupt: &mut Signal) -> Result<u8> {
    if let Some(pid) = child.id() {
        tracing::info!(pid, "nanny asks the worker to retire");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    }
    let status = tokio::select! {
        status = child.wait() => status,
        _ = terminate.recv() => { let _ = child.kill().await; child.wait().await }
        _ = interrupt.recv() => { let _ = child.kill().await; child.wait().await }
    }
    .context("waiting for the worker")?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => 128u8.saturating_add(signal as u8),
        (None, None) => 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_exits_and_signals_restart_other_exits_do_not() {
        let exited = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(judge(exited(0)), Verdict::Exit(0));
        assert_eq!(judge(exited(1)), Verdict::Exit(1));
        assert!(matches!(judge(exited(75)), Verdict::Restart(r) if r.contains("memory")));
        assert!(
            matches!(judge(ExitStatus::from_raw(9)), Verdict::Restart(r) if r.contains("signal 9"))
        );
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}
