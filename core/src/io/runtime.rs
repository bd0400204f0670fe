//! The runtime that drives object-store requests for synchronous callers
//! (task kernels on worker threads, and client code building graphs).

use std::future::Future;
use std::sync::OnceLock;

fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("rask-io")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the object-store I/O runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Makes ring the process's TLS crypto provider, once. reqwest (under the
/// object-store clients) is built without a provider of its own and uses the
/// process default; ring is also what rask's own TLS uses.
pub(crate) fn install_tls_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Runs `future` to completion on the I/O runtime and waits for it. Safe to
/// call from any thread, including one inside another tokio runtime.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output, String>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (sender, receiver) = std::sync::mpsc::sync_channel(1);
    runtime()?.spawn(async move {
        let _ = sender.send(future.await);
    });
    receiver
        .recv()
        .map_err(|_| "an object-store request was dropped before it finished".to_string())
}
