//! A worker process: joins a scheduler over TCP, runs tasks on the shared
//! [`WorkerRuntime`], serves its data to peers and clients, fetches inputs
//! from peers directly, sends heartbeats, and manages its memory.
//!
//! SIGTERM or SIGINT retire the worker gracefully: the scheduler copies the data
//! only it holds to other workers and then tells it to close.

use super::memory::{tune_allocator, MemoryManager, MemoryVerdict, Thresholds};
use super::runtime::{Links, WorkerCore, WorkerRuntime};
use super::state::{WorkerEvent, WorkerMessage};
use super::store::DataStore;
use crate::comm::address::Address;
use crate::comm::connection::{
    accept, connect_as, CommError, Connection, Outbox, HANDSHAKE_TIMEOUT,
};
use crate::comm::peers::PeerPool;
use crate::comm::protocol::{
    Hello, Message, Request, Role, WorkerInfo, WorkerMetrics, WorkerOrder,
};
use crate::comm::security::Security;
use crate::graph::wire::run_from_wire;
use crate::graph::Key;
use crate::scheduler::{ComputeTask, WorkerId};
use crate::value::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How to run a worker process.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The scheduler's address.
    pub scheduler: Address,
    /// Threads running tasks.
    pub nthreads: u32,
    /// Memory limit in bytes (0: none).
    pub memory_limit: u64,
    /// Memory thresholds.
    pub thresholds: Thresholds,
    /// The worker's name (default: `host-pid`).
    pub name: Option<String>,
    /// Where spilled data goes (a subdirectory per worker).
    pub local_directory: PathBuf,
    /// Abstract resources offered, e.g. `("GPU", 1.0)`.
    pub resources: Vec<(String, f64)>,
    /// Interface to serve data on.
    pub host: String,
    /// TLS and token.
    pub security: Security,
    /// Retire gracefully after this long (Dask's `--lifetime`; a batch job's
    /// walltime less a margin). Tasks that would outlive it go elsewhere.
    pub lifetime: Option<Duration>,
    /// Keep trying to reach the scheduler at start-up for this long (Dask's
    /// `--death-timeout`); `None` tries once.
    pub death_timeout: Option<Duration>,
}

/// Why a worker process stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerExit {
    /// The scheduler told it to close (after retirement).
    Closed,
    /// The scheduler went away.
    SchedulerLost(String),
    /// It passed the terminate threshold of its memory limit.
    MemoryExceeded {
        /// Resident bytes.
        rss: u64,
        /// The limit.
        limit: u64,
    },
}

/// How often a worker tells the scheduler it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How often the memory manager measures.
const MEMORY_INTERVAL: Duration = Duration::from_millis(20);
/// How long a retiring worker waits for the scheduler's Close before leaving anyway.
const RETIRE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long last words to the scheduler, and blocking work at exit, may take.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

struct RemoteLinks {
    scheduler: Outbox,
    peers: Arc<PeerPool>,
    runtime: tokio::runtime::Handle,
}

impl Links for RemoteLinks {
    fn send(&self, _worker: WorkerId, messages: Vec<WorkerMessage>) {
        self.scheduler.send(Message::WorkerMessages(messages));
    }

    fn fetch(
        &self,
        core: &Arc<WorkerCore>,
        key: Key,
        holders: Vec<WorkerId>,
    ) -> Option<Option<Value>> {
        let peers = self.peers.clone();
        let core = core.clone();
        self.runtime.spawn(async move {
            let mut got = peers.get(&holders, std::slice::from_ref(&key)).await;
            let value = got.pop().map(|(_, bytes)| Value::Encoded(bytes));
            // The store may spill on put: off the I/O threads.
            let _ = tokio::task::spawn_blocking(move || core.fetched(key, value)).await;
        });
        None
    }
}

/// Runs a worker process until it is closed, loses its scheduler, or runs out of memory.
pub fn run_worker(options: WorkerOptions) -> Result<WorkerExit, CommError> {
    tune_allocator();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rask-worker-io")
        .enable_all()
        .build()
        .map_err(CommError::io("starting the I/O runtime"))?;
    let exit = runtime.block_on(serve(options));
    // Blocking work still under way (a fetch, a delivery) is abandoned.
    runtime.shutdown_timeout(GOODBYE_TIMEOUT);
    exit
}

async fn serve(options: WorkerOptions) -> Result<WorkerExit, CommError> {
    let security = options.security.clone();
    let listener = tokio::net::TcpListener::bind(format!("{}:0", options.host))
        .await
        .map_err(CommError::io(format!("binding {}:0", options.host)))?;
    let port = listener
        .local_addr()
        .map_err(CommError::io("reading the bound address"))?
        .port();
    let data_address = Address {
        host: options.host.clone(),
        port,
        tls: security.has_tls(),
    };
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| format!("{}-{}", hostname(), std::process::id()));

    let role = Role::Worker(WorkerInfo {
        name: name.clone(),
        nthreads: options.nthreads,
        resources: options.resources.clone(),
        data_address: data_address.to_string(),
        memory_limit: options.memory_limit,
        pid: std::process::id(),
        lifetime: options.lifetime.map(|l| l.as_secs_f64()),
    });
    let (id, connection) = connect_patiently(&options, &security, role).await?;
    let id = WorkerId(id);
    let Connection {
        mut reader, writer, ..
    } = connection;
    tracing::info!(worker = %id, %name, scheduler = %options.scheduler, data = %data_address, "joined the scheduler");
    let scheduler = Outbox::spawn(writer);

    let memory = MemoryManager::new(options.memory_limit, options.thresholds);
    let spill_dir =
        options
            .local_directory
            .join(format!("rask-worker-{}-{}", std::process::id(), id.0));
    let store = Arc::new(
        DataStore::with_spill(spill_dir.clone(), memory.target_bytes())
            .map_err(CommError::io(format!("creating {}", spill_dir.display())))?,
    );
    let peers = PeerPool::new(security.clone());
    let links = RemoteLinks {
        scheduler: scheduler.clone(),
        peers: peers.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let worker = WorkerRuntime::start(
        id,
        options.nthreads,
        options.resources.clone(),
        store.clone(),
        Box::new(links),
    )
    .map_err(CommError::io("starting task threads"))?;
    let core = worker.core().clone();
    let sent = Arc::new(AtomicU64::new(0));

    tokio::spawn(serve_data(
        listener,
        security.clone(),
        core.clone(),
        sent.clone(),
    ));
    tokio::spawn(heartbeats(
        scheduler.clone(),
        core.clone(),
        peers.clone(),
        sent,
    ));
    let (memory_tx, mut memory_rx) = tokio::sync::mpsc::channel(1);
    {
        let core = core.clone();
        std::thread::Builder::new()
            .name("rask-memory".into())
            .spawn(move || loop {
                if let MemoryVerdict::Terminate { rss, limit } = memory.check(core.store(), &core) {
                    let _ = memory_tx.blocking_send((rss, limit));
                    return;
                }
                std::thread::sleep(MEMORY_INTERVAL);
            })
            .map_err(CommError::io("starting the memory manager"))?;
    }

    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut retiring = false;
    let lifetime = tokio::time::sleep(
        options
            .lifetime
            .unwrap_or(Duration::from_secs(u64::MAX / 4)),
    );
    tokio::pin!(lifetime);
    let retire_deadline = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
    tokio::pin!(retire_deadline);
    let exit = loop {
        tokio::select! {
            message = reader.message() => match message {
                Ok(Some((Message::Orders(orders), _))) => {
                    let events: Vec<WorkerEvent> = orders.into_iter().map(order_event).collect();
                    let core = core.clone();
                    // Delivering may fetch and spill: off the I/O threads.
                    let _ = tokio::task::spawn_blocking(move || core.deliver(events)).await;
                }
                Ok(Some((Message::PeerAddresses { added, removed }, _))) => peers.update(added, removed),
                Ok(Some((Message::Close { reason }, _))) => {
                    tracing::info!(worker = %id, %reason, "closing at the scheduler's request");
                    break WorkerExit::Closed;
                }
                Ok(Some((other, _))) => {
                    tracing::error!(got = other.name(), "unexpected message from the scheduler");
                    break WorkerExit::SchedulerLost(format!("unexpected {} message", other.name()));
                }
                Ok(None) => break WorkerExit::SchedulerLost("the scheduler closed the connection".into()),
                Err(error) => break WorkerExit::SchedulerLost(error.to_string()),
            },
            _ = terminate.recv(), if !retiring => {
                retiring = true;
                retire(&scheduler, id, "SIGTERM");
                retire_deadline.as_mut().reset(tokio::time::Instant::now() + RETIRE_TIMEOUT);
            }
            _ = interrupt.recv(), if !retiring => {
                retiring = true;
                retire(&scheduler, id, "SIGINT");
                retire_deadline.as_mut().reset(tokio::time::Instant::now() + RETIRE_TIMEOUT);
            }
            _ = &mut lifetime, if !retiring => {
                retiring = true;
                retire(&scheduler, id, "lifetime over");
                retire_deadline.as_mut().reset(tokio::time::Instant::now() + RETIRE_TIMEOUT);
            }
            _ = &mut retire_deadline, if retiring => {
                tracing::warn!(worker = %id, "no Close from the scheduler after {RETIRE_TIMEOUT:?}; leaving");
                break WorkerExit::Closed;
            }
            Some((rss, limit)) = memory_rx.recv() => {
                tracing::error!(worker = %id, rss, limit,
                    "worker exceeded 95% of its memory limit ({} of {} bytes); terminating", rss, limit);
                scheduler.send(Message::Goodbye {
                    reason: format!(
                        "{name} passed 95% of its memory limit ({} of {} MiB in use)",
                        rss >> 20,
                        limit >> 20
                    ),
                });
                let _ = tokio::time::timeout(GOODBYE_TIMEOUT, scheduler.flushed()).await;
                break WorkerExit::MemoryExceeded { rss, limit };
            }
        }
    };
    let exceeded = matches!(exit, WorkerExit::MemoryExceeded { .. });
    tokio::task::spawn_blocking(move || {
        if exceeded {
            // Running tasks hold the memory: stop without waiting for them.
            worker.kill();
        } else {
            worker.close();
        }
        store.clear();
        let _ = std::fs::remove_dir_all(&spill_dir);
    })
    .await
    .map_err(|e| CommError::Config(format!("closing: {e}")))?;
    Ok(exit)
}

/// Connects to the scheduler, retrying every second until `death_timeout` has passed.
async fn connect_patiently(
    options: &WorkerOptions,
    security: &Security,
    role: Role,
) -> Result<(u32, Connection), CommError> {
    let give_up = options
        .death_timeout
        .map(|t| tokio::time::Instant::now() + t);
    loop {
        match connect_as(&options.scheduler, security, role.clone()).await {
            Ok(joined) => return Ok(joined),
            Err(error) => match give_up {
                // One last try at the deadline itself, so the worker waits the whole timeout.
                Some(at) if tokio::time::Instant::now() < at => {
                    tracing::info!(scheduler = %options.scheduler, %error, "scheduler not reachable yet; retrying");
                    let left = at - tokio::time::Instant::now();
                    tokio::time::sleep(left.min(Duration::from_secs(1))).await;
                }
                _ => return Err(error),
            },
        }
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, CommError> {
    tokio::signal::unix::signal(kind).map_err(CommError::io("installing a signal handler"))
}

fn retire(scheduler: &Outbox, id: WorkerId, why: &str) {
    tracing::info!(worker = %id, "{why}: retiring gracefully (moving unique data to other workers)");
    scheduler.send(Message::Request {
        id: 0,
        request: Request::RetireWorkers {
            workers: vec![id],
            n: 0,
        },
    });
}

fn order_event(order: WorkerOrder) -> WorkerEvent {
    match order {
        WorkerOrder::Compute(task) => WorkerEvent::Compute(ComputeTask {
            key: task.key,
            run: Arc::new(run_from_wire(task.run)),
            inputs: task.inputs,
            priority: task.priority,
            resources: task.resources,
        }),
        WorkerOrder::Release(key) => WorkerEvent::Release(key),
        WorkerOrder::Steal(key) => WorkerEvent::Steal(key),
        WorkerOrder::Replicate { key, holders } => WorkerEvent::Replicate { key, holders },
    }
}

async fn heartbeats(
    scheduler: Outbox,
    core: Arc<WorkerCore>,
    peers: Arc<PeerPool>,
    sent: Arc<AtomicU64>,
) {
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    loop {
        tick.tick().await;
        let sizes = core.store().sizes();
        let metrics = WorkerMetrics {
            rss: super::memory::process_rss(),
            managed: sizes.managed,
            spilled: sizes.spilled,
            paused: core.is_paused(),
            executing: core.executing(),
            bytes_sent: sent.load(Ordering::Relaxed),
            bytes_received: peers.bytes_received.load(Ordering::Relaxed),
        };
        if !scheduler.send(Message::Heartbeat(metrics)) {
            return;
        }
    }
}

/// Serves `GetData` and `PutData` to peers and clients.
async fn serve_data(
    listener: tokio::net::TcpListener,
    security: Security,
    core: Arc<WorkerCore>,
    sent: Arc<AtomicU64>,
) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let security = security.clone();
        let core = core.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            if let Err(error) = data_connection(tcp, &security, core, sent).await {
                tracing::warn!(%peer, %error, "data connection closed");
            }
        });
    }
}

async fn data_connection(
    tcp: tokio::net::TcpStream,
    security: &Security,
    core: Arc<WorkerCore>,
    sent: Arc<AtomicU64>,
) -> Result<(), CommError> {
    let Connection {
        mut reader,
        mut writer,
        peer,
    } = accept(tcp, security).await?;
    let (hello, _) = tokio::time::timeout(HANDSHAKE_TIMEOUT, reader.expect())
        .await
        .map_err(|_| CommError::Timeout(HANDSHAKE_TIMEOUT, "waiting for Hello"))??;
    let Message::Hello(Hello { token, .. }) = hello else {
        return Err(CommError::Unexpected {
            got: hello.name(),
            expected: "Hello",
        });
    };
    if !security.token_matches(token.as_deref()) {
        tracing::warn!(%peer, "refused: missing or invalid token");
        let reason = "missing or invalid token".to_string();
        let _ = writer.send(Message::Refused { reason }.into()).await;
        return Ok(());
    }
    writer.send(Message::Welcome { id: 0 }.into()).await?;
    while let Some((message, blobs)) = reader.message().await? {
        match message {
            Message::GetData { keys } => {
                let store = core.store().clone();
                // Reading spilled values touches the disk: off the I/O threads.
                let found = tokio::task::spawn_blocking(move || {
                    let mut found = Vec::new();
                    for key in keys {
                        if let Some(value) = store.get(&key) {
                            match value.to_bytes() {
                                Ok(bytes) => found.push((key, bytes)),
                                Err(error) => tracing::error!(%key, %error, "cannot send a value"),
                            }
                        }
                    }
                    found
                })
                .await
                .unwrap_or_default();
                let bytes: u64 = found.iter().map(|(_, b)| b.len() as u64).sum();
                sent.fetch_add(bytes, Ordering::Relaxed);
                let (keys, blobs) = found.into_iter().unzip();
                writer
                    .send(crate::comm::connection::Outgoing {
                        message: Message::Data { keys },
                        blobs,
                    })
                    .await?;
            }
            Message::PutData { keys } if keys.len() == blobs.len() => {
                let core = core.clone();
                let nbytes = tokio::task::spawn_blocking(move || {
                    let mut sizes = Vec::new();
                    let mut events = Vec::new();
                    for (key, blob) in keys.into_iter().zip(blobs) {
                        let value = Value::Encoded(blob);
                        let nbytes = value.nbytes() as u64;
                        core.store().put(key.clone(), value);
                        events.push(WorkerEvent::Stored { key, nbytes });
                        sizes.push(nbytes);
                    }
                    core.deliver(events);
                    sizes
                })
                .await
                .unwrap_or_default();
                writer.send(Message::Stored { nbytes }.into()).await?;
            }
            other => {
                return Err(CommError::Unexpected {
                    got: other.name(),
                    expected: "GetData or PutData",
                })
            }
        }
    }
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "worker".into())
}
