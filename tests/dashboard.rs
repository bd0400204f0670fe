//! The dashboard in a real browser: headless Chromium against a scheduler
//! process with two worker processes. Screenshots go to
//! target/test-artefacts/dashboard/.

mod support;

use rask::ops::builtin::{inc, sleep_then};
use rask::prelude::*;
use rask::ConnectOptions;
use std::time::Duration;
use support::chromium::{artefacts, Browser};
use support::{Cluster, TempDir};

const TOKEN: &str = "dash-s3cret";

/// One Chromium at a time: a browser starting takes both of this machine's
/// cores for seconds, and the batch-system tests beside these time things.
static ONE_BROWSER: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_browser() -> std::sync::MutexGuard<'static, ()> {
    ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner())
}

fn start_cluster(label: &str) -> (Cluster, Client) {
    let mut cluster = Cluster::start(label, &["--token".to_string(), TOKEN.to_string()]);
    // No nanny: a killed worker stays dead.
    cluster.add_worker(&["--nthreads", "2", "--no-nanny"]);
    cluster.add_worker(&["--nthreads", "2", "--no-nanny"]);
    let client = ConnectOptions::scheduler_file(cluster.scheduler_file())
        .connect()
        .expect("client connects with the file's token");
    cluster.wait_for_workers(&client, 2);
    (cluster, client)
}

fn count(tab: &mut support::chromium::Tab, expression: &str) -> u64 {
    tab.eval(expression).as_u64().unwrap_or(0)
}

#[test]
fn the_status_page_follows_a_graph_and_the_workers_table_follows_the_cluster() {
    let _browser = one_browser();
    let (cluster, client) = start_cluster("dashboard-live");
    let shots = artefacts();

    // Without the token the pages and their data are refused.
    let (status, _) = cluster.http("GET", "/status", "");
    assert_eq!(status, 401);
    let (status, _) = cluster.http("GET", "/api/v1/dashboard/status", "");
    assert_eq!(status, 401);

    // Bad queries get 400s; huge ones are capped; the scheduler carries on.
    let authorization = format!("Bearer {TOKEN}");
    let bearer = [("Authorization", authorization.as_str())];
    for path in [
        "/api/v1/dashboard/status?since_bar=abc",
        "/api/v1/dashboard/graph?max_tasks=-1",
        "/workers/not-a-number",
    ] {
        let (status, _) = cluster.http_with("GET", path, "", &bearer);
        assert_eq!(status, 400, "{path}");
    }
    // The status page's data, as a program asks for it.
    let status_view = |query: &str| {
        let path = format!("/api/v1/dashboard/status?{query}");
        let (status, body) = cluster.http_with("GET", &path, "", &bearer);
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    let view = status_view("since_bar=18446744073709551615&max_bars=4294967295");
    assert_eq!(view["workers"].as_array().map(Vec::len), Some(2), "{view}");

    let browser = Browser::start();
    let mut tab = browser.open(&format!("{}/status?token={TOKEN}", cluster.dashboard));
    tab.wait_for(
        "the status stream",
        Duration::from_secs(20),
        "document.getElementById('live').textContent === 'live'",
    );

    // 240 tasks of 50 ms on 4 threads: about 3 s of work.
    let futures = client
        .map(sleep_then, (0..240u64).map(|i| (50u64, i)))
        .unwrap();
    let processing =
        "Number(document.querySelector('#states [data-state=processing] b').textContent)";
    tab.wait_for(
        "tasks processing on the page",
        Duration::from_secs(20),
        processing,
    );
    let bars = "Number(document.getElementById('task-stream-canvas').dataset.bars || 0)";
    let seen_early = count(&mut tab, bars);
    tab.screenshot(&shots.join("status-running.png"));
    let results = client.gather(&futures).unwrap();
    assert_eq!(results, (0..240u64).collect::<Vec<_>>());
    tab.wait_for(
        "every task in the task stream",
        Duration::from_secs(20),
        &format!("{bars} >= 240"),
    );
    assert!(seen_early < 240, "the page saw tasks appear before the end");
    tab.wait_for(
        "the progress row to show 240 of 240 done",
        Duration::from_secs(20),
        "(document.querySelector('#progress [data-op=sleep_then] .count') || {}).textContent === '240 / 240'",
    );
    let in_memory = "Number(document.querySelector('#states [data-state=memory] b').textContent)";
    assert_eq!(count(&mut tab, in_memory), 240);
    assert_eq!(count(&mut tab, processing), 0);
    // Each bar says which worker thread ran its task: both threads of both
    // workers ran tasks, and each worker has a row per thread.
    let view = status_view("max_bars=1000&oldest_first=true");
    let mut threads: Vec<(u64, u64)> = view["bars"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["op"].as_u64() >= Some(2))
        .map(|b| (b["worker"].as_u64().unwrap(), b["thread"].as_u64().unwrap()))
        .collect();
    threads.sort();
    threads.dedup();
    assert_eq!(threads.len(), 4, "{threads:?}");
    assert!(threads.iter().all(|(_, t)| *t < 2), "{threads:?}");
    let rows = tab.eval("document.getElementById('task-stream-canvas').dataset.rows");
    assert_eq!(rows.as_str(), Some("2,2"));
    tab.screenshot(&shots.join("status-done.png"));

    // The workers table matches the cluster.
    tab.navigate(&format!("{}/workers", cluster.dashboard));
    let rows = "document.querySelectorAll('#workers-table tbody tr').length";
    tab.wait_for(
        "two rows",
        Duration::from_secs(20),
        &format!("{rows} === 2"),
    );
    let names = tab.eval(
        "[...document.querySelectorAll('#workers-table tbody tr')].map(r => r.dataset.workerName).sort().join(',')",
    );
    let mut expected: Vec<String> = client
        .workers()
        .unwrap()
        .iter()
        .map(|w| w.name.clone())
        .collect();
    expected.sort();
    assert_eq!(names.as_str(), Some(expected.join(",").as_str()));
    let threads = tab.eval(
        "[...document.querySelectorAll('#workers-table tbody tr')].map(r => r.children[2].textContent).join(',')",
    );
    assert_eq!(threads.as_str(), Some("2,2"));
    tab.screenshot(&shots.join("workers.png"));

    // A worker killed disappears from it.
    cluster.workers[1].signal("KILL");
    tab.wait_for(
        "the killed worker's row to go",
        Duration::from_secs(30),
        &format!("{rows} === 1 && !document.querySelector('[data-worker-name=w1]')"),
    );
    tab.screenshot(&shots.join("workers-after-kill.png"));

    // The other pages draw from their data.
    for (page, ready) in [
        (
            "graph",
            "document.querySelectorAll('#graph-svg g.node').length >= 1",
        ),
        (
            "system",
            "document.querySelectorAll('#system-facts dt').length >= 5",
        ),
    ] {
        tab.navigate(&format!("{}/{page}", cluster.dashboard));
        tab.wait_for(page, Duration::from_secs(20), ready);
        tab.screenshot(&shots.join(format!("{page}.png")));
    }
    tab.navigate(&format!("{}/jobs", cluster.dashboard));
    let text = tab.wait_for(
        "the jobs page",
        Duration::from_secs(20),
        "document.getElementById('jobs').textContent.length > 4 && document.getElementById('jobs').textContent",
    );
    assert!(
        text.as_str().unwrap_or_default().contains("launcher"),
        "a cluster no launcher started says so: {text}"
    );
    drop(futures);
}

#[test]
fn a_small_graph_is_drawn_task_by_task_and_a_big_one_by_group() {
    let _browser = one_browser();
    let (cluster, client) = start_cluster("dashboard-graph");
    let browser = Browser::start();
    let mut tab = browser.open(&format!("{}/graph?token={TOKEN}", cluster.dashboard));
    let small: Vec<_> = (0..10u64).map(|i| client.submit(inc, i).unwrap()).collect();
    client.gather(&small).unwrap();
    tab.eval("document.getElementById('task-level').click()");
    tab.wait_for(
        "ten task nodes",
        Duration::from_secs(20),
        "document.querySelectorAll('#graph-svg g.node').length === 10",
    );
    tab.screenshot(&artefacts().join("graph-tasks.png"));
    // 2000 tasks: too many to draw one by one; one node for their group.
    let big = client.map(inc, 0..2000u64).unwrap();
    client.gather(&big).unwrap();
    let info = tab.wait_for(
        "the group view",
        Duration::from_secs(20),
        "document.getElementById('graph-info').textContent.includes('too many') && document.getElementById('graph-info').textContent",
    );
    assert!(info.as_str().unwrap().starts_with("2010 tasks"), "{info}");
}

#[test]
fn a_performance_report_opens_offline_and_shows_the_runs_tasks() {
    let _browser = one_browser();
    let (cluster, client) = start_cluster("dashboard-report");
    let dir = TempDir::new("report");
    let path = dir.path().join("report.html");
    // Work before the report is not in it.
    client.gather(&client.map(inc, 0..50u64).unwrap()).unwrap();
    let report = client.performance_report(&path).unwrap();
    let futures = client.map(inc, 100..400u64).unwrap();
    client.gather(&futures).unwrap();
    let written = report.save().unwrap();
    assert_eq!(written, path);
    drop(cluster);

    let browser = Browser::start();
    let mut tab = browser.open(&format!("file://{}", path.display()));
    tab.wait_for(
        "the report's task stream",
        Duration::from_secs(20),
        "Number((document.getElementById('task-stream-canvas') || {dataset: {}}).dataset.drawn || 0) >= 300",
    );
    let tasks =
        tab.eval("document.querySelector('#ops-table [data-op=inc] td:nth-child(2)').textContent");
    assert_eq!(tasks.as_str(), Some("300"));
    let progress = tab.eval("document.querySelector('#progress [data-op=inc] .count').textContent");
    assert_eq!(progress.as_str(), Some("300 / 300"));
    // Nothing was fetched: the file holds its script, style and data.
    let fetched = tab.eval("performance.getEntriesByType('resource').length");
    assert_eq!(fetched.as_u64(), Some(0));
    tab.screenshot(&artefacts().join("performance-report.png"));
}

#[test]
fn an_embedded_local_cluster_serves_the_dashboard_when_asked() {
    let cluster = rask::LocalCluster::new()
        .workers(2)
        .dashboard(0)
        .start()
        .unwrap();
    let link = cluster.dashboard_link().expect("a link").to_string();
    let client = Client::connect_local(std::sync::Arc::new(cluster)).unwrap();
    assert_eq!(client.dashboard_link().as_deref(), Some(link.as_str()));
    client.gather(&client.map(inc, 0..100u64).unwrap()).unwrap();
    let host = link
        .trim_start_matches("http://")
        .trim_end_matches("/status")
        .to_string();
    let (status, body) = support::http(&host, "GET", "/api/v1/dashboard/status", "");
    assert_eq!(status, 200, "{body}");
    let view: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = view["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["local-0", "local-1"]);
    assert_eq!(view["bars"].as_array().map(Vec::len), Some(100));
    let (status, page) = support::http(&host, "GET", "/status", "");
    assert_eq!((status, page.contains("data-page=\"status\"")), (200, true));
    // Without `.dashboard(..)` there is none.
    let plain = rask::LocalCluster::new().workers(1).start().unwrap();
    assert!(plain.dashboard_link().is_none());
}
