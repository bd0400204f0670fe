//! Data peer to peer: where each worker serves its data, and pooled connections
//! to fetch values from workers (and to put scattered values on them).

use super::address::Address;
use super::connection::{connect_as, CommError, Connection, Outgoing};
use super::protocol::{Message, Role, MAX_VALUES_PER_MESSAGE};
use super::security::Security;
use crate::graph::Key;
use crate::scheduler::WorkerId;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Worker addresses and open connections to them.
pub struct PeerPool {
    security: Security,
    addresses: Mutex<HashMap<WorkerId, Address>>,
    connections: Mutex<HashMap<Address, Vec<Connection>>>,
    /// Bytes received through this pool.
    pub bytes_received: AtomicU64,
}

impl PeerPool {
    /// An empty pool using `security` for its connections.
    pub fn new(security: Security) -> Arc<Self> {
        Arc::new(PeerPool {
            security,
            addresses: Mutex::default(),
            connections: Mutex::default(),
            bytes_received: AtomicU64::new(0),
        })
    }

    /// Applies the scheduler's news about worker addresses.
    pub fn update(&self, added: Vec<(WorkerId, String)>, removed: Vec<WorkerId>) {
        let mut addresses = self.addresses.lock().unwrap_or_else(|p| p.into_inner());
        for (id, text) in added {
            match text.parse::<Address>() {
                Ok(address) => {
                    addresses.insert(id, address);
                }
                Err(error) => tracing::warn!(%id, %error, "ignoring a worker address"),
            }
        }
        for id in removed {
            if let Some(address) = addresses.remove(&id) {
                self.connections
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&address);
            }
        }
    }

    /// A worker's data address, if known.
    pub fn address(&self, worker: WorkerId) -> Option<Address> {
        self.addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&worker)
            .cloned()
    }

    /// Every known worker.
    pub fn workers(&self) -> Vec<WorkerId> {
        let mut ids: Vec<WorkerId> = self
            .addresses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect();
        ids.sort();
        ids
    }

    /// Fetches values from the first of `holders` that answers; returns the keys
    /// it had with their bytes (as sent, to be kept as they are). The holder
    /// may answer in several `Data` messages.
    pub async fn get(&self, holders: &[WorkerId], keys: &[Key]) -> Vec<(Key, Bytes)> {
        for &holder in holders {
            let Some(address) = self.address(holder) else {
                continue;
            };
            match self.get_from(&address, keys).await {
                Ok(got) if !got.is_empty() => {
                    let bytes: u64 = got.iter().map(|(_, b)| b.len() as u64).sum();
                    self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
                    return got;
                }
                Ok(_) => {}
                Err(error) => tracing::debug!(%address, %error, "fetch failed"),
            }
        }
        Vec::new()
    }

    /// One `GetData` on a pooled connection, and every `Data` that answers it.
    async fn get_from(
        &self,
        address: &Address,
        keys: &[Key],
    ) -> Result<Vec<(Key, Bytes)>, CommError> {
        let mut connection = self.checkout(address).await?;
        let request = Message::GetData {
            keys: keys.to_vec(),
        };
        connection.writer.send(request.into()).await?;
        let mut got = Vec::new();
        loop {
            match connection.reader.expect().await? {
                (Message::Data { keys, more }, blobs) if keys.len() == blobs.len() => {
                    got.extend(keys.into_iter().zip(blobs));
                    if !more {
                        break;
                    }
                }
                (other, _) => {
                    return Err(CommError::Unexpected {
                        got: other.name(),
                        expected: "Data with one blob per key",
                    })
                }
            }
        }
        self.checkin(address, connection);
        Ok(got)
    }

    /// Stores values on `worker` (scatter); returns their sizes there.
    pub async fn put(
        &self,
        worker: WorkerId,
        keys: Vec<Key>,
        blobs: Vec<Bytes>,
    ) -> Result<Vec<u64>, CommError> {
        let address = self
            .address(worker)
            .ok_or_else(|| CommError::Config(format!("no address known for {worker}")))?;
        // Many values go in several PutData messages.
        let mut sizes = Vec::with_capacity(keys.len());
        let mut blobs = blobs.into_iter();
        for keys in keys.chunks(MAX_VALUES_PER_MESSAGE) {
            let outgoing = Outgoing {
                message: Message::PutData {
                    keys: keys.to_vec(),
                },
                blobs: blobs.by_ref().take(keys.len()).collect(),
            };
            match self.exchange(&address, outgoing).await? {
                (Message::Stored { nbytes }, _) if nbytes.len() == keys.len() => {
                    sizes.extend(nbytes)
                }
                (other, _) => {
                    return Err(CommError::Unexpected {
                        got: other.name(),
                        expected: "Stored with a size per value",
                    })
                }
            }
        }
        Ok(sizes)
    }

    /// Pushes shards of shuffle `shuffle` to `worker`, as `(input, part,
    /// bytes)`; returns once the worker has kept them.
    pub async fn push_shards(
        &self,
        worker: WorkerId,
        shuffle: &str,
        shards: Vec<(u32, u32, Bytes)>,
    ) -> Result<(), CommError> {
        let address = self
            .address(worker)
            .ok_or_else(|| CommError::Config(format!("no address known for {worker}")))?;
        let mut rest = shards.into_iter().peekable();
        while rest.peek().is_some() {
            let chunk: Vec<(u32, u32, Bytes)> =
                rest.by_ref().take(MAX_VALUES_PER_MESSAGE).collect();
            let (index, blobs) = chunk.into_iter().map(|(i, p, b)| ((i, p), b)).unzip();
            let outgoing = Outgoing {
                message: Message::PushShards {
                    shuffle: shuffle.to_string(),
                    shards: index,
                },
                blobs,
            };
            match self.exchange(&address, outgoing).await? {
                (Message::ShardsStored, _) => {}
                (Message::ShuffleFailed { reason }, _) => return Err(CommError::Config(reason)),
                (other, _) => {
                    return Err(CommError::Unexpected {
                        got: other.name(),
                        expected: "ShardsStored",
                    })
                }
            }
        }
        Ok(())
    }

    /// Takes every shard of output partition `part` of `shuffle` from
    /// `worker`, by input partition.
    pub async fn take_shards(
        &self,
        worker: WorkerId,
        shuffle: &str,
        part: u32,
    ) -> Result<Vec<(u32, Bytes)>, CommError> {
        let address = self
            .address(worker)
            .ok_or_else(|| CommError::Config(format!("no address known for {worker}")))?;
        let mut connection = self.checkout(&address).await?;
        let request = Message::TakeShards {
            shuffle: shuffle.to_string(),
            part,
        };
        connection.writer.send(request.into()).await?;
        let mut got = Vec::new();
        loop {
            match connection.reader.expect().await? {
                (Message::Shards { inputs, more }, blobs) if inputs.len() == blobs.len() => {
                    got.extend(inputs.into_iter().zip(blobs));
                    if !more {
                        break;
                    }
                }
                (Message::ShuffleFailed { reason }, _) => return Err(CommError::Config(reason)),
                (other, _) => {
                    return Err(CommError::Unexpected {
                        got: other.name(),
                        expected: "Shards with one blob per input",
                    })
                }
            }
        }
        let bytes: u64 = got.iter().map(|(_, b)| b.len() as u64).sum();
        self.bytes_received.fetch_add(bytes, Ordering::Relaxed);
        self.checkin(&address, connection);
        Ok(got)
    }

    /// Sends one request on a pooled connection and reads the answer.
    async fn exchange(
        &self,
        address: &Address,
        request: Outgoing,
    ) -> Result<(Message, Vec<Bytes>), CommError> {
        let mut connection = self.checkout(address).await?;
        connection.writer.send(request).await?;
        let answer = connection.reader.expect().await?;
        self.checkin(address, connection);
        Ok(answer)
    }

    /// An idle pooled connection to `address`, or a new one.
    async fn checkout(&self, address: &Address) -> Result<Connection, CommError> {
        let pooled = self
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(address)
            .and_then(|idle| idle.pop());
        match pooled {
            Some(connection) => Ok(connection),
            None => self.open(address).await,
        }
    }

    /// Returns a connection whose exchange completed to the pool.
    fn checkin(&self, address: &Address, connection: Connection) {
        self.connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(address.clone())
            .or_default()
            .push(connection);
    }

    async fn open(&self, address: &Address) -> Result<Connection, CommError> {
        connect_as(address, &self.security, Role::Peer)
            .await
            .map(|(_, connection)| connection)
    }
}
