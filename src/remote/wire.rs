//! The wire format of `modo::remote`: what a request and a reply look like on NATS.
//!
//! Every frame is one NATS message payload, in two parts:
//!
//! 1. one byte, the wire version ([`WIRE_VERSION`]), read before anything else, so a peer of
//!    another version is told so ([`WireError::Version`]) instead of misreading the rest;
//! 2. a head, then the body, both encoded with [postcard] (serde's compact binary format:
//!    varint integers, length-prefixed strings, enum variants as a varint index; its wire
//!    format is specified and stable since postcard 1.0).
//!
//! A request ([`RequestHead`]) names the kind of send ([`Kind`]), the message id
//! ([`MessageId`]: the sender node's id and a counter), the message type's stable name and
//! version ([`RemoteMessage`](super::RemoteMessage)), and how long the sender waits. The body,
//! right after the head in the same buffer, is the message itself. The receiving node decodes
//! the head alone first, finds the message type by name, checks its version, and only then
//! decodes the body: an unknown type or another version is refused without touching it.
//!
//! A reply ([`ReplyHead`]) is `Ok` followed by the handler's reply, `Accepted` (a tell was
//! queued), or a [`Fault`] saying why not.
//!
//! The cluster's own frames (heartbeats with their down notices, spawn and stop requests
//! and their replies, graph answers) are the version byte followed by one postcard value
//! each; they are internal to modo (nodes of one version read each other's), and a frame
//! that does not decode is dropped with a debug log (a heartbeat) or answered with a
//! failure (a control request).
//!
//! # Why postcard
//! The format must be compact (NATS carries every byte, and a request is a few dozen of
//! them), fast, serde-based (messages and replies are the user's serde types), and fixed
//! by a written specification, so that two nodes built months apart read each other.
//! postcard has a published wire specification that it keeps stable across 1.x, encodes
//! integers as varints and enums as a variant index, borrows strings and byte slices on
//! decoding (the head's message name costs no allocation), and is small in dependencies.
//! bincode was the other candidate (fast too, but its 1.x and 2.x encodings differ and
//! fixed-width integers make frames larger); MessagePack (`rmp-serde`) is self-describing,
//! which costs bytes and time for no use here, since both ends know the type from its
//! name. Measured in `benches/remote.rs` (`codec`): about 0.14 us to encode and 0.1 us to
//! decode a 55-byte request frame, against a NATS round trip of 50-100 us on loopback.
//!
//! Every decoder here is total: any input gives a value or a [`WireError`], never a panic
//! (fuzzed by `fuzz/fuzz_targets/remote_wire.rs`, and a property test in
//! `tests/remote_local.rs`).

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The version of this wire format; the first byte of every frame.
pub const WIRE_VERSION: u8 = 1;

/// How a request is sent, and what reply it waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// An acknowledged tell: the reply is `Accepted` once the message is in the mailbox (the
    /// receiver waits for room).
    Tell,
    /// A tell answered at once: `Accepted`, or `MailboxFull` if there is no room now.
    TryTell,
    /// An ask: the reply is the handler's reply.
    Ask,
    /// Fire and forget: no reply is sent, and a message that cannot be delivered is lost
    /// (logged and counted by the receiver).
    Publish,
}

/// The id of a node: 16 random bytes, shown as 32 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId(pub [u8; 16]);

impl NodeId {
    /// A fresh random id.
    pub fn random() -> Self {
        NodeId(*uuid::Uuid::new_v4().as_bytes())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// A message's id: unique per sending node (the node's id and a counter). The receiver keeps
/// a window of recently seen ids, so a request sent again with the same id is not handled
/// twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MessageId {
    /// The sending node.
    pub node: NodeId,
    /// The sender's counter.
    pub seq: u64,
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.node, self.seq)
    }
}

/// The head of a request; the message follows it in the same frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestHead<'a> {
    /// How the message is sent.
    pub kind: Kind,
    /// The message's id.
    pub id: MessageId,
    /// The message type's stable name ([`RemoteMessage::NAME`](super::RemoteMessage::NAME)).
    #[serde(borrow)]
    pub message: &'a str,
    /// The message type's version ([`RemoteMessage::VERSION`](super::RemoteMessage::VERSION)).
    pub version: u16,
    /// How long the sender waits for the reply, in milliseconds; 0 when it does not wait.
    /// The receiver gives up its own wait (for mailbox room, for the handler) after it.
    pub wait_ms: u32,
}

impl RequestHead<'_> {
    /// The sender's wait, if it waits.
    pub fn wait(&self) -> Option<Duration> {
        (self.wait_ms > 0).then(|| Duration::from_millis(u64::from(self.wait_ms)))
    }
}

/// The head of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplyHead {
    /// The handler's reply follows.
    Ok,
    /// The message was queued in the mailbox (a tell).
    Accepted,
    /// The request failed on the receiving node.
    Fault(Fault),
}

/// Why a request failed on the receiving node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// The exported service has stopped for good.
    Stopped,
    /// The handler panicked, or the service crashed with the message queued or in flight.
    Crashed {
        /// The crash reason, as text.
        reason: String,
    },
    /// `try_tell` found the mailbox full.
    MailboxFull,
    /// The frame or the message did not decode.
    Decode {
        /// What did not decode, and why.
        what: String,
    },
    /// The export does not take a message of this name.
    UnknownMessage {
        /// The name sent.
        message: String,
    },
    /// The export takes this message in another version.
    VersionMismatch {
        /// The message's name.
        message: String,
        /// The version the export takes.
        expected: u16,
        /// The version sent.
        got: u16,
    },
    /// The frame is of a wire version this node does not read.
    WireVersion {
        /// The version sent.
        got: u8,
        /// The version this node reads.
        supported: u8,
    },
    /// The receiver gave up waiting (for room in the mailbox, or for the handler) after the
    /// sender's own wait ran out.
    Timeout,
    /// The reply did not encode on the receiving node.
    Encode {
        /// Why.
        what: String,
    },
    /// Another failure of the local send, as text.
    Failed {
        /// What failed.
        what: String,
    },
}

/// A frame that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The frame is empty.
    #[error("empty frame")]
    Empty,
    /// The frame is of another wire version.
    #[error("wire version {got} (this node reads version {supported})")]
    Version {
        /// The version in the frame.
        got: u8,
        /// The version this node reads.
        supported: u8,
    },
    /// The frame is malformed (postcard's error, and where).
    #[error("malformed {part}: {reason}")]
    Malformed {
        /// The part that did not decode: "request head", "reply head", "message", "reply".
        part: &'static str,
        /// Postcard's reason.
        reason: String,
    },
    /// Bytes were left after the body.
    #[error("{count} unexpected bytes after the {part}")]
    Trailing {
        /// The part they followed.
        part: &'static str,
        /// How many.
        count: usize,
    },
    /// A value did not encode.
    #[error("cannot encode the {part}: {reason}")]
    Encode {
        /// What did not encode.
        part: &'static str,
        /// Postcard's reason.
        reason: String,
    },
}

fn split_version(frame: &[u8]) -> Result<&[u8], WireError> {
    match frame.split_first() {
        None => Err(WireError::Empty),
        Some((&WIRE_VERSION, rest)) => Ok(rest),
        Some((&got, _)) => Err(WireError::Version {
            got,
            supported: WIRE_VERSION,
        }),
    }
}

fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buf: Vec<u8>,
    part: &'static str,
) -> Result<Vec<u8>, WireError> {
    postcard::to_extend(value, buf).map_err(|e| WireError::Encode {
        part,
        reason: e.to_string(),
    })
}

/// Encodes a request: the version byte, `head`, then `message`.
///
/// # Errors
/// [`WireError::Encode`] if the message's `Serialize` fails.
pub fn encode_request<M: Serialize + ?Sized>(
    head: &RequestHead<'_>,
    message: &M,
) -> Result<Vec<u8>, WireError> {
    let mut buf = Vec::with_capacity(64);
    buf.push(WIRE_VERSION);
    let buf = encode_into(head, buf, "request head")?;
    encode_into(message, buf, "message")
}

/// Encodes a request into `buf` (a node's shared send buffer) and splits it off: frames
/// share the buffer's blocks, so a send allocates only when a block is used up.
pub(crate) fn encode_request_split<M: Serialize + ?Sized>(
    head: &RequestHead<'_>,
    message: &M,
    buf: &mut bytes::BytesMut,
) -> Result<bytes::Bytes, WireError> {
    /// A new block when less than this is left.
    const LOW: usize = 1024;
    /// The size of a new block.
    const BLOCK: usize = 64 * 1024;
    if buf.capacity() - buf.len() < LOW {
        buf.reserve(BLOCK);
    }
    let mut out = std::mem::take(buf);
    out.extend_from_slice(&[WIRE_VERSION]);
    let encoded = postcard::to_extend(head, out)
        .map_err(|e| WireError::Encode {
            part: "request head",
            reason: e.to_string(),
        })
        .and_then(|out| {
            postcard::to_extend(message, out).map_err(|e| WireError::Encode {
                part: "message",
                reason: e.to_string(),
            })
        });
    match encoded {
        Ok(mut out) => {
            let frame = out.split().freeze();
            *buf = out;
            Ok(frame)
        }
        // The buffer went with the failed encoding: the next send starts a new one.
        Err(e) => Err(e),
    }
}

/// Decodes a request's head; returns it and the message's bytes.
///
/// # Errors
/// [`WireError::Empty`], [`WireError::Version`] or [`WireError::Malformed`].
pub fn decode_request(frame: &[u8]) -> Result<(RequestHead<'_>, &[u8]), WireError> {
    let rest = split_version(frame)?;
    postcard::take_from_bytes::<RequestHead<'_>>(rest).map_err(|e| WireError::Malformed {
        part: "request head",
        reason: e.to_string(),
    })
}

/// Decodes a body (a message, or a reply value): the whole of `bytes`, nothing left over.
///
/// # Errors
/// [`WireError::Malformed`], or [`WireError::Trailing`] if bytes are left.
pub fn decode_body<T: DeserializeOwned>(bytes: &[u8], part: &'static str) -> Result<T, WireError> {
    let (value, rest) =
        postcard::take_from_bytes::<T>(bytes).map_err(|e| WireError::Malformed {
            part,
            reason: e.to_string(),
        })?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(WireError::Trailing {
            part,
            count: rest.len(),
        })
    }
}

/// Encodes a reply carrying the handler's `value`.
///
/// # Errors
/// [`WireError::Encode`] if the value's `Serialize` fails.
pub fn encode_ok<R: Serialize + ?Sized>(value: &R) -> Result<Vec<u8>, WireError> {
    let mut buf = Vec::with_capacity(16);
    buf.push(WIRE_VERSION);
    let buf = encode_into(&ReplyHead::Ok, buf, "reply head")?;
    encode_into(value, buf, "reply")
}

/// Encodes a reply without a value (`Accepted` or a fault).
pub fn encode_reply(head: &ReplyHead) -> Vec<u8> {
    let mut buf = Vec::with_capacity(16);
    buf.push(WIRE_VERSION);
    // A `ReplyHead` holds only strings and integers: postcard cannot fail on it.
    postcard::to_extend(head, buf).unwrap_or_else(|_| vec![WIRE_VERSION, 2, 9, 0])
}

/// Decodes a reply's head; returns it and the bytes of the value that follows an `Ok`.
///
/// # Errors
/// [`WireError::Empty`], [`WireError::Version`] or [`WireError::Malformed`].
pub fn decode_reply(frame: &[u8]) -> Result<(ReplyHead, &[u8]), WireError> {
    let rest = split_version(frame)?;
    postcard::take_from_bytes::<ReplyHead>(rest).map_err(|e| WireError::Malformed {
        part: "reply head",
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(message: &str) -> RequestHead<'_> {
        RequestHead {
            kind: Kind::Ask,
            id: MessageId {
                node: NodeId([7; 16]),
                seq: 300,
            },
            message,
            version: 2,
            wait_ms: 1500,
        }
    }

    #[test]
    fn a_request_round_trips_and_is_compact() {
        let frame = encode_request(&head("shop.Add"), &(5u32, "x".to_string())).unwrap();
        // version, kind, 16 id bytes, seq (2-byte varint), name (1 + 8), version, wait (2).
        assert_eq!(frame.len(), 1 + 1 + 16 + 2 + 9 + 1 + 2 + 3);
        let (h, body) = decode_request(&frame).unwrap();
        assert_eq!(h, head("shop.Add"));
        assert_eq!(h.wait(), Some(Duration::from_millis(1500)));
        let msg: (u32, String) = decode_body(body, "message").unwrap();
        assert_eq!(msg, (5, "x".to_string()));
    }

    #[test]
    fn bad_frames_are_typed_errors() {
        assert_eq!(decode_request(&[]).unwrap_err(), WireError::Empty);
        assert_eq!(
            decode_request(&[9, 0]).unwrap_err(),
            WireError::Version {
                got: 9,
                supported: WIRE_VERSION
            }
        );
        assert!(matches!(
            decode_request(&[WIRE_VERSION, 77]).unwrap_err(),
            WireError::Malformed {
                part: "request head",
                ..
            }
        ));
        let frame = encode_request(&head("m"), &1u8).unwrap();
        // Cut anywhere inside the head: malformed, never a panic.
        for cut in 1..frame.len() - 1 {
            assert!(decode_request(&frame[..cut]).is_err(), "cut at {cut}");
        }
        let (_, body) = decode_request(&frame).unwrap();
        assert!(matches!(
            decode_body::<u16>(&[body, &[1, 2]].concat(), "message"),
            Err(WireError::Trailing { count: 2, .. }) | Err(WireError::Malformed { .. })
        ));
    }

    #[test]
    fn replies_round_trip() {
        let ok = encode_ok(&Some(42u64)).unwrap();
        let (h, body) = decode_reply(&ok).unwrap();
        assert_eq!(h, ReplyHead::Ok);
        assert_eq!(decode_body::<Option<u64>>(body, "reply").unwrap(), Some(42));
        for head in [
            ReplyHead::Accepted,
            ReplyHead::Fault(Fault::Crashed {
                reason: "boom".into(),
            }),
            ReplyHead::Fault(Fault::VersionMismatch {
                message: "m".into(),
                expected: 1,
                got: 2,
            }),
        ] {
            let frame = encode_reply(&head);
            let (back, rest) = decode_reply(&frame).unwrap();
            assert_eq!(back, head);
            assert!(rest.is_empty());
        }
    }

    #[test]
    fn split_frames_equal_plain_ones_and_share_blocks() {
        let mut buf = bytes::BytesMut::new();
        let a = encode_request_split(&head("m"), &(1u8, "x"), &mut buf).unwrap();
        let b = encode_request_split(&head("n"), &7u64, &mut buf).unwrap();
        assert_eq!(
            &a[..],
            &encode_request(&head("m"), &(1u8, "x")).unwrap()[..]
        );
        assert_eq!(&b[..], &encode_request(&head("n"), &7u64).unwrap()[..]);
        assert!(buf.capacity() >= 1024, "the rest of the block is kept");
    }

    #[test]
    fn node_ids_print_as_hex() {
        let id = NodeId([0xab; 16]);
        assert_eq!(id.to_string(), "ab".repeat(16));
        assert_ne!(NodeId::random(), NodeId::random());
    }
}
