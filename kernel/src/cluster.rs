//! The cluster magics on the kernel's side. The cells' process holds the
//! `client` ([`rask::notebook::SessionClient`]); the kernel reaches it over a
//! Unix socket the cell prelude connects to, and starts (and stops) the
//! processes of the clusters it brings up: a scheduler and `rask worker`s
//! for `%cluster local N --processes`, `rask cluster up` for a YAML config.

use crate::magics::{ClusterMagic, Magic};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a request to the cells' process may take (starting a cluster,
/// waiting for a scheduler file).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Processes this kernel started for the current cluster.
enum Owned {
    /// `%cluster local N --processes`.
    Processes {
        scheduler: Child,
        workers: Vec<Child>,
        scheduler_file: PathBuf,
        threads: u32,
    },
    /// `%cluster up CONFIG`: a `rask cluster up` process.
    Launcher { process: Child },
}

/// The connection to the cells' process, replaced when evcxr restarts it.
#[derive(Default)]
struct Link {
    stream: Option<(BufReader<UnixStream>, UnixStream)>,
    /// The request that attached the current cluster, sent again to a new
    /// cells' process so its `client` follows.
    attach: Option<Value>,
}

/// The requests about the running cell, sent to the cells' process.
#[derive(Clone)]
pub struct CellsLink(Arc<Mutex<Link>>);

impl CellsLink {
    /// A cell begins: its `client` notes the futures the cell creates.
    pub fn cell_begins(&self) {
        let mut link = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if link.stream.is_some() {
            let _ = exchange(&mut link, &json!({ "op": "cell" }));
        }
    }

    /// Cancels the running cell's futures that have not finished; how many.
    pub fn cancel_cell_futures(&self) -> Result<u64, String> {
        let mut link = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let reply = exchange(&mut link, &json!({ "op": "interrupt" }))?;
        Ok(reply["cancelled"].as_u64().unwrap_or(0))
    }
}

/// The kernel's clusters.
pub struct Clusters {
    socket: PathBuf,
    dir: PathBuf,
    link: Arc<Mutex<Link>>,
    owned: Option<Owned>,
    exe: PathBuf,
}

/// A magic's answer: MIME type → content.
pub type Shown = HashMap<String, String>;

impl Clusters {
    /// The scheduler file of the attached cluster, when it has one.
    fn scheduler_file(&self) -> Option<PathBuf> {
        match &self.owned {
            Some(Owned::Processes { scheduler_file, .. }) => return Some(scheduler_file.clone()),
            Some(Owned::Launcher { .. }) => return Some(self.dir.join("scheduler.json")),
            None => {}
        }
        let link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        let file = link.attach.as_ref()?.get("scheduler_file")?.as_str()?;
        Some(PathBuf::from(file))
    }

    /// Listens for the cells' process on a socket in a fresh directory under
    /// `parent`; returns the manager and the socket's path (for [`rask::notebook::CONTROL_ENV`]).
    pub fn start(parent: &Path) -> std::io::Result<Clusters> {
        let dir = parent.join(format!("kernel-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("control.sock");
        let listener = UnixListener::bind(&socket)?;
        let link = Arc::new(Mutex::new(Link::default()));
        let accepted = link.clone();
        std::thread::Builder::new()
            .name("rask-kernel-control".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let Ok(reader) = stream.try_clone() else {
                        continue;
                    };
                    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
                    let mut link = accepted.lock().unwrap_or_else(|e| e.into_inner());
                    link.stream = Some((BufReader::new(reader), stream));
                    // A new cells' process: its client follows the current cluster.
                    if let Some(attach) = link.attach.clone() {
                        if let Err(e) = exchange(&mut link, &attach) {
                            tracing::warn!("reattaching the new cells' process: {e}");
                        }
                    }
                }
            })?;
        Ok(Clusters {
            socket,
            dir,
            link,
            owned: None,
            exe: std::env::current_exe()?,
        })
    }

    /// A handle on the cells' process for the requests a running cell needs
    /// (no magic holds it meanwhile).
    pub fn cells_link(&self) -> CellsLink {
        CellsLink(self.link.clone())
    }

    /// The socket the cells' process connects to.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn request(&self, request: Value) -> Result<Value, String> {
        let mut link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        exchange(&mut link, &request)
    }

    fn attach(&self, request: Value) -> Result<Value, String> {
        let reply = self.request(request.clone())?;
        self.link.lock().unwrap_or_else(|e| e.into_inner()).attach = Some(request);
        Ok(reply)
    }

    /// Whether the attached cluster is one of processes (a scheduler the
    /// cells' process connected to), whose workers need a plugin for the
    /// cells' ops.
    pub fn is_processes(&self) -> bool {
        let link = self.link.lock().unwrap_or_else(|e| e.into_inner());
        link.attach
            .as_ref()
            .is_some_and(|request| request["op"] == "connect")
    }

    /// Has the cells' process upload the op plugin at `path` to the attached
    /// cluster, and to every cluster it attaches later.
    pub fn send_plugin(&self, path: &Path) -> Result<Value, String> {
        self.request(json!({ "op": "plugin", "path": path }))
    }

    /// Answers a magic (not `%time`, which the kernel handles).
    pub fn handle(&mut self, magic: Magic) -> Result<Shown, String> {
        match magic {
            Magic::Cluster(ClusterMagic::Local {
                workers,
                processes: false,
                threads,
            }) => {
                self.down()?;
                self.attach(json!({ "op": "local", "workers": workers, "threads": threads }))?;
                self.status()
            }
            Magic::Cluster(ClusterMagic::Local {
                workers,
                processes: true,
                threads,
            }) => {
                self.down()?;
                self.start_processes(workers, threads)?;
                self.status()
            }
            Magic::Cluster(ClusterMagic::Connect {
                address,
                scheduler_file,
            }) => {
                self.down()?;
                let request = match (address, scheduler_file) {
                    (Some(address), _) => json!({ "op": "connect", "address": address }),
                    (None, Some(file)) => json!({ "op": "connect", "scheduler_file": file }),
                    (None, None) => return Err("give an address or --scheduler-file".into()),
                };
                self.attach(request)?;
                self.status()
            }
            Magic::Cluster(ClusterMagic::Up {
                config,
                workers,
                adapt,
            }) => {
                self.down()?;
                self.start_launcher(&config, workers, adapt.as_deref())?;
                self.status()
            }
            Magic::Cluster(ClusterMagic::Down) => {
                self.down()?;
                Ok(text(
                    "The cluster is down; `client` has no cluster until the next %cluster.",
                ))
            }
            Magic::Status => self.status(),
            Magic::Scale { workers } => {
                self.scale(workers)?;
                self.status()
            }
            Magic::Adapt { minimum, maximum } => {
                let reply =
                    self.request(json!({ "op": "adapt", "minimum": minimum, "maximum": maximum }))?;
                Ok(text(&format!(
                    "Adapting between {minimum} and {maximum} workers: {}",
                    reply["launcher"].as_str().unwrap_or_default()
                )))
            }
            Magic::Dashboard => {
                let file = self.scheduler_file().ok_or(
                    "the dashboard is served by a scheduler process: attach with \
                     `%cluster local N --processes`, `%cluster up CONFIG` or \
                     `%cluster connect --scheduler-file PATH`",
                )?;
                let scheduler =
                    rask::client::read_scheduler_file(&file).map_err(|e| e.to_string())?;
                let url = scheduler
                    .dashboard_link()
                    .ok_or("the scheduler serves no dashboard (started with --no-dashboard)")?;
                let mut shown = text(&url);
                let escaped = rask::diagnostics::assets::escape(&url);
                shown.insert(
                    "text/html".into(),
                    format!("<a href=\"{escaped}\" target=\"_blank\">Dashboard: {escaped}</a>"),
                );
                Ok(shown)
            }
            Magic::Time => Err("%time is handled by the kernel".into()),
        }
    }

    fn start_processes(&mut self, workers: u32, threads: u32) -> Result<(), String> {
        let scheduler_file = self.dir.join("scheduler.json");
        let _ = std::fs::remove_file(&scheduler_file);
        let dashboard = free_port().map_err(|e| format!("finding a free port: {e}"))?;
        // A token (which the scheduler file carries to the workers and the
        // cells' client, readable by this user only): a scheduler takes op
        // plugins, such as the cells' ops, only from authenticated clients.
        let token = secret_token().map_err(|e| format!("making the cluster's token: {e}"))?;
        let scheduler = self.spawn_with(
            Some(&token),
            "scheduler",
            &[
                "scheduler".into(),
                "--port".into(),
                "0".into(),
                "--dashboard-port".into(),
                dashboard.to_string(),
                "--scheduler-file".into(),
                scheduler_file.display().to_string(),
            ],
        )?;
        self.owned = Some(Owned::Processes {
            scheduler,
            workers: Vec::new(),
            scheduler_file: scheduler_file.clone(),
            threads,
        });
        for _ in 0..workers {
            self.add_worker_process()?;
        }
        self.attach(json!({ "op": "connect", "scheduler_file": scheduler_file }))?;
        self.wait_for_workers(workers as usize)
    }

    fn add_worker_process(&mut self) -> Result<(), String> {
        let Some(Owned::Processes {
            workers,
            scheduler_file,
            threads,
            ..
        }) = &self.owned
        else {
            return Err("no cluster of processes".into());
        };
        let n = workers.len();
        let args = [
            "worker".to_owned(),
            "--scheduler-file".into(),
            scheduler_file.display().to_string(),
            "--nthreads".into(),
            threads.to_string(),
            "--name".into(),
            format!("kernel-worker-{n}"),
        ];
        let child = self.spawn(&format!("worker-{n}"), &args)?;
        if let Some(Owned::Processes { workers, .. }) = &mut self.owned {
            workers.push(child);
        }
        Ok(())
    }

    fn start_launcher(
        &mut self,
        config: &Path,
        workers: Option<u32>,
        adapt: Option<&str>,
    ) -> Result<(), String> {
        let scheduler_file = self.dir.join("scheduler.json");
        let _ = std::fs::remove_file(&scheduler_file);
        let mut args = vec![
            "cluster".to_owned(),
            "up".into(),
            config.display().to_string(),
            "--scheduler-file".into(),
            scheduler_file.display().to_string(),
            "--workdir".into(),
            self.dir.display().to_string(),
        ];
        if let Some(n) = workers {
            args.extend(["--workers".into(), n.to_string()]);
        }
        if let Some(bounds) = adapt {
            args.extend(["--adapt".into(), bounds.to_owned()]);
        }
        let process = self.spawn("cluster-up", &args)?;
        self.owned = Some(Owned::Launcher { process });
        // `cluster up` writes the file once its scheduler listens; a bad config ends it first.
        let started = Instant::now();
        while !scheduler_file.exists() {
            if let Some(Owned::Launcher { process }) = &mut self.owned {
                if let Ok(Some(status)) = process.try_wait() {
                    let log = std::fs::read_to_string(self.dir.join("cluster-up.log"))
                        .unwrap_or_default();
                    self.owned = None;
                    return Err(format!(
                        "rask cluster up {} exited ({status}):\n{log}",
                        config.display()
                    ));
                }
            }
            if started.elapsed() > REQUEST_TIMEOUT {
                return Err("rask cluster up wrote no scheduler file in 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.attach(json!({ "op": "connect", "scheduler_file": scheduler_file }))?;
        Ok(())
    }

    /// Starts `rask ARGS` with its output in `NAME.log`.
    fn spawn(&self, name: &str, args: &[String]) -> Result<Child, String> {
        self.spawn_with(None, name, args)
    }

    /// Starts `rask ARGS`, logging to NAME.log, with `token` in its
    /// environment (`RASK_TOKEN`, kept off the command line).
    fn spawn_with(
        &self,
        token: Option<&str>,
        name: &str,
        args: &[String],
    ) -> Result<Child, String> {
        let log = std::fs::File::create(self.dir.join(format!("{name}.log")))
            .map_err(|e| format!("creating {name}.log: {e}"))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new(&self.exe);
        if let Some(token) = token {
            command.env("RASK_TOKEN", token);
        }
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("starting rask {}: {e}", args.join(" ")))
    }

    fn wait_for_workers(&self, n: usize) -> Result<(), String> {
        let started = Instant::now();
        loop {
            let have = self.request(json!({ "op": "status" }))?["workers"]
                .as_array()
                .map_or(0, Vec::len);
            if have >= n {
                return Ok(());
            }
            if started.elapsed() > REQUEST_TIMEOUT {
                return Err(format!("{have} of {n} workers joined in 120 s"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn scale(&mut self, wanted: u32) -> Result<(), String> {
        let Some(Owned::Processes { workers, .. }) = &mut self.owned else {
            self.request(json!({ "op": "scale", "workers": wanted }))?;
            return Ok(());
        };
        let have = workers.len();
        let wanted = wanted as usize;
        if wanted > have {
            for _ in have..wanted {
                self.add_worker_process()?;
            }
            return self.wait_for_workers(wanted);
        }
        // Retired workers hand their data to the others, then their processes end.
        self.request(json!({ "op": "retire", "workers": have - wanted }))?;
        if let Some(Owned::Processes { workers, .. }) = &mut self.owned {
            workers.retain_mut(|w| !matches!(w.try_wait(), Ok(Some(_))));
        }
        Ok(())
    }

    /// Lets go of the current cluster and stops the processes this kernel started.
    pub fn down(&mut self) -> Result<(), String> {
        let attached = self
            .link
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .attach
            .take();
        if attached.is_some() {
            self.request(json!({ "op": "down" }))?;
        }
        match self.owned.take() {
            Some(Owned::Processes {
                mut scheduler,
                mut workers,
                ..
            }) => {
                for w in &mut workers {
                    stop(w, Duration::from_secs(10));
                }
                stop(&mut scheduler, Duration::from_secs(10));
            }
            // `cluster up` retires its workers and cancels its jobs on SIGTERM.
            Some(Owned::Launcher { mut process }) => stop(&mut process, Duration::from_secs(60)),
            None => {}
        }
        Ok(())
    }

    /// `%status`: the workers as a table.
    fn status(&self) -> Result<Shown, String> {
        let reply = self.request(json!({ "op": "status" }))?;
        let mut shown = render_status(&reply);
        if let Some(Owned::Processes { scheduler_file, .. }) = &self.owned {
            let line = format!("scheduler file: {}", scheduler_file.display());
            if let Some(plain) = shown.get_mut("text/plain") {
                plain.push_str(&format!("{line}\n"));
            }
            if let Some(html) = shown.get_mut("text/html") {
                html.push_str(&format!("<p>{}</p>", escape(&line)));
            }
        }
        Ok(shown)
    }
}

impl Drop for Clusters {
    fn drop(&mut self) {
        let _ = self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends a request line and reads the reply line.
fn exchange(link: &mut Link, request: &Value) -> Result<Value, String> {
    let Some((reader, writer)) = link.stream.as_mut() else {
        return Err("the cells' process has not started yet (or has not run its prelude)".into());
    };
    let sent = writeln!(writer, "{request}").and_then(|()| writer.flush());
    let mut line = String::new();
    let read = sent.and_then(|()| reader.read_line(&mut line));
    match read {
        Ok(n) if n > 0 => {}
        Ok(_) | Err(_) => {
            link.stream = None;
            return Err("the cells' process did not answer (it may have restarted)".into());
        }
    }
    let reply: Value = serde_json::from_str(&line).map_err(|e| format!("a bad reply: {e}"))?;
    match reply["error"].as_str() {
        Some(error) => Err(error.to_owned()),
        None => Ok(reply),
    }
}

/// SIGTERM, then SIGKILL after `patience`.
fn stop(child: &mut Child, patience: Duration) {
    // SAFETY: signalling a child this process started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    while started.elapsed() < patience {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn text(text: &str) -> Shown {
    HashMap::from([("text/plain".to_owned(), text.to_owned())])
}

/// The status reply as text and an HTML table (workers, threads, memory, tasks).
fn render_status(reply: &Value) -> Shown {
    let workers = reply["workers"].as_array().cloned().unwrap_or_default();
    let threads: u64 = workers.iter().filter_map(|w| w["nthreads"].as_u64()).sum();
    let rss: u64 = workers
        .iter()
        .filter_map(|w| w["metrics"]["rss"].as_u64())
        .sum();
    let managed: u64 = workers
        .iter()
        .filter_map(|w| w["metrics"]["managed"].as_u64())
        .sum();
    let executing: u64 = workers
        .iter()
        .filter_map(|w| w["metrics"]["executing"].as_u64())
        .sum();
    let title = reply["client"].as_str().unwrap_or("Client");
    let mut plain = format!(
        "{title}\nworkers: {}, threads: {threads}, memory: {} (results {}), tasks running: {executing}\n",
        workers.len(),
        bytes(rss),
        bytes(managed)
    );
    let mut html = format!(
        "<div class=\"rask-status\"><strong>{}</strong><table><thead><tr><th>worker</th><th>address</th>\
         <th>threads</th><th>memory</th><th>results</th><th>spilled</th><th>running</th></tr></thead><tbody>",
        escape(title)
    );
    for w in &workers {
        let m = &w["metrics"];
        let name = w["name"].as_str().unwrap_or_default();
        let address = w["data_address"].as_str().unwrap_or_default();
        let row = [
            name.to_owned(),
            address.to_owned(),
            w["nthreads"].as_u64().unwrap_or(0).to_string(),
            bytes(m["rss"].as_u64().unwrap_or(0)),
            bytes(m["managed"].as_u64().unwrap_or(0)),
            bytes(m["spilled"].as_u64().unwrap_or(0)),
            m["executing"].as_u64().unwrap_or(0).to_string(),
        ];
        plain.push_str(&format!("  {}\n", row.join("  ")));
        html.push_str("<tr>");
        for cell in &row {
            html.push_str(&format!("<td>{}</td>", escape(cell)));
        }
        html.push_str("</tr>");
    }
    html.push_str(&format!(
        "</tbody><tfoot><tr><td>{} workers</td><td></td><td>{threads}</td><td>{}</td><td>{}</td><td></td><td>{executing}</td></tr></tfoot></table></div>",
        workers.len(),
        bytes(rss),
        bytes(managed)
    ));
    HashMap::from([
        ("text/plain".to_owned(), plain),
        ("text/html".to_owned(), html),
    ])
}

fn bytes(n: u64) -> String {
    rask::array::human_bytes(n as usize)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// 128 random bits from the kernel's random source, in hex.
fn secret_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
