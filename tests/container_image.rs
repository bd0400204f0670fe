//! The rask image: built FROM scratch by scripts/build-image.sh with buildah
//! (scripts/test.sh installs it; no base image is pulled), it answers
//! `rask --version`, runs as user 65532 with nothing else in it, and a
//! worker started from it joins a scheduler on this machine and computes.

mod support;

use rask::ops::builtin::inc;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{rask_binary, Cluster};

fn buildah(args: &[&str]) -> Output {
    Command::new("buildah")
        .args(args)
        .output()
        .expect("buildah runs (scripts/test.sh installs it)")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An image and a working container of it, removed at the end.
struct Built {
    tag: String,
    container: String,
}

impl Drop for Built {
    fn drop(&mut self) {
        buildah(&["rm", &self.container]);
        buildah(&["rmi", "--force", &self.tag]);
    }
}

#[test]
fn the_image_is_built_from_scratch_and_its_worker_computes() {
    let id = std::process::id();
    let built = Built {
        tag: format!("localhost/rask-test-{id}:latest"),
        container: format!("rask-test-{id}"),
    };
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-image.sh"))
        .arg(&built.tag)
        .env("RASK_BINARY", rask_binary())
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "build-image.sh:\n{}", text(&out));
    let out = buildah(&[
        "from",
        "--pull=never",
        "--name",
        &built.container,
        &built.tag,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let run = |command: &[&str]| {
        let mut args = vec!["run", "--isolation", "chroot", &built.container, "--"];
        args.extend_from_slice(command);
        buildah(&args)
    };

    let out = run(&["/usr/local/bin/rask", "--version"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("rask {}", env!("CARGO_PKG_VERSION"))
    );
    // Nothing but rask: no shell to run.
    assert!(!run(&["/bin/sh", "-c", "true"]).status.success());
    let out = buildah(&["inspect", "--format", "{{.OCIv1.Config.User}}", &built.tag]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "65532:65532");

    // A worker from the image (sharing this machine's network) joins a
    // scheduler here, computes, and retires when asked.
    let cluster = Cluster::start("image", &[]);
    let mut worker = Command::new("buildah")
        .args([
            "run",
            "--isolation",
            "chroot",
            &built.container,
            "--",
            "/usr/local/bin/rask",
            "worker",
            &cluster.address,
            "--nthreads",
            "1",
            "--no-nanny",
            "--name",
            "from-the-image",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("buildah runs");
    let client = rask::Client::connect(&cluster.address).expect("connects");
    let deadline = Instant::now() + Duration::from_secs(60);
    let joined = loop {
        let workers = client.workers().expect("workers");
        if let Some(w) = workers.iter().find(|w| w.name == "from-the-image") {
            break w.id;
        }
        if Instant::now() > deadline || worker.try_wait().ok().flatten().is_some() {
            let _ = worker.kill();
            let out = worker.wait_with_output().expect("its output");
            panic!("the image's worker did not join:\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let futures = client.map(inc, 0..200u64).expect("submits");
    let sum: u64 = client.gather(&futures).expect("gathers").iter().sum();
    assert_eq!(sum, (1..=200u64).sum::<u64>());
    drop(futures);
    client.retire_workers(&[joined], 0).expect("retires");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = worker.try_wait().expect("waits") {
            break status;
        }
        assert!(Instant::now() < deadline, "the retired worker did not exit");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "the worker exited with {status}");
}
