//! A worker's data port: serves `GetData` to peers and clients, and stores
//! what clients `PutData` (scatter). Peers connect with a `Hello` of role
//! `Peer`, and the token when the cluster has one.

use super::runtime::WorkerCore;
use super::shuffle_buffers::Shard;
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
            Message::PushShards { shuffle, shards } if shards.len() == blobs.len() => {
                let core = core.clone();
                let shards = shards
                    .into_iter()
                    .zip(blobs)
                    .map(|((input, part), bytes)| Shard { input, part, bytes })
                    .collect();
                // Spilling writes files: off the I/O threads.
                let kept =
                    tokio::task::spawn_blocking(move || core.shuffles().receive(&shuffle, shards))
                        .await;
                let answer = match kept {
                    Ok(Ok(())) => Message::ShardsStored,
                    Ok(Err(error)) => Message::ShuffleFailed {
                        reason: error.to_string(),
                    },
                    Err(error) => Message::ShuffleFailed {
                        reason: format!("keeping shards: {error}"),
                    },
                };
                writer.send(answer.into()).await?;
            }
            Message::TakeShards { shuffle, part } => {
                send_shards(&mut writer, &core, shuffle, part, &sent).await?;
            }
            other => {
                return Err(CommError::Unexpected {
                    got: other.name(),
                    expected: "GetData, PutData, PushShards or TakeShards",
                })
            }
        }
    }
    Ok(())
}

/// Answers a `TakeShards`: the partition's shards, in `Shards` messages of
/// about [`DATA_CHUNK_BYTES`] each, or why they cannot be had.
async fn send_shards(
    writer: &mut PacketWriter,
    core: &Arc<WorkerCore>,
    shuffle: String,
    part: u32,
    sent: &AtomicU64,
) -> Result<(), CommError> {
    let core = core.clone();
    let taken = tokio::task::spawn_blocking(move || core.shuffles().take(&shuffle, part)).await;
    let shards = match taken {
        Ok(Ok(shards)) => shards,
        Ok(Err(error)) => {
            let reason = error.to_string();
            return writer.send(Message::ShuffleFailed { reason }.into()).await;
        }
        Err(error) => {
            let reason = format!("taking shards: {error}");
            return writer.send(Message::ShuffleFailed { reason }.into()).await;
        }
    };
    let mut rest = shards.into_iter().peekable();
    loop {
        let mut inputs = Vec::new();
        let mut blobs = Vec::new();
        let mut bytes = 0;
        while let Some((input, blob)) =
            rest.next_if(|_| bytes < DATA_CHUNK_BYTES && inputs.len() < MAX_VALUES_PER_MESSAGE)
        {
            bytes += blob.len();
            inputs.push(input);
            blobs.push(blob);
        }
        sent.fetch_add(bytes as u64, Ordering::Relaxed);
        let more = rest.peek().is_some();
        writer
            .send(Outgoing {
                message: Message::Shards { inputs, more },
                blobs,
            })
            .await?;
        if !more {
            return Ok(());
        }
    }
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
