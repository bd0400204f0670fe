//! Kubernetes. No API server can be installed here, so the tests run against
//! a double (tests/kubernetes/double: an API server and a node whose kubelet
//! runs pods as local processes), whose own semantics are tested first.
//!
//! The manifests in cluster-configs/kubernetes/ and the CRDs that
//! `rask operator crds` prints: the printed CRDs are the shipped crds.yaml,
//! and every manifest passes `kubernetes-validate --strict` for Kubernetes
//! 1.35 (the API version rask's client is built for). kubernetes-validate
//! knows Kubernetes' own kinds only, so RaskClusters and RaskJobs are checked
//! against their CRDs' schemas, unknown fields refused as a strict API server
//! does.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{python, rask_binary, TempDir};

/// The Kubernetes version the manifests are validated for.
const KUBERNETES: &str = "1.35.0";

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-configs/kubernetes")
}

fn printed_crds() -> String {
    let out = Command::new(rask_binary())
        .args(["operator", "crds"])
        .output()
        .expect("rask runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

/// Every .yaml under `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).expect("manifests directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            found.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml") {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn run(program: &Path, args: &[String]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/test.sh)", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn printed_crds_are_the_shipped_ones() {
    let shipped = std::fs::read_to_string(manifests_dir().join("crds.yaml")).expect("crds.yaml");
    assert!(
        shipped == printed_crds(),
        "cluster-configs/kubernetes/crds.yaml differs from `rask operator crds`: \
         write it again with `cargo run --release -- operator crds > cluster-configs/kubernetes/crds.yaml`"
    );
}

#[test]
fn every_manifest_passes_strict_validation() {
    let scratch = TempDir::new("k8s-validate");
    let printed = scratch.path().join("printed-crds.yaml");
    std::fs::write(&printed, printed_crds()).expect("write");
    let mut files = yaml_files(&manifests_dir());
    assert!(files.len() >= 6, "{files:?}");
    files.push(printed.clone());
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();

    let mut args: Vec<String> = ["-m", "kubernetes_validate", "--strict", "-k", KUBERNETES]
        .map(String::from)
        .to_vec();
    args.extend(names.iter().cloned());
    let (ok, report) = run(&python(), &args);
    assert!(ok, "kubernetes-validate failed:\n{report}");
    assert!(!report.contains("ERROR"), "{report}");
    // Only rask's own kinds lack a schema there.
    for line in report.lines().filter(|l| l.starts_with("WARN")) {
        assert!(
            line.contains("api version rask.dev/"),
            "a Kubernetes kind was not validated: {line}"
        );
    }
    let passed = report.lines().filter(|l| l.contains(" passed ")).count();
    // operator.yaml (5), plain/ (3), crds.yaml and the printed CRDs (2 each).
    assert!(passed >= 12, "only {passed} resources validated:\n{report}");

    let mut args = vec![
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/kubernetes/validate_custom.py")
            .display()
            .to_string(),
        printed.display().to_string(),
    ];
    args.extend(names);
    let (ok, report) = run(&python(), &args);
    assert!(ok, "custom resources failed their CRDs' schemas:\n{report}");
    let passed = report.lines().filter(|l| l.contains(" passed ")).count();
    assert!(
        passed >= 3,
        "only {passed} custom resources validated:\n{report}"
    );
}

#[test]
fn a_custom_resource_with_a_misspelt_or_wrong_field_fails() {
    let scratch = TempDir::new("k8s-bad");
    let crds = scratch.path().join("crds.yaml");
    std::fs::write(&crds, printed_crds()).expect("write");
    let bad = scratch.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: rask.dev/v1alpha1\nkind: RaskCluster\nmetadata:\n  name: bad\n\
         spec:\n  worker:\n    replcas: 2\n  adaptive:\n    minimum: -1\n    maximum: 3\n",
    )
    .expect("write");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubernetes/validate_custom.py");
    let (ok, report) = run(
        &python(),
        &[
            script.display().to_string(),
            crds.display().to_string(),
            bad.display().to_string(),
        ],
    );
    assert!(!ok, "{report}");
    assert!(
        report.contains("spec.worker.replcas: unknown field"),
        "{report}"
    );
    assert!(report.contains("spec.adaptive.minimum"), "{report}");
}

#[test]
fn the_double_keeps_kubernetes_semantics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubernetes");
    let out = Command::new(python())
        .args(["-m", "unittest", "-v", "test_double"])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/test.sh)", python().display()));
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the Kubernetes double:\n{report}");
    assert!(report.contains("Ran 9 tests"), "{report}");
}
