//! [`RemoteError`]: everything that can go wrong when talking to a service on another node,
//! and [`RemoteSendError`], which hands a message back.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::wire::{Fault, WireError};

/// Everything that can go wrong when talking to a service across NATS.
///
/// Every variant that concerns an exported name carries it. The predicates mirror
/// [`modo::Error`](crate::Error)'s: [`is_crashed`](Self::is_crashed),
/// [`is_stopped`](Self::is_stopped), [`is_timeout`](Self::is_timeout).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// No node exports this name (NATS answered "no responders" at once).
    #[error("no node exports {name:?}")]
    NoResponders {
        /// The exported name.
        name: Arc<str>,
    },
    /// No reply within the timeout. The message may still have been handled (or be handled
    /// later); a retry with the same message id is not handled twice by the same node.
    #[error("no reply from {name:?} within {timeout:?}")]
    Timeout {
        /// The exported name.
        name: Arc<str>,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The connection to NATS is closed (or the request could not be sent on it).
    #[error("not connected to NATS ({reason})")]
    Disconnected {
        /// Why, as the client said it.
        reason: String,
    },
    /// The exported service has stopped for good.
    #[error("the service exported as {name:?} is stopped")]
    Stopped {
        /// The exported name.
        name: Arc<str>,
    },
    /// The handler panicked, or the service crashed with the message queued or in flight.
    #[error("the service exported as {name:?} crashed: {reason}")]
    Crashed {
        /// The exported name.
        name: Arc<str>,
        /// The crash reason, as the remote node wrote it.
        reason: String,
    },
    /// `try_tell` found the remote mailbox full.
    #[error("the mailbox of the service exported as {name:?} is full")]
    MailboxFull {
        /// The exported name.
        name: Arc<str>,
    },
    /// A frame did not decode: the remote node could not read the request (`remote: true`),
    /// or this node could not read the reply.
    #[error("{} could not decode a frame for {name:?}: {what}", if *remote { "the remote node" } else { "this node" })]
    Decode {
        /// The exported name.
        name: Arc<str>,
        /// Whether the remote node reported it.
        remote: bool,
        /// What did not decode, and why.
        what: String,
    },
    /// The export does not take this message type (it was not registered with
    /// [`Export::message`](super::Export::message) there).
    #[error("{name:?} does not take messages of type {message:?}")]
    UnknownMessage {
        /// The exported name.
        name: Arc<str>,
        /// The message type's name.
        message: String,
    },
    /// The export takes this message type in another version.
    #[error("{name:?} takes {message:?} in version {expected}, not {got}")]
    VersionMismatch {
        /// The exported name.
        name: Arc<str>,
        /// The message type's name.
        message: String,
        /// The version the export takes.
        expected: u16,
        /// The version sent.
        got: u16,
    },
    /// The remote node speaks another wire version.
    #[error("{name:?} is served by a node of wire version {supported}, this frame was {got}")]
    WireVersion {
        /// The exported name.
        name: Arc<str>,
        /// The version sent.
        got: u8,
        /// The version the remote node reads.
        supported: u8,
    },
    /// A message or reply did not encode on this node (its `Serialize` failed), or the
    /// remote node could not encode the reply (`remote: true`).
    #[error("cannot encode for {name:?}: {what}")]
    Encode {
        /// The exported name.
        name: Arc<str>,
        /// Whether the remote node reported it.
        remote: bool,
        /// Why.
        what: String,
    },
    /// The frame is larger than the server's `max_payload`.
    #[error("a message for {name:?} is larger than the server accepts")]
    TooLarge {
        /// The exported name.
        name: Arc<str>,
    },
    /// A system, export or node name that cannot be a NATS subject token.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The connection to NATS could not be made.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server's URL.
        url: String,
        /// The client's reason.
        reason: String,
    },
    /// The node's service is not running (spawn it in a `System` first), so it cannot export.
    #[error("the node's service is not running; spawn the Node in a System first")]
    NodeNotRunning,
    /// The NATS server refused the node's credentials (wrong password, token or key, or a
    /// user it does not know).
    #[error("the NATS server at {url} refused the credentials: {reason}")]
    Unauthorized {
        /// The server's URL.
        url: String,
        /// The client's reason.
        reason: String,
    },
    /// The node's options are inconsistent (environment variables, files, URLs).
    #[error("bad node configuration: {what}")]
    Config {
        /// What is wrong.
        what: String,
    },
    /// A watch's target was not heard up (no node of that name sends heartbeats, no node
    /// serves that name).
    #[error("{target} is not up in the cluster")]
    UnknownTarget {
        /// The target, as text.
        target: String,
    },
    /// No node offers the factory a remote child needs.
    #[error("no node offers the factory {factory:?}")]
    NoFactory {
        /// The factory's name.
        factory: String,
    },
    /// A local service error while exporting (the export's service did not start).
    #[error(transparent)]
    Local(#[from] crate::Error),
    /// Another failure on the remote node.
    #[error("{name:?} failed: {what}")]
    Failed {
        /// The exported name.
        name: Arc<str>,
        /// What failed, as the remote node wrote it.
        what: String,
    },
}

impl RemoteError {
    /// Whether this is [`RemoteError::Crashed`] (or a local [`Error::Crashed`](crate::Error)).
    pub fn is_crashed(&self) -> bool {
        match self {
            RemoteError::Crashed { .. } => true,
            RemoteError::Local(e) => e.is_crashed(),
            _ => false,
        }
    }

    /// Whether this is [`RemoteError::Stopped`] (or a local [`Error::Stopped`](crate::Error)).
    pub fn is_stopped(&self) -> bool {
        match self {
            RemoteError::Stopped { .. } => true,
            RemoteError::Local(e) => e.is_stopped(),
            _ => false,
        }
    }

    /// Whether this is [`RemoteError::Timeout`] (or a local [`Error::Timeout`](crate::Error)).
    pub fn is_timeout(&self) -> bool {
        match self {
            RemoteError::Timeout { .. } => true,
            RemoteError::Local(e) => e.is_timeout(),
            _ => false,
        }
    }

    /// Whether this is [`RemoteError::NoResponders`]: nobody exports the name.
    pub fn is_no_responders(&self) -> bool {
        matches!(self, RemoteError::NoResponders { .. })
    }

    /// Whether the message certainly was not handled: every error but
    /// [`Timeout`](RemoteError::Timeout), [`Disconnected`](RemoteError::Disconnected) (the
    /// request may have gone out before the connection broke) and
    /// [`Crashed`](RemoteError::Crashed) (the handler may have run part way).
    pub fn certainly_not_handled(&self) -> bool {
        !matches!(
            self,
            RemoteError::Timeout { .. }
                | RemoteError::Disconnected { .. }
                | RemoteError::Crashed { .. }
        )
    }

    /// The error a fault reply stands for (`timeout`: the caller's, for a receiver that gave
    /// up waiting after it).
    pub(crate) fn from_fault(name: &Arc<str>, fault: Fault, timeout: Duration) -> Self {
        let name = name.clone();
        match fault {
            Fault::Stopped => RemoteError::Stopped { name },
            Fault::Crashed { reason } => RemoteError::Crashed { name, reason },
            Fault::MailboxFull => RemoteError::MailboxFull { name },
            Fault::Decode { what } => RemoteError::Decode {
                name,
                remote: true,
                what,
            },
            Fault::UnknownMessage { message } => RemoteError::UnknownMessage { name, message },
            Fault::VersionMismatch {
                message,
                expected,
                got,
            } => RemoteError::VersionMismatch {
                name,
                message,
                expected,
                got,
            },
            Fault::WireVersion { got, supported } => RemoteError::WireVersion {
                name,
                got,
                supported,
            },
            Fault::Timeout => RemoteError::Timeout { name, timeout },
            Fault::Encode { what } => RemoteError::Encode {
                name,
                remote: true,
                what,
            },
            Fault::Failed { what } => RemoteError::Failed { name, what },
        }
    }

    /// The error for a reply this node could not read.
    pub(crate) fn from_wire(name: &Arc<str>, e: WireError) -> Self {
        match e {
            WireError::Version { got, supported } => RemoteError::WireVersion {
                name: name.clone(),
                // The reply was in the peer's version `got`; we read `supported`.
                got: supported,
                supported: got,
            },
            WireError::Encode { .. } => RemoteError::Encode {
                name: name.clone(),
                remote: false,
                what: e.to_string(),
            },
            _ => RemoteError::Decode {
                name: name.clone(),
                remote: false,
                what: e.to_string(),
            },
        }
    }
}

/// A remote `tell` that failed, with the message handed back (as [`SendError`](crate::SendError)
/// does locally), so nothing is lost silently: the caller may send it again or elsewhere.
pub struct RemoteSendError<M> {
    message: M,
    error: RemoteError,
}

impl<M> RemoteSendError<M> {
    pub(crate) fn new(message: M, error: RemoteError) -> Self {
        RemoteSendError { message, error }
    }

    /// The message that was sent.
    pub fn into_inner(self) -> M {
        self.message
    }

    /// Why it failed.
    pub fn error(&self) -> &RemoteError {
        &self.error
    }

    /// The error and the message.
    pub fn into_parts(self) -> (RemoteError, M) {
        (self.error, self.message)
    }
}

impl<M> fmt::Debug for RemoteSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<M> fmt::Display for RemoteSendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<M> std::error::Error for RemoteSendError<M> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<M> From<RemoteSendError<M>> for RemoteError {
    fn from(e: RemoteSendError<M>) -> Self {
        e.error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_become_typed_errors() {
        let name: Arc<str> = Arc::from("svc");
        let t = Duration::from_secs(1);
        let e = |f| RemoteError::from_fault(&name, f, t);
        assert!(e(Fault::Stopped).is_stopped());
        assert!(e(Fault::Crashed { reason: "r".into() }).is_crashed());
        assert!(e(Fault::Timeout).is_timeout());
        assert!(matches!(
            e(Fault::MailboxFull),
            RemoteError::MailboxFull { .. }
        ));
        assert!(matches!(
            e(Fault::Decode { what: "x".into() }),
            RemoteError::Decode { remote: true, .. }
        ));
        assert!(matches!(
            e(Fault::UnknownMessage {
                message: "m".into()
            }),
            RemoteError::UnknownMessage { .. }
        ));
        assert!(matches!(
            e(Fault::WireVersion {
                got: 2,
                supported: 1
            }),
            RemoteError::WireVersion {
                got: 2,
                supported: 1,
                ..
            }
        ));
        // A reply in the peer's version 7, read by this node of version 1: this node sent 1,
        // the peer reads 7.
        assert!(matches!(
            RemoteError::from_wire(
                &name,
                WireError::Version {
                    got: 7,
                    supported: 1
                }
            ),
            RemoteError::WireVersion {
                got: 1,
                supported: 7,
                ..
            }
        ));
        assert!(matches!(
            RemoteError::from_wire(&name, WireError::Empty),
            RemoteError::Decode { remote: false, .. }
        ));
    }

    #[test]
    fn what_certainly_was_not_handled() {
        let name: Arc<str> = Arc::from("svc");
        assert!(RemoteError::NoResponders { name: name.clone() }.certainly_not_handled());
        assert!(RemoteError::MailboxFull { name: name.clone() }.certainly_not_handled());
        assert!(
            !RemoteError::Timeout {
                name: name.clone(),
                timeout: Duration::ZERO
            }
            .certainly_not_handled()
        );
        let local = RemoteError::from(crate::Error::Stopped {
            label: Arc::from("x"),
        });
        assert!(local.is_stopped());
        let send = RemoteSendError::new(5u8, RemoteError::NoResponders { name });
        assert_eq!(send.to_string(), "no node exports \"svc\"");
        let (err, msg) = send.into_parts();
        assert_eq!(msg, 5);
        assert!(err.is_no_responders());
    }
}
