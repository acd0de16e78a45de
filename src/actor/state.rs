//! The lifecycle states of a service and their human-readable strings.

use std::fmt;

/// Where a service is in its lifecycle.
///
/// `Display` gives Mode's strings (`"init"`, `"running"`, `"stopping"`, `"shutdown"`,
/// `"crashed"`), plus `"starting"` for the start sequence, which Mode reports as `"running"`.
///
/// ```text
///  Init ─start─▶ Starting ─ok─▶ Running ─stop for good─▶ Stopping ─▶ Shutdown (ended)
///                   │            │   │
///                   │            │   └─restart─▶ Stopping ─▶ Starting ─▶ Running ...
///                   │            │ crash / panic
///                   └─fail─▶ Crashed ◀┘
///                              ├─ a root: ended (its mailbox is closed; it never restarts)
///                              └─ a child: its parent decides:
///                                   restart ─▶ Starting ...   remove ─▶ ended
///
///  A child stopped by its parent's restart: Stopping ─▶ Shutdown ─▶ Starting (with the parent).
/// ```
///
/// "Ended" is [`ServiceRef::is_terminated`](crate::ServiceRef::is_terminated): the mailbox is
/// closed, sends fail, and `start` or `restart` returns an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServiceState {
    /// Created, never started.
    Init,
    /// Running its start sequence.
    Starting,
    /// Started and serving messages.
    Running,
    /// Running its stop sequence.
    Stopping,
    /// Stopped after a clean stop sequence.
    Shutdown,
    /// Crashed: see `crash_reason()`.
    Crashed,
}

/// Every state, in the order of its code (see [`ServiceState::code`]).
const BY_CODE: [ServiceState; 6] = [
    ServiceState::Init,
    ServiceState::Starting,
    ServiceState::Running,
    ServiceState::Stopping,
    ServiceState::Shutdown,
    ServiceState::Crashed,
];

impl ServiceState {
    /// The state as one byte (kept in a service's cell, and on the wire between nodes).
    pub(crate) fn code(self) -> u8 {
        match self {
            ServiceState::Init => 0,
            ServiceState::Starting => 1,
            ServiceState::Running => 2,
            ServiceState::Stopping => 3,
            ServiceState::Shutdown => 4,
            ServiceState::Crashed => 5,
        }
    }

    /// The state of a [`code`](Self::code), if it is one.
    pub(crate) fn from_code(code: u8) -> Option<ServiceState> {
        BY_CODE.get(usize::from(code)).copied()
    }

    /// Mode's string for the state.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Init => "init",
            ServiceState::Starting => "starting",
            ServiceState::Running => "running",
            ServiceState::Stopping => "stopping",
            ServiceState::Shutdown => "shutdown",
            ServiceState::Crashed => "crashed",
        }
    }

    /// Whether the service is stopped (cleanly or by a crash) and not starting again yet.
    pub fn is_stopped(self) -> bool {
        matches!(self, ServiceState::Shutdown | ServiceState::Crashed)
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::ServiceState::*;

    #[test]
    fn mode_strings() {
        let all = [Init, Starting, Running, Stopping, Shutdown, Crashed];
        let s: Vec<String> = all.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            s,
            [
                "init", "starting", "running", "stopping", "shutdown", "crashed"
            ]
        );
        assert!(Shutdown.is_stopped() && Crashed.is_stopped() && !Running.is_stopped());
    }

    #[test]
    fn codes_round_trip_and_an_unknown_code_is_none() {
        for state in super::BY_CODE {
            assert_eq!(super::ServiceState::from_code(state.code()), Some(state));
        }
        assert_eq!(super::ServiceState::from_code(6), None);
    }
}
