//! Rust cells, compiled and run by the `evcxr` library in a child process
//! (the `rask` binary itself, started again as evcxr's runtime). The context
//! lives on its own thread; the kernel's async side sends it jobs.
//!
//! Every session has `rask` (one shared library per process, see
//! [`crate::cells_lib`]) with its prelude in scope, so no cell compiles rask
//! or its dependencies. Each kernel compiles its cells in a cache slot no
//! other kernel holds.

use crate::cells_cache::CacheSlot;
use crate::cells_lib::CellsLib;
use evcxr::{CommandContext, EvalContext, EvalContextOutputs, EvalOutputs};
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// What a cell printed: a line of standard output or of standard error.
#[derive(Debug)]
pub enum Printed {
    /// A line of standard output.
    Stdout(String),
    /// A line of standard error.
    Stderr(String),
}

/// A cell that failed.
#[derive(Debug, Clone)]
pub struct CellError {
    /// Jupyter's `ename`: `CompilationError`, `Panic`, `SubprocessTerminated`, `Error`.
    pub name: String,
    /// Jupyter's `evalue`: the first message.
    pub value: String,
    /// Every message, rendered.
    pub traceback: Vec<String>,
}

/// The marker the panic hook the prelude installs prints before a panic's
/// message, on standard output (where evcxr passes it through in order).
pub const PANIC_MARKER: &str = "RASK_CELL_PANIC ";

type Reply<T> = mpsc::Sender<T>;

enum Job {
    Execute(String, Reply<Result<HashMap<String, String>, CellError>>),
    Complete(String, usize, Reply<Option<(Vec<String>, usize, usize)>>),
    Inspect(String, usize, Reply<Option<String>>),
    Variables(Reply<Vec<(String, String)>>),
}

/// A handle on the evaluation thread.
#[derive(Clone)]
pub struct Evaluator {
    jobs: mpsc::Sender<Job>,
    /// evcxr's child process (the same handle across its restarts).
    child: Arc<Mutex<std::process::Child>>,
}

/// Installs, in the child, a panic hook that prints the panic on one marked
/// line, so the kernel can answer with an error (evcxr itself catches the
/// panic and keeps the variables the cell did not take).
fn panic_hook() -> String {
    format!(
        "std::panic::set_hook(Box::new(|info| {{ \
         let message = info.payload().downcast_ref::<&str>().map(|s| s.to_string()) \
         .or_else(|| info.payload().downcast_ref::<String>().cloned()).unwrap_or_default(); \
         let place = info.location().map(|l| format!(\" at {{}}:{{}}\", l.file(), l.line())).unwrap_or_default(); \
         println!(\"{PANIC_MARKER}{{}}{{}}\", message.replace('\\n', \" \"), place); }}));"
    )
}

/// The code every session starts with: cargo offline, the flags that link
/// rask's shared library, rask (its facade) as a dependency with its prelude
/// in scope, and a panic hook that marks panics for the kernel.
fn prelude(rask: &CellsLib) -> Vec<String> {
    let mut code = vec![
        ":offline 1".to_owned(),
        // Cells are not the user's workspace: no workspace wrapper (such as
        // clippy-driver, which would lint evcxr's generated code) compiles them.
        ":build_env RUSTC_WORKSPACE_WRAPPER=".to_owned(),
        // Cargo takes these over evcxr's RUSTFLAGS.
        format!(":build_env CARGO_ENCODED_RUSTFLAGS={}", rask.rustflags()),
    ];
    code.extend(rask.dep_commands());
    code.push("use rask::prelude::*;".to_owned());
    code.push("use rask::notebook::RichResult as _;".to_owned());
    code.extend(per_process());
    code
}

/// What each new cells' process runs: the panic hook, and `client`
/// (which connects the process to the kernel's cluster magics).
fn per_process() -> [String; 2] {
    [panic_hook(), ATTACH.to_owned()]
}

/// Binds the cells' `client`.
const ATTACH: &str = "let client: rask::notebook::SessionClient = rask::notebook::attach();";

impl Evaluator {
    /// Starts evcxr on `slot`'s directory, cells linking `rask`, with the
    /// prelude evaluated; `printed` receives what cells print. Blocks until ready.
    pub fn start(
        slot: CacheSlot,
        rask: &CellsLib,
        control: Option<std::path::PathBuf>,
        printed: impl Fn(Printed) + Send + 'static,
    ) -> Result<Evaluator, String> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (child_tx, child_rx) = mpsc::channel();
        let prelude = prelude(rask);
        std::thread::Builder::new()
            .name("rask-kernel-cells".into())
            .spawn(move || {
                // evcxr reads its directory from the environment when the context starts.
                // SAFETY: no other thread reads the environment during this call (the kernel
                // starts the evaluator before serving any request).
                unsafe { std::env::set_var("EVCXR_TMPDIR", slot.dir()) };
                let began = std::time::Instant::now();
                let started = runner_command(control.as_deref())
                    .and_then(EvalContext::with_subprocess_command)
                    .map(|(eval, outputs)| (CommandContext::with_eval_context(eval), outputs));
                let (mut context, outputs) = match started {
                    Ok(pair) => pair,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("starting evcxr: {e}")));
                        return;
                    }
                };
                let drained = Drained::start(outputs, printed);
                let _ = child_tx.send(context.process_handle());
                if let Err(e) = crate::cells_cache::pin_dependency_versions(slot.dir()) {
                    tracing::warn!(error = %e, "cells resolve rask's dependencies afresh");
                }
                // One execute, so one compile: evcxr runs the leading `:` commands,
                // then compiles the code after them together.
                let prelude = prelude.join("\n");
                let context_started = began.elapsed();
                match context.execute(&prelude) {
                    Ok(outputs) => tracing::debug!(
                        ?context_started,
                        elapsed = ?began.elapsed(),
                        phases = ?phase_times(&outputs),
                        "prelude evaluated"
                    ),
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("the cell prelude `{prelude}`: {e}")));
                        return;
                    }
                }
                let _ = ready_tx.send(Ok(()));
                let _slot = slot;
                serve(&mut context, inbox, &drained);
            })
            .map_err(|e| e.to_string())?;
        ready_rx
            .recv()
            .map_err(|_| "the evaluation thread ended while starting".to_owned())??;
        let child = child_rx
            .recv()
            .map_err(|_| "the evaluation thread ended while starting".to_owned())?;
        Ok(Evaluator { jobs, child })
    }

    fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Option<T> {
        let (tx, rx) = mpsc::channel();
        self.jobs.send(job(tx)).ok()?;
        rx.recv().ok()
    }

    /// Runs a cell; its result by MIME type, or its error.
    pub fn execute(&self, code: &str) -> Result<HashMap<String, String>, CellError> {
        self.ask(|r| Job::Execute(code.to_owned(), r))
            .unwrap_or_else(|| Err(terminated("the evaluation thread has ended")))
    }

    /// Completions at byte `position`: the matches and the span they replace.
    pub fn complete(&self, code: &str, position: usize) -> Option<(Vec<String>, usize, usize)> {
        self.ask(|r| Job::Complete(code.to_owned(), position, r))
            .flatten()
    }

    /// What is known about the item at byte `position` (its type and docs).
    pub fn inspect(&self, code: &str, position: usize) -> Option<String> {
        self.ask(|r| Job::Inspect(code.to_owned(), position, r))
            .flatten()
    }

    /// Stops the running cell by killing the child process that runs cells
    /// (evcxr starts a new one for the next cell; the session's variables are lost).
    pub fn interrupt(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
    }

    /// The session's variables and their types.
    pub fn variables(&self) -> Vec<(String, String)> {
        self.ask(Job::Variables).unwrap_or_default()
    }
}

/// The command evcxr starts cells' processes with: this binary, with the
/// kernel's control socket in its environment.
fn runner_command(
    control: Option<&std::path::Path>,
) -> Result<std::process::Command, evcxr::Error> {
    let mut command = std::process::Command::new(std::env::current_exe()?);
    if let Some(socket) = control {
        command.env(rask::notebook::CONTROL_ENV, socket);
    }
    Ok(command)
}

fn terminated(why: &str) -> CellError {
    CellError {
        name: "SubprocessTerminated".into(),
        value: why.into(),
        traceback: vec![why.into()],
    }
}

/// Forwards what cells print as it comes, and tells when all of it is out.
struct Drained {
    stdout: crossbeam_channel::Receiver<String>,
    stderr: crossbeam_channel::Receiver<String>,
    /// Held by the forwarding thread from taking a line until it is passed on.
    passing: Arc<Mutex<()>>,
}

impl Drained {
    fn start(outputs: EvalContextOutputs, printed: impl Fn(Printed) + Send + 'static) -> Drained {
        let passing = Arc::new(Mutex::new(()));
        let (stdout, stderr) = (outputs.stdout, outputs.stderr);
        let (out, err, lock) = (stdout.clone(), stderr.clone(), passing.clone());
        std::thread::spawn(move || loop {
            let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
            crossbeam_channel::select! {
                recv(out) -> line => match line {
                    Ok(line) => printed(Printed::Stdout(line)),
                    Err(_) => return,
                },
                recv(err) -> line => match line {
                    Ok(line) => printed(Printed::Stderr(line)),
                    Err(_) => return,
                },
                default(Duration::from_millis(10)) => {}
            }
        });
        Drained {
            stdout,
            stderr,
            passing,
        }
    }

    /// Returns once every line printed so far has been passed on.
    fn wait(&self) {
        loop {
            let held = self.passing.lock().unwrap_or_else(|e| e.into_inner());
            if self.stdout.is_empty() && self.stderr.is_empty() {
                return;
            }
            drop(held);
            std::thread::yield_now();
        }
    }
}

fn serve(context: &mut CommandContext, inbox: mpsc::Receiver<Job>, drained: &Drained) {
    while let Ok(job) = inbox.recv() {
        match job {
            Job::Execute(code, reply) => {
                let started = std::time::Instant::now();
                let result = context.execute(&code);
                if let Ok(outputs) = &result {
                    // evcxr's phases (fields are built only when debug logs are on).
                    tracing::debug!(
                        elapsed = ?started.elapsed(),
                        phases = ?phase_times(outputs),
                        "cell evaluated"
                    );
                }
                let result = result.map(mime_map).map_err(cell_error);
                let has_client = context
                    .variables_and_types()
                    .any(|(name, _)| name == "client");
                if matches!(&result, Err(e) if e.name == "SubprocessTerminated") || !has_client {
                    // A new cells' process (evcxr starts one after the old one died), or
                    // a cell that redefined `client`: the hook and `client` again.
                    let _ = context.execute(&per_process().join("\n"));
                }
                drained.wait();
                let _ = reply.send(result);
            }
            Job::Complete(code, position, reply) => {
                let answer = context.completions(&code, position).ok().map(|c| {
                    let matches = c.completions.into_iter().map(|m| m.code).collect();
                    (matches, c.start_offset, c.end_offset)
                });
                let _ = reply.send(answer);
            }
            Job::Inspect(code, position, reply) => {
                let answer = context
                    .hover_at(&code, position)
                    .ok()
                    .map(|(text, _)| text)
                    .filter(|t| !t.trim().is_empty());
                let _ = reply.send(answer);
            }
            Job::Variables(reply) => {
                let vars = context
                    .variables_and_types()
                    .map(|(n, t)| (n.to_owned(), t.to_owned()))
                    .collect();
                let _ = reply.send(vars);
            }
        }
    }
}

/// evcxr's phases of a cell, for debug logs.
fn phase_times(outputs: &EvalOutputs) -> Vec<String> {
    outputs
        .phases
        .iter()
        .map(|p| format!("{} {} ms", p.name, p.duration.as_millis()))
        .collect()
}

fn mime_map(outputs: EvalOutputs) -> HashMap<String, String> {
    outputs.content_by_mime_type
}

fn cell_error(error: evcxr::Error) -> CellError {
    match error {
        evcxr::Error::CompilationErrors(errors) => {
            let traceback: Vec<String> = errors
                .iter()
                .map(|e| {
                    let rendered = e.rendered();
                    if rendered.is_empty() {
                        e.message()
                    } else {
                        rendered
                    }
                })
                .collect();
            CellError {
                name: "CompilationError".into(),
                value: errors.first().map(|e| e.message()).unwrap_or_default(),
                traceback,
            }
        }
        evcxr::Error::SubprocessTerminated(why) => terminated(&why),
        other => {
            let text = other.to_string();
            CellError {
                name: "Error".into(),
                value: text.clone(),
                traceback: vec![text],
            }
        }
    }
}
