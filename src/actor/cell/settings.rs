//! A service's settings as its cell keeps them: read at spawn, and again from each fresh
//! instance a factory builds.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tracing::Level;

use super::super::service::Service;

/// Settings read from the service: at spawn, and again from each fresh instance a factory
/// builds (an async factory's service has no instance at spawn: it starts with the defaults).
/// Written only by the actor's own task; read by its handles and loggers.
#[derive(Debug)]
pub(crate) struct Settings {
    /// The `Level`, as its index in `LEVELS`.
    mundane_level: AtomicU8,
    /// In nanoseconds, saturated.
    shutdown_timeout: AtomicU64,
    wait_for_shutdown: AtomicBool,
    /// Stop the children all at once instead of newest first.
    concurrent_child_stop: AtomicBool,
}

/// The levels in the order of their index in `Settings::mundane_level`.
const LEVELS: [Level; 5] = [
    Level::TRACE,
    Level::DEBUG,
    Level::INFO,
    Level::WARN,
    Level::ERROR,
];

impl Settings {
    /// What `service` says.
    pub(crate) fn of<A: Service>(service: &A) -> Settings {
        let settings = Settings::defaults();
        settings.update(service);
        settings
    }

    /// The defaults of [`Service`]'s settings.
    pub(crate) fn defaults() -> Settings {
        Settings {
            mundane_level: AtomicU8::new(2),
            shutdown_timeout: AtomicU64::new(nanos(
                super::super::service::DEFAULT_SHUTDOWN_TIMEOUT,
            )),
            wait_for_shutdown: AtomicBool::new(false),
            concurrent_child_stop: AtomicBool::new(false),
        }
    }

    /// Reads them again from `service` (a fresh instance).
    pub(crate) fn update<A: Service>(&self, service: &A) {
        let level = service.mundane_level();
        let index = LEVELS.iter().position(|l| *l == level).unwrap_or(2) as u8;
        self.mundane_level.store(index, Ordering::Relaxed);
        self.shutdown_timeout
            .store(nanos(service.shutdown_timeout()), Ordering::Relaxed);
        self.wait_for_shutdown
            .store(service.wait_for_shutdown(), Ordering::Relaxed);
        self.concurrent_child_stop
            .store(service.stop_children_concurrently(), Ordering::Relaxed);
    }

    pub(crate) fn mundane_level(&self) -> Level {
        LEVELS[usize::from(self.mundane_level.load(Ordering::Relaxed))]
    }

    pub(crate) fn shutdown_timeout(&self) -> Duration {
        Duration::from_nanos(self.shutdown_timeout.load(Ordering::Relaxed))
    }

    pub(crate) fn wait_for_shutdown(&self) -> bool {
        self.wait_for_shutdown.load(Ordering::Relaxed)
    }

    pub(crate) fn concurrent_child_stop(&self) -> bool {
        self.concurrent_child_stop.load(Ordering::Relaxed)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
