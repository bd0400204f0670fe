//! One session of a worker process with its scheduler: from `Welcome` until
//! the scheduler closes it, the connection is lost, or the worker runs out of
//! memory. A session runs tasks on the shared [`WorkerRuntime`], serves its
//! data to peers and clients, fetches inputs from peers directly, sends
//! heartbeats and watches its memory. Everything it held ends with it.

use super::data_server::serve_data;
use super::fetcher::Fetcher;
use super::memory::{MemoryManager, MemoryVerdict};
use super::process::{WorkerExit, WorkerOptions};
use super::runtime::{Links, WorkerCore, WorkerRuntime};
use super::shuffle_buffers::{Shard, ShuffleBuffers};
use super::state::WorkerEvent;
use super::store::DataStore;
use crate::comm::address::Address;
use crate::comm::connection::{CommError, Connection, Outbox};
use crate::comm::peers::PeerPool;
use crate::comm::protocol::WorkerMessage;
use crate::comm::protocol::{Message, Request, WorkerMetrics, WorkerOrder};
use crate::graph::wire::run_from_wire;
use crate::graph::Key;
use crate::scheduler::{ComputeTask, WorkerId};
use crate::value::Value;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How often a worker tells the scheduler it is alive.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How often the memory manager measures.
const MEMORY_INTERVAL: Duration = Duration::from_millis(20);
/// How long a retiring worker waits for the scheduler's Close before leaving anyway.
const RETIRE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long last words to the scheduler may take.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

/// How a session ended.
#[derive(Debug)]
pub(super) enum SessionEnd {
    /// The process should exit.
    Exit(WorkerExit),
    /// The connection to the scheduler is gone; try to join again.
    SchedulerLost(String),
}

/// What asks a worker to stop: SIGTERM, SIGINT, or the end of its lifetime.
pub(super) struct Stop {
    terminate: Signal,
    interrupt: Signal,
    lifetime_end: Option<tokio::time::Instant>,
}

impl Stop {
    /// Installs the signal handlers; the lifetime counts from now.
    pub(super) fn install(lifetime: Option<Duration>) -> Result<Stop, CommError> {
        let install = |kind| signal(kind).map_err(CommError::io("installing a signal handler"));
        Ok(Stop {
            terminate: install(SignalKind::terminate())?,
            interrupt: install(SignalKind::interrupt())?,
            lifetime_end: lifetime.and_then(|l| tokio::time::Instant::now().checked_add(l)),
        })
    }

    /// What is left of the worker's lifetime.
    pub(super) fn lifetime_left(&self) -> Option<Duration> {
        self.lifetime_end
            .map(|end| end.saturating_duration_since(tokio::time::Instant::now()))
    }

    /// Waits until the worker is asked to stop; says why.
    pub(super) async fn requested(&mut self) -> &'static str {
        let lifetime = async {
            match self.lifetime_end {
                Some(end) => tokio::time::sleep_until(end).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
            _ = lifetime => "lifetime over",
        }
    }
}

struct RemoteLinks {
    scheduler: Outbox,
    fetcher: Fetcher,
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
        nbytes: u64,
    ) -> Option<Option<Value>> {
        self.fetcher.request(core, key, holders, nbytes);
        None
    }

    fn push_shards(
        &self,
        target: WorkerId,
        shuffle: &str,
        shards: Vec<Shard>,
    ) -> Result<(), String> {
        let shards = shards
            .into_iter()
            .map(|s| (s.input, s.part, s.bytes))
            .collect();
        self.runtime
            .block_on(self.peers.push_shards(target, shuffle, shards))
            .map_err(|e| format!("pushing shards to {target}: {e}"))
    }

    fn take_shards(
        &self,
        owner: WorkerId,
        shuffle: &str,
        part: u32,
    ) -> Result<BTreeMap<u32, Bytes>, String> {
        self.runtime
            .block_on(self.peers.take_shards(owner, shuffle, part))
            .map(|shards| shards.into_iter().collect())
            .map_err(|e| format!("taking shards from {owner}: {e}"))
    }

    fn peers(&self) -> Vec<WorkerId> {
        self.peers.workers()
    }
}

/// Serves one session on `connection` (already welcomed with worker id `id`).
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_session(
    options: &WorkerOptions,
    name: &str,
    session: u32,
    id: u32,
    connection: Connection,
    listener: tokio::net::TcpListener,
    data_address: Address,
    stop: &mut Stop,
) -> Result<SessionEnd, CommError> {
    let id = WorkerId(id);
    let security = options.security.clone();
    let Connection {
        mut reader, writer, ..
    } = connection;
    tracing::info!(worker = %id, %name, scheduler = %options.scheduler, data = %data_address, "joined the scheduler");
    let scheduler = Outbox::spawn(writer);

    let memory = MemoryManager::new(options.memory_limit, options.thresholds);
    let spill_dir = options.local_directory.join(format!(
        "rask-worker-{}-{session}-{}",
        std::process::id(),
        id.0
    ));
    let store = Arc::new(
        DataStore::with_spill(spill_dir.clone(), memory.target_bytes())
            .map_err(CommError::io(format!("creating {}", spill_dir.display())))?,
    );
    let shuffles = Arc::new(ShuffleBuffers::new(
        spill_dir.join("shuffles"),
        ShuffleBuffers::budget_for(options.memory_limit),
    ));
    let peers = PeerPool::new(security.clone());
    let links = RemoteLinks {
        scheduler: scheduler.clone(),
        fetcher: Fetcher::new(
            peers.clone(),
            tokio::runtime::Handle::current(),
            options.memory_limit,
        ),
        peers: peers.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let worker = WorkerRuntime::start(
        id,
        options.nthreads,
        options.resources.clone(),
        store.clone(),
        shuffles,
        Box::new(links),
    )
    .map_err(CommError::io("starting task threads"))?;
    let core = worker.core().clone();
    let sent = Arc::new(AtomicU64::new(0));

    let data_task = tokio::spawn(serve_data(
        listener,
        security.clone(),
        core.clone(),
        sent.clone(),
    ));
    let heartbeat_task = tokio::spawn(heartbeats(
        scheduler.clone(),
        core.clone(),
        peers.clone(),
        sent,
    ));
    let memory_stop = Arc::new(AtomicBool::new(false));
    let (memory_tx, mut memory_rx) = tokio::sync::mpsc::channel(1);
    {
        let core = core.clone();
        let memory_stop = memory_stop.clone();
        std::thread::Builder::new()
            .name("rask-memory".into())
            .spawn(move || {
                while !memory_stop.load(Ordering::Relaxed) {
                    if let MemoryVerdict::Terminate { rss, limit } =
                        memory.check(core.store(), &core)
                    {
                        let _ = memory_tx.blocking_send((rss, limit));
                        return;
                    }
                    std::thread::sleep(MEMORY_INTERVAL);
                }
            })
            .map_err(CommError::io("starting the memory manager"))?;
    }

    let mut retiring = false;
    let retire_deadline = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
    tokio::pin!(retire_deadline);
    let end = loop {
        tokio::select! {
            message = reader.message() => match message {
                Ok(Some((Message::Orders(orders), _))) => {
                    let events: Vec<WorkerEvent> = orders.into_iter().map(order_event).collect();
                    let core = core.clone();
                    // Delivering may fetch and spill: off the I/O threads.
                    let _ = tokio::task::spawn_blocking(move || core.deliver(events)).await;
                }
                Ok(Some((Message::PeerAddresses { added, removed }, _))) => peers.update(added, removed),
                Ok(Some((Message::LoadPlugin { name, hash, .. }, blobs))) => {
                    // The library is the message's one blob; anything else
                    // fails the hash check.
                    let library = match <[bytes::Bytes; 1]>::try_from(blobs) {
                        Ok([library]) => library,
                        Err(_) => bytes::Bytes::new(),
                    };
                    // Loaded before the orders after it, which may run its ops.
                    let outcome = load_plugin(options, name, hash.clone(), library).await;
                    scheduler.send(Message::PluginLoaded { hash, outcome });
                }
                Ok(Some((Message::Close { reason }, _))) => {
                    tracing::info!(worker = %id, %reason, "closing at the scheduler's request");
                    break SessionEnd::Exit(WorkerExit::Closed);
                }
                Ok(Some((other, _))) => {
                    tracing::error!(got = other.name(), "unexpected message from the scheduler");
                    break lost(retiring, format!("unexpected {} message", other.name()));
                }
                Ok(None) => break lost(retiring, "the scheduler closed the connection".into()),
                Err(error) => break lost(retiring, error.to_string()),
            },
            why = stop.requested(), if !retiring => {
                retiring = true;
                retire(&scheduler, id, why);
                retire_deadline.as_mut().reset(tokio::time::Instant::now() + RETIRE_TIMEOUT);
            }
            _ = &mut retire_deadline, if retiring => {
                tracing::warn!(worker = %id, "no Close from the scheduler after {RETIRE_TIMEOUT:?}; leaving");
                break SessionEnd::Exit(WorkerExit::Closed);
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
                break SessionEnd::Exit(WorkerExit::MemoryExceeded { rss, limit });
            }
        }
    };
    data_task.abort();
    heartbeat_task.abort();
    memory_stop.store(true, Ordering::Relaxed);
    // Running tasks hold memory the next session (or the exit) needs back, and
    // their results are lost anyway: stop without waiting for them.
    let abandon = !matches!(end, SessionEnd::Exit(WorkerExit::Closed));
    tokio::task::spawn_blocking(move || {
        if abandon {
            worker.kill();
        } else {
            worker.close();
        }
        store.clear();
        let _ = std::fs::remove_dir_all(&spill_dir);
    })
    .await
    .map_err(|e| CommError::Config(format!("closing: {e}")))?;
    Ok(end)
}

/// Loads a plugin the scheduler sent: its ops, or why not.
async fn load_plugin(
    options: &WorkerOptions,
    name: String,
    hash: String,
    library: bytes::Bytes,
) -> Result<Vec<String>, String> {
    if options.no_plugins {
        let refused = crate::plugin::PluginError::Disabled { name };
        tracing::warn!(%refused, "refused a plugin");
        return Err(refused.to_string());
    }
    let dir = options
        .local_directory
        .join(format!("rask-plugins-{}", std::process::id()));
    let loaded =
        tokio::task::spawn_blocking(move || crate::plugin::install(&name, &hash, &library, &dir))
            .await
            .map_err(|e| format!("loading the plugin: {e}"))?;
    match loaded {
        Ok(plugin) => Ok(plugin.ops.clone()),
        Err(error) => {
            tracing::error!(%error, "could not load a plugin");
            Err(error.to_string())
        }
    }
}

/// The connection is gone: a retiring worker is done, any other tries to join again.
fn lost(retiring: bool, why: String) -> SessionEnd {
    if retiring {
        tracing::info!(%why, "the scheduler went away while this worker retired; exiting");
        SessionEnd::Exit(WorkerExit::Closed)
    } else {
        SessionEnd::SchedulerLost(why)
    }
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
            run_id: task.run_id,
            run: Arc::new(run_from_wire(task.run)),
            inputs: task.inputs,
            priority: task.priority,
            resources: task.resources,
        }),
        WorkerOrder::Release(key, as_of) => WorkerEvent::Release(key, as_of),
        WorkerOrder::Steal(key, run_id) => WorkerEvent::Steal(key, run_id),
        WorkerOrder::Replicate {
            key,
            holders,
            nbytes,
        } => WorkerEvent::Replicate {
            key,
            holders,
            nbytes,
        },
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
            shuffle_spilled: core.shuffles().spilled_bytes(),
            shuffle_held: core.shuffles().held_bytes(),
            cpu_seconds: super::memory::process_cpu_seconds(),
        };
        if !scheduler.send(Message::Heartbeat(metrics)) {
            return;
        }
    }
}
