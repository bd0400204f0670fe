//! The Kubernetes double (tests/kubernetes/double) for tests: its API server
//! on 127.0.0.1 and a node whose pods run the `rask` binary under test as
//! `localhost/rask:latest`; stopped, with every pod, on drop.

use super::{python, rask_binary, Proc, TempDir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running double.
pub struct Double {
    proc: Proc,
    /// Where its kubeconfig, node files and pods' logs are.
    pub dir: TempDir,
    host: String,
}

impl Double {
    /// Starts a double whose node has `cpu` and `memory` to give.
    pub fn start(label: &str) -> Double {
        let dir = TempDir::new(label);
        // Pods run as other users: they must reach their own files.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod");
        let log = dir.path().join("double.log");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kubernetes/double");
        let child = Command::new(python())
            .arg(&script)
            .args(["--workdir", &dir.path().display().to_string()])
            .args([
                "--image",
                &format!(
                    "localhost/rask:latest={}:/usr/local/bin/rask",
                    rask_binary()
                ),
            ])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("double.err")).expect("log"),
            ))
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/test.sh)", python().display()));
        let proc = Proc { child, log };
        let kubeconfig = dir.path().join("kubeconfig");
        wait_for("the double's kubeconfig", Duration::from_secs(30), || {
            kubeconfig.exists().then_some(())
        });
        let text = std::fs::read_to_string(&kubeconfig).expect("kubeconfig");
        let url = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .expect("a server line");
        let host = url.trim_start_matches("http://").to_string();
        Double { proc, dir, host }
    }

    /// Its kubeconfig (for `KUBECONFIG`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// One request; returns the status and the JSON body.
    pub fn call(&self, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        let (status, reply) = super::http_with(
            &self.host,
            method,
            path,
            body,
            &[("Content-Type", content_type)],
        );
        (status, serde_json::from_str(&reply).unwrap_or(Value::Null))
    }

    /// A request that must succeed; its JSON body.
    pub fn ok(&self, method: &str, path: &str, content_type: &str, body: &str) -> Value {
        let (status, reply) = self.call(method, path, content_type, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {reply}"
        );
        reply
    }

    /// GET as JSON.
    pub fn get(&self, path: &str) -> Value {
        self.ok("GET", path, "application/json", "")
    }

    /// The names of the items a list returns.
    pub fn names(&self, path: &str) -> Vec<String> {
        self.get(path)["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["metadata"]["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Creates each object of a YAML stream (as `kubectl create -f`).
    pub fn create_yaml(&self, collection: &str, yaml: &str) {
        for doc in yaml.split("\n---\n").filter(|d| !d.trim().is_empty()) {
            self.ok("POST", collection, "application/yaml", doc);
        }
    }

    /// Installs rask's CRDs as `rask operator crds` prints them.
    pub fn install_crds(&self) {
        let out = Command::new(rask_binary())
            .args(["operator", "crds"])
            .output()
            .expect("rask runs");
        assert!(out.status.success());
        self.create_yaml(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            &String::from_utf8(out.stdout).expect("UTF-8"),
        );
    }

    /// Starts `rask operator run` against this double.
    pub fn operator(&self, log: &str) -> Proc {
        self.operator_with(log, &[])
    }

    /// [`Double::operator`] with more arguments.
    pub fn operator_with(&self, log: &str, args: &[&str]) -> Proc {
        let mut all = vec!["operator", "run"];
        all.extend_from_slice(args);
        self.rask(log, &all)
    }

    /// Starts `rask ARGS…` against this double (its stderr in `log`).
    pub fn rask(&self, log: &str, args: &[&str]) -> Proc {
        let log = self.dir.path().join(log);
        let child = Command::new(rask_binary())
            .args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("RASK_LOG", "info,rask_launchers=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("rask starts");
        Proc { child, log }
    }

    /// The double's own log, for failure messages.
    pub fn log(&self) -> String {
        self.proc.log_text()
    }
}

impl Drop for Double {
    fn drop(&mut self) {
        // SIGTERM: the double stops every pod's processes, then exits.
        self.proc.signal("TERM");
        self.proc.wait_exit(Duration::from_secs(60));
    }
}

/// Polls `check` until it returns something, or fails the test after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Processes of the double's pods for `cluster`: those whose environment
/// names a pod of it (`RASK_POD_NAME={cluster}-…`, set in every pod rask makes).
pub fn cluster_processes(cluster: &str) -> Vec<u32> {
    let needle = format!("RASK_POD_NAME={cluster}-");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ
            .split(|&b| b == 0)
            .any(|var| var.starts_with(needle.as_bytes()))
        {
            found.push(pid);
        }
    }
    found
}
