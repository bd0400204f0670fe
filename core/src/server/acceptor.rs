//! The scheduler's side of each TCP connection: the handshake (preamble,
//! `Hello`, token), then a worker's or client's messages turned into events for
//! the scheduler loop. A connection that sends anything malformed is closed
//! with a log line; everyone else keeps being served.

use super::backpressure::InboxBudget;
use super::channels::ToScheduler;
use super::liveness::Liveness;
use crate::comm::admission::{Admission, MAX_HANDSHAKES};
use crate::comm::connection::{
    accept, CommError, Connection, Outbox, PacketReader, HANDSHAKE_TIMEOUT,
};
use crate::comm::protocol::{Hello, Message, Reply, Request, Role};
use crate::comm::security::Security;
use crate::scheduler::{ClientId, Event, Report, WorkerId};
use crossbeam_channel::Sender;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::sync::OwnedSemaphorePermit;

/// Accepts connections and serves each in its own task.
pub(super) struct Acceptor {
    inbox: Sender<ToScheduler>,
    security: Security,
    admission: Arc<Admission>,
    budget: InboxBudget,
    next_worker: AtomicU32,
    next_client: AtomicU32,
}

impl Acceptor {
    pub(super) fn new(inbox: Sender<ToScheduler>, security: Security) -> Self {
        Acceptor {
            inbox,
            security,
            admission: Admission::new(MAX_HANDSHAKES, "scheduler"),
            budget: InboxBudget::default(),
            next_worker: AtomicU32::new(0),
            next_client: AtomicU32::new(0),
        }
    }

    pub(super) async fn serve(self: Arc<Self>, listener: tokio::net::TcpListener) {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Beyond the cap, the connection closes at once (dropped here).
            let Some(slot) = self.admission.admit() else {
                continue;
            };
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(error) = this.connection(tcp, slot).await {
                    tracing::warn!(%peer, %error, "connection closed");
                }
            });
        }
    }

    async fn connection(
        &self,
        tcp: tokio::net::TcpStream,
        slot: OwnedSemaphorePermit,
    ) -> Result<(), CommError> {
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
        // Welcome: the slot goes to the next stranger, and frames may be large now.
        drop(slot);
        reader.handshake_done();
        match role {
            Role::Worker(info) => {
                let worker = WorkerId(self.next_worker.fetch_add(1, Ordering::Relaxed));
                writer
                    .send(Message::Welcome { id: worker.0 }.into())
                    .await?;
                let outbox = Outbox::spawn(writer);
                tracing::info!(%worker, name = %info.name, %peer, nthreads = info.nthreads, "worker joined");
                let lifetime = info.lifetime;
                let mut resources = info.resources;
                if info.plugins {
                    // Plugin tasks need it (see `GraphParts::add`).
                    resources.push((
                        crate::plugin::RESOURCE.into(),
                        crate::plugin::RESOURCE_AMOUNT,
                    ));
                }
                let liveness = Arc::new(Liveness::default());
                liveness.heard();
                let _ = self.inbox.send(ToScheduler::AddRemoteWorker {
                    liveness: liveness.clone(),
                    event: Event::AddWorker {
                        worker,
                        name: info.name,
                        nthreads: info.nthreads,
                        resources,
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
                let result = self.worker_messages(worker, &liveness, &mut reader).await;
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
        liveness: &Liveness,
        reader: &mut PacketReader,
    ) -> Result<Option<String>, CommError> {
        while let Some((message, _)) = reader.message().await? {
            liveness.heard();
            let bytes = reader.last_bytes();
            let to_loop = match message {
                Message::WorkerMessages(messages) => ToScheduler::Events(
                    messages.into_iter().map(|m| m.into_event(worker)).collect(),
                ),
                Message::Heartbeat(metrics) => ToScheduler::Heartbeat { worker, metrics },
                Message::PluginLoaded { hash, outcome } => ToScheduler::PluginLoaded {
                    worker,
                    hash,
                    outcome,
                },
                Message::Request { request, .. } => {
                    // A worker asks (to retire itself); the answer it needs is a Close.
                    let (reply, _) = crossbeam_channel::bounded(1);
                    ToScheduler::Query { request, reply }
                }
                Message::Goodbye { reason } => {
                    tracing::warn!(%worker, %reason, "worker is leaving");
                    return Ok(Some(reason));
                }
                other => {
                    return Err(CommError::Unexpected {
                        got: other.name(),
                        expected: "WorkerMessages, Heartbeat, PluginLoaded, Request or Goodbye",
                    })
                }
            };
            if !self.forward(to_loop, bytes, Some(liveness)).await {
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// Hands a message to the scheduler loop once the inbox budget has room
    /// for its `bytes`; false when the loop is gone.
    async fn forward(
        &self,
        message: ToScheduler,
        bytes: usize,
        liveness: Option<&Liveness>,
    ) -> bool {
        if let Some(liveness) = liveness {
            liveness.set_waiting_for_loop(true);
        }
        let credit = self.budget.reserve(bytes).await;
        if let Some(liveness) = liveness {
            liveness.set_waiting_for_loop(false);
        }
        let Some(credit) = credit else {
            return false;
        };
        let message = Box::new(message);
        self.inbox
            .send(ToScheduler::Inbound { message, credit })
            .is_ok()
    }

    async fn client_messages(
        &self,
        client: ClientId,
        outbox: &Outbox,
        reader: &mut PacketReader,
    ) -> Result<(), CommError> {
        // A graph sent in parts: its tasks and wanted keys so far, or why it
        // is already refused.
        let mut parts = GraphParts::default();
        // Only a client that asked to serve cluster requests may answer them.
        let mut serves_launcher_calls = false;
        while let Some((message, blobs)) = reader.message().await? {
            let mut bytes = reader.last_bytes();
            let event = match message {
                Message::GraphPart { tasks, wanted } => {
                    parts.add(tasks, wanted, bytes);
                    continue;
                }
                Message::UpdateGraph { tasks, wanted } => {
                    parts.add(tasks, wanted, bytes);
                    // The whole graph waits for budget, not only its last part.
                    bytes = parts.bytes;
                    match std::mem::take(&mut parts).finish() {
                        Ok((tasks, wanted)) => Event::UpdateGraph {
                            client,
                            tasks,
                            wanted,
                        },
                        Err((keys, error)) => {
                            for keys in keys.chunks(REPORT_KEYS) {
                                outbox.send(Message::Reports(vec![Report::GraphRejected {
                                    keys: keys.to_vec(),
                                    error: error.clone(),
                                }]));
                            }
                            continue;
                        }
                    }
                }
                Message::ReleaseKeys(keys) => Event::ReleaseKeys { client, keys },
                Message::Cancel(keys) => Event::Cancel { client, keys },
                Message::Request {
                    id,
                    request: Request::UploadPlugin { name, .. },
                } if !self.security.authenticates_peers() => {
                    // Plugins run code on every worker: only from clients
                    // the scheduler knows.
                    let reason = format!(
                        "plugin {name} refused: this scheduler does not authenticate clients; \
                         start it with --token or TLS (--tls-ca-file, --tls-cert, --tls-key) to take plugins"
                    );
                    outbox.send(Message::Reply {
                        id,
                        reply: Reply::Error(reason),
                    });
                    continue;
                }
                Message::LauncherReply { token, reply } if serves_launcher_calls => {
                    if !self
                        .forward(ToScheduler::LauncherReply { token, reply }, bytes, None)
                        .await
                    {
                        return Ok(());
                    }
                    continue;
                }
                Message::Request { id, request } => {
                    serves_launcher_calls |= matches!(request, Request::ServeClusterRequests);
                    let request = ToScheduler::Request {
                        client,
                        id,
                        request: with_library(request, blobs),
                    };
                    if !self.forward(request, bytes, None).await {
                        return Ok(());
                    }
                    continue;
                }
                other => {
                    return Err(CommError::Unexpected {
                        got: other.name(),
                        expected:
                            "GraphPart, UpdateGraph, ReleaseKeys, Cancel, Request or LauncherReply",
                    })
                }
            };
            if !self
                .forward(ToScheduler::Events(vec![event]), bytes, None)
                .await
            {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Wanted keys per report when a graph is refused (so no report is too large).
const REPORT_KEYS: usize = 100_000;

/// A graph arriving in `GraphPart`s, until the `UpdateGraph` that completes it.
#[derive(Default)]
struct GraphParts {
    tasks: Vec<crate::graph::TaskSpec>,
    wanted: Vec<crate::graph::Key>,
    /// The first part that did not decode into tasks.
    refused: Option<String>,
    /// Bytes received for the graph so far.
    bytes: usize,
}

impl GraphParts {
    fn add(
        &mut self,
        tasks: Vec<crate::graph::wire::WireTask>,
        wanted: Vec<crate::graph::Key>,
        bytes: usize,
    ) {
        self.bytes += bytes;
        self.wanted.extend(wanted);
        if self.refused.is_some() {
            return;
        }
        for task in tasks {
            match task.into_spec() {
                Ok(mut spec) => {
                    if spec.run.op.needs_plugin() {
                        // An op this binary lacks: only workers that load
                        // plugins can have it.
                        let need = (crate::plugin::RESOURCE.to_string(), 1.0);
                        spec.annotations.resources.push(need);
                    }
                    self.tasks.push(spec)
                }
                Err(error) => {
                    self.refused = Some(error.to_string());
                    self.tasks = Vec::new();
                    return;
                }
            }
        }
    }

    /// The whole graph, or the wanted keys and why it was refused.
    #[allow(clippy::type_complexity)]
    fn finish(
        self,
    ) -> Result<
        (Vec<crate::graph::TaskSpec>, Vec<crate::graph::Key>),
        (Vec<crate::graph::Key>, String),
    > {
        match self.refused {
            None => Ok((self.tasks, self.wanted)),
            Some(error) => Err((self.wanted, error)),
        }
    }
}

/// An upload's library is the request's one blob; anything else leaves it
/// empty, which fails the scheduler's hash check.
fn with_library(request: Request, blobs: Vec<bytes::Bytes>) -> Request {
    match request {
        Request::UploadPlugin { name, hash, .. } => Request::UploadPlugin {
            name,
            hash,
            library: match <[bytes::Bytes; 1]>::try_from(blobs) {
                Ok([library]) => library,
                Err(_) => bytes::Bytes::new(),
            },
        },
        other => other,
    }
}
