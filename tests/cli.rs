//! The `rask` binary end to end: the main job, the microbenchmark, and bad input.

use std::process::Command;

fn rask(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rask"))
        .args(args)
        .output()
        .expect("rask runs")
}

#[test]
fn demo_prints_checked_results_and_writes_its_performance_report() {
    let report = std::env::temp_dir().join(format!("rask-demo-report-{}.html", std::process::id()));
    let out = rask(&[
        "demo",
        "--leaves",
        "3000",
        "--performance-report",
        report.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("matches sequential").count(), 2, "{stdout}");
    assert!(stdout.contains("5999 tasks"), "{stdout}");
    assert!(stdout.contains("Performance report:"), "{stdout}");
    let html = std::fs::read_to_string(&report).expect("the report");
    std::fs::remove_file(&report).unwrap();
    // The tree reduction's ops, each with a row of its own.
    assert!(html.contains("<tr data-op=\"load\"><td>load</td><td class=\"num\">6000</td>"));
    assert!(html.contains("<tr data-op=\"combine\">"));
}

#[test]
fn dashboard_prints_the_link_of_a_scheduler_file() {
    let dir = std::env::temp_dir().join(format!("rask-dashboard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scheduler.json");
    std::fs::write(
        &file,
        r#"{"address": "tcp://127.0.0.1:8786", "dashboard_address": "http://127.0.0.1:8787", "token": "a b"}"#,
    )
    .unwrap();
    let out = rask(&["dashboard", "--scheduler-file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "http://127.0.0.1:8787/status?token=a%20b"
    );
    std::fs::write(&file, r#"{"address": "tcp://127.0.0.1:8786"}"#).unwrap();
    let out = rask(&["dashboard", "--scheduler-file", file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("serves no dashboard"));
    let missing = dir.join("missing.json");
    let out = rask(&["dashboard", "--scheduler-file", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.json"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn microbench_json_is_one_line_with_the_figures() {
    let out = rask(&[
        "microbench",
        "--tasks",
        "5000",
        "--workers",
        "2",
        "--threads",
        "1",
        "--json",
        "--scheduler-memory",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(line["n"], 5000);
    assert!(line["map_tasks_per_s"].as_f64().unwrap() > 0.0);
    assert!(line["tree_tasks_per_s"].as_f64().unwrap() > 0.0);
    assert!(line["scheduler_bytes_per_task"].as_f64().is_some());
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let out = rask(&["microbench", "--tasks", "0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tasks must be at least 1"));

    let out = rask(&["demo", "--leaves", "many"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--leaves"));

    // Zero threads or workers would leave a local cluster waiting forever.
    for args in [
        ["demo", "--threads", "0"],
        ["arraybench", "--workers", "0"],
        ["microbench", "--workers", "0"],
    ] {
        let out = rask(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(args[1]) && stderr.contains("must be at least 1"),
            "{stderr}"
        );
    }
}

/// The allocator is chosen before `main` from `RASK_ALLOCATOR`; a value it does
/// not know is an error naming it, and both known values run the binary.
#[test]
fn an_unknown_allocator_override_is_an_error_naming_it() {
    let run = |value: &str| {
        Command::new(env!("CARGO_BIN_EXE_rask"))
            .args(["microbench", "--tasks", "200", "--workers", "1", "--json"])
            .env("RASK_ALLOCATOR", value)
            .output()
            .expect("rask runs")
    };
    let out = run("tcmalloc");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RASK_ALLOCATOR=tcmalloc"), "{stderr}");
    for known in ["system", "jemalloc"] {
        let out = run(known);
        assert!(
            out.status.success(),
            "{known}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
