//! The Jupyter kernel through real Jupyter clients: `rask kernel install`
//! into a prefix, then jupyter_kernel_test's protocol checks
//! (tests/kernel/test_jupyter_kernel.py) with jupyter_client starting the
//! kernel from that kernelspec, as a notebook server would; then notebooks
//! through nbclient: the cluster magics (tests/kernel/test_cluster_magics.py),
//! ops defined in cells (test_cell_ops.py), interrupts (test_interrupt.py,
//! through jupyter_client) and every tutorial in notebooks/
//! (test_notebooks.py).
//!
//! Cells compile in a cache under target/ (kept between runs, as a user's
//! ~/.cache/rask/kernel is), where the install links rask for them.

mod support;

use std::path::PathBuf;
use std::process::Command;
use support::object_stores::Server;
use support::TempDir;

/// The cell cache the tests share (what `rask kernel install` fills).
fn cells_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/kernel-cells")
}

/// Installs the kernelspec under `prefix`; returns the JUPYTER_PATH entry.
fn install(prefix: &std::path::Path) -> PathBuf {
    let output = Command::new(support::rask_binary())
        .args(["kernel", "install", "--prefix"])
        .arg(prefix)
        .arg("--cells-cache")
        .arg(cells_cache())
        .output()
        .expect("running rask kernel install");
    assert!(
        output.status.success(),
        "rask kernel install failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let spec = prefix.join("share/jupyter/kernels/rask/kernel.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&spec).expect("kernel.json")).unwrap();
    assert_eq!(json["display_name"], "Rust (rask)");
    assert_eq!(json["language"], "rust");
    assert_eq!(json["interrupt_mode"], "message");
    prefix.join("share/jupyter")
}

/// Runs a Python test file with the kernelspec on JUPYTER_PATH and `env`.
fn run_python_tests(
    file: &str,
    jupyter_path: &std::path::Path,
    home: &std::path::Path,
    env: &[(String, String)],
) {
    run_selected_python_tests(file, &[], jupyter_path, home, env);
}

/// Like [`run_python_tests`], only the tests whose names contain one of `select`
/// (all of them when it is empty).
fn run_selected_python_tests(
    file: &str,
    select: &[&str],
    jupyter_path: &std::path::Path,
    home: &std::path::Path,
    env: &[(String, String)],
) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(file);
    let output = Command::new(support::python())
        .args(["-m", "unittest", "-v"])
        .args(select.iter().flat_map(|name| ["-k", name]))
        .arg(&script)
        .env("JUPYTER_PATH", jupyter_path)
        // Nothing from the user's own Jupyter set-up.
        .env("JUPYTER_DATA_DIR", home.join("data"))
        .env("JUPYTER_RUNTIME_DIR", home.join("runtime"))
        .env("JUPYTER_CONFIG_DIR", home.join("config"))
        .envs(env.iter().cloned())
        .output()
        .expect("running python");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    println!("{report}");
    assert!(output.status.success(), "{file} failed:\n{report}");
    assert!(
        !report.contains("skipped"),
        "a protocol check was skipped:\n{report}"
    );
    assert!(
        !report.contains("\nRan 0 tests"),
        "no test of {file} matched {select:?}:\n{report}"
    );
}

/// One test, so the kernels run one after another (each running kernel takes a
/// cell cache slot of its own). The tutorials in notebooks/ run last, with
/// moto's S3 server (bucket `tutorial`) and the test command's SLURM.
#[test]
fn protocol_checks_and_notebooks_with_cluster_magics_cell_ops_and_tutorials_pass() {
    let prefix = TempDir::new("kernelspec");
    let home = TempDir::new("jupyter-home");
    let jupyter_path = install(prefix.path());
    for file in [
        "tests/kernel/test_jupyter_kernel.py",
        "tests/kernel/test_cluster_magics.py",
        "tests/kernel/test_cell_ops.py",
        "tests/kernel/test_interrupt.py",
    ] {
        run_python_tests(file, &jupyter_path, home.path(), &[]);
    }
    let s3 = Server::moto_s3("tutorial");
    let scratch = TempDir::new("notebooks");
    let mut env = s3.s3_env();
    env.push((
        "RASK_NOTEBOOK_DIR".into(),
        scratch.path().display().to_string(),
    ));
    let notebooks = "tests/kernel/test_notebooks.py";
    let without_slurm = [
        "test_every_notebook",
        "test_delayed",
        "test_arrays",
        "test_dataframes",
        "test_your_own_ops",
    ];
    run_selected_python_tests(notebooks, &without_slurm, &jupyter_path, home.path(), &env);
    // The SLURM tutorial holds SLURM as the launcher tests do (they may run
    // beside this test, in another test process).
    let _slurm = support::batch::System::Slurm.lock();
    run_selected_python_tests(
        notebooks,
        &["test_slurm_adaptive"],
        &jupyter_path,
        home.path(),
        &env,
    );
}
