//! [`RemoteAddr<A>`]: the typed handle on a service another node exports.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_nats::Subject;
use async_nats::client::RequestErrorKind;
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::wire::{self, Kind, MessageId, ReplyHead, RequestHead};
use super::{Node, RemoteError, RemoteMessage, RemoteSendError};
use crate::{Handler, Service};

/// The typed address of a service that another node exports: the same `tell`, `try_tell`,
/// `ask` and `ask_timeout` as a local [`Addr<A>`](crate::Addr), for every message type
/// marked [`RemoteMessage`] (and registered with the export), plus
/// [`tell_unacked`](Self::tell_unacked) (fire and forget).
///
/// Get one with [`Node::lookup`]. Cheap to clone. It is its own type, not a branch in the
/// local `Addr`: a local tell pays nothing for remoting.
///
/// Every call is bounded by the handle's timeout ([`with_timeout`](Self::with_timeout);
/// default: the node's request timeout, 5 s).
pub struct RemoteAddr<A> {
    node: Node,
    name: Arc<str>,
    subject: Subject,
    timeout: Duration,
    retries: u32,
    _service: PhantomData<fn() -> A>,
}

impl<A> Clone for RemoteAddr<A> {
    fn clone(&self) -> Self {
        RemoteAddr {
            node: self.node.clone(),
            name: self.name.clone(),
            subject: self.subject.clone(),
            timeout: self.timeout,
            retries: self.retries,
            _service: PhantomData,
        }
    }
}

impl<A> fmt::Debug for RemoteAddr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteAddr")
            .field("name", &self.name)
            .field("subject", &self.subject.as_str())
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .finish()
    }
}

impl<A: Service> RemoteAddr<A> {
    pub(crate) fn new(node: Node, name: Arc<str>, subject: String, timeout: Duration) -> Self {
        RemoteAddr {
            node,
            name,
            subject: Subject::from(subject),
            timeout,
            retries: 0,
            _service: PhantomData,
        }
    }

    /// The exported name this handle sends to.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bound on each call (each attempt, with [`with_retries`](Self::with_retries)).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// This handle with another bound on each call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// This handle, sending a request again (with the same message id, up to `retries`
    /// more times) when an attempt got no reply within the timeout, the connection broke
    /// under it, or nobody served the name (then after a pause of 20 ms, doubling up to
    /// 1.28 s or the timeout: an exporter re-subscribing after a reconnect, a replica
    /// restarting). The node that already saw the id answers the copy from its dedup window
    /// (waiting for the first one's reply if needed) instead of handling it twice.
    ///
    /// With several replicas of an export, a copy may reach another replica, which has not
    /// seen the id and handles it: retries guarantee "at most once" only per node. Default:
    /// no retries.
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sends `msg` and returns once the remote service's mailbox accepted it. The remote
    /// node waits for room, so a full mailbox delays the reply (up to the timeout; a message
    /// that found no room by then is not queued).
    ///
    /// # Errors
    /// [`RemoteSendError`] with the message inside: [`RemoteError::NoResponders`] at once if
    /// nobody exports the name, [`RemoteError::Stopped`], [`RemoteError::Timeout`] (it may
    /// still have been queued), [`RemoteError::Disconnected`], a decode or version error
    /// from the remote node, or [`RemoteError::Encode`].
    ///
    /// # Cancel safety
    /// Dropping the future after the request went out does not recall it: the message may
    /// still be queued.
    pub async fn tell<M>(&self, msg: M) -> Result<(), RemoteSendError<M>>
    where
        A: Handler<M>,
        M: RemoteMessage,
    {
        self.tell_kind(Kind::Tell, msg).await
    }

    /// Sends `msg` if the remote mailbox has room now: answered at once, without waiting
    /// for room.
    ///
    /// # Errors
    /// As [`tell`](Self::tell), and [`RemoteError::MailboxFull`] if there was no room.
    ///
    /// # Cancel safety
    /// As [`tell`](Self::tell).
    pub async fn try_tell<M>(&self, msg: M) -> Result<(), RemoteSendError<M>>
    where
        A: Handler<M>,
        M: RemoteMessage,
    {
        self.tell_kind(Kind::TryTell, msg).await
    }

    async fn tell_kind<M>(&self, kind: Kind, msg: M) -> Result<(), RemoteSendError<M>>
    where
        M: RemoteMessage,
    {
        let res = match self.encode(kind, &msg, self.timeout) {
            Ok(frame) => match self.request(frame, self.timeout).await {
                Ok((ReplyHead::Accepted, _)) => Ok(()),
                Ok((other, _)) => Err(self.unexpected(&other)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        res.map_err(|e| RemoteSendError::new(msg, e))
    }

    /// Fire and forget: publishes `msg` and returns once the client took it. Nothing
    /// confirms it arrived: if nobody exports the name, or the remote mailbox is closed, or
    /// the connection breaks, the message is lost (the remote node logs what it drops). Use
    /// [`tell`](Self::tell) unless losing it is fine.
    ///
    /// # Errors
    /// [`RemoteError::Encode`], or [`RemoteError::Disconnected`] if the connection is
    /// closed; the message comes back inside.
    pub async fn tell_unacked<M>(&self, msg: M) -> Result<(), RemoteSendError<M>>
    where
        A: Handler<M>,
        M: RemoteMessage,
    {
        let frame = match self.encode(Kind::Publish, &msg, Duration::ZERO) {
            Ok(frame) => frame,
            Err(e) => return Err(RemoteSendError::new(msg, e)),
        };
        match self
            .node
            .client()
            .publish(self.subject.clone(), frame)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => Err(RemoteSendError::new(
                msg,
                RemoteError::Disconnected {
                    reason: e.to_string(),
                },
            )),
        }
    }

    /// Sends `msg` and waits for the handler's reply, within the handle's timeout.
    ///
    /// # Errors
    /// [`RemoteError::Crashed`] if the handler panicked (or the service crashed with the
    /// message queued), [`RemoteError::Stopped`], [`RemoteError::NoResponders`] at once if
    /// nobody exports the name, [`RemoteError::Timeout`], [`RemoteError::Disconnected`], a
    /// decode or version error.
    ///
    /// # Cancel safety
    /// Dropping the future after the request went out does not recall it: it is still
    /// handled, and its reply dropped.
    pub async fn ask<M>(&self, msg: M) -> Result<<A as Handler<M>>::Reply, RemoteError>
    where
        A: Handler<M>,
        M: RemoteMessage,
        <A as Handler<M>>::Reply: DeserializeOwned,
    {
        self.ask_timeout(msg, self.timeout).await
    }

    /// [`ask`](Self::ask) with its own timeout.
    ///
    /// # Errors
    /// As [`ask`](Self::ask).
    ///
    /// # Cancel safety
    /// As [`ask`](Self::ask).
    pub async fn ask_timeout<M>(
        &self,
        msg: M,
        timeout: Duration,
    ) -> Result<<A as Handler<M>>::Reply, RemoteError>
    where
        A: Handler<M>,
        M: RemoteMessage,
        <A as Handler<M>>::Reply: DeserializeOwned,
    {
        let frame = self.encode(Kind::Ask, &msg, timeout)?;
        drop(msg);
        match self.request(frame, timeout).await? {
            (ReplyHead::Ok, body) => {
                wire::decode_body(&body, "reply").map_err(|e| RemoteError::from_wire(&self.name, e))
            }
            (other, _) => Err(self.unexpected(&other)),
        }
    }

    fn encode<M: RemoteMessage>(
        &self,
        kind: Kind,
        msg: &M,
        wait: Duration,
    ) -> Result<Bytes, RemoteError> {
        self.node.check_open()?;
        let id: MessageId = self.node.next_id();
        // The receiver may wait as long as the sender does, retries included.
        let wait = wait.saturating_mul(self.retries.saturating_add(1));
        let wait_ms = if wait.is_zero() {
            0
        } else {
            u32::try_from(wait.as_millis()).unwrap_or(u32::MAX).max(1)
        };
        let head = RequestHead {
            kind,
            id,
            message: M::NAME,
            version: M::VERSION,
            wait_ms,
        };
        self.node
            .encode_request(&head, msg)
            .map_err(|e| RemoteError::from_wire(&self.name, e))
    }

    /// Sends one request (again, with the same frame, on a timeout if retries are set).
    async fn request(
        &self,
        frame: Bytes,
        timeout: Duration,
    ) -> Result<(ReplyHead, Bytes), RemoteError> {
        let mut attempt = 0;
        let mut frame = Some(frame);
        loop {
            // The last attempt takes the frame; earlier ones send a copy (a cheap `Bytes`
            // clone, but not free: the first one makes the buffer shared).
            let payload = if attempt >= self.retries {
                frame.take().unwrap_or_default()
            } else {
                frame.clone().unwrap_or_default()
            };
            let request = async_nats::Request::new()
                .payload(payload)
                .timeout(Some(timeout));
            let res = self
                .node
                .client()
                .send_request(self.subject.clone(), request)
                .await;
            let err = match res {
                Ok(msg) => {
                    let payload = msg.payload;
                    return match wire::decode_reply(&payload) {
                        Ok((ReplyHead::Fault(fault), _)) => {
                            Err(RemoteError::from_fault(&self.name, fault, timeout))
                        }
                        Ok((head, body)) => {
                            let body = payload.slice_ref(body);
                            Ok((head, body))
                        }
                        Err(e) => Err(RemoteError::from_wire(&self.name, e)),
                    };
                }
                Err(e) => match e.kind() {
                    RequestErrorKind::NoResponders => RemoteError::NoResponders {
                        name: self.name.clone(),
                    },
                    RequestErrorKind::TimedOut => RemoteError::Timeout {
                        name: self.name.clone(),
                        timeout,
                    },
                    RequestErrorKind::MaxPayloadExceeded => RemoteError::TooLarge {
                        name: self.name.clone(),
                    },
                    RequestErrorKind::InvalidSubject => RemoteError::InvalidName {
                        name: self.name.to_string(),
                        reason: "not a valid subject",
                    },
                    _ => RemoteError::Disconnected {
                        reason: e.to_string(),
                    },
                },
            };
            let again = matches!(
                err,
                RemoteError::Timeout { .. }
                    | RemoteError::Disconnected { .. }
                    | RemoteError::NoResponders { .. }
            );
            if !again || attempt >= self.retries {
                return Err(err);
            }
            if err.is_no_responders() {
                // Nobody serves the name right now (an exporter re-subscribing after a
                // reconnect, a replica restarting): wait a little before the next try.
                let pause = Duration::from_millis(20u64 << attempt.min(6)).min(timeout);
                tokio::time::sleep(pause).await;
            }
            attempt += 1;
        }
    }

    fn unexpected(&self, head: &ReplyHead) -> RemoteError {
        RemoteError::Decode {
            name: self.name.clone(),
            remote: false,
            what: format!("unexpected reply {head:?}"),
        }
    }
}
