//! The scheduler as a TCP server: accepts workers and clients, checks their
//! credentials, turns their messages into events for the scheduler loop, and
//! serves the HTTP endpoints on the dashboard port.
//!
//! A connection that sends anything malformed (bad preamble, oversized frame,
//! undecodable or unexpected message) is closed with a log line; everything
//! else keeps running.

use super::channels::ToScheduler;
use super::event_loop::run_scheduler;
use crate::comm::address::Address;
use crate::comm::connection::{accept, CommError, Connection, Outbox, HANDSHAKE_TIMEOUT};
use crate::comm::protocol::{Hello, Message, Role};
use crate::comm::security::Security;
use crate::scheduler::{ClientId, Event, Report, SchedulerConfig, WorkerId};
use crossbeam_channel::Sender;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// How to run a scheduler server.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Interface to bind (127.0.0.1 unless told otherwise).
    pub host: String,
    /// Port for workers and clients (0: any free port).
    pub port: u16,
    /// Port for HTTP (`/metrics`, `/api/v1/...`); `None` for no HTTP.
    pub dashboard_port: Option<u16>,
    /// Where to write the scheduler file (JSON with `"address"`).
    pub scheduler_file: Option<PathBuf>,
    /// TLS and token.
    pub security: Security,
    /// Scheduler tuning.
    pub config: SchedulerConfig,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            host: "127.0.0.1".into(),
            port: 8786,
            dashboard_port: Some(8787),
            scheduler_file: None,
            security: Security::none(),
            config: SchedulerConfig::default(),
        }
    }
}

/// A running scheduler server.
pub struct SchedulerServer {
    address: Address,
    dashboard: Option<SocketAddr>,
    inbox: Sender<ToScheduler>,
    runtime: Option<tokio::runtime::Runtime>,
    scheduler_thread: Option<JoinHandle<()>>,
    scheduler_file: Option<PathBuf>,
}

impl SchedulerServer {
    /// Binds, starts the scheduler loop and accepts connections.
    pub fn start(options: SchedulerOptions) -> Result<SchedulerServer, CommError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("rask-scheduler-io")
            .enable_all()
            .build()
            .map_err(CommError::io("starting the I/O runtime"))?;
        let (inbox, rx) = crossbeam_channel::unbounded();
        let config = options.config.clone();
        let scheduler_thread = std::thread::Builder::new()
            .name("rask-scheduler".into())
            .spawn(move || run_scheduler(config, rx))
            .map_err(CommError::io("starting the scheduler thread"))?;
        let bind = format!("{}:{}", options.host, options.port);
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(&bind))
            .map_err(CommError::io(format!("binding {bind}")))?;
        let local = listener
            .local_addr()
            .map_err(CommError::io("reading the bound address"))?;
        let address = Address {
            host: options.host.clone(),
            port: local.port(),
            tls: options.security.has_tls(),
        };
        let dashboard = match options.dashboard_port {
            Some(port) => {
                let bind = format!("{}:{}", options.host, port);
                let http = runtime
                    .block_on(tokio::net::TcpListener::bind(&bind))
                    .map_err(CommError::io(format!("binding the dashboard port {bind}")))?;
                let at = http
                    .local_addr()
                    .map_err(CommError::io("reading the bound address"))?;
                let app = crate::diagnostics::http::router(inbox.clone());
                runtime.spawn(async move {
                    if let Err(error) = axum::serve(http, app).await {
                        tracing::error!(%error, "the HTTP server stopped");
                    }
                });
                Some(at)
            }
            None => None,
        };
        let shared = Arc::new(Acceptor {
            inbox: inbox.clone(),
            security: options.security.clone(),
            next_worker: AtomicU32::new(0),
            next_client: AtomicU32::new(0),
        });
        runtime.spawn(shared.serve(listener));
        tracing::info!(%address, "scheduler listening");
        if let Some(at) = dashboard {
            tracing::info!("HTTP (metrics, API) at http://{at}");
        }
        if let Some(path) = &options.scheduler_file {
            write_scheduler_file(path, &address, dashboard)?;
        }
        Ok(SchedulerServer {
            address,
            dashboard,
            inbox,
            runtime: Some(runtime),
            scheduler_thread: Some(scheduler_thread),
            scheduler_file: options.scheduler_file,
        })
    }

    /// Where workers and clients connect.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// Where the HTTP endpoints are, if enabled.
    pub fn dashboard(&self) -> Option<SocketAddr> {
        self.dashboard
    }

    /// A channel into the scheduler loop.
    pub fn inbox(&self) -> Sender<ToScheduler> {
        self.inbox.clone()
    }

    /// Stops accepting, stops the loop, removes the scheduler file.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.inbox.send(ToScheduler::Shutdown);
        if let Some(thread) = self.scheduler_thread.take() {
            let _ = thread.join();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        if let Some(path) = self.scheduler_file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for SchedulerServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes the scheduler file atomically: JSON with `"address"`, and more.
fn write_scheduler_file(
    path: &std::path::Path,
    address: &Address,
    dashboard: Option<SocketAddr>,
) -> Result<(), CommError> {
    let json = serde_json::json!({
        "type": "Scheduler",
        "address": address.to_string(),
        "dashboard_address": dashboard.map(|d| format!("http://{d}")),
        "pid": std::process::id(),
        "protocol_version": crate::comm::frame::PROTOCOL_VERSION,
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&json).unwrap_or_default())
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(CommError::io(format!(
            "writing the scheduler file {}",
            path.display()
        )))
}

struct Acceptor {
    inbox: Sender<ToScheduler>,
    security: Security,
    next_worker: AtomicU32,
    next_client: AtomicU32,
}

impl Acceptor {
    async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(error) = this.connection(tcp).await {
                    tracing::warn!(%peer, %error, "connection closed");
                }
            });
        }
    }

    async fn connection(&self, tcp: tokio::net::TcpStream) -> Result<(), CommError> {
        let Connection {
            mut reader,
            mut writer,
            peer,
        } = accept(tcp, &self.security).await?;
        let (hello, _) = tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.expect())
            .await
            .map_err(|_| CommError::Timeout(HANDSHAKE_TIMEOUT, "waiting for Hello"))??;
        let Message::Hello(Hello { role, token }) = hello else {
            return Err(CommError::Unexpected {
                got: hello.name(),
                expected: "Hello",
            });
        };
        if !self.security.token_matches(token.as_deref()) {
            tracing::warn!(%peer, "refused: missing or invalid token");
            let _ = writer
                .send(
                    Message::Refused {
                        reason: "missing or invalid token".into(),
                    }
                    .into(),
                )
                .await;
            return Ok(());
        }
        match role {
            Role::Worker(info) => {
                let worker = WorkerId(self.next_worker.fetch_add(1, Ordering::Relaxed));
                writer
                    .send(Message::Welcome { id: worker.0 }.into())
                    .await?;
                let outbox = Outbox::spawn(writer);
                tracing::info!(%worker, name = %info.name, %peer, nthreads = info.nthreads, "worker joined");
                let lifetime = info.lifetime;
                let _ = self.inbox.send(ToScheduler::AddRemoteWorker {
                    event: Event::AddWorker {
                        worker,
                        name: info.name,
                        nthreads: info.nthreads,
                        resources: info.resources,
                        memory_limit: info.memory_limit,
                    },
                    outbox,
                    data_address: info.data_address,
                    pid: info.pid,
                });
                if let Some(seconds) = lifetime.filter(|s| s.is_finite()) {
                    let _ = self
                        .inbox
                        .send(ToScheduler::Events(vec![Event::WorkerDeadline {
                            worker,
                            seconds,
                        }]));
                }
                let result = self.worker_messages(worker, &mut reader).await;
                let reason = match &result {
                    Ok(Some(goodbye)) => goodbye.clone(),
                    Ok(None) => "connection closed".to_string(),
                    Err(error) => error.to_string(),
                };
                let _ = self
                    .inbox
                    .send(ToScheduler::Events(vec![Event::RemoveWorker {
                        worker,
                        reason,
                    }]));
                result.map(|_| ())
            }
            Role::Client => {
                let client = ClientId(self.next_client.fetch_add(1, Ordering::Relaxed));
                writer
                    .send(Message::Welcome { id: client.0 }.into())
                    .await?;
                let outbox = Outbox::spawn(writer);
                tracing::info!(%client, %peer, "client connected");
                let _ = self.inbox.send(ToScheduler::AddRemoteClient {
                    client,
                    outbox: outbox.clone(),
                });
                let result = self.client_messages(client, &outbox, &mut reader).await;
                let _ = self
                    .inbox
                    .send(ToScheduler::Events(vec![Event::RemoveClient { client }]));
                result
            }
            Role::Peer => {
                let _ = writer
                    .send(
                        Message::Refused {
                            reason: "the scheduler does not serve data; connect to a worker".into(),
                        }
                        .into(),
                    )
                    .await;
                Ok(())
            }
        }
    }

    /// Feeds a worker's messages to the scheduler until it closes; a worker
    /// that says goodbye gives its reason.
    async fn worker_messages(
        &self,
        worker: WorkerId,
        reader: &mut crate::comm::connection::PacketReader,
    ) -> Result<Option<String>, CommError> {
        while let Some((message, _)) = reader.message().await? {
            let sent = match message {
                Message::WorkerMessages(messages) => self.inbox.send(ToScheduler::Events(
                    messages.into_iter().map(|m| m.into_event(worker)).collect(),
                )),
                Message::Heartbeat(metrics) => {
                    self.inbox.send(ToScheduler::Heartbeat { worker, metrics })
                }
                Message::Request { request, .. } => {
                    // A worker asks (to retire itself); the answer it needs is a Close.
                    let (reply, _) = crossbeam_channel::bounded(1);
                    self.inbox.send(ToScheduler::Query { request, reply })
                }
                Message::Goodbye { reason } => {
                    tracing::warn!(%worker, %reason, "worker is leaving");
                    return Ok(Some(reason));
                }
                other => {
                    return Err(CommError::Unexpected {
                        got: other.name(),
                        expected: "WorkerMessages, Heartbeat, Request or Goodbye",
                    })
                }
            };
            if sent.is_err() {
                return Ok(None);
            }
        }
        Ok(None)
    }

    async fn client_messages(
        &self,
        client: ClientId,
        outbox: &Outbox,
        reader: &mut crate::comm::connection::PacketReader,
    ) -> Result<(), CommError> {
        while let Some((message, _)) = reader.message().await? {
            let event = match message {
                Message::UpdateGraph { tasks, wanted } => {
                    let specs: Result<Vec<_>, _> =
                        tasks.into_iter().map(|t| t.into_spec()).collect();
                    match specs {
                        Ok(tasks) => Event::UpdateGraph {
                            client,
                            tasks,
                            wanted,
                        },
                        Err(error) => {
                            outbox.send(Message::Reports(vec![Report::GraphRejected {
                                keys: wanted,
                                error: error.to_string(),
                            }]));
                            continue;
                        }
                    }
                }
                Message::ReleaseKeys(keys) => Event::ReleaseKeys { client, keys },
                Message::Cancel(keys) => Event::Cancel { client, keys },
                Message::Request { id, request } => {
                    if self
                        .inbox
                        .send(ToScheduler::Request {
                            client,
                            id,
                            request,
                        })
                        .is_err()
                    {
                        return Ok(());
                    }
                    continue;
                }
                other => {
                    return Err(CommError::Unexpected {
                        got: other.name(),
                        expected: "UpdateGraph, ReleaseKeys, Cancel or Request",
                    })
                }
            };
            if self.inbox.send(ToScheduler::Events(vec![event])).is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}
