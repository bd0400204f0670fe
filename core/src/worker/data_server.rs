//! A worker's data port: serves `GetData` to peers and clients, and stores
//! what clients `PutData` (scatter). Peers connect with a `Hello` of role
//! `Peer`, and the token when the cluster has one.

use super::runtime::WorkerCore;
use super::state::WorkerEvent;
use super::store::DataStore;
use crate::comm::admission::{Admission, MAX_HANDSHAKES};
use crate::comm::connection::{
    accept, CommError, Connection, Outgoing, PacketWriter, HANDSHAKE_TIMEOUT,
};
use crate::comm::protocol::{Hello, Message, MAX_VALUES_PER_MESSAGE};
use crate::comm::security::Security;
use crate::graph::Key;
use crate::value::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// Serves `GetData` and `PutData` to peers and clients.
pub(super) async fn serve_data(
    listener: tokio::net::TcpListener,
    security: Security,
    core: Arc<WorkerCore>,
    sent: Arc<AtomicU64>,
) {
    let admission = Admission::new(MAX_HANDSHAKES, "worker data port");
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // Beyond the cap, the connection closes at once (dropped here).
        let Some(slot) = admission.admit() else {
            continue;
        };
        let security = security.clone();
        let core = core.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            if let Err(error) = data_connection(tcp, slot, &security, core, sent).await {
                tracing::warn!(%peer, %error, "data connection closed");
            }
        });
    }
}

async fn data_connection(
    tcp: tokio::net::TcpStream,
    slot: OwnedSemaphorePermit,
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
    drop(slot);
    reader.handshake_done();
    while let Some((message, blobs)) = reader.message().await? {
        match message {
            Message::GetData { keys } => {
                send_values(&mut writer, core.store(), keys, &sent).await?;
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

/// The most value bytes a holder loads before it sends them: an answer to a
/// large `GetData` goes out in pieces of about this size, each loaded (from
/// memory or disk) only when the one before it is written.
pub const DATA_CHUNK_BYTES: usize = 8 << 20;

/// Answers a `GetData`: values of the keys held here, streamed in `Data`
/// messages of about [`DATA_CHUNK_BYTES`] each.
async fn send_values(
    writer: &mut PacketWriter,
    store: &Arc<DataStore>,
    keys: Vec<Key>,
    sent: &AtomicU64,
) -> Result<(), CommError> {
    let mut rest = keys.into_iter();
    loop {
        let store = store.clone();
        // Reading spilled values touches the disk: off the I/O threads.
        let (chunk, left) = tokio::task::spawn_blocking(move || {
            let mut chunk: Vec<(Key, bytes::Bytes)> = Vec::new();
            let mut bytes = 0;
            for key in rest.by_ref() {
                let Some(value) = store.get(&key) else {
                    continue;
                };
                match value.to_bytes() {
                    Ok(encoded) => {
                        bytes += encoded.len();
                        chunk.push((key, encoded));
                    }
                    Err(error) => tracing::error!(%key, %error, "cannot send a value"),
                }
                if bytes >= DATA_CHUNK_BYTES || chunk.len() >= MAX_VALUES_PER_MESSAGE {
                    break;
                }
            }
            (chunk, rest)
        })
        .await
        .map_err(|e| CommError::Config(format!("reading values: {e}")))?;
        rest = left;
        let more = rest.len() > 0;
        let bytes: u64 = chunk.iter().map(|(_, b)| b.len() as u64).sum();
        sent.fetch_add(bytes, Ordering::Relaxed);
        let (keys, blobs) = chunk.into_iter().unzip();
        writer
            .send(Outgoing {
                message: Message::Data { keys, more },
                blobs,
            })
            .await?;
        if !more {
            return Ok(());
        }
    }
}
