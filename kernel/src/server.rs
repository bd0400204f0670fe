//! The kernel's side of the Jupyter messaging protocol (5.3): the five
//! ZeroMQ sockets of a connection file, signed with its HMAC key
//! (`jupyter-zmq-client`, typed messages from `jupyter-protocol`).
//!
//! Shell requests are answered one at a time, as ipykernel does; control
//! requests (kernel info, interrupt, shutdown) and heartbeats are answered
//! beside them, so an interrupt reaches a kernel busy with a cell.

use crate::cell_ops::{CellOps, EarlyPlugin};
use crate::cluster::{CellsLink, Clusters};
use crate::completeness::{self, Completeness};
use crate::evaluator::{CellError, Evaluator, Printed, PANIC_MARKER};
use crate::history::History;
use crate::interrupt::Interrupts;
use crate::magics;
use crate::requests;
use anyhow::{Context, Result};
use jupyter_protocol::{
    ClearOutput, CodeMirrorMode, CommInfoReply, CompleteReply, ConnectionInfo, DisplayData,
    ErrorOutput, ExecuteInput, ExecuteReply, ExecuteResult, ExecutionCount, HistoryReply,
    InspectReply, InterruptReply, IsCompleteReply, IsCompleteReplyStatus, JupyterMessage,
    JupyterMessageContent, KernelInfoReply, LanguageInfo, Media, Payload, ReplyError, ReplyStatus,
    ShutdownReply, Status, StreamContent, Transient, UpdateDisplayData,
};
use jupyter_zmq_client::{
    create_kernel_control_connection, create_kernel_heartbeat_connection,
    create_kernel_iopub_xpub_connection, create_kernel_shell_connection,
    create_kernel_stdin_connection, SubscriptionEvent,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// What the kernel shares between its tasks.
struct Shared {
    /// Messages for the IOPub socket, in order.
    iopub: mpsc::UnboundedSender<JupyterMessage>,
    /// The request whose cell is running: what it prints is a child of it.
    running: Mutex<Option<JupyterMessage>>,
    /// A panic the running cell reported.
    panic: Mutex<Option<String>>,
    /// The cell evaluator, once it has started.
    evaluator: watch::Receiver<Option<Result<Evaluator, String>>>,
    /// The cells' process, for marking and interrupting the running cell.
    cells: CellsLink,
    /// Interrupts of the running cell.
    interrupts: Interrupts,
}

impl Shared {
    fn publish(&self, content: impl Into<JupyterMessageContent>, parent: &JupyterMessage) {
        let _ = self
            .iopub
            .send(JupyterMessage::new(content.into(), Some(parent)));
    }

    /// Passes on a line a cell printed: display messages, panics, or text.
    fn printed(&self, printed: Printed) {
        let Some(parent) = self.running.lock().unwrap().clone() else {
            return;
        };
        match printed {
            Printed::Stdout(line) => {
                if let Some(panic) = line.strip_prefix(PANIC_MARKER) {
                    *self.panic.lock().unwrap() = Some(panic.to_owned());
                } else if let Some(display) = line.strip_prefix(rask::notebook::DISPLAY_MARKER) {
                    self.display(display, &parent);
                } else {
                    self.publish(StreamContent::stdout(&format!("{line}\n")), &parent);
                }
            }
            Printed::Stderr(line) => {
                self.publish(StreamContent::stderr(&format!("{line}\n")), &parent)
            }
        }
    }

    /// A display line from `rask::notebook`.
    fn display(&self, json: &str, parent: &JupyterMessage) {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(json) else {
            self.publish(StreamContent::stdout(&format!("{json}\n")), parent);
            return;
        };
        if message["clear"].as_bool() == Some(true) {
            let wait = message["wait"].as_bool().unwrap_or(false);
            self.publish(ClearOutput { wait }, parent);
            return;
        }
        let data = media(&message["data"]);
        let display_id = message["display_id"].as_str().map(str::to_owned);
        if message["update"].as_bool() == Some(true) {
            self.publish(
                UpdateDisplayData {
                    data,
                    metadata: Default::default(),
                    transient: Transient { display_id },
                },
                parent,
            );
        } else {
            let mut shown = DisplayData::new(data);
            shown.transient = Some(Transient { display_id });
            self.publish(shown, parent);
        }
    }
}

/// A MIME bundle from a JSON object of MIME type → content.
fn media(data: &serde_json::Value) -> Media {
    serde_json::from_value(data.clone()).unwrap_or_default()
}

/// Runs the kernel for the connection file until a shutdown request.
pub fn run(connection_file: &Path, cells_root: &Path) -> Result<()> {
    let text = std::fs::read_to_string(connection_file)
        .with_context(|| format!("reading the connection file {}", connection_file.display()))?;
    let info: ConnectionInfo = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a Jupyter connection file",
            connection_file.display()
        )
    })?;
    let slot = crate::cells_cache::take_slot(cells_root)
        .with_context(|| format!("taking a cell cache slot under {}", cells_root.display()))?;
    let clusters = Clusters::start(&std::env::temp_dir().join("rask-kernel"))
        .context("opening the kernel's control socket")?;
    let control = clusters.socket().to_path_buf();
    let cells = clusters.cells_link();

    let (iopub_tx, iopub_rx) = mpsc::unbounded_channel();
    let (evaluator_tx, evaluator_rx) = watch::channel(None);
    let shared = Arc::new(Shared {
        iopub: iopub_tx,
        running: Mutex::new(None),
        panic: Mutex::new(None),
        evaluator: evaluator_rx,
        cells,
        interrupts: Interrupts::default(),
    });
    // The evaluator compiles the prelude meanwhile; requests that need it wait.
    let printer = shared.clone();
    let rask = crate::cells_lib::CellsLib::find(cells_root).map_err(|e| e.to_string());
    let ops = Arc::new(Mutex::new(CellOps::new(rask.clone().ok())));
    std::thread::spawn(move || {
        let started = rask.and_then(|rask| {
            Evaluator::start(slot, &rask, Some(control), move |p| printer.printed(p))
        });
        let _ = evaluator_tx.send(Some(started));
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let clusters = Arc::new(Mutex::new(clusters));
    let result = runtime.block_on(serve(info, shared, clusters.clone(), ops, iopub_rx));
    // Processes the kernel started stop with it.
    let _ = clusters.lock().map(|mut c| c.down());
    result
}

async fn serve(
    info: ConnectionInfo,
    shared: Arc<Shared>,
    clusters: Arc<Mutex<Clusters>>,
    ops: Arc<Mutex<CellOps>>,
    mut iopub_rx: mpsc::UnboundedReceiver<JupyterMessage>,
) -> Result<()> {
    let session = uuid_like();
    let mut heartbeat = create_kernel_heartbeat_connection(&info).await?;
    let (mut shell_tx, mut shell_rx) = create_kernel_shell_connection(&info, &session)
        .await?
        .split();
    let mut control = create_kernel_control_connection(&info, &session).await?;
    let _stdin = create_kernel_stdin_connection(&info, &session).await?;
    let mut iopub = create_kernel_iopub_xpub_connection(&info, &session).await?;

    tokio::spawn(async move { while heartbeat.single_heartbeat().await.is_ok() {} });
    tokio::spawn(async move {
        loop {
            tokio::select! {
                message = iopub_rx.recv() => match message {
                    Some(message) => { let _ = iopub.send(message).await; }
                    None => return,
                },
                event = iopub.recv_subscription() => {
                    if let Ok(SubscriptionEvent::Subscribe(topic)) = event {
                        let welcome: JupyterMessage = jupyter_protocol::IoPubWelcome::new(topic).into();
                        let _ = iopub.send(welcome).await;
                    }
                }
            }
        }
    });

    let (stop_tx, mut stop_rx) = watch::channel(false);
    let control_shared = shared.clone();
    tokio::spawn(async move {
        loop {
            let request = match requests::read(&mut control).await {
                Ok(request) => request,
                Err(requests::ReadError::Refused(e)) => {
                    tracing::warn!("a control message was refused: {e}");
                    continue;
                }
                Err(requests::ReadError::Closed(_)) => return,
            };
            let reply = match &request.content {
                JupyterMessageContent::KernelInfoRequest(_) => kernel_info().as_child_of(&request),
                JupyterMessageContent::ShutdownRequest(r) => {
                    let reply = ShutdownReply {
                        restart: r.restart,
                        status: ReplyStatus::Ok,
                        error: None,
                    }
                    .as_child_of(&request);
                    let _ = control.send(reply).await;
                    let _ = stop_tx.send(true);
                    return;
                }
                JupyterMessageContent::InterruptRequest(_) => {
                    interrupt(&control_shared);
                    InterruptReply {
                        status: ReplyStatus::Ok,
                        error: None,
                    }
                    .as_child_of(&request)
                }
                _ => continue,
            };
            let _ = control.send(reply).await;
        }
    });

    let mut kernel = Kernel {
        shared,
        clusters,
        ops,
        count: 0,
        history: History::default(),
    };
    loop {
        tokio::select! {
            request = requests::read(&mut shell_rx) => {
                let request = match request {
                    Ok(request) => request,
                    Err(requests::ReadError::Refused(e)) => {
                        tracing::warn!("a shell message was refused: {e}");
                        continue;
                    }
                    Err(requests::ReadError::Closed(e)) => {
                        tracing::warn!("the shell socket closed: {e}");
                        break;
                    }
                };
                kernel.shared.publish(Status::busy(), &request);
                if let Some(reply) = kernel.answer(&request).await {
                    let _ = shell_tx.send(reply).await;
                }
                kernel.shared.publish(Status::idle(), &request);
            }
            _ = stop_rx.changed() => break,
        }
    }
    // Let the last IOPub messages out before the process ends.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    Ok(())
}

/// A random session id.
fn uuid_like() -> String {
    format!("{:032x}", rand_u128())
}

fn rand_u128() -> u128 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    nanos ^ ((std::process::id() as u128) << 64)
}

/// Interrupts the running cell (see [`crate::interrupt`]), on a thread of
/// its own: the reply goes out at once.
fn interrupt(shared: &Arc<Shared>) {
    let Some(cell) = shared
        .running
        .lock()
        .unwrap()
        .as_ref()
        .map(|r| r.header.msg_id.clone())
    else {
        return;
    };
    let evaluator = match shared.evaluator.borrow().as_ref() {
        Some(Ok(evaluator)) => Some(evaluator.clone()),
        _ => None,
    };
    let shared = shared.clone();
    std::thread::spawn(move || {
        let still_running = || {
            shared
                .running
                .lock()
                .unwrap()
                .as_ref()
                .map(|r| r.header.msg_id.as_str())
                == Some(cell.as_str())
        };
        shared
            .interrupts
            .interrupt(&cell, &shared.cells, evaluator.as_ref(), still_running);
    });
}

fn kernel_info() -> KernelInfoReply {
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: "5.3".into(),
        implementation: "rask".into(),
        implementation_version: env!("CARGO_PKG_VERSION").into(),
        language_info: LanguageInfo {
            name: "rust".into(),
            version: rustc_version(),
            mimetype: Some("text/rust".into()),
            file_extension: Some(".rs".into()),
            pygments_lexer: Some("rust".into()),
            codemirror_mode: Some(CodeMirrorMode::Simple("rust".into())),
            nbconvert_exporter: None,
        },
        banner: "rask: Rust cells against a live cluster (evcxr inside). Magics: %cluster, %status, %scale, %adapt, %dashboard, %time".into(),
        help_links: vec![],
        debugger: false,
        error: None,
    }
}

fn rustc_version() -> String {
    std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_default()
}

/// The shell socket's state.
struct Kernel {
    shared: Arc<Shared>,
    clusters: Arc<Mutex<Clusters>>,
    /// Ops the cells define, and their plugin for clusters of processes.
    ops: Arc<Mutex<CellOps>>,
    count: usize,
    history: History,
}

impl Kernel {
    /// Waits for the evaluator (the first cell waits for the prelude).
    async fn evaluator(&self) -> Result<Evaluator, String> {
        let mut rx = self.shared.evaluator.clone();
        let ready = rx.wait_for(|e| e.is_some()).await;
        match ready.as_deref() {
            Ok(Some(Ok(e))) => Ok(e.clone()),
            Ok(Some(Err(why))) => Err(why.clone()),
            _ => Err("the evaluator did not start".into()),
        }
    }

    async fn answer(&mut self, request: &JupyterMessage) -> Option<JupyterMessage> {
        Some(match &request.content {
            JupyterMessageContent::KernelInfoRequest(_) => {
                // Clients take this reply as "the kernel is ready" (jupyter_client's
                // wait_for_ready): it waits for the cells' process and its prelude.
                let _ = self.evaluator().await;
                kernel_info().as_child_of(request)
            }
            JupyterMessageContent::ExecuteRequest(r) => {
                let (code, silent, store) = (r.code.clone(), r.silent, r.store_history);
                self.execute(request, &code, silent, store).await
            }
            JupyterMessageContent::IsCompleteRequest(r) => {
                let (status, indent) = match completeness::classify(&r.code) {
                    Completeness::Complete => (IsCompleteReplyStatus::Complete, String::new()),
                    Completeness::Incomplete { indent } => {
                        (IsCompleteReplyStatus::Incomplete, indent)
                    }
                    Completeness::Invalid => (IsCompleteReplyStatus::Invalid, String::new()),
                };
                IsCompleteReply::new(status, indent).as_child_of(request)
            }
            JupyterMessageContent::HistoryRequest(r) => HistoryReply {
                history: self.history.answer(r),
                status: ReplyStatus::Ok,
                error: None,
            }
            .as_child_of(request),
            JupyterMessageContent::CommInfoRequest(_) => {
                CommInfoReply::default().as_child_of(request)
            }
            JupyterMessageContent::CompleteRequest(r) => {
                let position = byte_offset(&r.code, r.cursor_pos);
                let answer = match self.evaluator().await {
                    Ok(e) => {
                        let code = r.code.clone();
                        tokio::task::spawn_blocking(move || e.complete(&code, position))
                            .await
                            .ok()
                            .flatten()
                    }
                    Err(_) => None,
                };
                let (matches, start, end) = answer.unwrap_or((vec![], position, position));
                CompleteReply {
                    matches,
                    cursor_start: char_offset(&r.code, start),
                    cursor_end: char_offset(&r.code, end),
                    metadata: Default::default(),
                    status: ReplyStatus::Ok,
                    error: None,
                }
                .as_child_of(request)
            }
            JupyterMessageContent::InspectRequest(r) => {
                let position = byte_offset(&r.code, r.cursor_pos);
                let found = self.inspect(&r.code, position).await;
                InspectReply {
                    found: found.is_some(),
                    data: found
                        .map(|text| Media::new(vec![jupyter_protocol::MediaType::Plain(text)]))
                        .unwrap_or_default(),
                    metadata: Default::default(),
                    status: ReplyStatus::Ok,
                    error: None,
                }
                .as_child_of(request)
            }
            JupyterMessageContent::ShutdownRequest(r) => ShutdownReply {
                restart: r.restart,
                status: ReplyStatus::Ok,
                error: None,
            }
            .as_child_of(request),
            _ => return None,
        })
    }

    async fn execute(
        &mut self,
        request: &JupyterMessage,
        code: &str,
        silent: bool,
        store_history: bool,
    ) -> JupyterMessage {
        if !silent && store_history {
            self.count += 1;
        }
        let count = ExecutionCount::new(self.count);
        if !silent {
            self.shared.publish(
                ExecuteInput {
                    code: code.to_owned(),
                    execution_count: count,
                },
                request,
            );
        }
        self.shared.interrupts.cell_begins();
        *self.shared.running.lock().unwrap() = Some(request.clone());
        *self.shared.panic.lock().unwrap() = None;
        let started = Instant::now();
        let mut payload = Vec::new();
        let (mut outcome, timed) = if let Some(name) = help_request(code) {
            match self.inspect(name, name.len()).await {
                Some(text) => {
                    payload.push(Payload::Page {
                        data: Media::new(vec![jupyter_protocol::MediaType::Plain(text)]),
                        start: 0,
                    });
                    (Ok(HashMap::new()), false)
                }
                None => {
                    let text = format!("{name}: nothing is known about it here");
                    (
                        Err(CellError {
                            name: "NameError".into(),
                            value: text.clone(),
                            traceback: vec![text],
                        }),
                        false,
                    )
                }
            }
        } else if magics::is_magic(code) {
            let cell = magics::parse(code);
            match cell.magic {
                Ok(magics::Magic::Time) => (self.run_rust(&cell.rest).await, true),
                Ok(magic) => (self.run_magic(magic).await, false),
                Err(usage) => (
                    Err(CellError {
                        name: "UsageError".into(),
                        value: usage.lines().next().unwrap_or_default().to_owned(),
                        traceback: vec![usage],
                    }),
                    false,
                ),
            }
        } else {
            (self.run_rust(code).await, false)
        };
        if let Some(panic) = self.shared.panic.lock().unwrap().take() {
            outcome = Err(CellError {
                name: "Panic".into(),
                value: panic.clone(),
                traceback: vec![
                    format!("the cell panicked: {panic}"),
                    "Variables the cell defined or took are lost; the others, the cluster and its data are kept.".into(),
                ],
            });
        }
        let outcome = self
            .shared
            .interrupts
            .outcome(&request.header.msg_id, outcome);
        if timed {
            let text = format!("Wall time: {:.3?}\n", started.elapsed());
            self.shared.publish(StreamContent::stdout(&text), request);
        }
        *self.shared.running.lock().unwrap() = None;
        let mut plain = String::new();
        let reply = match outcome {
            Ok(data) => {
                if !data.is_empty() && !silent {
                    plain = data.get("text/plain").cloned().unwrap_or_default();
                    let mut result = ExecuteResult::new(count, media(&serde_json::json!(data)));
                    result.transient = Some(Transient { display_id: None });
                    self.shared.publish(result, request);
                }
                ExecuteReply {
                    status: ReplyStatus::Ok,
                    execution_count: count,
                    payload,
                    user_expressions: Some(HashMap::new()),
                    error: None,
                }
            }
            Err(error) => {
                self.shared.publish(
                    ErrorOutput {
                        ename: error.name.clone(),
                        evalue: error.value.clone(),
                        traceback: error.traceback.clone(),
                    },
                    request,
                );
                ExecuteReply {
                    status: ReplyStatus::Error,
                    execution_count: count,
                    payload: Vec::new(),
                    user_expressions: Some(HashMap::new()),
                    error: Some(Box::new(ReplyError {
                        ename: error.name,
                        evalue: error.value,
                        traceback: error.traceback,
                    })),
                }
            }
        };
        if store_history && !silent {
            self.history.record(self.count, code, &plain);
        }
        reply.as_child_of(request)
    }

    /// What rust-analyzer knows of the item at byte `position` of `code`.
    async fn inspect(&self, code: &str, position: usize) -> Option<String> {
        let evaluator = self.evaluator().await.ok()?;
        let code = code.to_owned();
        // Frontends send the cursor just past a name; hover wants a position on it.
        tokio::task::spawn_blocking(move || {
            evaluator
                .inspect(&code, position)
                .or_else(|| evaluator.inspect(&code, position.checked_sub(1)?))
        })
        .await
        .ok()
        .flatten()
    }

    async fn run_rust(&self, code: &str) -> Result<HashMap<String, String>, CellError> {
        if code.trim().is_empty() {
            return Ok(HashMap::new());
        }
        let evaluator = self.evaluator().await.map_err(|why| CellError {
            name: "KernelError".into(),
            value: why.clone(),
            traceback: vec![why],
        })?;
        let rewritten = crate::cell_ops::rewrite(code);
        let run = crate::cell_result::show_final_expression(&rewritten.code).into_owned();
        // A plugin of the cell's ops builds meanwhile, for a cluster of processes.
        let plan = {
            let clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
            self.ops
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .plan_ahead(&rewritten, &clusters)
        };
        let early = plan.map(|plan| tokio::task::spawn_blocking(move || plan.build()));
        let cells = self.shared.cells.clone();
        let result = tokio::task::spawn_blocking(move || {
            cells.cell_begins();
            evaluator.execute(&run)
        })
        .await
        .unwrap_or_else(|e| {
            Err(CellError {
                name: "KernelError".into(),
                value: e.to_string(),
                traceback: vec![e.to_string()],
            })
        });
        let early = match early {
            Some(build) => build.await.ok(),
            None => None,
        };
        if result.is_ok() {
            self.ops
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(&rewritten);
            if !rewritten.ops.is_empty() {
                self.sync_ops(early).await;
            }
        }
        result
    }

    /// Sends the cells' ops to a cluster of processes that lacks them, and
    /// says so (or why not) in the cell's output.
    async fn sync_ops(&self, early: Option<EarlyPlugin>) {
        let (ops, clusters) = (self.ops.clone(), self.clusters.clone());
        let synced = tokio::task::spawn_blocking(move || {
            let clusters = clusters.lock().unwrap_or_else(|e| e.into_inner());
            ops.lock()
                .unwrap_or_else(|e| e.into_inner())
                .sync(&clusters, early)
        })
        .await
        .ok()
        .flatten();
        match synced {
            Some(Ok(line)) => self.shared.printed(Printed::Stdout(line)),
            Some(Err(why)) => self.shared.printed(Printed::Stderr(why)),
            None => {}
        }
    }

    async fn run_magic(&self, magic: magics::Magic) -> Result<HashMap<String, String>, CellError> {
        // The cells' process must be up (its prelude connects `client` to the kernel).
        self.evaluator().await.map_err(|why| CellError {
            name: "KernelError".into(),
            value: why.clone(),
            traceback: vec![why],
        })?;
        let clusters = self.clusters.clone();
        let answer = tokio::task::spawn_blocking(move || {
            clusters
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .handle(magic)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
        if answer.is_ok() {
            // A cluster of processes attached after cells defined ops gets them.
            self.sync_ops(None).await;
        }
        answer.map_err(|why| CellError {
            name: "ClusterError".into(),
            value: why.lines().next().unwrap_or_default().to_owned(),
            traceback: vec![why],
        })
    }
}

/// `Vec?` or `std::vec::Vec?`: IPython's help request, answered in the pager.
fn help_request(code: &str) -> Option<&str> {
    let name = code.trim().strip_suffix('?')?;
    let is_path = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == ':' || c == '!');
    is_path.then_some(name)
}

/// Jupyter counts cursor positions in Unicode code points; Rust in bytes.
fn byte_offset(code: &str, chars: usize) -> usize {
    code.char_indices()
        .nth(chars)
        .map_or(code.len(), |(i, _)| i)
}

fn char_offset(code: &str, bytes: usize) -> usize {
    code.get(..bytes.min(code.len()))
        .map_or(0, |s| s.chars().count())
}
