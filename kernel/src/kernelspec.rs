//! `rask kernel install`: the kernelspec Jupyter finds the kernel by, and the
//! rask linked for cells once, so that no cell compiles it.

use crate::evaluator::Evaluator;
use crate::{cells_cache, cells_lib};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// The kernel's name in Jupyter (`--kernel_name=rask`).
pub const KERNEL_NAME: &str = "rask";

/// Where the kernelspec goes (the flags of `jupyter kernelspec install`).
#[derive(Debug, Clone)]
pub enum Prefix {
    /// The user's Jupyter data directory (`$JUPYTER_DATA_DIR`, or `~/.local/share/jupyter`).
    User,
    /// The Python environment's: `sys.prefix` of the `python3` on `PATH`.
    SysPrefix,
    /// `DIR/share/jupyter`.
    Dir(PathBuf),
}

/// The kernels directory for a prefix.
pub fn kernels_dir(prefix: &Prefix) -> Result<PathBuf> {
    let data = match prefix {
        Prefix::User => match std::env::var_os("JUPYTER_DATA_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let home = std::env::var_os("HOME").context("HOME is not set")?;
                PathBuf::from(home).join(".local/share/jupyter")
            }
        },
        Prefix::SysPrefix => {
            let out = std::process::Command::new("python3")
                .args(["-c", "import sys; print(sys.prefix)"])
                .output()
                .context("--sys-prefix asks python3 for sys.prefix; running it failed")?;
            if !out.status.success() {
                bail!("--sys-prefix: python3 -c 'import sys; print(sys.prefix)' failed");
            }
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("share/jupyter")
        }
        Prefix::Dir(dir) => dir.join("share/jupyter"),
    };
    Ok(data.join("kernels"))
}

/// The kernelspec's `kernel.json`: argv runs `exe kernel run`.
pub fn kernel_json(exe: &Path, cells_root: &Path) -> serde_json::Value {
    serde_json::json!({
        "argv": [exe, "kernel", "run", "--connection-file", "{connection_file}"],
        "display_name": "Rust (rask)",
        "language": "rust",
        "interrupt_mode": "message",
        "env": { "RASK_KERNEL_CELLS": cells_root },
        "metadata": { "debugger": false }
    })
}

/// Writes the kernelspec for `exe` under `prefix` and prepares rask for
/// cells under `cells_root` (seconds).
/// Returns the kernelspec directory.
pub fn install(exe: &Path, prefix: &Prefix, cells_root: &Path) -> Result<PathBuf> {
    let exe = std::fs::canonicalize(exe)
        .with_context(|| format!("the kernel binary {}", exe.display()))?;
    let dir = kernels_dir(prefix)?.join(KERNEL_NAME);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let spec = serde_json::to_string_pretty(&kernel_json(&exe, cells_root))?;
    std::fs::write(dir.join("kernel.json"), spec)
        .with_context(|| format!("writing {}", dir.join("kernel.json").display()))?;
    prepare_cells(&exe, cells_root)?;
    Ok(dir)
}

/// Links rask for cells under `cells_root` from the build `exe` came from,
/// then starts a cell session and runs a cell that uses rask.
pub fn prepare_cells(exe: &Path, cells_root: &Path) -> Result<()> {
    let deps = cells_lib::build_deps(exe)?;
    if let Err(why) = cells_cache::fetch_packages() {
        // Offline with a warm cache, cells still work; the session's start
        // below says what is missing if they do not.
        tracing::warn!("{why:#}");
    }
    let rask = cells_lib::link(&deps, cells_root)?;
    let slot = cells_cache::take_slot(cells_root)
        .with_context(|| format!("taking a cell cache slot under {}", cells_root.display()))?;
    let errors = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = errors.clone();
    let started = Evaluator::start(slot, &rask, None, move |printed| {
        if let crate::evaluator::Printed::Stderr(line) = printed {
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
    let evaluator = match started {
        Ok(evaluator) => evaluator,
        Err(why) => {
            let printed = errors.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
            bail!("starting a cell session with rask failed: {why}\n{printed}")
        }
    };
    match evaluator.execute("rask::graph::fresh_token().len()") {
        Ok(_) => Ok(()),
        Err(e) => bail!(
            "the prepared cells cannot use rask: {}",
            e.traceback.join("\n")
        ),
    }
}
