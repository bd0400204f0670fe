//! Connections over TCP (optionally TLS): the preamble, reading packets, and a
//! writer task that batches queued messages into as few writes as possible.

use super::address::Address;
use super::frame::{
    check_preamble, preamble, FrameError, FrameHeader, Limits, Packet, PacketAssembler, HEADER_LEN,
    PREAMBLE_LEN,
};
use super::protocol::Message;
use super::security::Security;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Errors on a connection. The connection is closed; nothing else is affected.
#[derive(Debug, thiserror::Error)]
pub enum CommError {
    /// Socket trouble.
    #[error("{context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        error: std::io::Error,
    },
    /// Bad bytes from the peer.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A message that does not decode.
    #[error("undecodable message from the peer: {0}")]
    Decode(String),
    /// A message this side does not accept here.
    #[error("unexpected {got} message from the peer (expected {expected})")]
    Unexpected {
        /// What arrived.
        got: &'static str,
        /// What was expected.
        expected: &'static str,
    },
    /// The TLS handshake failed (bad or missing certificate, wrong CA).
    #[error("TLS handshake with {peer} failed: {error}")]
    Tls {
        /// The peer.
        peer: String,
        /// The error.
        error: std::io::Error,
    },
    /// The other side refused us.
    #[error("refused by {peer}: {reason}")]
    Refused {
        /// The peer.
        peer: String,
        /// Its reason.
        reason: String,
    },
    /// A bad address or security setting.
    #[error("{0}")]
    Config(String),
    /// The peer closed the connection.
    #[error("connection closed by the peer")]
    Closed,
    /// Nothing arrived in time.
    #[error("timed out after {0:?} {1}")]
    Timeout(Duration, &'static str),
    /// A message this side will not send: it is larger than a frame may be.
    /// Nothing was written; the connection is fine.
    #[error("cannot send a {what}: {size} is more than the limit of {limit}")]
    TooLarge {
        /// Which message, or which part of it.
        what: String,
        /// Its size (bytes or count).
        size: u64,
        /// The limit.
        limit: u64,
    },
}

impl CommError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> CommError {
        let context = context.into();
        move |error| CommError::Io { context, error }
    }
}

/// A byte stream: plain TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// How long a handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle connection is probed after this long without traffic...
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// ...and again at this interval; after the system's count of unanswered
/// probes (9 on Linux, so about a minute in all) it is closed. A peer whose
/// host died or whose network went away is noticed, not kept for ever.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);

/// No delay for small packets, and keepalive probes on idle connections.
fn tune(tcp: &TcpStream) {
    let _ = tcp.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL);
    if let Err(error) = socket2::SockRef::from(tcp).set_tcp_keepalive(&keepalive) {
        tracing::debug!(%error, "cannot turn on TCP keepalive");
    }
}

/// An established connection (preamble exchanged).
pub struct Connection {
    /// Reads packets.
    pub reader: PacketReader,
    /// Writes packets.
    pub writer: PacketWriter,
    /// The peer's address, for logs.
    pub peer: String,
}

/// Connects to `address`, with TLS when the address says `tls://`.
pub async fn connect(address: &Address, security: &Security) -> Result<Connection, CommError> {
    let target = address.socket();
    let tcp = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect(&target))
        .await
        .map_err(|_| CommError::Timeout(HANDSHAKE_TIMEOUT, "connecting"))?
        .map_err(CommError::io(format!("connecting to {address}")))?;
    tune(&tcp);
    let stream: Box<dyn Stream> = if address.tls {
        let connector = security.connector()?;
        let name = address.server_name()?;
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| CommError::Timeout(HANDSHAKE_TIMEOUT, "in the TLS handshake"))?
            .map_err(|error| CommError::Tls {
                peer: address.to_string(),
                error,
            })?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    establish(stream, address.to_string(), security.limits).await
}

/// Accepts a TCP connection as a server: TLS when configured, then the preamble.
pub async fn accept(tcp: TcpStream, security: &Security) -> Result<Connection, CommError> {
    let peer = tcp
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "unknown peer".into());
    tune(&tcp);
    let stream: Box<dyn Stream> = match security.acceptor()? {
        Some(acceptor) => {
            let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                .await
                .map_err(|_| CommError::Timeout(HANDSHAKE_TIMEOUT, "in the TLS handshake"))?
                .map_err(|error| CommError::Tls {
                    peer: peer.clone(),
                    error,
                })?;
            Box::new(tls)
        }
        None => Box::new(tcp),
    };
    establish(stream, peer, security.limits).await
}

/// Connects and introduces this side as `role`; returns the connection and the id
/// the other side gave (a refusal is an error carrying its reason).
pub async fn connect_as(
    address: &Address,
    security: &Security,
    role: super::protocol::Role,
) -> Result<(u32, Connection), CommError> {
    let mut connection = connect(address, security).await?;
    let hello = Message::Hello(super::protocol::Hello {
        role,
        token: security.token.clone(),
    });
    connection.writer.send(hello.into()).await?;
    let answer = tokio::time::timeout(HANDSHAKE_TIMEOUT, connection.reader.expect())
        .await
        .map_err(|_| CommError::Timeout(HANDSHAKE_TIMEOUT, "waiting for Welcome"))??;
    match answer {
        (Message::Welcome { id }, _) => {
            connection.reader.handshake_done();
            Ok((id, connection))
        }
        (Message::Refused { reason }, _) => Err(CommError::Refused {
            peer: address.to_string(),
            reason,
        }),
        (other, _) => Err(CommError::Unexpected {
            got: other.name(),
            expected: "Welcome",
        }),
    }
}

/// Exchanges preambles. Until the caller raises them with
/// [`PacketReader::set_limits`] once the handshake is done, the reader accepts
/// only [`Limits::handshake`] frames.
async fn establish(
    mut stream: Box<dyn Stream>,
    peer: String,
    limits: Limits,
) -> Result<Connection, CommError> {
    stream
        .write_all(&preamble())
        .await
        .map_err(CommError::io("sending the preamble"))?;
    let mut theirs = [0u8; PREAMBLE_LEN];
    tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.read_exact(&mut theirs))
        .await
        .map_err(|_| CommError::Timeout(HANDSHAKE_TIMEOUT, "waiting for the preamble"))?
        .map_err(|_| CommError::Closed)?;
    check_preamble(&theirs)?;
    let (read, write) = tokio::io::split(stream);
    Ok(Connection {
        reader: PacketReader {
            io: read,
            limits: Limits::handshake(),
            after_handshake: limits,
            assembler: PacketAssembler::default(),
            last_bytes: 0,
        },
        writer: PacketWriter {
            io: write,
            buffer: Vec::new(),
            limits,
        },
        peer,
    })
}

/// A frame's buffer starts this large (or at the frame's size, if smaller)
/// and doubles as its bytes arrive: an announced length costs memory only
/// once the bytes are really sent.
const FIRST_READ: usize = 64 << 10;

/// The reading half of a connection.
pub struct PacketReader {
    io: ReadHalf<Box<dyn Stream>>,
    limits: Limits,
    /// The limits once the handshake is done.
    after_handshake: Limits,
    assembler: PacketAssembler,
    /// Bytes of the last packet read (message and blobs).
    last_bytes: usize,
}

impl PacketReader {
    /// The handshake is done: frames up to the connection's full limits are
    /// accepted from now on.
    pub fn handshake_done(&mut self) {
        self.limits = self.after_handshake;
    }

    /// Bytes of the last message read, with its blobs.
    pub fn last_bytes(&self) -> usize {
        self.last_bytes
    }

    /// Sets the frame limits.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The next packet; `Ok(None)` when the peer closed cleanly between packets.
    pub async fn packet(&mut self) -> Result<Option<Packet>, CommError> {
        loop {
            let mut head = [0u8; HEADER_LEN];
            match self.io.read_exact(&mut head).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return if self.assembler.in_progress() {
                        Err(FrameError::Truncated.into())
                    } else {
                        Ok(None)
                    };
                }
                Err(e) => return Err(CommError::io("reading")(e)),
            }
            let header = FrameHeader::parse(&head, &self.limits)?;
            let payload = self.payload(header.len as usize).await?;
            if let Some(packet) = self.assembler.frame(header, payload)? {
                return Ok(Some(packet));
            }
        }
    }

    /// Reads one frame's payload into a buffer that grows as the bytes arrive
    /// (and ends exactly the payload's size); it becomes the blob as it is.
    async fn payload(&mut self, len: usize) -> Result<Bytes, CommError> {
        let mut buffer: Vec<u8> = Vec::with_capacity(len.min(FIRST_READ));
        while buffer.len() < len {
            if buffer.len() == buffer.capacity() {
                let more = buffer.capacity().max(FIRST_READ).min(len - buffer.len());
                buffer.reserve_exact(more);
            }
            let room = (buffer.capacity() - buffer.len()).min(len - buffer.len());
            let read = (&mut self.io)
                .take(room as u64)
                .read_buf(&mut buffer)
                .await
                .map_err(CommError::io("reading"))?;
            if read == 0 {
                return Err(FrameError::Truncated.into());
            }
        }
        Ok(Bytes::from(buffer))
    }

    /// The next message and its blobs; `Ok(None)` at a clean close.
    pub async fn message(&mut self) -> Result<Option<(Message, Vec<Bytes>)>, CommError> {
        let Some(packet) = self.packet().await? else {
            return Ok(None);
        };
        self.last_bytes =
            packet.message.len() + packet.blobs.iter().map(|b| b.len()).sum::<usize>();
        let message =
            Message::decode(&packet.message).map_err(|e| CommError::Decode(e.to_string()))?;
        Ok(Some((message, packet.blobs)))
    }

    /// Like [`PacketReader::message`], but a close is an error too.
    pub async fn expect(&mut self) -> Result<(Message, Vec<Bytes>), CommError> {
        self.message().await?.ok_or(CommError::Closed)
    }
}

/// The writing half of a connection.
pub struct PacketWriter {
    io: WriteHalf<Box<dyn Stream>>,
    buffer: Vec<u8>,
    /// What the peer accepts (both sides of a cluster use the same limits).
    limits: Limits,
}

/// A message queued for sending, with its blobs.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The message.
    pub message: Message,
    /// Payloads sent as blob frames, as they are.
    pub blobs: Vec<Bytes>,
}

impl From<Message> for Outgoing {
    fn from(message: Message) -> Self {
        Outgoing {
            message,
            blobs: Vec::new(),
        }
    }
}

/// Blobs larger than this are written from their own buffer.
const LARGE_BLOB: usize = 64 << 10;
/// A write buffer larger than this is released after use.
const KEEP_BUFFER: usize = 4 << 20;

/// The most queued messages folded into one write.
const MAX_BATCH: usize = 512;

impl PacketWriter {
    /// Sends one message now.
    pub async fn send(&mut self, outgoing: Outgoing) -> Result<(), CommError> {
        self.buffer.clear();
        self.write(&outgoing).await?;
        self.flush_buffer().await
    }

    /// Whether `outgoing` (its message `message_len` bytes) fits the limits.
    fn check(&self, outgoing: &Outgoing, message_len: usize) -> Result<(), CommError> {
        let name = outgoing.message.name();
        let too_large = |what: String, size: usize, limit: u64| CommError::TooLarge {
            what,
            size: size as u64,
            limit,
        };
        let max_message = u64::from(self.limits.max_message);
        if message_len as u64 > max_message {
            return Err(too_large(
                format!("{name} message"),
                message_len,
                max_message,
            ));
        }
        let max_blobs = u64::from(self.limits.max_blobs);
        if outgoing.blobs.len() as u64 > max_blobs {
            return Err(too_large(
                format!("{name} message's values"),
                outgoing.blobs.len(),
                max_blobs,
            ));
        }
        let max_blob = u64::from(self.limits.max_blob);
        if let Some(blob) = outgoing.blobs.iter().find(|b| b.len() as u64 > max_blob) {
            return Err(too_large(
                format!("value in a {name} message"),
                blob.len(),
                max_blob,
            ));
        }
        Ok(())
    }

    /// Encodes a packet: small parts gather in the buffer; a large blob is written
    /// from where it lies, never copied.
    async fn write(&mut self, outgoing: &Outgoing) -> Result<(), CommError> {
        // The message is encoded straight after room for its header; everything
        // is checked before a byte is sent, and a refused message is cut off
        // the buffer again, leaving the stream as it was.
        let start = self.buffer.len();
        self.buffer.extend_from_slice(&[0; HEADER_LEN]);
        if let Err(e) = postcard::to_extend(&outgoing.message, Append(&mut self.buffer)) {
            self.buffer.truncate(start);
            return Err(CommError::Decode(format!("cannot encode a message: {e}")));
        }
        let message_len = self.buffer.len() - start - HEADER_LEN;
        let refused = self.check(outgoing, message_len);
        if refused.is_err() {
            self.buffer.truncate(start);
        }
        refused?;
        let header = FrameHeader {
            len: message_len as u32,
            is_message: true,
            blobs: outgoing.blobs.len() as u16,
        };
        self.buffer[start..start + HEADER_LEN].copy_from_slice(&header.encode());
        for blob in &outgoing.blobs {
            let header = FrameHeader {
                len: blob.len() as u32,
                is_message: false,
                blobs: 0,
            };
            self.buffer.extend_from_slice(&header.encode());
            if blob.len() <= LARGE_BLOB {
                self.buffer.extend_from_slice(blob);
            } else {
                self.io
                    .write_all(&self.buffer)
                    .await
                    .map_err(CommError::io("writing"))?;
                self.buffer.clear();
                self.io
                    .write_all(blob)
                    .await
                    .map_err(CommError::io("writing"))?;
            }
        }
        Ok(())
    }

    async fn flush_buffer(&mut self) -> Result<(), CommError> {
        self.io
            .write_all(&self.buffer)
            .await
            .map_err(CommError::io("writing"))?;
        self.io.flush().await.map_err(CommError::io("writing"))?;
        self.buffer.clear();
        if self.buffer.capacity() > KEEP_BUFFER {
            self.buffer = Vec::new();
        }
        Ok(())
    }

    /// Sends everything queued on `queue` until it closes or the peer goes away;
    /// messages waiting together go out in one write.
    async fn run(
        mut self,
        mut queue: mpsc::UnboundedReceiver<Queued>,
        queued_count: Arc<AtomicUsize>,
        overflowed: Arc<AtomicBool>,
    ) {
        while let Some(first) = queue.recv().await {
            if overflowed.load(Ordering::Relaxed) {
                break;
            }
            self.buffer.clear();
            let mut next = Some(first);
            let mut batched = 0;
            let mut flushed = Vec::new();
            while let Some(queued) = next {
                match queued {
                    Queued::Packet(outgoing) => match self.write(&outgoing).await {
                        Ok(()) => {
                            queued_count.fetch_sub(1, Ordering::Relaxed);
                        }
                        Err(error @ (CommError::Decode(_) | CommError::TooLarge { .. })) => {
                            queued_count.fetch_sub(1, Ordering::Relaxed);
                            tracing::error!(%error, "dropping a message")
                        }
                        Err(_) => return,
                    },
                    Queued::Flushed(done) => flushed.push(done),
                    Queued::Stop => break,
                }
                batched += 1;
                next = if batched < MAX_BATCH && self.buffer.len() < (1 << 20) {
                    queue.try_recv().ok()
                } else {
                    None
                };
            }
            if self.flush_buffer().await.is_err() {
                return;
            }
            for done in flushed {
                let _ = done.send(());
            }
            if overflowed.load(Ordering::Relaxed) {
                break;
            }
        }
        let _ = self.io.shutdown().await;
    }
}

/// What a writer task's queue carries.
enum Queued {
    Packet(Outgoing),
    /// Answered once everything queued before it is written.
    Flushed(tokio::sync::oneshot::Sender<()>),
    /// The peer fell too far behind: stop and close.
    Stop,
}

/// The most messages queued for one peer. A peer that falls this far behind
/// (it stopped reading) is disconnected rather than buffered for without end.
pub const MAX_QUEUED_MESSAGES: usize = 16_384;

/// A queue into a connection's writer task. Sending never blocks; after the
/// connection is gone, sends are dropped and return `false`.
#[derive(Clone, Debug)]
pub struct Outbox {
    queue: mpsc::UnboundedSender<Queued>,
    /// Messages queued and not yet written.
    queued: Arc<AtomicUsize>,
    /// Set when the peer fell too far behind: the writer stops.
    overflowed: Arc<AtomicBool>,
}

impl Outbox {
    /// Starts the writer task for `writer` on the current runtime.
    pub fn spawn(writer: PacketWriter) -> Outbox {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let overflowed = Arc::new(AtomicBool::new(false));
        tokio::spawn(writer.run(rx, queued.clone(), overflowed.clone()));
        Outbox {
            queue: tx,
            queued,
            overflowed,
        }
    }

    /// Queues a message; `false` when the connection is gone, or the peer is
    /// [`MAX_QUEUED_MESSAGES`] behind (it is then disconnected).
    pub fn send(&self, outgoing: impl Into<Outgoing>) -> bool {
        if self.overflowed.load(Ordering::Relaxed) {
            return false;
        }
        if self.queued.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_MESSAGES {
            if !self.overflowed.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "a peer stopped reading ({MAX_QUEUED_MESSAGES} messages queued for it); disconnecting it"
                );
            }
            // Wake the writer so it sees the flag and closes.
            let _ = self.queue.send(Queued::Stop);
            return false;
        }
        self.queue.send(Queued::Packet(outgoing.into())).is_ok()
    }

    /// Waits until everything queued so far is written (or the connection is
    /// gone); for last words before a process exits.
    pub async fn flushed(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.queue.send(Queued::Flushed(done)).is_ok() {
            let _ = written.await;
        }
    }

    /// Whether the writer task has ended.
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed() || self.overflowed.load(Ordering::Relaxed)
    }
}

/// Lets postcard append to a buffer it does not own.
struct Append<'a>(&'a mut Vec<u8>);

impl Extend<u8> for Append<'_> {
    fn extend<I: IntoIterator<Item = u8>>(&mut self, bytes: I) {
        self.0.extend(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_peer_that_stops_reading_is_disconnected_not_buffered_for() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // The peer answers the preamble, then never reads again.
        let peer = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            tcp.write_all(&preamble()).await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(tcp);
        });
        let address: Address = format!("tcp://127.0.0.1:{port}").parse().unwrap();
        let connection = connect(&address, &Security::none()).await.unwrap();
        let outbox = Outbox::spawn(connection.writer);
        let big = Message::Refused {
            reason: "x".repeat(64 << 10),
        };
        let mut accepted = 0;
        while outbox.send(big.clone()) {
            accepted += 1;
            // A few go into the socket's buffers before the writer blocks.
            assert!(
                accepted <= MAX_QUEUED_MESSAGES + 4096,
                "the outbox never refused"
            );
            if accepted % 1024 == 0 {
                tokio::task::yield_now().await;
            }
        }
        assert!(
            accepted >= MAX_QUEUED_MESSAGES - 64,
            "refused after only {accepted}"
        );
        assert!(outbox.is_closed());
        peer.abort();
    }
}
