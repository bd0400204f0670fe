//! Where cells are compiled: evcxr's working directory and `target/` (the
//! cells' own crate and any `:dep` a notebook adds; rask itself is
//! [`crate::cells_lib`]'s shared library, beside the slots).
//!
//! Cargo lets one build at a time use a target directory, and evcxr rewrites
//! its crate for every cell, so each running kernel needs a directory of its
//! own: slot `cells-0`, `cells-1`, … under the cache root, each held with an
//! exclusive `flock` for the kernel's life. A kernel that finds every slot
//! taken copies slot 0 into a new one (its compiled `:dep`s with it).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file of the workspace this kernel was built from: cells resolve
/// rask's dependencies (for rust-analyzer) at the versions it was built with,
/// offline.
const WORKSPACE_LOCK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");

/// The manifest of that workspace.
const WORKSPACE_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");

/// Downloads every package of the workspace's lock file, for every platform
/// (`cargo fetch --locked`). Cells run Cargo offline, and rust-analyzer's
/// `cargo metadata` wants every package of the resolution, also those only
/// other platforms build, which a build here never downloaded.
pub fn fetch_packages() -> anyhow::Result<()> {
    use anyhow::Context;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let fetched = std::process::Command::new(&cargo)
        .args(["fetch", "--locked", "--manifest-path", WORKSPACE_MANIFEST])
        .stdout(std::process::Stdio::null())
        .output()
        .with_context(|| format!("running {} fetch", cargo.to_string_lossy()))?;
    if !fetched.status.success() {
        anyhow::bail!(
            "`cargo fetch --locked --manifest-path {WORKSPACE_MANIFEST}` failed, so cells \
             resolve rask's dependencies from what Cargo has already downloaded:\n{}",
            String::from_utf8_lossy(&fetched.stderr).trim()
        );
    }
    Ok(())
}

/// A slot directory held by this process.
#[derive(Debug)]
pub struct CacheSlot {
    dir: PathBuf,
    /// Holds the `flock` until dropped.
    _lock: File,
}

impl CacheSlot {
    /// The directory evcxr works in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The default cache root: `$XDG_CACHE_HOME/rask/kernel` or `~/.cache/rask/kernel`.
pub fn default_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("rask").join("kernel")
}

/// Takes the first free slot under `root`; a new slot starts as a copy of
/// slot 0 (or empty, if there is none yet).
pub fn take_slot(root: &Path) -> std::io::Result<CacheSlot> {
    std::fs::create_dir_all(root)?;
    for n in 0.. {
        let dir = root.join(format!("cells-{n}"));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(format!("cells-{n}.lock")))?;
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            continue;
        }
        if !dir.exists() {
            let first = root.join("cells-0");
            if n > 0 && first.exists() {
                tracing::info!(slot = n, "every cell cache slot is in use: copying slot 0");
                copy_tree(&first, &dir)?;
            } else {
                std::fs::create_dir_all(&dir)?;
            }
        }
        return Ok(CacheSlot { dir, _lock: lock });
    }
    unreachable!("the slot loop only ends by returning")
}

/// Gives the slot the workspace's Cargo.lock, so that the prelude's `:dep`
/// resolves rask's dependencies at the versions rask was built with, which
/// [`fetch_packages`] downloaded. Called after evcxr's first compile, which
/// writes a lock file of its own crate only; without this, offline Cargo
/// picks the newest versions it has of each crate, and may have a crate
/// but not the same version of its companion (`zerocopy` without its
/// `zerocopy-derive`).
pub fn pin_dependency_versions(dir: &Path) -> std::io::Result<()> {
    if Path::new(WORKSPACE_LOCK).exists() {
        std::fs::copy(WORKSPACE_LOCK, dir.join("Cargo.lock"))?;
    }
    Ok(())
}

/// Copies a directory tree with `cp -a` (reflinks where the file system has them).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg(from)
        .arg(to)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "copying {} to {}: cp exited with {status}",
            from.display(),
            to.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_slot_is_not_taken_twice_and_new_slots_copy_slot_zero() {
        let root = std::env::temp_dir().join(format!("rask-cells-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let first = take_slot(&root).unwrap();
        assert!(first.dir().ends_with("cells-0"));
        std::fs::write(first.dir().join("marker"), "built").unwrap();
        let second = take_slot(&root).unwrap();
        assert!(second.dir().ends_with("cells-1"));
        assert_eq!(
            std::fs::read_to_string(second.dir().join("marker")).unwrap(),
            "built"
        );
        drop(first);
        let again = take_slot(&root).unwrap();
        assert!(again.dir().ends_with("cells-0"));
        drop((second, again));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
