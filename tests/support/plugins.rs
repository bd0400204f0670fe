//! Plugins for the tests: crates of ops built with `rask plugin build`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Builds the crate at `manifest` (relative to the repository) with
/// `rask plugin build`; the library's path is the last line it prints.
pub fn build_plugin(manifest: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // A target directory of its own, where the test binaries that build the
    // same plugin at once take turns.
    let output = Command::new(super::rask_binary())
        .args(["plugin", "build", "--manifest-path"])
        .arg(root.join(manifest))
        .env("CARGO_TARGET_DIR", root.join("target/plugin-tests"))
        .output()
        .expect("rask plugin build runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "rask plugin build failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = PathBuf::from(stdout.lines().last().expect("a path").trim());
    assert!(path.is_file(), "{} is not a file", path.display());
    path
}

/// tests/plugin-fixture as a plugin, built once per test binary.
pub fn fixture_plugin() -> &'static Path {
    static PLUGIN: OnceLock<PathBuf> = OnceLock::new();
    PLUGIN.get_or_init(|| build_plugin("tests/plugin-fixture/Cargo.toml"))
}

/// tests/plugin-dataframe (a `map_partitions` op, Polars inside) as a plugin:
/// the cdylib the workspace build made of it, beside this test binary.
pub fn dataframe_plugin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().expect("a directory");
    let path = deps.join("librask_plugin_dataframe.so");
    assert!(
        path.is_file(),
        "{} is missing: build the tests with the workspace (cargo test --workspace)",
        path.display()
    );
    path
}
