//! A worker's data port: serves `GetData` to peers and clients, and stores
//! what clients `PutData` (scatter). Peers connect with a `Hello` of role
//! `Peer`, and the token when the cluster has one.

use super::runtime::WorkerCore;
use super::state::WorkerEvent;
use crate::comm::connection::{accept, CommError, Connection, HANDSHAKE_TIMEOUT};
use crate::comm::protocol::{Hello, Message};
use crate::comm::security::Security;
use crate::value::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Serves `GetData` and `PutData` to peers and clients.
pub(super) async fn serve_data(
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
