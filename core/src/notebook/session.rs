//! The cells' side of the kernel's cluster magics. The kernel runs cells in
//! a child process; the cell prelude calls [`attach`], which connects that
//! process to the kernel over a Unix socket (its path in
//! [`CONTROL_ENV`]) and serves the kernel's requests there: start an
//! in-process cluster, connect to a scheduler, report the workers, scale,
//! let go. Cells reach the cluster through [`SessionClient`] (the `client`
//! variable), which always points at the latest one, so a `%cluster` magic
//! needs no Rust compiled.

use crate::client::{Client, ConnectOptions, LocalCluster};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::ops::Deref;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, Once};

/// The environment variable that names the kernel's control socket.
pub const CONTROL_ENV: &str = "RASK_KERNEL_CONTROL";

/// The client of the cluster attached last. Each is leaked on purpose: the
/// cells' `client` hands out `&'static Client`s, and a session attaches a
/// handful of clusters in its life. (Cells share one rask, the kernel's
/// shared library, so every cell sees this one static.)
static CURRENT: AtomicPtr<Client> = AtomicPtr::new(std::ptr::null_mut());

/// Serialises attach/detach.
static SWITCH: Mutex<()> = Mutex::new(());

/// The op plugin the kernel built of the cells' ops, uploaded to every
/// cluster of processes the session attaches.
static PLUGIN: Mutex<Option<std::path::PathBuf>> = Mutex::new(None);

/// The notebook's `client`: the client of the cluster the last `%cluster`
/// magic attached. `Copy`, so a panicking cell cannot lose it.
#[derive(Clone, Copy, Debug, Default)]
pub struct SessionClient;

impl SessionClient {
    /// The current client, if a cluster is attached.
    pub fn get(&self) -> Option<&'static Client> {
        current()
    }
}

impl Deref for SessionClient {
    type Target = Client;

    fn deref(&self) -> &Client {
        match self.get() {
            Some(client) => client,
            None => panic!(
                "no cluster is attached: run `%cluster local 2` (threads in this process), \
                 `%cluster local 2 --processes`, `%cluster connect ADDRESS` or `%cluster up CONFIG.yaml` first"
            ),
        }
    }
}

impl std::fmt::Display for SessionClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.get() {
            None => write!(f, "Client (no cluster attached)"),
            Some(client) => match client.scheduler_address() {
                Some(address) => write!(f, "Client of the scheduler at {address}"),
                None => write!(f, "Client of an in-process cluster"),
            },
        }
    }
}

fn current() -> Option<&'static Client> {
    let pointer = CURRENT.load(Ordering::Acquire);
    // SAFETY: pointers stored in CURRENT come from Box::leak and are never freed.
    unsafe { pointer.as_ref() }
}

/// Uploads the op plugin at `path` to the attached cluster if it is one of
/// processes (an in-process cluster runs the cells' ops directly).
fn upload(path: &std::path::Path) -> Result<Value, String> {
    let Some(client) = current().filter(|c| !c.is_in_process()) else {
        return Ok(json!({ "uploaded": false }));
    };
    let report = client.upload_plugin(path).map_err(|e| e.to_string())?;
    Ok(json!({
        "uploaded": true,
        "loaded": report.loaded.len(),
        "refused": report.refused.iter().map(|(w, why)| format!("{w}: {why}")).collect::<Vec<_>>(),
    }))
}

fn replace(client: Option<Client>) {
    let _switch = SWITCH.lock().unwrap_or_else(|e| e.into_inner());
    let new = client.map_or(std::ptr::null_mut(), |c| {
        Box::leak(Box::new(c)) as *mut Client
    });
    let old = CURRENT.swap(new, Ordering::AcqRel);
    // SAFETY: as in `current`.
    if let Some(old) = unsafe { old.as_ref() } {
        if let Some(cluster) = old.cluster() {
            cluster.close();
        }
    }
}

/// Connects this process to the kernel (once) and returns the cells' `client`.
/// Outside the kernel (no [`CONTROL_ENV`]) it only returns the handle.
pub fn attach() -> SessionClient {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let Some(path) = std::env::var_os(CONTROL_ENV) else {
            return;
        };
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(stream) => {
                let _ = std::thread::Builder::new()
                    .name("rask-kernel-control".into())
                    .spawn(move || serve(stream));
            }
            Err(e) => eprintln!("rask: cannot reach the kernel's control socket: {e}"),
        }
    });
    SessionClient
}

/// Answers the kernel's requests, one JSON line each.
fn serve(stream: std::os::unix::net::UnixStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let reader = BufReader::new(stream);
    for line in reader.lines() {
        let Ok(line) = line else { return };
        let reply = match serde_json::from_str::<Value>(&line) {
            Ok(request) => answer(&request).unwrap_or_else(|e| json!({ "error": e })),
            Err(e) => json!({ "error": format!("not a request: {e}") }),
        };
        if writeln!(writer, "{reply}").is_err() {
            return;
        }
    }
}

fn answer(request: &Value) -> Result<Value, String> {
    let count = |field: &str| request[field].as_u64().map(|n| n as usize);
    match request["op"].as_str().unwrap_or_default() {
        "local" => {
            let workers = count("workers").unwrap_or(2);
            let threads = count("threads").unwrap_or(1);
            let cluster = LocalCluster::new()
                .workers(workers)
                .threads_per_worker(threads);
            let client = Client::local(cluster).map_err(|e| e.to_string())?;
            replace(Some(client));
            Ok(json!({ "attached": SessionClient.to_string() }))
        }
        "connect" => {
            let options = match (
                request["address"].as_str(),
                request["scheduler_file"].as_str(),
            ) {
                (Some(address), _) => ConnectOptions::new(address),
                (None, Some(file)) => ConnectOptions::scheduler_file(file),
                (None, None) => return Err("connect needs an address or a scheduler file".into()),
            };
            let options = match request["token"].as_str() {
                Some(token) => options.token(token),
                None => options,
            };
            let client = options.connect().map_err(|e| e.to_string())?;
            replace(Some(client));
            let plugin = PLUGIN.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let uploaded = match plugin {
                Some(path) => upload(&path)?,
                None => Value::Null,
            };
            Ok(json!({ "attached": SessionClient.to_string(), "plugin": uploaded }))
        }
        "plugin" => {
            let path =
                std::path::PathBuf::from(request["path"].as_str().ok_or("plugin needs a path")?);
            *PLUGIN.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.clone());
            upload(&path)
        }
        "down" => {
            replace(None);
            Ok(json!({}))
        }
        // A cell begins: note the futures it creates, for an interrupt.
        "cell" => {
            if let Some(client) = current() {
                client.note_new_futures();
            }
            Ok(json!({}))
        }
        // The cell was interrupted: cancel its futures still running, so
        // its waits end (with `Error::Cancelled`) and the cluster stops its work.
        "interrupt" => {
            let cancelled = match current() {
                Some(client) => client.cancel_noted().map_err(|e| e.to_string())?,
                None => 0,
            };
            Ok(json!({ "cancelled": cancelled }))
        }
        "status" => {
            let client = current().ok_or("no cluster is attached")?;
            let workers = client.workers().map_err(|e| e.to_string())?;
            Ok(json!({
                "client": SessionClient.to_string(),
                "in_process": client.is_in_process(),
                "workers": workers,
            }))
        }
        "scale" => {
            let client = current().ok_or("no cluster is attached")?;
            let wanted = count("workers").ok_or("scale needs a number of workers")?;
            match client.cluster() {
                Some(cluster) => {
                    let have = cluster.worker_ids();
                    for _ in have.len()..wanted {
                        cluster.add_worker().map_err(|e| e.to_string())?;
                    }
                    if have.len() > wanted {
                        client
                            .retire_workers(&[], (have.len() - wanted) as u32)
                            .map_err(|e| e.to_string())?;
                    }
                    Ok(json!({ "workers": wanted }))
                }
                None => {
                    let status = client.scale(wanted as u32).map_err(|e| e.to_string())?;
                    Ok(json!({ "launcher": format!("{status:?}") }))
                }
            }
        }
        "retire" => {
            let client = current().ok_or("no cluster is attached")?;
            let n = count("workers").unwrap_or(1) as u32;
            let retired = client.retire_workers(&[], n).map_err(|e| e.to_string())?;
            Ok(json!({ "retired": retired }))
        }
        "adapt" => {
            let client = current().ok_or("no cluster is attached")?;
            let (min, max) = (count("minimum").unwrap_or(0), count("maximum").unwrap_or(0));
            let status = client
                .adapt(min as u32, max as u32)
                .map_err(|e| e.to_string())?;
            Ok(json!({ "launcher": format!("{status:?}") }))
        }
        other => Err(format!("unknown request {other:?}")),
    }
}
