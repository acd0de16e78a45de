//! The OS signals the Worker listens to: SIGINT and SIGTERM (stop), SIGUSR1 (dump the tree).
//! Off unix, only Ctrl-C.

/// A signal the Worker acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sig {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// SIGUSR1.
    DumpTree,
}

/// The installed handlers. Installing replaces the default action (exit) of these signals
/// for the rest of the process.
#[cfg(unix)]
#[derive(Debug)]
pub(crate) struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    /// Installs the handlers (needs a tokio runtime).
    pub(crate) fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            usr1: signal(SignalKind::user_defined1())?,
        })
    }

    /// The next signal. Cancel safe.
    pub(crate) async fn recv(&mut self) -> Sig {
        tokio::select! {
            Some(()) = self.int.recv() => Sig::Interrupt,
            Some(()) = self.term.recv() => Sig::Terminate,
            Some(()) = self.usr1.recv() => Sig::DumpTree,
            else => std::future::pending().await,
        }
    }
}

/// The installed handler (Ctrl-C only off unix).
#[cfg(not(unix))]
#[derive(Debug)]
pub(crate) struct Signals {
    _priv: (),
}

#[cfg(not(unix))]
impl Signals {
    /// Nothing to install up front.
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Signals { _priv: () })
    }

    /// The next Ctrl-C. Cancel safe.
    pub(crate) async fn recv(&mut self) -> Sig {
        match tokio::signal::ctrl_c().await {
            Ok(()) => Sig::Interrupt,
            Err(_) => std::future::pending().await,
        }
    }
}
