//! Cluster configs through the `rask` binary: every example in cluster-configs/
//! checks and renders; bad configs fail with file:line:column; and hostile
//! values in every string field of a config run nothing when the rendered job
//! script runs under bash.

mod support;

use std::path::Path;
use std::process::Command;
use support::{rask_binary, TempDir};

fn rask(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(rask_binary())
        .args(args)
        .output()
        .expect("rask runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn every_example_config_checks_and_renders() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster-configs");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let file = path.display().to_string();
        let (ok, out, err) = rask(&["cluster", "check", &file]);
        assert!(ok, "{file}: {err}");
        assert!(out.contains(": ok"), "{out}");
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let (ok, script, err) = rask(&["cluster", "job-script", &file]);
        if stem == "local" || stem == "kubernetes" {
            assert!(!ok && err.contains("submits no jobs"), "{err}");
        } else {
            assert!(ok, "{file}: {err}");
            let prefix = match stem.as_str() {
                "slurm" => "#SBATCH",
                "pbs" => "#PBS",
                "sge" => "#$",
                _ => "#BSUB",
            };
            assert!(script.lines().any(|l| l.starts_with(prefix)), "{script}");
            assert!(script.contains(" worker tcp://127.0.0.1:8786 "), "{script}");
            let syntax = Command::new("bash")
                .args(["-n", "-c", &script])
                .status()
                .unwrap();
            assert!(syntax.success(), "{file}: bash -n rejects\n{script}");
        }
        seen.push(stem);
    }
    seen.sort();
    assert_eq!(seen, ["kubernetes", "local", "lsf", "pbs", "sge", "slurm"]);
    let (_, slurm, _) = rask(&[
        "cluster",
        "job-script",
        &dir.join("slurm.yaml").display().to_string(),
    ]);
    for line in [
        "#SBATCH -J rask-worker",
        "#SBATCH -p debug",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=4096M",
        "#SBATCH -t 01:00:00",
        "#SBATCH -e logs/rask-worker-%J.err",
    ] {
        assert!(slurm.lines().any(|l| l == line), "no {line:?} in\n{slurm}");
    }
    // Without `rask:`, jobs run the executable that renders the script.
    let worker = format!(
        "{} worker tcp://127.0.0.1:8786 --nthreads 2 ",
        rask_binary()
    );
    assert!(
        slurm.lines().any(|l| l.starts_with(&worker)),
        "no {worker:?} in\n{slurm}"
    );
    let (_, pbs, _) = rask(&[
        "cluster",
        "job-script",
        &dir.join("pbs.yaml").display().to_string(),
    ]);
    assert!(
        pbs.contains("#PBS -l select=1:ncpus=8:mem=32768MB"),
        "{pbs}"
    );
    assert_eq!(pbs.matches("--nthreads 4").count(), 2, "{pbs}");
}

#[test]
fn bad_configs_name_file_line_and_column() {
    let dir = TempDir::new("configs");
    let cases = [
        (
            "slurm:\n  cores: 4\n  memroy: 8GiB\n",
            ":3:3: ",
            "did you mean `memory`?",
        ),
        ("slurm:\n  cores: 4\n  memory: lots\n", ":3:", "bad memory"),
        (
            "slurm:\n  cores: 4\n  memory: 8GiB\n  walltime: soon\n",
            ":4:",
            "bad walltime",
        ),
        (
            "sge:\n  cores: 2\n  memory: 8GiB\n  account: x\n",
            ":4:3: ",
            "does not apply to sge",
        ),
        (
            "slurm:\n  cores: 2\n  memory: 8GiB\n  name: \"a b\"\n",
            ":4:",
            "bad name",
        ),
        (
            "slurm:\n  cores: 2\n  memory: 8GiB\n  name: ..\n",
            ":4:",
            "not dots alone",
        ),
        (
            "kubernetes:\n  workers: 2\n  servce-type: NodePort\n",
            ":3:3: ",
            "did you mean `service-type`?",
        ),
        (
            "kubernetes:\n  workers: 2\n  name: Big_Cluster\n",
            ":3:3: ",
            "not a Kubernetes name",
        ),
        (
            "kubernetes:\n  workers: 2\n  service-type: Ingress\n",
            ":3:3: ",
            "expected ClusterIP, NodePort or LoadBalancer",
        ),
        (
            "kubernetes:\n  workers: 2\n  tls-secret: /etc/rask/tls\n",
            ":3:3: ",
            "tls-secret \"/etc/rask/tls\" is not the name of a Secret",
        ),
        ("slurm: [\n", ":1:8: ", "invalid type: sequence"),
        ("slurm:\n\tcores: 2\n", ":2:", "cannot start any token"),
    ];
    for (n, (text, place, message)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("bad{n}.yaml"));
        std::fs::write(&path, text).unwrap();
        let file = path.display().to_string();
        let (ok, _, err) = rask(&["cluster", "check", &file]);
        assert!(!ok, "{text} was accepted");
        assert!(err.contains(&format!("{file}{place}")), "{text}: {err}");
        assert!(err.contains(message), "{text}: {err}");
    }
}

#[test]
fn hostile_values_run_nothing() {
    let dir = TempDir::new("inject");
    let marker = dir.path().join("pwned");
    let m = marker.display();
    let payloads = [
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("'; touch {m}; '"),
        format!("\"; touch {m}; \""),
        format!("x && touch {m}"),
    ];
    // The rendered script's worker command is `echo`, so it prints its arguments.
    for payload in &payloads {
        let quoted = payload.replace('\\', "\\\\").replace('"', "\\\"");
        let config = format!(
            "slurm:\n  cores: 2\n  memory: 1GiB\n  rask: /bin/echo\n  local-directory: \"{quoted}\"\n  log-directory: \"{quoted}\"\n  job-extra-directives: [\"{quoted}\"]\n  job-directives-skip: [\"{quoted}\"]\n  worker-extra-args: [\"{quoted}\", \"--x={quoted}\"]\n  resource-spec: null\n"
        );
        let path = dir.path().join("hostile.yaml");
        std::fs::write(&path, &config).unwrap();
        let file = path.display().to_string();
        let (ok, script, err) = rask(&["cluster", "job-script", &file, "--scheduler", payload]);
        assert!(ok, "{config}: {err}");
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}");
        assert!(!marker.exists(), "payload {payload:?} ran:\n{script}");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(printed.contains(payload.as_str()), "{printed}");
    }
    // Newlines (which would end a directive line) are refused, and so are
    // names outside the safe set.
    for (key, value) in [
        ("log-directory", "\"a\\ntouch x\""),
        ("name", "\"$(id)\""),
        ("queue", "\"q;id\""),
    ] {
        let path = dir.path().join("newline.yaml");
        std::fs::write(
            &path,
            format!("slurm:\n  cores: 2\n  memory: 1GiB\n  {key}: {value}\n"),
        )
        .unwrap();
        let (ok, _, err) = rask(&["cluster", "check", &path.display().to_string()]);
        assert!(!ok && err.contains(":4:"), "{key}: {err}");
    }
}

/// The `#PBS` directives of a script: option, and for `-l` the resource names
/// with their values.
fn pbs_directives(script: &str) -> Vec<(String, Vec<(String, String)>)> {
    script
        .lines()
        .filter_map(|l| l.strip_prefix("#PBS "))
        .map(|d| {
            let (flag, value) = d.split_once(' ').unwrap_or((d, ""));
            let resources = if flag == "-l" {
                value
                    .split([':', ','])
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                        (k.to_string(), v.to_string())
                    })
                    .collect()
            } else {
                vec![(String::new(), value.to_string())]
            };
            (flag.to_string(), resources)
        })
        .collect()
}

/// PBS scripts have the structure dask-jobqueue (pip, in the test venv)
/// renders for the same settings: the same directives in the same order, the
/// same resource names and values (memory within rounding).
#[test]
fn pbs_script_has_dask_jobqueues_structure() {
    let dir = TempDir::new("pbs-vs-jobqueue");
    let config = dir.path().join("pbs.yaml");
    std::fs::write(
        &config,
        "pbs:\n  name: rask-worker\n  cores: 2\n  memory: 4GiB\n  queue: regular\n  \
         account: proj42\n  walltime: \"01:30:00\"\n  job-extra-directives: [\"-m n\"]\n",
    )
    .unwrap();
    let (ok, ours, err) = rask(&["cluster", "job-script", config.to_str().unwrap()]);
    assert!(ok, "{err}");
    let theirs = support::run_python(
        "from dask_jobqueue.pbs import PBSJob\n\
         job = PBSJob(scheduler='tcp://127.0.0.1:8786', job_name='rask-worker', cores=2,\n\
         \x20   memory='4GiB', queue='regular', account='proj42', walltime='01:30:00',\n\
         \x20   job_extra_directives=['-m n'])\n\
         print(job.job_script())\n",
        &[],
    );
    let (ours, theirs) = (pbs_directives(&ours), pbs_directives(&theirs));
    let flags = |d: &[(String, Vec<(String, String)>)]| -> Vec<String> {
        d.iter()
            .map(|(f, r)| {
                format!(
                    "{f} {}",
                    r.iter()
                        .map(|(k, _)| k.as_str())
                        .collect::<Vec<_>>()
                        .join(":")
                )
            })
            .collect()
    };
    assert_eq!(
        flags(&ours),
        flags(&theirs),
        "ours {ours:?}\ntheirs {theirs:?}"
    );
    for ((_, a), (_, b)) in ours.iter().zip(&theirs) {
        for ((key, x), (_, y)) in a.iter().zip(b) {
            if key == "mem" {
                let mb = |v: &str| -> f64 {
                    let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
                    let n: f64 = digits.parse().unwrap();
                    if v.to_uppercase().ends_with("GB") {
                        n * 1000.0
                    } else {
                        n
                    }
                };
                let (x, y) = (mb(x), mb(y));
                assert!(
                    (x - y).abs() / y < 0.1,
                    "mem {x} MB vs dask-jobqueue's {y} MB"
                );
            } else {
                assert_eq!(x, y, "{key}: ours {x:?}, dask-jobqueue's {y:?}");
            }
        }
    }
}
