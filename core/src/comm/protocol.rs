//! The messages of the rask protocol, one enum for every direction.
//!
//! Messages are postcard-encoded into message frames; the values they refer to
//! (task results, scattered data) travel as blobs beside them (see [`super::frame`]).
//! Each side accepts only the variants meant for it and closes a connection that
//! sends anything else.

use crate::graph::wire::{WireRun, WireTask};
use crate::graph::Key;
use crate::ops::TaskFailure;
use crate::scheduler::{Event, Input, Priority, Report, RunId, WorkerId};
use serde::{Deserialize, Serialize};

/// A graph is sent in messages of at most about this many bytes.
pub const GRAPH_PART_BYTES: usize = 8 << 20;
/// The most bytes one task (its key, op and literal arguments) may take on
/// the wire; larger data goes by `scatter`, and the task takes its future.
pub const MAX_TASK_BYTES: usize = 32 << 20;
/// The most values (blobs) one message carries.
pub const MAX_VALUES_PER_MESSAGE: usize = 16_384;

/// A task too large to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "task {key} takes {bytes} bytes on the wire, more than the {limit} a task may; \
     put large values on the cluster with `scatter` and pass their futures"
)]
pub struct TaskTooLarge {
    /// The task.
    pub key: Key,
    /// Its encoded size.
    pub bytes: usize,
    /// [`MAX_TASK_BYTES`].
    pub limit: usize,
}

/// The messages that carry one graph: `GraphPart`s of about
/// [`GRAPH_PART_BYTES`] each, then the `UpdateGraph` that completes them.
pub fn graph_messages(
    tasks: Vec<WireTask>,
    wanted: Vec<Key>,
) -> Result<Vec<Message>, TaskTooLarge> {
    let mut messages = Vec::new();
    let mut part: Vec<WireTask> = Vec::new();
    let mut bytes = 0usize;
    for task in tasks {
        let size = postcard::experimental::serialized_size(&task).unwrap_or(usize::MAX);
        if size > MAX_TASK_BYTES {
            return Err(TaskTooLarge {
                key: task.key,
                bytes: size,
                limit: MAX_TASK_BYTES,
            });
        }
        if !part.is_empty() && bytes + size > GRAPH_PART_BYTES {
            messages.push(Message::GraphPart {
                tasks: std::mem::take(&mut part),
                wanted: Vec::new(),
            });
            bytes = 0;
        }
        bytes += size;
        part.push(task);
    }
    let mut keys: Vec<Key> = Vec::new();
    for key in wanted {
        let size = key.as_str().len() + 4;
        if bytes + size > GRAPH_PART_BYTES {
            messages.push(Message::GraphPart {
                tasks: std::mem::take(&mut part),
                wanted: std::mem::take(&mut keys),
            });
            bytes = 0;
        }
        bytes += size;
        keys.push(key);
    }
    messages.push(Message::UpdateGraph {
        tasks: part,
        wanted: keys,
    });
    Ok(messages)
}

/// Who is connecting, and with what credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// The connecting side's role.
    pub role: Role,
    /// The shared token, when the cluster uses one.
    pub token: Option<String>,
}

/// The role of a connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Role {
    /// A client of the scheduler.
    Client,
    /// A worker joining the scheduler.
    Worker(WorkerInfo),
    /// A worker or client fetching data from a worker.
    Peer,
}

/// What a joining worker tells the scheduler about itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its name (unique names are the user's business; restrictions use them).
    pub name: String,
    /// Threads running tasks.
    pub nthreads: u32,
    /// Abstract resources, e.g. `("GPU", 1.0)`.
    pub resources: Vec<(String, f64)>,
    /// Where peers fetch its data (`tcp://host:port`).
    pub data_address: String,
    /// Its memory limit in bytes (0: none).
    pub memory_limit: u64,
    /// Its process id, for people reading logs.
    pub pid: u32,
    /// Seconds until it retires on its own (`--lifetime`, a job's walltime).
    pub lifetime: Option<f64>,
    /// Whether it loads op plugins (not with `--no-plugins`).
    pub plugins: bool,
}

/// A task to run, as sent to a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireCompute {
    /// The task.
    pub key: Key,
    /// This assignment (echoed in the worker's answers).
    pub run_id: RunId,
    /// What to run.
    pub run: WireRun,
    /// Inputs and where they are.
    pub inputs: Vec<Input>,
    /// Where it stands in the worker's queue.
    pub priority: Priority,
    /// Resources it holds while running.
    pub resources: Vec<(String, f64)>,
}

/// What the scheduler tells a worker to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WorkerOrder {
    /// Run a task.
    Compute(WireCompute),
    /// Drop a key, as of the serial of the last assignment the scheduler had
    /// handed out: a shuffle layout's runs up to it are over.
    Release(Key, u32),
    /// Give up a task that has not started.
    Steal(Key, RunId),
    /// Copy a key from one of `holders` and keep it (graceful retirement).
    Replicate {
        /// The key.
        key: Key,
        /// Workers holding it.
        holders: Vec<WorkerId>,
        /// Its size (for batching fetches).
        nbytes: u64,
    },
}

/// A worker's health and memory, sent about every second.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerMetrics {
    /// Resident memory of the process.
    pub rss: u64,
    /// Bytes of results held in memory.
    pub managed: u64,
    /// Bytes of results spilled to disk.
    pub spilled: u64,
    /// Whether task execution is paused for memory.
    pub paused: bool,
    /// Tasks executing now.
    pub executing: u32,
    /// Bytes this worker sent to peers.
    pub bytes_sent: u64,
    /// Bytes this worker fetched from peers.
    pub bytes_received: u64,
    /// Bytes of shuffle shards this worker has written to disk, in all.
    pub shuffle_spilled: u64,
    /// Bytes of shuffle shards held now (in memory and on disk) that no
    /// output task has taken yet.
    pub shuffle_held: u64,
    /// CPU time the process has used, seconds (user and system).
    pub cpu_seconds: f64,
}

/// Requests from clients (and the launchers) that get exactly one reply.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// Data was put on workers by the client; the scheduler should track it.
    Scatter {
        /// Keys, with the worker holding each and its size.
        keys: Vec<(Key, WorkerId, u64)>,
    },
    /// Publish keys under a name (Dask's `publish_dataset`).
    Publish {
        /// The name.
        name: String,
        /// The keys it holds on to.
        keys: Vec<Key>,
    },
    /// The keys published under a name.
    GetDataset {
        /// The name.
        name: String,
    },
    /// Forget a published name.
    Unpublish {
        /// The name.
        name: String,
    },
    /// The published names.
    ListDatasets,
    /// A coordination primitive operation.
    Primitive(crate::coordination::PrimitiveRequest),
    /// Retire workers gracefully: copy their unique data elsewhere, then let them go.
    RetireWorkers {
        /// Workers by id; when empty, `n` are chosen by the scheduler.
        workers: Vec<WorkerId>,
        /// How many to choose when `workers` is empty.
        n: u32,
    },
    /// How many workers the scheduler would like (Dask's `adaptive_target`).
    AdaptiveTarget,
    /// Which `n` workers to close first.
    WorkersToClose {
        /// How many.
        n: u32,
    },
    /// The cluster's workers.
    Info,
    /// About the cluster's jobs and size; answered by the launcher.
    Cluster(super::launcher::ClusterRequest),
    /// Which workers hold these keys now.
    WhoHas {
        /// The keys.
        keys: Vec<Key>,
    },
    /// How far the asking client's work has got (progress bars).
    Progress,
    /// From now on, pass this client the cluster requests ([`Request::Cluster`])
    /// other clients send: it is the cluster's launcher (`rask cluster up` on
    /// Kubernetes, outside the scheduler's process). Refused while another
    /// launcher serves them.
    ServeClusterRequests,
    /// Keep a plugin library and have every worker, present and future, load
    /// it ([`crate::plugin`]); only from an authenticated client.
    UploadPlugin {
        /// Its name (the library's file name).
        name: String,
        /// Its content hash ([`crate::plugin::content_hash`]).
        hash: String,
        /// The library: on the wire, the message's one blob (a library may
        /// be larger than a message frame).
        #[serde(skip)]
        library: bytes::Bytes,
    },
    /// Data for the dashboard or a performance report.
    Dashboard(crate::diagnostics::DashboardQuery),
}

/// How the workers present at an upload took a plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginReport {
    /// The plugin's content hash.
    pub hash: String,
    /// Workers (by name) that loaded it, with the ops it brought them.
    pub loaded: Vec<(String, Vec<String>)>,
    /// Workers (by name) that refused it, and why.
    pub refused: Vec<(String, String)>,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Reply {
    /// Done.
    Ok,
    /// Keys (of a dataset).
    Keys(Vec<Key>),
    /// Names (of datasets).
    Names(Vec<String>),
    /// A number (the adaptive target).
    Count(u32),
    /// Workers (to close, or retired).
    Workers(Vec<WorkerSummary>),
    /// A primitive's answer.
    Primitive(crate::coordination::PrimitiveReply),
    /// Holders of each key asked about, in order.
    WhoHas(Vec<Vec<WorkerId>>),
    /// The cluster's jobs and workers (from the launcher).
    Cluster(super::launcher::ClusterStatus),
    /// The request failed.
    Error(String),
    /// The asking client's work in flight.
    Progress(crate::scheduler::Progress),
    /// How the workers took an uploaded plugin.
    Plugin(PluginReport),
    /// The answer to [`Request::Dashboard`].
    Dashboard(Box<crate::diagnostics::DashboardView>),
}

/// One worker as clients and launchers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSummary {
    /// Its id.
    pub id: WorkerId,
    /// Its name.
    pub name: String,
    /// Where its data is served.
    pub data_address: String,
    /// Its process id (on its host).
    pub pid: u32,
    /// Threads.
    pub nthreads: u32,
    /// Its latest metrics.
    pub metrics: WorkerMetrics,
    /// The resources it offers; a worker that loads op plugins offers
    /// [`crate::plugin::RESOURCE`].
    pub resources: Vec<(String, f64)>,
    /// The plugins it loaded (file names), oldest first.
    pub plugins: Vec<String>,
}

/// Every message of the protocol.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Message {
    /// First message of a connection, from the connecting side.
    Hello(Hello),
    /// The connection is accepted; `id` is the worker's or client's id.
    Welcome {
        /// The id the scheduler gave (0 for peer connections).
        id: u32,
    },
    /// The connection is refused, and why.
    Refused {
        /// Why.
        reason: String,
    },
    /// Scheduler → worker: things to do, in order.
    Orders(Vec<WorkerOrder>),
    /// Scheduler → workers and clients: where workers serve data.
    PeerAddresses {
        /// Workers that joined, with their data addresses.
        added: Vec<(WorkerId, String)>,
        /// Workers that left.
        removed: Vec<WorkerId>,
    },
    /// Scheduler → worker: finish up and exit (after retirement).
    Close {
        /// Why, for logs.
        reason: String,
    },
    /// Worker → scheduler: results and answers.
    WorkerMessages(Vec<WorkerMessage>),
    /// Worker → scheduler: health and memory.
    Heartbeat(WorkerMetrics),
    /// Scheduler → worker: load this plugin library (sent before any order
    /// that may run its ops).
    LoadPlugin {
        /// Its name.
        name: String,
        /// Its content hash: the worker checks the bytes against it.
        hash: String,
        /// The library: on the wire, the message's one blob.
        #[serde(skip)]
        library: bytes::Bytes,
    },
    /// Worker → scheduler: how a `LoadPlugin` went: the ops it brought, or why not.
    PluginLoaded {
        /// The plugin's content hash.
        hash: String,
        /// Its ops, or why the worker refused it.
        outcome: Result<Vec<String>, String>,
    },
    /// Worker → scheduler: last words before the worker exits on its own, e.g.
    /// over its memory limit; the reason ends up in "killed worker" errors.
    Goodbye {
        /// Why the worker is leaving.
        reason: String,
    },
    /// Client → scheduler: part of a graph too large for one message; the
    /// parts are held until the `UpdateGraph` that completes them.
    GraphPart {
        /// Tasks.
        tasks: Vec<WireTask>,
        /// Keys the client holds futures for.
        wanted: Vec<Key>,
    },
    /// Client → scheduler: new tasks and the keys wanted (with any
    /// `GraphPart`s sent just before it: one graph).
    UpdateGraph {
        /// Tasks.
        tasks: Vec<WireTask>,
        /// Keys the client holds futures for.
        wanted: Vec<Key>,
    },
    /// Client → scheduler: futures dropped.
    ReleaseKeys(Vec<Key>),
    /// Client → scheduler: cancel keys.
    Cancel(Vec<Key>),
    /// Client → scheduler: a request expecting a reply.
    Request {
        /// Matches the reply.
        id: u64,
        /// The request.
        request: Request,
    },
    /// Scheduler → client: news about wanted keys.
    Reports(Vec<Report>),
    /// Scheduler → client: the reply to a request.
    Reply {
        /// The request's id.
        id: u64,
        /// The reply.
        reply: Reply,
    },
    /// Peer → worker: send these keys' values.
    GetData {
        /// The keys.
        keys: Vec<Key>,
    },
    /// Worker → peer: values, one blob per key in `keys` (keys not held are
    /// left out). A holder answers one `GetData` with as many `Data` messages
    /// as it takes to keep each under its transfer limit, loading values only
    /// as it sends them; all but the last say `more`.
    Data {
        /// Keys whose values follow as blobs.
        keys: Vec<Key>,
        /// Another `Data` for the same request follows.
        more: bool,
    },
    /// Client → worker: store these values (scatter), one blob per key.
    PutData {
        /// Keys whose values follow as blobs.
        keys: Vec<Key>,
    },
    /// Worker → client: the values of a `PutData` are stored; their sizes.
    Stored {
        /// Sizes, in order.
        nbytes: Vec<u64>,
    },
    /// Worker → peer: keep these shards of a shuffle, one blob each; answered
    /// by `ShardsStored` once they are kept.
    PushShards {
        /// The shuffle.
        shuffle: String,
        /// For each blob, its input and output partition.
        shards: Vec<(u32, u32)>,
    },
    /// Peer → worker: the shards of a `PushShards` are kept.
    ShardsStored,
    /// Worker → peer: hand over every shard of one output partition.
    TakeShards {
        /// The shuffle.
        shuffle: String,
        /// The output partition.
        part: u32,
    },
    /// Peer → worker: shards taken, one blob each (all but the last message
    /// say `more`).
    Shards {
        /// For each blob, the input partition it came from.
        inputs: Vec<u32>,
        /// Another `Shards` follows.
        more: bool,
    },
    /// Either way: a shuffle request failed, and why.
    ShuffleFailed {
        /// Why.
        reason: String,
    },
    /// Scheduler → the launcher's client: a cluster request to answer.
    LauncherCall {
        /// Matches the answer.
        token: u64,
        /// The request.
        request: super::launcher::ClusterRequest,
    },
    /// The launcher's client → scheduler: the answer to a `LauncherCall`.
    LauncherReply {
        /// The call's token.
        token: u64,
        /// The answer.
        reply: Reply,
    },
}

impl Message {
    /// The message's bytes in a message frame (postcard).
    pub fn encode(&self) -> Result<Vec<u8>, postcard::Error> {
        postcard::to_stdvec(self)
    }

    /// A message from a message frame's bytes; trailing bytes are an error.
    pub fn decode(bytes: &[u8]) -> Result<Message, postcard::Error> {
        let (message, rest) = postcard::take_from_bytes(bytes)?;
        if rest.is_empty() {
            Ok(message)
        } else {
            Err(postcard::Error::DeserializeBadEncoding)
        }
    }

    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::Hello(_) => "Hello",
            Message::Welcome { .. } => "Welcome",
            Message::Refused { .. } => "Refused",
            Message::Orders(_) => "Orders",
            Message::PeerAddresses { .. } => "PeerAddresses",
            Message::Close { .. } => "Close",
            Message::WorkerMessages(_) => "WorkerMessages",
            Message::Heartbeat(_) => "Heartbeat",
            Message::Goodbye { .. } => "Goodbye",
            Message::LoadPlugin { .. } => "LoadPlugin",
            Message::PluginLoaded { .. } => "PluginLoaded",
            Message::GraphPart { .. } => "GraphPart",
            Message::UpdateGraph { .. } => "UpdateGraph",
            Message::ReleaseKeys(_) => "ReleaseKeys",
            Message::Cancel(_) => "Cancel",
            Message::Request { .. } => "Request",
            Message::Reports(_) => "Reports",
            Message::Reply { .. } => "Reply",
            Message::GetData { .. } => "GetData",
            Message::Data { .. } => "Data",
            Message::PutData { .. } => "PutData",
            Message::Stored { .. } => "Stored",
            Message::PushShards { .. } => "PushShards",
            Message::ShardsStored => "ShardsStored",
            Message::TakeShards { .. } => "TakeShards",
            Message::Shards { .. } => "Shards",
            Message::ShuffleFailed { .. } => "ShuffleFailed",
            Message::LauncherCall { .. } => "LauncherCall",
            Message::LauncherReply { .. } => "LauncherReply",
        }
    }
}

/// What a worker tells the scheduler.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum WorkerMessage {
    /// A task finished; its result is here.
    TaskFinished {
        /// The task.
        key: Key,
        /// The assignment this answers.
        run_id: RunId,
        /// The result's size.
        nbytes: u64,
        /// How long it ran, in microseconds.
        duration_us: u64,
        /// The worker's thread that ran it (its row in the task stream).
        thread: u16,
    },
    /// A task failed.
    TaskErred {
        /// The task.
        key: Key,
        /// The assignment this answers.
        run_id: RunId,
        /// Why.
        failure: TaskFailure,
    },
    /// An input of a task could not be fetched from any holder.
    MissingData {
        /// The task.
        key: Key,
        /// The task's assignment.
        run_id: RunId,
        /// The input.
        missing: Key,
        /// The holders asked (none of them delivered).
        tried: Vec<WorkerId>,
    },
    /// Answer to a steal request.
    StealResponse {
        /// The task.
        key: Key,
        /// The assignment asked about.
        run_id: RunId,
        /// Whether it was given up.
        stolen: bool,
    },
    /// A replica asked for is stored (`None`: it could not be fetched).
    Replicated {
        /// The key.
        key: Key,
        /// Its size.
        nbytes: Option<u64>,
    },
}

impl WorkerMessage {
    /// The scheduler event this message from `worker` becomes.
    pub fn into_event(self, worker: WorkerId) -> Event {
        match self {
            WorkerMessage::TaskFinished {
                key,
                run_id,
                nbytes,
                duration_us,
                thread,
            } => Event::TaskFinished {
                worker,
                key,
                run_id,
                nbytes,
                duration_us,
                thread,
            },
            WorkerMessage::TaskErred {
                key,
                run_id,
                failure,
            } => Event::TaskErred {
                worker,
                key,
                run_id,
                failure,
            },
            WorkerMessage::MissingData {
                key,
                run_id,
                missing,
                tried,
            } => Event::MissingData {
                worker,
                key,
                run_id,
                missing,
                tried,
            },
            WorkerMessage::StealResponse {
                key,
                run_id,
                stolen,
            } => Event::StealResponse {
                worker,
                key,
                run_id,
                stolen,
            },
            WorkerMessage::Replicated { key, nbytes } => Event::Replicated {
                worker,
                key,
                nbytes,
            },
        }
    }
}
