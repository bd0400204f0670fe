//! The scheduler as a TCP server: binds its ports, starts the scheduler loop
//! and the connection `acceptor`, serves the HTTP endpoints
//! on the dashboard port, and writes the scheduler file.

use super::acceptor::Acceptor;
use super::channels::ToScheduler;
use super::event_loop::run_scheduler;
use crate::comm::address::Address;
use crate::comm::connection::CommError;
use crate::comm::security::Security;
use crate::scheduler::SchedulerConfig;
use crossbeam_channel::Sender;
use std::net::SocketAddr;
use std::path::PathBuf;
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
    /// TLS and token (the HTTP port uses both too).
    pub security: Security,
    /// Whether `/metrics` needs the token as well (the API always does).
    pub protect_metrics: bool,
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
            protect_metrics: false,
            config: SchedulerConfig::default(),
        }
    }
}

/// A running scheduler server.
pub struct SchedulerServer {
    address: Address,
    dashboard: Option<SocketAddr>,
    dashboard_url: Option<String>,
    inbox: Sender<ToScheduler>,
    runtime: Option<tokio::runtime::Runtime>,
    scheduler_thread: Option<JoinHandle<()>>,
    scheduler_file: Option<PathBuf>,
    /// The task accepting connections (stopped first on shutdown).
    accepting: Option<tokio::task::JoinHandle<()>>,
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
                let auth = crate::server::http::HttpAuth {
                    token: options.security.token.clone(),
                    protect_metrics: options.protect_metrics,
                };
                let app = crate::server::http::router(inbox.clone(), auth);
                match options.security.acceptor()? {
                    Some(acceptor) => {
                        let _guard = runtime.enter();
                        let tls = crate::comm::tls_listener::TlsListener::new(http, acceptor)
                            .map_err(CommError::io("reading the bound address"))?;
                        runtime.spawn(async move {
                            if let Err(error) = axum::serve(tls, app).await {
                                tracing::error!(%error, "the HTTP server stopped");
                            }
                        });
                    }
                    None => {
                        runtime.spawn(async move {
                            if let Err(error) = axum::serve(http, app).await {
                                tracing::error!(%error, "the HTTP server stopped");
                            }
                        });
                    }
                }
                Some(at)
            }
            None => None,
        };
        let shared = Arc::new(Acceptor::new(inbox.clone(), options.security.clone()));
        let accepting = runtime.spawn(shared.serve(listener));
        tracing::info!(%address, "scheduler listening");
        let scheme = if options.security.has_tls() {
            "https"
        } else {
            "http"
        };
        let dashboard_url = dashboard.map(|at| format!("{scheme}://{at}"));
        if let Some(url) = &dashboard_url {
            tracing::info!("HTTP (metrics, API) at {url}");
        }
        if let Some(path) = &options.scheduler_file {
            write_scheduler_file(
                path,
                &address,
                dashboard_url.as_deref(),
                options.security.token.as_deref(),
            )?;
        }
        Ok(SchedulerServer {
            address,
            dashboard,
            dashboard_url,
            inbox,
            runtime: Some(runtime),
            scheduler_thread: Some(scheduler_thread),
            scheduler_file: options.scheduler_file,
            accepting: Some(accepting),
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

    /// The HTTP endpoints' URL (`https://` when the cluster uses TLS), if enabled.
    pub fn dashboard_url(&self) -> Option<&str> {
        self.dashboard_url.as_deref()
    }

    /// A channel into the scheduler loop.
    pub fn inbox(&self) -> Sender<ToScheduler> {
        self.inbox.clone()
    }

    /// Stops accepting, removes the scheduler file, stops the loop.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // First no new connections and no file to find: workers that lose
        // the scheduler now retry for their death timeout instead of joining
        // a scheduler that is going away.
        if let (Some(accepting), Some(runtime)) = (self.accepting.take(), &self.runtime) {
            accepting.abort();
            // Wait until the listener is closed, unless dropped inside
            // another runtime (where blocking is not allowed).
            if tokio::runtime::Handle::try_current().is_err() {
                let _ = runtime.block_on(accepting);
            }
        }
        if let Some(path) = self.scheduler_file.take() {
            let _ = std::fs::remove_file(path);
        }
        let _ = self.inbox.send(ToScheduler::Shutdown);
        if let Some(thread) = self.scheduler_thread.take() {
            let _ = thread.join();
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for SchedulerServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes the scheduler file atomically: JSON with `"address"`, and more.
/// Writes a scheduler file (JSON with `"address"`, and `"token"` when given,
/// then readable by its owner only), replacing any old one atomically.
pub fn write_scheduler_file(
    path: &std::path::Path,
    address: &Address,
    dashboard: Option<&str>,
    token: Option<&str>,
) -> Result<(), CommError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut json = serde_json::json!({
        "type": "Scheduler",
        "address": address.to_string(),
        "dashboard_address": dashboard,
        "pid": std::process::id(),
        "protocol_version": crate::comm::frame::PROTOCOL_VERSION,
    });
    if let Some(token) = token {
        // As Jupyter's connection files carry their key: whoever may read the
        // file may connect, so only its owner may read it.
        json["token"] = token.into();
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| file.write_all(&serde_json::to_vec_pretty(&json).unwrap_or_default()))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(CommError::io(format!(
            "writing the scheduler file {}",
            path.display()
        )))
}
