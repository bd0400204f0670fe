//! A client of a scheduler over TCP: one connection to the scheduler for graphs,
//! releases, reports and requests, and pooled connections to workers for data.

use super::cluster_calls::CallSlot;
use super::future::FutureTable;
use super::requests::PendingRequests;
use super::{Backend, Client, ClientInner, Error};
use crate::comm::address::Address;
use crate::comm::connection::{connect_as, CommError, Connection, Outbox, Outgoing};
use crate::comm::peers::PeerPool;
use crate::comm::protocol::{graph_messages, Message, Request, Role};
use crate::comm::security::{Security, TlsFiles, TlsPem};
use crate::graph::GraphError;
use crate::scheduler::{ClientId, Event, Report};
use crate::server::{LauncherCall, ToScheduler};
use crossbeam_channel::Receiver;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How to reach a scheduler: its address or scheduler file, TLS files, token.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    address: Option<String>,
    scheduler_file: Option<PathBuf>,
    tls: Option<TlsSource>,
    token: Option<String>,
}

/// Where a client's TLS material is.
#[derive(Debug, Clone)]
enum TlsSource {
    Files(TlsFiles),
    Pem(Box<TlsPem>),
}

impl ConnectOptions {
    /// Connect to `address` (`tcp://host:port` or `tls://host:port`).
    pub fn new(address: &str) -> Self {
        ConnectOptions {
            address: Some(address.to_string()),
            ..Default::default()
        }
    }

    /// Connect to the scheduler named in a scheduler file (JSON with
    /// `"address"`), waiting up to 30 s for the file to appear. The file's
    /// `"token"`, when the scheduler wrote one, is presented unless
    /// [`ConnectOptions::token`] gives another.
    pub fn scheduler_file(path: impl Into<PathBuf>) -> Self {
        ConnectOptions {
            scheduler_file: Some(path.into()),
            ..Default::default()
        }
    }

    /// Mutual TLS with these files.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(TlsSource::Files(files));
        self
    }

    /// Mutual TLS with PEM text held in memory (from a Kubernetes Secret).
    pub fn tls_pem(mut self, pem: TlsPem) -> Self {
        self.tls = Some(TlsSource::Pem(Box::new(pem)));
        self
    }

    /// Presents this token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The address to connect to (read from the scheduler file if given).
    pub fn resolve(&self) -> Result<Address, Error> {
        Ok(self.target()?.address)
    }

    /// The address, and the token the scheduler file carries.
    fn target(&self) -> Result<SchedulerFile, Error> {
        if let Some(address) = &self.address {
            return Ok(SchedulerFile {
                address: address.parse()?,
                token: None,
                dashboard: None,
            });
        }
        match &self.scheduler_file {
            Some(path) => Ok(wait_for_scheduler_file(path, SCHEDULER_FILE_WAIT)?),
            None => Err(Error::Config("give an address or a scheduler file".into())),
        }
    }

    /// The security settings these options describe.
    pub fn security(&self) -> Result<Security, Error> {
        let mut security = Security::none().with_token(self.token.clone());
        match &self.tls {
            Some(TlsSource::Files(files)) => security = security.with_tls(files)?,
            Some(TlsSource::Pem(pem)) => security = security.with_tls_pem(pem)?,
            None => {}
        }
        Ok(security)
    }

    /// Connects.
    pub fn connect(&self) -> Result<Client, Error> {
        let target = self.target()?;
        let mut security = self.security()?;
        if security.token.is_none() {
            security = security.with_token(target.token);
        }
        RemoteLink::connect(target.address, security)
    }
}

/// How long a client waits for a scheduler file that does not exist yet
/// (Dask's connect timeout).
pub const SCHEDULER_FILE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a scheduler file tells its readers.
#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerFile {
    /// Where the scheduler listens.
    pub address: Address,
    /// The token it requires, when it requires one (the file is then
    /// readable by its owner only).
    pub token: Option<String>,
    /// Where its dashboard is (`http://host:port`), when it serves one.
    pub dashboard: Option<String>,
}

impl SchedulerFile {
    /// The dashboard's status page, with the token in the URL when the
    /// cluster has one (the page then keeps it in a cookie), as Jupyter's
    /// links carry theirs.
    pub fn dashboard_link(&self) -> Option<String> {
        let base = self.dashboard.as_deref()?.trim_end_matches('/');
        Some(crate::diagnostics::dashboard_link(
            base,
            self.token.as_deref(),
        ))
    }
}

/// Reads a scheduler file, waiting up to
/// `timeout` for the file to appear (a scheduler started at the same time
/// writes it once it listens, as Dask's workers and clients wait for theirs).
pub fn wait_for_scheduler_file(
    path: &Path,
    timeout: std::time::Duration,
) -> Result<SchedulerFile, CommError> {
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        match read_scheduler_file(path) {
            Err(CommError::Io { error, .. })
                if error.kind() == std::io::ErrorKind::NotFound && started.elapsed() < timeout =>
            {
                if !said {
                    tracing::info!(path = %path.display(), "waiting for the scheduler file");
                    said = true;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            other => return other,
        }
    }
}

/// Reads a scheduler file: the address, and the token if it has one.
pub fn read_scheduler_file(path: &Path) -> Result<SchedulerFile, CommError> {
    let text = std::fs::read_to_string(path).map_err(CommError::io(format!(
        "reading the scheduler file {}",
        path.display()
    )))?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        CommError::Config(format!(
            "{}:{}:{}: not JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    let address = json
        .get("address")
        .and_then(|a| a.as_str())
        .ok_or_else(|| {
            CommError::Config(format!(
                "{}: no \"address\" string in the scheduler file",
                path.display()
            ))
        })?;
    let token = match json.get("token") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(token)) => Some(token.clone()),
        Some(_) => {
            return Err(CommError::Config(format!(
                "{}: \"token\" in the scheduler file is not a string",
                path.display()
            )))
        }
    };
    let dashboard = json
        .get("dashboard_address")
        .and_then(|d| d.as_str())
        .map(str::to_string);
    Ok(SchedulerFile {
        address: address.parse()?,
        token,
        dashboard,
    })
}

/// The TCP side of a remote client.
pub(crate) struct RemoteLink {
    /// The client's own IO runtime (`None` only while the link drops).
    runtime: Option<tokio::runtime::Runtime>,
    pub peers: Arc<PeerPool>,
    pub closed: Arc<AtomicBool>,
    pub address: Address,
}

impl Drop for RemoteLink {
    /// A client dropped inside an async runtime (an operator's reconcile, a
    /// user's async code) must not block it, and a runtime may not be dropped
    /// there: its own runtime then shuts down in the background.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            }
        }
    }
}

impl RemoteLink {
    /// The client's IO runtime.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the link")
    }

    fn connect(address: Address, security: Security) -> Result<Client, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rask-client-io")
            .enable_all()
            .build()?;
        let (id, connection) = runtime.block_on(handshake(&address, &security))?;
        let Connection {
            mut reader, writer, ..
        } = connection;
        let outbox = {
            let _guard = runtime.enter();
            Outbox::spawn(writer)
        };
        let (tx, rx) = crossbeam_channel::unbounded::<ToScheduler>();
        let table = Arc::new(FutureTable::new(tx.clone(), id));
        let requests = Arc::new(PendingRequests::default());
        let peers = PeerPool::new(security);
        let closed = Arc::new(AtomicBool::new(false));
        let cluster_calls = Arc::new(CallSlot::new(tx.clone()));

        // Scheduler → client.
        {
            let table = table.clone();
            let calls = cluster_calls.clone();
            let requests = requests.clone();
            let peers = peers.clone();
            let closed = closed.clone();
            let address = address.clone();
            runtime.spawn(async move {
                let why = loop {
                    match reader.message().await {
                        Ok(Some((Message::Reports(reports), _))) => table.apply(reports),
                        Ok(Some((Message::Reply { id, reply }, _))) => requests.complete(id, reply),
                        Ok(Some((Message::PeerAddresses { added, removed }, _))) => {
                            peers.update(added, removed)
                        }
                        Ok(Some((Message::LauncherCall { token, request }, _))) => {
                            calls.deliver(LauncherCall { token, request })
                        }
                        Ok(Some((other, _))) => {
                            break format!("unexpected {} message from the scheduler", other.name())
                        }
                        Ok(None) => break "the scheduler closed the connection".to_string(),
                        Err(error) => break error.to_string(),
                    }
                };
                if !closed.swap(true, Ordering::SeqCst) {
                    tracing::warn!(scheduler = %address, %why, "lost the scheduler");
                }
                requests.fail_all();
                table.fail_pending(&format!("lost the scheduler at {address}: {why}"));
            });
        }
        // Client → scheduler, in order, with releases batched by the table.
        {
            let table = table.clone();
            std::thread::Builder::new()
                .name(format!("{id}-sender"))
                .spawn(move || forward(rx, outbox, table))?;
        }
        Ok(Client {
            inner: Arc::new(ClientInner {
                id,
                scheduler: tx,
                table,
                backend: Backend::Remote(RemoteLink {
                    runtime: Some(runtime),
                    peers,
                    closed,
                    address,
                }),
                requests,
                cluster_calls,
                bars: Default::default(),
            }),
        })
    }
}

async fn handshake(
    address: &Address,
    security: &Security,
) -> Result<(ClientId, Connection), CommError> {
    let (id, connection) = connect_as(address, security, Role::Client).await?;
    Ok((ClientId(id), connection))
}

/// Turns the client's events into protocol messages, in order; flushes batched
/// releases when idle.
fn forward(rx: Receiver<ToScheduler>, outbox: Outbox, table: Arc<FutureTable>) {
    loop {
        let message = match rx.recv_timeout(std::time::Duration::from_millis(20)) {
            Ok(message) => message,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                table.flush();
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        };
        match message {
            ToScheduler::Events(events) => {
                for event in events {
                    let message = match event {
                        Event::UpdateGraph { tasks, wanted, .. } => {
                            let wire: Result<Vec<_>, GraphError> =
                                tasks.iter().map(|t| t.to_wire()).collect();
                            // A large graph goes in parts, none over the frame limit.
                            let messages = wire.map_err(|e| e.to_string()).and_then(|tasks| {
                                graph_messages(tasks, wanted.clone()).map_err(|e| e.to_string())
                            });
                            match messages {
                                Ok(messages) => {
                                    for message in messages {
                                        outbox.send(message);
                                    }
                                }
                                Err(error) => table.apply(vec![Report::GraphRejected {
                                    keys: wanted,
                                    error,
                                }]),
                            }
                            continue;
                        }
                        Event::ReleaseKeys { keys, .. } => Message::ReleaseKeys(keys),
                        Event::Cancel { keys, .. } => Message::Cancel(keys),
                        // Dropping the outbox closes the connection: the scheduler
                        // then forgets this client.
                        Event::RemoveClient { .. } => return,
                        _ => continue,
                    };
                    outbox.send(message);
                }
            }
            ToScheduler::Request {
                id,
                request:
                    Request::UploadPlugin {
                        name,
                        hash,
                        library,
                    },
                ..
            } => {
                // The library goes as a blob: it may outgrow a message frame.
                let request = Request::UploadPlugin {
                    name,
                    hash,
                    library: bytes::Bytes::new(),
                };
                outbox.send(Outgoing {
                    message: Message::Request { id, request },
                    blobs: vec![library],
                });
            }
            ToScheduler::Request { id, request, .. } => {
                outbox.send(Message::Request { id, request });
            }
            ToScheduler::LauncherReply { token, reply } => {
                outbox.send(Message::LauncherReply { token, reply });
            }
            _ => {}
        }
    }
}
