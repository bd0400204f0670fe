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
use support::kubernetes::{cluster_processes, wait_for, Double};
use support::tls::make_certs;
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
    assert!(report.contains("Ran 10 tests"), "{report}");
}

const CLUSTERS: &str = "/apis/rask.dev/v1alpha1/namespaces/default/raskclusters";

fn cluster_yaml(name: &str, spec: &str) -> String {
    format!("apiVersion: rask.dev/v1alpha1\nkind: RaskCluster\nmetadata:\n  name: {name}\nspec:\n{spec}")
}

/// The cluster's status, once `check` accepts it.
fn wait_status(
    double: &Double,
    operator: &support::Proc,
    name: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let status = double.get(&format!("{CLUSTERS}/{name}"))["status"].clone();
        if check(&status) {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; status {status}\noperator:\n{}",
            operator.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn workers_are(n: i64) -> impl Fn(&serde_json::Value) -> bool {
    move |s| s["workers"] == n && s["workersWanted"] == n
}

fn scale(double: &Double, name: &str, replicas: u32) {
    double.ok(
        "PATCH",
        &format!("{CLUSTERS}/{name}/scale"),
        "application/merge-patch+json",
        &format!(r#"{{"spec":{{"replicas":{replicas}}}}}"#),
    );
}

fn scheduler_address(double: &Double, name: &str) -> String {
    let service = double.get(&format!(
        "/api/v1/namespaces/default/services/{name}-scheduler"
    ));
    format!(
        "tcp://{}:8786",
        service["spec"]["clusterIP"].as_str().expect("a cluster IP")
    )
}

#[test]
fn the_operator_runs_scales_with_retirement_and_deletes_a_cluster() {
    use rask::ops::builtin::inc;
    let double = Double::start("k8s-operator");
    double.install_crds();
    let operator = double.operator("operator.log");
    double.create_yaml(
        CLUSTERS,
        &cluster_yaml("demo", "  worker:\n    replicas: 2\n    threads: 1\n    resources:\n      requests: {cpu: 500m, memory: 256Mi}\n      limits: {memory: 1Gi}\n"),
    );
    let status = wait_status(&double, &operator, "demo", "2 workers", workers_are(2));
    assert_eq!(status["phase"], "Running", "{status}");
    assert_eq!(
        status["schedulerAddress"],
        "tcp://demo-scheduler.default.svc:8786"
    );
    // The scheduler and both workers (with their nannies) run as processes here.
    let running = cluster_processes("demo").len();
    assert!(running >= 3, "{running} processes of the cluster");

    // A graph through the scheduler's service; results kept on the workers.
    let client = rask::Client::connect(&scheduler_address(&double, "demo")).expect("connects");
    let futures = client.map(inc, 0..500u64).expect("submits");
    let first: u64 = client.gather(&futures).expect("gathers").iter().sum();
    assert_eq!(first, (1..=500).sum::<u64>());

    scale(&double, "demo", 4);
    wait_status(&double, &operator, "demo", "4 workers", workers_are(4));
    scale(&double, "demo", 1);
    wait_status(&double, &operator, "demo", "1 worker", workers_are(1));
    assert_eq!(
        double.names("/api/v1/namespaces/default/pods?labelSelector=rask.dev/component%3Dworker"),
        vec!["demo-default-0"],
        "the lowest-numbered worker stays"
    );
    // Retired workers handed their results on: nothing was lost.
    let again: u64 = client
        .gather(&futures)
        .expect("gathers after scaling down")
        .iter()
        .sum();
    assert_eq!(again, first);
    let log = operator.log_text();
    assert!(log.contains("retired"), "{log}");

    // A client's scale and adapt (Dask's cluster.scale/adapt) go through the
    // scheduler to the operator, which writes them into the RaskCluster.
    let status = client.scale(2).expect("scales");
    assert_eq!((status.backend.as_str(), status.target), ("kubernetes", 2));
    wait_status(
        &double,
        &operator,
        "demo",
        "2 workers again",
        workers_are(2),
    );
    let status = client.cluster_status().expect("a status");
    let pods: Vec<&str> = status.jobs.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(pods, ["demo-default-0", "demo-default-1"], "{status:?}");
    assert!(status
        .jobs
        .iter()
        .all(|j| j.state == "running" && j.workers == 1));
    let status = client.adapt(1, 3).expect("adapts");
    assert_eq!(status.adaptive, Some((1, 3)));
    let spec = double.get(&format!("{CLUSTERS}/demo"))["spec"].clone();
    assert_eq!(
        spec["adaptive"],
        serde_json::json!({"minimum": 1, "maximum": 3})
    );
    drop(client);

    double.ok(
        "DELETE",
        &format!("{CLUSTERS}/demo"),
        "application/json",
        "",
    );
    wait_for(
        "every object of the cluster gone",
        std::time::Duration::from_secs(60),
        || {
            let left: Vec<String> = [
                "/api/v1/namespaces/default/pods",
                "/api/v1/namespaces/default/services",
                "/apis/apps/v1/namespaces/default/deployments",
                "/apis/apps/v1/namespaces/default/replicasets",
                CLUSTERS,
            ]
            .iter()
            .flat_map(|p| double.names(p))
            .collect();
            left.is_empty().then_some(())
        },
    );
    wait_for(
        "the pods' processes gone",
        std::time::Duration::from_secs(30),
        || cluster_processes("demo").is_empty().then_some(()),
    );
    assert!(
        !operator.log_text().contains("panicked"),
        "{}",
        operator.log_text()
    );
}

#[test]
fn a_tls_cluster_takes_its_certificates_from_a_secret() {
    use rask::ops::builtin::inc;
    let double = Double::start("k8s-tls");
    double.install_crds();
    // The cluster's certificate names only 127.0.0.1 and localhost: pods,
    // services and the operator reach it by other addresses, and the CA
    // alone decides who belongs.
    let certs = TempDir::new("k8s-certs");
    make_certs(certs.path(), "ca", &["cluster", "client"]);
    let pem = |file: &str| std::fs::read_to_string(certs.path().join(file)).expect("a PEM file");
    let secret = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "rask-tls"},
        "type": "kubernetes.io/tls",
        "stringData": {"ca.crt": pem("ca.pem"), "tls.crt": pem("cluster.pem"), "tls.key": pem("cluster.key")},
    });
    double.ok(
        "POST",
        "/api/v1/namespaces/default/secrets",
        "application/json",
        &secret.to_string(),
    );
    let operator = double.operator("operator.log");
    double.create_yaml(
        CLUSTERS,
        &cluster_yaml(
            "secure",
            "  worker:\n    replicas: 2\n    threads: 1\n  security:\n    tlsSecret: rask-tls\n",
        ),
    );
    // Counted by the operator through its own TLS connection.
    let status = wait_status(&double, &operator, "secure", "2 workers", workers_are(2));
    assert_eq!(
        status["schedulerAddress"],
        "tls://secure-scheduler.default.svc:8786"
    );
    let address = scheduler_address(&double, "secure").replace("tcp://", "tls://");
    let client = rask::client::ConnectOptions::new(&address)
        .tls(rask::comm::TlsFiles {
            ca: certs.path().join("ca.pem"),
            cert: certs.path().join("client.pem"),
            key: certs.path().join("client.key"),
        })
        .connect()
        .expect("a client with a certificate of the cluster's CA connects");
    let futures = client.map(inc, 0..300u64).expect("submits");
    let sum: u64 = client.gather(&futures).expect("gathers").iter().sum();
    assert_eq!(sum, (1..=300u64).sum::<u64>());
    // Retirement copies the leaving worker's results to the other over TLS.
    scale(&double, "secure", 1);
    wait_status(&double, &operator, "secure", "1 worker", workers_are(1));
    let again: u64 = client.gather(&futures).expect("gathers").iter().sum();
    assert_eq!(again, sum);
    assert!(
        rask::Client::connect(&address).is_err(),
        "a client without a certificate was let in"
    );
    drop(client);
    double.ok(
        "DELETE",
        &format!("{CLUSTERS}/secure"),
        "application/json",
        "",
    );
    wait_for(
        "the pods' processes gone",
        std::time::Duration::from_secs(60),
        || cluster_processes("secure").is_empty().then_some(()),
    );
}

#[test]
fn the_operator_converges_after_being_killed_mid_reconcile() {
    let double = Double::start("k8s-restart");
    double.install_crds();
    let mut operator = double.operator("operator-1.log");
    double.create_yaml(
        CLUSTERS,
        &cluster_yaml("again", "  worker:\n    replicas: 3\n    threads: 1\n"),
    );
    // Killed as soon as it has made something.
    wait_for(
        "the operator's first object",
        std::time::Duration::from_secs(30),
        || {
            (!double
                .names("/apis/apps/v1/namespaces/default/deployments")
                .is_empty())
            .then_some(())
        },
    );
    operator.signal("KILL");
    operator.wait_exit(std::time::Duration::from_secs(10));
    let operator = double.operator("operator-2.log");
    wait_status(&double, &operator, "again", "3 workers", workers_are(3));
    let mut workers =
        double.names("/api/v1/namespaces/default/pods?labelSelector=rask.dev/component%3Dworker");
    workers.sort();
    assert_eq!(
        workers,
        ["again-default-0", "again-default-1", "again-default-2"]
    );
    assert_eq!(
        double
            .names("/apis/apps/v1/namespaces/default/deployments")
            .len(),
        1
    );
}

#[test]
fn a_worker_pod_that_can_never_schedule_is_reported_with_its_reason() {
    let double = Double::start("k8s-pending");
    double.install_crds();
    let operator = double.operator("operator.log");
    double.create_yaml(
        CLUSTERS,
        &cluster_yaml(
            "huge",
            "  worker:\n    replicas: 1\n    resources:\n      requests: {cpu: \"64\"}\n",
        ),
    );
    let status = wait_status(&double, &operator, "huge", "a PodsPending condition", |s| {
        s["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "PodsPending"))
    });
    let pending = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PodsPending")
        .unwrap()
        .clone();
    let message = pending["message"].as_str().unwrap();
    assert!(message.contains("huge-default-0"), "{message}");
    assert!(message.contains("FailedScheduling"), "{message}");
    assert!(message.contains("Insufficient cpu"), "{message}");
    assert_eq!(status["phase"], "Scaling", "{status}");
}

#[test]
fn adaptive_clusters_grow_with_work_and_shrink_to_nothing() {
    use rask::ops::builtin::sleep_then;
    let double = Double::start("k8s-adaptive");
    double.install_crds();
    let operator = double.operator_with("operator.log", &["--adaptive-cooldown", "1"]);
    double.create_yaml(
        CLUSTERS,
        &cluster_yaml(
            "elastic",
            "  adaptive:\n    minimum: 0\n    maximum: 3\n  worker:\n    threads: 1\n",
        ),
    );
    wait_status(
        &double,
        &operator,
        "elastic",
        "a running scheduler and no workers",
        |s| s["phase"] == "Running" && s["workers"] == 0,
    );
    // 300 tasks of 100 ms on no workers: the scheduler wants more.
    let client = rask::Client::connect(&scheduler_address(&double, "elastic")).expect("connects");
    let futures = client
        .map(sleep_then, (0..300u64).map(|i| (100u64, i)))
        .expect("submits");
    wait_status(&double, &operator, "elastic", "3 workers", workers_are(3));
    let sum: u64 = client.gather(&futures).expect("gathers").iter().sum();
    assert_eq!(sum, (0..300u64).sum::<u64>());
    drop(futures);
    // Idle: down to none, at most a quarter (at least one) per step.
    wait_status(&double, &operator, "elastic", "no workers", workers_are(0));
    wait_for("no worker pods", std::time::Duration::from_secs(30), || {
        double
            .names("/api/v1/namespaces/default/pods?labelSelector=rask.dev/component%3Dworker")
            .is_empty()
            .then_some(())
    });
}

/// `rask cluster up CONFIG` against the double; its scheduler file.
fn cluster_up(double: &Double, config: &str) -> (support::Proc, std::path::PathBuf) {
    let path = double.dir.path().join("kubernetes.yaml");
    std::fs::write(&path, config).expect("write the config");
    let scheduler_file = double.dir.path().join("scheduler.json");
    let up = double.rask(
        "cluster-up.log",
        &[
            "cluster",
            "up",
            &path.display().to_string(),
            "--scheduler-file",
            &scheduler_file.display().to_string(),
        ],
    );
    (up, scheduler_file)
}

fn connect_through(up: &support::Proc, scheduler_file: &Path) -> rask::Client {
    wait_for(
        "the scheduler file",
        std::time::Duration::from_secs(60),
        || scheduler_file.exists().then_some(()),
    );
    rask::client::ConnectOptions::scheduler_file(scheduler_file)
        .connect()
        .unwrap_or_else(|e| panic!("{e}\n{}", up.log_text()))
}

fn wait_workers(client: &rask::Client, up: &support::Proc, prefix: &str, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let have = client
            .workers()
            .map(|w| w.iter().filter(|w| w.name.starts_with(prefix)).count())
            .unwrap_or(0);
        if have == n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{have} workers, not {n}:\n{}",
            up.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// SIGTERM to `cluster up`: it exits cleanly and leaves nothing behind.
fn stop_and_check_gone(double: &Double, up: &mut support::Proc, cluster: &str) {
    up.signal("TERM");
    let code = up.wait_exit(std::time::Duration::from_secs(120));
    assert_eq!(code, Some(0), "{}", up.log_text());
    assert_all_gone(double, cluster);
}

fn assert_all_gone(double: &Double, cluster: &str) {
    let left: Vec<String> = [
        "/api/v1/namespaces/default/pods",
        "/api/v1/namespaces/default/services",
        "/apis/apps/v1/namespaces/default/deployments",
        "/apis/apps/v1/namespaces/default/replicasets",
    ]
    .iter()
    .flat_map(|p| double.names(p))
    .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    wait_for(
        "the pods' processes gone",
        std::time::Duration::from_secs(30),
        || cluster_processes(cluster).is_empty().then_some(()),
    );
}

#[test]
fn cluster_up_runs_worker_pods_and_deletes_everything_at_the_end() {
    use rask::ops::builtin::inc;
    let double = Double::start("k8s-up");
    let (mut up, scheduler_file) = cluster_up(
        &double,
        "kubernetes:\n  name: up\n  workers: 2\n  threads: 1\n  labels: {team: science}\n  env: {RASK_LOG: info}\n",
    );
    let client = connect_through(&up, &scheduler_file);
    wait_workers(&client, &up, "up-default-", 2);
    wait_for(
        "the terminal to say so",
        std::time::Duration::from_secs(30),
        || {
            up.log_text()
                .contains("Running: 2 of 2 workers connected")
                .then_some(())
        },
    );
    let pod = double.get("/api/v1/namespaces/default/pods/up-default-0");
    assert_eq!(pod["metadata"]["labels"]["team"], "science", "{pod}");
    let futures = client.map(inc, 0..1000u64).expect("submits");
    let sum: u64 = client.gather(&futures).expect("gathers").iter().sum();
    assert_eq!(sum, (1..=1000u64).sum::<u64>());
    drop(client);
    stop_and_check_gone(&double, &mut up, "up");
    assert!(!scheduler_file.exists());
}

/// `rask cluster SUBCOMMAND ... --scheduler-file F`: its success and output.
fn cluster_command(scheduler_file: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(rask_binary())
        .arg("cluster")
        .args(args)
        .arg("--scheduler-file")
        .arg(scheduler_file)
        .output()
        .expect("rask runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn worker_pods(double: &Double) -> Vec<String> {
    double.names("/api/v1/namespaces/default/pods?labelSelector=rask.dev/component%3Dworker")
}

#[test]
fn cluster_up_scales_with_retirement_and_converges_after_being_killed() {
    use rask::ops::builtin::inc;
    let double = Double::start("k8s-up-scale");
    // A token from a Secret: the scheduler file carries it to clients.
    double.ok(
        "POST",
        "/api/v1/namespaces/default/secrets",
        "application/json",
        r#"{"metadata": {"name": "up-token"}, "stringData": {"token": "s3cret-token"}}"#,
    );
    let config =
        "kubernetes:\n  name: sized\n  workers: 2\n  threads: 1\n  token-secret: up-token\n";
    let (mut up, scheduler_file) = cluster_up(&double, config);
    let client = connect_through(&up, &scheduler_file);
    wait_workers(&client, &up, "sized-default-", 2);
    let futures = client.map(inc, 0..500u64).expect("submits");
    let sum: u64 = client.gather(&futures).expect("gathers").iter().sum();
    assert_eq!(sum, (1..=500u64).sum::<u64>());

    // `rask cluster scale` reaches this process through the scheduler.
    let (ok, said) = cluster_command(&scheduler_file, &["scale", "4"]);
    assert!(ok, "{said}\n{}", up.log_text());
    assert!(
        said.contains("kubernetes:") && said.contains("target 4"),
        "{said}"
    );
    wait_workers(&client, &up, "sized-default-", 4);
    let (ok, said) = cluster_command(&scheduler_file, &["status"]);
    assert!(ok && said.contains("pod sized-default-3"), "{said}");
    assert!(said.contains("4 pod(s) submitted in all"), "{said}");
    let (ok, said) = cluster_command(&scheduler_file, &["scale", "1"]);
    assert!(ok && said.contains("target 1"), "{said}");
    wait_workers(&client, &up, "sized-default-", 1);
    wait_for("one worker pod", std::time::Duration::from_secs(60), || {
        (worker_pods(&double) == ["sized-default-0"]).then_some(())
    });
    // The retired workers handed their results on.
    let again: u64 = client.gather(&futures).expect("gathers").iter().sum();
    assert_eq!(again, sum);
    let (ok, said) = cluster_command(&scheduler_file, &["adapt", "--min", "3", "--max", "2"]);
    assert!(!ok && said.contains("more than maximum"), "{said}");

    // Killed outright, then started again: it takes over the pods it finds
    // and converges to the config's 2 workers, with no pod twice.
    up.signal("KILL");
    assert!(
        up.wait_exit(std::time::Duration::from_secs(30)).is_some(),
        "cluster up outlived SIGKILL"
    );
    let restarted = double.dir.path().join("kubernetes.yaml");
    let mut up = double.rask(
        "cluster-up-again.log",
        &[
            "cluster",
            "up",
            &restarted.display().to_string(),
            "--scheduler-file",
            &scheduler_file.display().to_string(),
        ],
    );
    wait_workers(&client, &up, "sized-default-", 2);
    wait_for(
        "two worker pods",
        std::time::Duration::from_secs(60),
        || (worker_pods(&double) == ["sized-default-0", "sized-default-1"]).then_some(()),
    );
    assert_eq!(
        double.names("/apis/apps/v1/namespaces/default/deployments"),
        vec!["sized-scheduler"]
    );
    let again: u64 = client.gather(&futures).expect("gathers").iter().sum();
    assert_eq!(again, sum);
    // The scheduler notices the killed process's connection close and lets
    // the new one serve; were the connection left half-open, the first
    // request it leaves unanswered would end its role
    // (LAUNCHER_CALL_TIMEOUT), so this waits for longer than that.
    let taking_over = std::time::Instant::now();
    wait_for(
        "the restarted process to take cluster requests",
        std::time::Duration::from_secs(150),
        || {
            let (ok, said) = cluster_command(&scheduler_file, &["adapt", "--max", "3"]);
            (ok && said.contains("adaptive 0..3")).then_some(())
        },
    );
    eprintln!(
        "the restarted cluster up took cluster requests after {:?}",
        taking_over.elapsed()
    );
    drop(futures);
    drop(client);
    stop_and_check_gone(&double, &mut up, "sized");
}

#[test]
fn cluster_up_adapts_from_no_workers_to_some_and_back() {
    use rask::ops::builtin::sleep_then;
    let double = Double::start("k8s-up-adaptive");
    let (mut up, scheduler_file) = cluster_up(
        &double,
        "kubernetes:\n  name: grow\n  threads: 1\n  adaptive: {minimum: 0, maximum: 2, interval: 0.5, wait-count: 2}\n",
    );
    let client = connect_through(&up, &scheduler_file);
    let futures = client
        .map(sleep_then, (0..200u64).map(|i| (100u64, i)))
        .expect("submits");
    wait_workers(&client, &up, "grow-default-", 2);
    let sum: u64 = client.gather(&futures).expect("gathers").iter().sum();
    assert_eq!(sum, (0..200u64).sum::<u64>());
    drop(futures);
    wait_workers(&client, &up, "grow-default-", 0);
    wait_for("no worker pods", std::time::Duration::from_secs(30), || {
        double
            .names("/api/v1/namespaces/default/pods?labelSelector=rask.dev/component%3Dworker")
            .is_empty()
            .then_some(())
    });
    drop(client);
    stop_and_check_gone(&double, &mut up, "grow");
}

#[test]
fn cluster_up_reports_a_pod_that_can_never_schedule() {
    let double = Double::start("k8s-up-pending");
    let (mut up, scheduler_file) = cluster_up(
        &double,
        "kubernetes:\n  name: big\n  workers: 1\n  resources:\n    requests: {cpu: \"64\"}\n",
    );
    wait_for(
        "the reason on the terminal",
        std::time::Duration::from_secs(60),
        || up.log_text().contains("Insufficient cpu").then_some(()),
    );
    let log = up.log_text();
    assert!(
        log.contains("pod big-default-0 is Pending (FailedScheduling"),
        "{log}"
    );
    // The jobs the dashboard's /jobs page lists: the pod, pending, with why.
    let client = connect_through(&up, &scheduler_file);
    let status = wait_for(
        "the pod's reason in the cluster's status",
        std::time::Duration::from_secs(60),
        || {
            let status = client.cluster_status().ok()?;
            status
                .jobs
                .iter()
                .any(|j| j.state.contains("Insufficient cpu"))
                .then_some(status)
        },
    );
    assert_eq!(status.jobs.len(), 1, "{status:?}");
    assert!(
        status.jobs[0].state.starts_with("pending (Unschedulable: "),
        "{status:?}"
    );
    drop(client);
    stop_and_check_gone(&double, &mut up, "big");
}

const JOBS: &str = "/apis/rask.dev/v1alpha1/namespaces/default/raskjobs";

fn job_yaml(name: &str, cluster: &str, args: &str, delete_cluster: bool) -> String {
    format!(
        "apiVersion: rask.dev/v1alpha1\nkind: RaskJob\nmetadata:\n  name: {name}\nspec:\n  cluster: {cluster}\n  deleteCluster: {delete_cluster}\n  template:\n    spec:\n      containers:\n        - name: client\n          image: localhost/rask:latest\n          command: [\"/usr/local/bin/rask\", \"microbench\"]\n          args: {args}\n"
    )
}

fn wait_job(
    double: &Double,
    operator: &support::Proc,
    name: &str,
    phase: &str,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let status = double.get(&format!("{JOBS}/{name}"))["status"].clone();
        if status["phase"] == phase {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {name} is not {phase}: {status}\n{}",
            operator.log_text()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

#[test]
fn rask_jobs_run_their_client_against_the_cluster_and_clean_up() {
    let double = Double::start("k8s-jobs");
    double.install_crds();
    let operator = double.operator("operator.log");
    double.create_yaml(
        CLUSTERS,
        &cluster_yaml("work", "  worker:\n    replicas: 1\n    threads: 1\n"),
    );
    double.create_yaml(
        JOBS,
        &job_yaml(
            "bench",
            "work",
            r#"["--tasks", "500", "--scheduler", "$(RASK_SCHEDULER_ADDRESS)"]"#,
            true,
        ),
    );
    let status = wait_job(&double, &operator, "bench", "Succeeded");
    assert!(status["completionTime"].is_string(), "{status}");
    wait_for(
        "the client pod and the cluster gone",
        std::time::Duration::from_secs(60),
        || {
            (double.names("/api/v1/namespaces/default/pods").is_empty()
                && double.names(CLUSTERS).is_empty())
            .then_some(())
        },
    );

    // A client that fails: the job says so, with the exit code.
    double.create_yaml(
        CLUSTERS,
        &cluster_yaml("work2", "  worker:\n    replicas: 1\n"),
    );
    double.create_yaml(
        JOBS,
        &job_yaml("broken", "work2", r#"["--tasks", "many"]"#, false),
    );
    let status = wait_job(&double, &operator, "broken", "Failed");
    let message = status["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("exited with code 2"), "{status}");
    assert_eq!(double.names(CLUSTERS), ["work2"]);
}

#[test]
fn no_api_server_or_no_crds_is_a_clear_error() {
    let scratch = TempDir::new("k8s-unreachable");
    let port = support::free_port();
    let kubeconfig = scratch.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: x\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\n\
             contexts:\n- name: x\n  context: {{cluster: x, user: x}}\ncurrent-context: x\nusers:\n- name: x\n  user: {{}}\n"
        ),
    )
    .expect("write");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-configs/kubernetes.yaml");
    for args in [
        vec!["operator".to_string(), "run".to_string()],
        vec![
            "cluster".to_string(),
            "up".to_string(),
            config.display().to_string(),
        ],
    ] {
        let out = Command::new(rask_binary())
            .args(&args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .expect("rask runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!(
                "cannot reach the Kubernetes API server at http://127.0.0.1:{port}"
            )),
            "{args:?}: {err}"
        );
    }
    // An API server without rask's CRDs: the operator says how to install them.
    let double = Double::start("k8s-no-crds");
    let mut operator = double.operator("operator.log");
    assert_eq!(
        operator.wait_exit(std::time::Duration::from_secs(30)),
        Some(1)
    );
    let log = operator.log_text();
    assert!(
        log.contains("the RaskCluster resource is not installed"),
        "{log}"
    );
}
