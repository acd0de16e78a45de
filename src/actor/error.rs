//! Errors, by what failed: a `tell` that found the service stopped ([`SendError`], which hands
//! the message back and can say nothing else), a `try_tell` ([`TrySendError`]: full or
//! stopped, the message handed back), everything else a service or the System reports
//! ([`Error`]), and the reason a service crashed ([`CrashReason`]).
//!
//! Panics and returned errors are kept apart in a [`CrashReason`]: a handler that panicked is a
//! bug in the handler, a hook that returned `Err` is a failure the service reported itself.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The error type a hook returns: any error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a hook returns.
pub type HookResult = Result<(), BoxError>;

/// A shared, cloneable error source (a [`BoxError`] after it has been reported).
pub type SharedError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong when talking to a service or the [`System`](crate::System).
///
/// Every variant names the service it concerns (its label), so an error read in a log says
/// where it came from.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service has stopped for good: its mailbox is closed.
    #[error("service {label} is stopped")]
    Stopped {
        /// The service's label.
        label: Arc<str>,
    },
    /// An `ask` got no reply in time. The message may still be handled later; its reply is
    /// then dropped.
    #[error("no reply from {label} within {timeout:?}")]
    Timeout {
        /// The service's label.
        label: Arc<str>,
        /// The timeout that ran out.
        timeout: Duration,
    },
    /// The service crashed (a panic, a failing hook, or an explicit `crash`).
    #[error("service {label} crashed: {reason}")]
    Crashed {
        /// The service's label.
        label: Arc<str>,
        /// Why it crashed.
        reason: CrashReason,
    },
    /// `try_tell` found the user lane of the mailbox full.
    #[error("mailbox of {label} is full")]
    MailboxFull {
        /// The service's label.
        label: Arc<str>,
    },
    /// A lifecycle hook returned an error (or panicked) while the service started or stopped.
    #[error("{hook} of {label} failed: {source}")]
    HookFailed {
        /// The service's label.
        label: Arc<str>,
        /// The hook that failed.
        hook: Hook,
        /// The error the hook returned, or the panic it raised.
        #[source]
        source: SharedError,
    },
    /// A background task of the service returned an error (it crashes the service).
    #[error("task {task} of {label} failed: {source}")]
    TaskFailed {
        /// The service's label.
        label: Arc<str>,
        /// The task's name.
        task: Arc<str>,
        /// The error it returned.
        #[source]
        source: SharedError,
    },
    /// The operation would wait on the calling service's own task, which can never answer
    /// (for example `ctx.myself().stop().await` inside a handler).
    #[error(
        "{op} of {label} awaited from its own task would never return; use the Context instead"
    )]
    WouldDeadlock {
        /// The service's label.
        label: Arc<str>,
        /// The operation that was refused.
        op: &'static str,
    },
    /// A supervisor restarted its children more than its intensity allows (more than
    /// `max_restarts` within `over`), stopped them and crashed itself with this error, which
    /// its own supervisor then handles.
    #[error(
        "{label} restarted children {restarts} times within {within:?} (at most {max_restarts} allowed)"
    )]
    MaxRestartsExceeded {
        /// The supervisor's label.
        label: Arc<str>,
        /// Restarts counted in the window, this one included.
        restarts: u32,
        /// The allowed number.
        max_restarts: u32,
        /// The window.
        within: Duration,
    },
    /// Another live service already has this name.
    #[error("the name {name:?} is taken by a running service")]
    NameTaken {
        /// The name.
        name: String,
    },
    /// No live service has this name.
    #[error("no service is named {name:?}{}", did_you_mean_text(did_you_mean))]
    UnknownName {
        /// The name looked up.
        name: String,
        /// Every known name close to it, closest first (empty if none is close).
        did_you_mean: Vec<String>,
    },
    /// The service with this name is of another type than the one asked for.
    #[error("the service named {name:?} is a {actual}, not a {expected}")]
    WrongType {
        /// The name.
        name: String,
        /// The type asked for.
        expected: &'static str,
        /// The service's type.
        actual: &'static str,
    },
    /// The [`System`](crate::System) is shutting down and accepts no new services.
    #[error("the system is shutting down")]
    ShuttingDown,
    /// A child was to be inserted past the end of a service's children
    /// ([`Context::insert_dependency`](crate::Context::insert_dependency), a supervisor's
    /// `insert`).
    #[error("{label} has {len} children: cannot insert one at {index}")]
    ChildIndexOutOfRange {
        /// The parent's label.
        label: Arc<str>,
        /// The index asked for.
        index: usize,
        /// How many children it has (the largest valid index).
        len: usize,
    },
    /// [`Context::adopt`](crate::Context::adopt) refused: the service already has a parent.
    /// Only a root (a service spawned with [`System::spawn`](crate::System::spawn)) can be
    /// adopted; a child stays with its parent.
    #[error("{label} cannot be adopted by {by}: it is a child of {parent}")]
    AlreadyHasParent {
        /// The service that was to be adopted.
        label: Arc<str>,
        /// The service that tried to adopt it.
        by: Arc<str>,
        /// Its parent (`"a parent that has ended"` if that one is gone).
        parent: Arc<str>,
    },
    /// [`Context::adopt`](crate::Context::adopt) refused: the service is the adopting one or
    /// one of its ancestors, and the tree would become a cycle.
    #[error("{label} cannot be adopted by {by}: it is {by} itself or one of its ancestors")]
    WouldCycle {
        /// The service that was to be adopted.
        label: Arc<str>,
        /// The service that tried to adopt it.
        by: Arc<str>,
    },
    /// [`Context::adopt`](crate::Context::adopt) refused: the service belongs to another
    /// System, or is one of the System's own services (the registry).
    #[error("{label} cannot be adopted by {by}: {why}")]
    NotAdoptable {
        /// The service that was to be adopted.
        label: Arc<str>,
        /// The service that tried to adopt it.
        by: Arc<str>,
        /// Why not.
        why: &'static str,
    },
}

/// `; did you mean "a"?` or `; did you mean "a" or "b"?`, or nothing.
fn did_you_mean_text(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("; did you mean {one:?}?"),
        [first @ .., last] => {
            let first: Vec<String> = first.iter().map(|n| format!("{n:?}")).collect();
            format!("; did you mean {} or {last:?}?", first.join(", "))
        }
    }
}

impl Error {
    /// The label of the service this error concerns, if any.
    pub fn label(&self) -> Option<&str> {
        match self {
            Error::Stopped { label }
            | Error::Timeout { label, .. }
            | Error::Crashed { label, .. }
            | Error::MailboxFull { label }
            | Error::HookFailed { label, .. }
            | Error::WouldDeadlock { label, .. }
            | Error::MaxRestartsExceeded { label, .. }
            | Error::TaskFailed { label, .. }
            | Error::ChildIndexOutOfRange { label, .. }
            | Error::AlreadyHasParent { label, .. }
            | Error::WouldCycle { label, .. }
            | Error::NotAdoptable { label, .. } => Some(label),
            Error::ShuttingDown
            | Error::NameTaken { .. }
            | Error::UnknownName { .. }
            | Error::WrongType { .. } => None,
        }
    }

    /// Whether this is [`Error::Stopped`].
    pub fn is_stopped(&self) -> bool {
        matches!(self, Error::Stopped { .. })
    }

    /// Whether this is [`Error::Crashed`].
    pub fn is_crashed(&self) -> bool {
        matches!(self, Error::Crashed { .. })
    }

    /// Whether this is [`Error::Timeout`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }
}

/// The lifecycle hooks, as named in [`Service`](crate::Service); used in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hook {
    /// [`Service::on_init`](crate::Service::on_init), or a (plain) factory building a fresh
    /// instance.
    OnInit,
    /// An async factory building an instance
    /// ([`ServiceSpec::from_async_factory`](crate::ServiceSpec::from_async_factory)): it
    /// returned an error, panicked or ran out of time.
    Factory,
    /// [`Service::dependencies`](crate::Service::dependencies).
    Dependencies,
    /// [`Service::on_first_start`](crate::Service::on_first_start).
    OnFirstStart,
    /// [`Service::on_start`](crate::Service::on_start).
    OnStart,
    /// Starting a child service (the error is the child's).
    StartChild,
    /// [`Service::on_started`](crate::Service::on_started).
    OnStarted,
    /// [`Service::on_stop`](crate::Service::on_stop).
    OnStop,
    /// Stopping a child service (the error is the child's).
    StopChild,
    /// Joining the service's background tasks at stop.
    JoinTasks,
    /// [`Service::on_shutdown`](crate::Service::on_shutdown).
    OnShutdown,
    /// [`Service::on_restart`](crate::Service::on_restart).
    OnRestart,
    /// [`Service::on_thread_started`](crate::Service::on_thread_started).
    OnThreadStarted,
    /// [`Service::on_thread_stop`](crate::Service::on_thread_stop).
    OnThreadStop,
    /// The [`Worker`](crate::Worker)'s
    /// [`on_execute`](crate::Worker::on_execute), run once its services have started.
    OnExecute,
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hook::OnInit => "on_init",
            Hook::Factory => "the factory",
            Hook::Dependencies => "dependencies",
            Hook::OnFirstStart => "on_first_start",
            Hook::OnStart => "on_start",
            Hook::StartChild => "starting a child",
            Hook::OnStarted => "on_started",
            Hook::OnStop => "on_stop",
            Hook::StopChild => "stopping a child",
            Hook::JoinTasks => "joining tasks",
            Hook::OnShutdown => "on_shutdown",
            Hook::OnRestart => "on_restart",
            Hook::OnThreadStarted => "on_thread_started",
            Hook::OnThreadStop => "on_thread_stop",
            Hook::OnExecute => "on_execute",
        })
    }
}

/// Why a service crashed.
///
/// Cloning is cheap (the parts are shared). A panic and a returned error stay distinguishable:
/// see [`CrashReason::is_panic`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CrashReason {
    /// A hook, a handler or a background task panicked.
    Panic {
        /// The panic's message (`"<non-string panic payload>"` when it had none).
        message: Arc<str>,
        /// Where it panicked: a hook's name or `handler of <message type>`.
        during: Arc<str>,
    },
    /// A hook or a task returned this error, or `crash` was called with it.
    Error(SharedError),
    /// `crash` was called with this message.
    Message(Arc<str>),
    /// A child crashed and its parent chose to crash too
    /// ([`ChildAction::Escalate`](crate::ChildAction::Escalate)).
    Child {
        /// The child's label.
        child: Arc<str>,
        /// The child's own reason.
        reason: Box<CrashReason>,
    },
    /// The service was crashed because its parent crashed.
    Parent {
        /// The parent's label.
        parent: Arc<str>,
        /// The parent's own reason.
        reason: Box<CrashReason>,
    },
}

impl CrashReason {
    /// A crash with a plain message.
    pub fn msg(message: impl Into<String>) -> Self {
        CrashReason::Message(Arc::from(message.into()))
    }

    /// A crash caused by an error.
    pub fn error(error: impl Into<BoxError>) -> Self {
        CrashReason::Error(Arc::from(error.into()))
    }

    /// Whether the crash was a panic (as opposed to a reported error or a requested crash).
    pub fn is_panic(&self) -> bool {
        match self {
            CrashReason::Panic { .. } => true,
            CrashReason::Parent { reason, .. } | CrashReason::Child { reason, .. } => {
                reason.is_panic()
            }
            _ => false,
        }
    }

    pub(crate) fn from_panic(payload: Box<dyn Any + Send>, during: impl Into<Arc<str>>) -> Self {
        let message: Arc<str> = if let Some(s) = payload.downcast_ref::<&'static str>() {
            Arc::from(*s)
        } else if let Some(s) = payload.downcast_ref::<String>() {
            Arc::from(s.as_str())
        } else {
            Arc::from("<non-string panic payload>")
        };
        CrashReason::Panic {
            message,
            during: during.into(),
        }
    }
}

impl fmt::Display for CrashReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashReason::Panic { message, during } => write!(f, "panicked in {during}: {message}"),
            CrashReason::Error(e) => write!(f, "{e}"),
            CrashReason::Message(m) => f.write_str(m),
            CrashReason::Parent { parent, reason } => {
                write!(f, "parent {parent} crashed: {reason}")
            }
            CrashReason::Child { child, reason } => write!(f, "child {child} crashed: {reason}"),
        }
    }
}

impl From<&str> for CrashReason {
    fn from(s: &str) -> Self {
        CrashReason::msg(s)
    }
}

impl From<String> for CrashReason {
    fn from(s: String) -> Self {
        CrashReason::msg(s)
    }
}

impl From<BoxError> for CrashReason {
    fn from(e: BoxError) -> Self {
        CrashReason::Error(Arc::from(e))
    }
}

impl From<Error> for CrashReason {
    fn from(e: Error) -> Self {
        match e {
            Error::Crashed { reason, .. } => reason,
            other => CrashReason::Error(Arc::new(other)),
        }
    }
}

/// A `tell` to a service that has stopped for good (also while the `tell` waited for room):
/// the message is handed back.
///
/// Its `Debug` does not need `M: Debug`. It converts into [`Error::Stopped`] with `?`.
pub struct SendError<M> {
    message: M,
    label: Arc<str>,
}

impl<M> SendError<M> {
    pub(crate) fn new(message: M, label: Arc<str>) -> Self {
        SendError { message, label }
    }

    /// The label of the service the message was for.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Takes the message back.
    pub fn into_inner(self) -> M {
        self.message
    }
}

impl<M> fmt::Debug for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendError")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl<M> fmt::Display for SendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service {} is stopped", self.label)
    }
}

impl<M> std::error::Error for SendError<M> {}

impl<M> From<SendError<M>> for Error {
    fn from(e: SendError<M>) -> Self {
        Error::Stopped { label: e.label }
    }
}

/// A `try_tell` that could not queue its message now: the message is handed back.
///
/// Its `Debug` does not need `M: Debug`. It converts into [`Error::MailboxFull`] or
/// [`Error::Stopped`] with `?`.
#[non_exhaustive]
pub enum TrySendError<M> {
    /// The mailbox is full; it may have room later.
    Full(M, Arc<str>),
    /// The service has stopped for good.
    Stopped(M, Arc<str>),
}

impl<M> TrySendError<M> {
    /// Whether the mailbox was full.
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(..))
    }

    /// Whether the service had stopped for good.
    pub fn is_stopped(&self) -> bool {
        matches!(self, TrySendError::Stopped(..))
    }

    /// The label of the service the message was for.
    pub fn label(&self) -> &str {
        match self {
            TrySendError::Full(_, label) | TrySendError::Stopped(_, label) => label,
        }
    }

    /// Takes the message back.
    pub fn into_inner(self) -> M {
        match self {
            TrySendError::Full(message, _) | TrySendError::Stopped(message, _) => message,
        }
    }
}

impl<M> fmt::Debug for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.is_full() { "Full" } else { "Stopped" };
        f.debug_struct("TrySendError")
            .field("kind", &kind)
            .field("label", &self.label())
            .finish_non_exhaustive()
    }
}

impl<M> fmt::Display for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_, label) => write!(f, "mailbox of {label} is full"),
            TrySendError::Stopped(_, label) => write!(f, "service {label} is stopped"),
        }
    }
}

impl<M> std::error::Error for TrySendError<M> {}

impl<M> From<TrySendError<M>> for Error {
    fn from(e: TrySendError<M>) -> Self {
        match e {
            TrySendError::Full(_, label) => Error::MailboxFull { label },
            TrySendError::Stopped(_, label) => Error::Stopped { label },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_payloads_become_messages() {
        let r = CrashReason::from_panic(Box::new("boom"), "on_start");
        assert_eq!(r.to_string(), "panicked in on_start: boom");
        let r = CrashReason::from_panic(Box::new(String::from("bang")), "x");
        assert!(r.is_panic());
        let r = CrashReason::from_panic(Box::new(7_u8), "x");
        assert!(r.to_string().contains("non-string"));
    }

    #[test]
    fn send_errors_debug_needs_no_debug_message() {
        struct Opaque;
        let e = TrySendError::Full(Opaque, Arc::from("A"));
        assert!(format!("{e:?}").contains("Full"));
        assert!(matches!(Error::from(e), Error::MailboxFull { .. }));
        let e = SendError::new(Opaque, Arc::from("A"));
        assert!(format!("{e:?}").contains("SendError"));
        assert!(matches!(Error::from(e), Error::Stopped { .. }));
    }

    #[test]
    fn parent_reason_keeps_panic_kind() {
        let inner = CrashReason::from_panic(Box::new("p"), "h");
        let r = CrashReason::Parent {
            parent: Arc::from("App"),
            reason: Box::new(inner),
        };
        assert!(r.is_panic());
        assert_eq!(r.to_string(), "parent App crashed: panicked in h: p");
    }
}
