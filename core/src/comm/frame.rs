//! Framing: how bytes on a connection become packets.
//!
//! A connection starts with an 8-byte preamble (`RASK` and the protocol version,
//! little-endian u32) from each side. After it, everything is frames:
//!
//! ```text
//! [payload length: u32 LE][kind: u8][reserved: u8 = 0][blob count: u16 LE][payload]
//! ```
//!
//! A *message* frame (kind 1) holds one postcard-encoded message and says how many
//! *blob* frames (kind 2) follow it. Blobs carry task results and other large
//! payloads as raw bytes: they are never re-encoded, and a receiver keeps them as
//! they arrived. A message and its blobs form one [`Packet`].
//!
//! Lengths are checked against [`Limits`] before anything is allocated, so an
//! oversized length prefix costs the sender its connection, not our memory.

use bytes::Bytes;
use std::fmt;

/// The first four bytes every rask connection begins with.
pub const MAGIC: [u8; 4] = *b"RASK";
/// The version of this protocol. Peers with another version are refused.
pub const PROTOCOL_VERSION: u32 = 4;
/// Size of the preamble: magic and version.
pub const PREAMBLE_LEN: usize = 8;
/// Size of a frame header.
pub const HEADER_LEN: usize = 8;

const KIND_MESSAGE: u8 = 1;
const KIND_BLOB: u8 = 2;

/// How large frames may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message frame payload.
    pub max_message: u32,
    /// Largest blob frame payload.
    pub max_blob: u32,
    /// Most blobs after one message.
    pub max_blobs: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 64 << 20,
            max_blob: u32::MAX,
            max_blobs: u16::MAX,
        }
    }
}

/// The largest message a peer may send before its `Hello` is accepted (a
/// `Hello`, a `Welcome` or a `Refused` is a few hundred bytes).
pub const HANDSHAKE_MESSAGE_LIMIT: u32 = 16 << 10;

impl Limits {
    /// What a connection allows until the handshake is done: one small
    /// message, no blobs. An unauthenticated peer cannot make us hold more.
    pub fn handshake() -> Self {
        Limits {
            max_message: HANDSHAKE_MESSAGE_LIMIT,
            max_blob: 0,
            max_blobs: 0,
        }
    }
}

/// Why bytes on a connection were refused. The connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The connection did not start with `RASK`.
    #[error("not a rask connection: it began with {0:02x?} instead of \"RASK\"")]
    BadMagic([u8; 4]),
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: the peer speaks version {peer}, this side speaks version {ours}")]
    VersionMismatch {
        /// The peer's version.
        peer: u32,
        /// This side's version.
        ours: u32,
    },
    /// A frame kind that does not exist.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The reserved header byte was not zero.
    #[error("malformed frame header (reserved byte is {0})")]
    Reserved(u8),
    /// A length prefix above the limit.
    #[error("{kind} frame of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// "message" or "blob".
        kind: &'static str,
        /// The announced length.
        len: u32,
        /// The limit.
        limit: u32,
    },
    /// More blobs announced than allowed.
    #[error("message announces {count} blobs, more than the limit of {limit}")]
    TooManyBlobs {
        /// Announced blobs.
        count: u16,
        /// The limit.
        limit: u16,
    },
    /// A blob frame where a message was expected, or the reverse.
    #[error("unexpected {0} frame")]
    Unexpected(&'static str),
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed in the middle of a frame")]
    Truncated,
}

/// One parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length.
    pub len: u32,
    /// Whether this is a message (else a blob).
    pub is_message: bool,
    /// Blobs following a message.
    pub blobs: u16,
}

impl FrameHeader {
    /// Parses and validates a header.
    pub fn parse(bytes: &[u8; HEADER_LEN], limits: &Limits) -> Result<Self, FrameError> {
        let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let kind = bytes[4];
        if bytes[5] != 0 {
            return Err(FrameError::Reserved(bytes[5]));
        }
        let blobs = u16::from_le_bytes([bytes[6], bytes[7]]);
        let (is_message, limit, name) = match kind {
            KIND_MESSAGE => (true, limits.max_message, "message"),
            KIND_BLOB => (false, limits.max_blob, "blob"),
            other => return Err(FrameError::UnknownKind(other)),
        };
        if len > limit {
            return Err(FrameError::TooLarge {
                kind: name,
                len,
                limit,
            });
        }
        if !is_message && blobs != 0 {
            return Err(FrameError::Reserved(bytes[6]));
        }
        if blobs > limits.max_blobs {
            return Err(FrameError::TooManyBlobs {
                count: blobs,
                limit: limits.max_blobs,
            });
        }
        Ok(FrameHeader {
            len,
            is_message,
            blobs,
        })
    }

    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[..4].copy_from_slice(&self.len.to_le_bytes());
        out[4] = if self.is_message {
            KIND_MESSAGE
        } else {
            KIND_BLOB
        };
        out[6..].copy_from_slice(&self.blobs.to_le_bytes());
        out
    }
}

/// The preamble this side sends.
pub fn preamble() -> [u8; PREAMBLE_LEN] {
    let mut out = [0u8; PREAMBLE_LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4..].copy_from_slice(&PROTOCOL_VERSION.to_le_bytes());
    out
}

/// Checks a peer's preamble.
pub fn check_preamble(bytes: &[u8; PREAMBLE_LEN]) -> Result<(), FrameError> {
    let magic = [bytes[0], bytes[1], bytes[2], bytes[3]];
    if magic != MAGIC {
        return Err(FrameError::BadMagic(magic));
    }
    let peer = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    if peer != PROTOCOL_VERSION {
        return Err(FrameError::VersionMismatch {
            peer,
            ours: PROTOCOL_VERSION,
        });
    }
    Ok(())
}

/// A message and the blobs that came with it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Packet {
    /// The encoded message.
    pub message: Bytes,
    /// Raw payloads, in order, kept as received.
    pub blobs: Vec<Bytes>,
}

impl fmt::Debug for Packet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Packet({} bytes, {} blobs)",
            self.message.len(),
            self.blobs.len()
        )
    }
}

/// Builds packets from frames; knows which frame may come next.
#[derive(Debug, Default)]
pub struct PacketAssembler {
    current: Option<Packet>,
    blobs_left: u16,
}

impl PacketAssembler {
    /// Accepts one frame; returns a packet when it is complete.
    pub fn frame(
        &mut self,
        header: FrameHeader,
        payload: Bytes,
    ) -> Result<Option<Packet>, FrameError> {
        match (header.is_message, self.current.is_some()) {
            (true, false) => {
                let packet = Packet {
                    message: payload,
                    blobs: Vec::with_capacity(header.blobs as usize),
                };
                if header.blobs == 0 {
                    return Ok(Some(packet));
                }
                self.current = Some(packet);
                self.blobs_left = header.blobs;
                Ok(None)
            }
            (false, true) => {
                let Some(packet) = self.current.as_mut() else {
                    return Err(FrameError::Unexpected("blob"));
                };
                packet.blobs.push(payload);
                self.blobs_left -= 1;
                if self.blobs_left == 0 {
                    Ok(self.current.take())
                } else {
                    Ok(None)
                }
            }
            (true, true) => Err(FrameError::Unexpected("message")),
            (false, false) => Err(FrameError::Unexpected("blob")),
        }
    }

    /// Whether a packet is half-assembled (a close now truncates it).
    pub fn in_progress(&self) -> bool {
        self.current.is_some()
    }
}

/// A push-based decoder over a byte stream (preamble first, then frames), used
/// where bytes arrive in arbitrary pieces, and by the fuzz target.
#[derive(Debug)]
pub struct FrameDecoder {
    limits: Limits,
    buffer: Vec<u8>,
    preamble_seen: bool,
    assembler: PacketAssembler,
    failed: bool,
}

impl FrameDecoder {
    /// A decoder expecting a preamble.
    pub fn new(limits: Limits) -> Self {
        FrameDecoder {
            limits,
            buffer: Vec::new(),
            preamble_seen: false,
            assembler: PacketAssembler::default(),
            failed: false,
        }
    }

    /// Adds bytes from the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete packet, `Ok(None)` when more bytes are needed, or the error
    /// that closes the connection (and every later call returns an error too).
    pub fn next_packet(&mut self) -> Result<Option<Packet>, FrameError> {
        if self.failed {
            return Err(FrameError::Unexpected("frame after an error"));
        }
        let result = self.decode();
        if result.is_err() {
            self.failed = true;
            self.buffer.clear();
        }
        result
    }

    /// Called at end of stream: an error if a frame or packet was cut short.
    pub fn finish(&self) -> Result<(), FrameError> {
        if !self.buffer.is_empty() || self.assembler.in_progress() {
            Err(FrameError::Truncated)
        } else {
            Ok(())
        }
    }

    fn decode(&mut self) -> Result<Option<Packet>, FrameError> {
        if !self.preamble_seen {
            let Some(head) = self.buffer.get(..PREAMBLE_LEN) else {
                return Ok(None);
            };
            let mut preamble = [0u8; PREAMBLE_LEN];
            preamble.copy_from_slice(head);
            check_preamble(&preamble)?;
            self.buffer.drain(..PREAMBLE_LEN);
            self.preamble_seen = true;
        }
        loop {
            let Some(head) = self.buffer.get(..HEADER_LEN) else {
                return Ok(None);
            };
            let mut bytes = [0u8; HEADER_LEN];
            bytes.copy_from_slice(head);
            let header = FrameHeader::parse(&bytes, &self.limits)?;
            let end = HEADER_LEN + header.len as usize;
            if self.buffer.len() < end {
                return Ok(None);
            }
            let payload = Bytes::copy_from_slice(&self.buffer[HEADER_LEN..end]);
            self.buffer.drain(..end);
            if let Some(packet) = self.assembler.frame(header, payload)? {
                return Ok(Some(packet));
            }
        }
    }
}

/// Appends a packet's frames to `out`. The caller checks the sizes against
/// [`Limits`] first (lengths are written as `u32`, the blob count as `u16`).
pub fn encode_packet(message: &[u8], blobs: &[&[u8]], out: &mut Vec<u8>) {
    let header = FrameHeader {
        len: message.len() as u32,
        is_message: true,
        blobs: blobs.len() as u16,
    };
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(message);
    for blob in blobs {
        let header = FrameHeader {
            len: blob.len() as u32,
            is_message: false,
            blobs: 0,
        };
        out.extend_from_slice(&header.encode());
        out.extend_from_slice(blob);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(packets: &[(&[u8], &[&[u8]])]) -> Vec<u8> {
        let mut out = preamble().to_vec();
        for (message, blobs) in packets {
            encode_packet(message, blobs, &mut out);
        }
        out
    }

    #[test]
    fn packets_round_trip_in_any_split() {
        let bytes = stream(&[(b"hello", &[b"blob one", b""]), (b"", &[]), (b"x", &[])]);
        for split in 1..bytes.len() {
            let mut decoder = FrameDecoder::new(Limits::default());
            let mut got = Vec::new();
            for piece in bytes.chunks(split) {
                decoder.push(piece);
                while let Some(packet) = decoder.next_packet().unwrap() {
                    got.push(packet);
                }
            }
            decoder.finish().unwrap();
            assert_eq!(got.len(), 3);
            assert_eq!(&got[0].message[..], b"hello");
            assert_eq!(&got[0].blobs[0][..], b"blob one");
            assert!(got[0].blobs[1].is_empty());
            assert!(got[1].message.is_empty() && got[1].blobs.is_empty());
        }
    }

    #[test]
    fn oversized_length_is_refused_before_allocating() {
        let mut bytes = preamble().to_vec();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[KIND_MESSAGE, 0, 0, 0]);
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.push(&bytes);
        assert!(matches!(
            decoder.next_packet(),
            Err(FrameError::TooLarge {
                kind: "message",
                ..
            })
        ));
        assert!(decoder.next_packet().is_err(), "errors are final");
    }

    #[test]
    fn wrong_magic_and_version_are_named() {
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(decoder.next_packet(), Err(FrameError::BadMagic(*b"GET ")));
        let mut decoder = FrameDecoder::new(Limits::default());
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&7u32.to_le_bytes());
        decoder.push(&bytes);
        let err = decoder.next_packet().unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "protocol version mismatch: the peer speaks version 7, this side speaks version {PROTOCOL_VERSION}"
            )
        );
    }

    #[test]
    fn truncation_and_stray_blobs_are_errors() {
        let bytes = stream(&[(b"hello", &[b"blob"])]);
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.push(&bytes[..bytes.len() - 1]);
        assert_eq!(decoder.next_packet(), Ok(None));
        assert_eq!(decoder.finish(), Err(FrameError::Truncated));

        let mut bytes = preamble().to_vec();
        bytes.extend_from_slice(
            &FrameHeader {
                len: 0,
                is_message: false,
                blobs: 0,
            }
            .encode(),
        );
        let mut decoder = FrameDecoder::new(Limits::default());
        decoder.push(&bytes);
        assert_eq!(decoder.next_packet(), Err(FrameError::Unexpected("blob")));
    }
}
