//! What to spawn: a service value or a factory, with per-spawn options ([`ServiceSpec`]), and
//! its type-erased form for [`Service::dependencies`](crate::Service::dependencies)
//! ([`Dependency`]).

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::addr::ServiceRef;
use super::error::BoxError;
use super::host::Host;
use super::runner::Parent;
use super::service::{DEFAULT_SHUTDOWN_TIMEOUT, Service, short_type_name};

/// A factory whose instances take an await to build (a connection, a file read).
pub(crate) type AsyncFactory<S> =
    Box<dyn FnMut(u32) -> BoxFuture<'static, Result<S, BoxError>> + Send>;

/// How to build the service on each (re)start.
pub(crate) enum Init<S> {
    /// One value, reset with `on_init` before each restart.
    Value(S),
    /// A fresh value on each restart, told the restart index (0 for the first).
    Factory(Box<dyn FnMut(u32) -> S + Send>),
    /// A fresh value awaited at the first start and on each restart, bounded by `timeout`.
    AsyncFactory {
        make: AsyncFactory<S>,
        timeout: Duration,
    },
}

/// A service to spawn, with options.
///
/// ```
/// use modo::prelude::*;
///
/// #[derive(Default)]
/// struct Job { runs: u32 }
/// impl Service for Job {}
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// // A fresh `Job` on every restart, and a small mailbox.
/// let job = system
///     .spawn(ServiceSpec::from_factory(Job::default).mailbox_capacity(8))
///     .await?;
/// job.restart().await?;
/// assert_eq!(job.restart_count(), 1);
/// # system.shutdown().await }
/// ```
pub struct ServiceSpec<S: Service> {
    pub(crate) init: Init<S>,
    pub(crate) mailbox_capacity: Option<usize>,
    pub(crate) name: Option<String>,
    pub(crate) label: Option<Cow<'static, str>>,
    pub(crate) internal: bool,
    pub(crate) own_thread: bool,
    #[cfg(feature = "testkit")]
    pub(crate) faults: Option<super::faults::Faults>,
}

impl<S: Service> ServiceSpec<S> {
    /// Spawn this value; a restart resets it with [`Service::on_init`].
    pub fn new(service: S) -> Self {
        ServiceSpec {
            init: Init::Value(service),
            mailbox_capacity: None,
            name: None,
            label: None,
            internal: false,
            own_thread: false,
            #[cfg(feature = "testkit")]
            faults: None,
        }
    }

    /// Build the service with `factory`, and build a fresh one on every restart (Mode's
    /// `replacement`).
    pub fn from_factory(mut factory: impl FnMut() -> S + Send + 'static) -> Self {
        Self::from_indexed_factory(move |_| factory())
    }

    /// Like [`from_factory`](Self::from_factory), with the factory told the restart index:
    /// 0 for the first instance, then the service's restart count.
    pub fn from_indexed_factory(factory: impl FnMut(u32) -> S + Send + 'static) -> Self {
        ServiceSpec {
            init: Init::Factory(Box::new(factory)),
            mailbox_capacity: None,
            name: None,
            label: None,
            internal: false,
            own_thread: false,
            #[cfg(feature = "testkit")]
            faults: None,
        }
    }

    /// Build the service with an async `factory` (Mode's `replacement`, for a service whose
    /// making takes an await: a connection, a file), awaited at the first start and again on
    /// every restart, told the restart index (0 for the first instance, then the service's
    /// restart count). [`Service::on_init`] runs on each instance it returns.
    ///
    /// A factory that returns `Err` fails that start with [`Error::HookFailed`] for
    /// [`Hook::Factory`], carrying its error; one that panics fails it with [`Error::Crashed`]
    /// (a panic reason); one still pending after the
    /// [`factory_timeout`](Self::factory_timeout) (default: 60 s, the default shutdown
    /// timeout) fails it with [`Error::HookFailed`] saying so. The service is then left
    /// crashed: under a supervisor the failed start is a crash like any other (counted,
    /// backed off, retried); a later start or restart calls the factory again.
    ///
    /// The label, the log label and the mailbox capacity are needed before any instance
    /// exists: they come from this spec ([`label`](Self::label),
    /// [`mailbox_capacity`](Self::mailbox_capacity)) or their defaults (the type's name,
    /// [`DEFAULT_MAILBOX_CAPACITY`](crate::DEFAULT_MAILBOX_CAPACITY)), not from the
    /// service's own [`Service::label`] or [`Service::mailbox_capacity`]. The other settings
    /// (shutdown timeout, mundane level, ...) are read from each instance built.
    ///
    /// [`Error::HookFailed`]: crate::Error::HookFailed
    /// [`Error::Crashed`]: crate::Error::Crashed
    /// [`Hook::Factory`]: crate::Hook::Factory
    ///
    /// ```
    /// use modo::prelude::*;
    ///
    /// struct Db { conn: String }
    /// impl Service for Db {}
    ///
    /// async fn connect(attempt: u32) -> Result<String, std::io::Error> {
    ///     Ok(format!("connection #{attempt}"))
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let db = system
    ///     .spawn(ServiceSpec::from_async_factory(|restart| async move {
    ///         Ok::<_, std::io::Error>(Db { conn: connect(restart).await? })
    ///     }))
    ///     .await?;
    /// db.restart().await?; // awaits the factory again: a fresh connection
    /// assert_eq!(db.restart_count(), 1);
    /// # system.shutdown().await }
    /// ```
    pub fn from_async_factory<F, Fut, E>(mut factory: F) -> Self
    where
        F: FnMut(u32) -> Fut + Send + 'static,
        Fut: Future<Output = Result<S, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let make: AsyncFactory<S> =
            Box::new(move |index| factory(index).map(|res| res.map_err(Into::into)).boxed());
        ServiceSpec {
            init: Init::AsyncFactory {
                make,
                timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            },
            mailbox_capacity: None,
            name: None,
            label: None,
            internal: false,
            own_thread: false,
            #[cfg(feature = "testkit")]
            faults: None,
        }
    }

    /// Bounds each call of an [async factory](Self::from_async_factory): a build still pending
    /// after `timeout` is dropped and fails the start. Does nothing for other specs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use modo::prelude::*;
    ///
    /// struct Db;
    /// impl Service for Db {}
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let system = System::new();
    /// let unreachable = ServiceSpec::from_async_factory(|_| async {
    ///     std::future::pending::<()>().await; // a host that never answers
    ///     Ok::<_, BoxError>(Db)
    /// })
    /// .factory_timeout(Duration::from_secs(5));
    /// let err = system.spawn(unreachable).await.unwrap_err();
    /// assert!(matches!(err, Error::HookFailed { hook: modo::Hook::Factory, .. }));
    /// # system.shutdown().await.unwrap(); }
    /// ```
    pub fn factory_timeout(mut self, timeout: Duration) -> Self {
        if let Init::AsyncFactory { timeout: t, .. } = &mut self.init {
            *t = timeout;
        }
        self
    }

    /// Overrides [`Service::mailbox_capacity`] for this spawn (at least 1).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = Some(capacity.max(1));
        self
    }

    /// Registers the service under `name`, unique in its [`System`](crate::System): find it again with
    /// [`System::lookup`](crate::System::lookup). Spawning a second live service with a taken name fails with
    /// [`Error::NameTaken`](crate::Error::NameTaken); the name is freed when the service
    /// stops for good.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The label (and log label) of this one service, instead of
    /// [`Service::label`]/[`Service::shortlabel`]: give children added by the hundred distinct
    /// labels (`Session#42`, `Writer[10.0.0.7]`) rather than 200 lines all saying
    /// `[^--Session]`.
    ///
    /// ```
    /// use modo::prelude::*;
    ///
    /// struct Session;
    /// impl Service for Session {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let s = system.spawn(ServiceSpec::new(Session).label("Session#7")).await?;
    /// assert_eq!(s.label(), "Session#7");
    /// assert_eq!(s.shortlabel(), "Session#7");
    /// # system.shutdown().await }
    /// ```
    pub fn label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Runs the service on its own OS thread, in its own current-thread tokio runtime (Mode's
    /// `ServiceThread`): for a service whose work would block the shared runtime. Its `Addr`
    /// works from anywhere; [`Service::on_thread_started`] and [`Service::on_thread_stop`]
    /// run on that thread; a crash reaches its parent or supervisor like any other. Stopping
    /// it for good shuts that runtime down (bounded by the shutdown timeout) before `stop()`
    /// returns, and the thread ends.
    pub fn on_own_thread(mut self) -> Self {
        self.own_thread = true;
        self
    }

    /// Breaks the service on purpose, for a test (feature `testkit`): see
    /// [`Faults`](crate::testkit::Faults).
    #[cfg(feature = "testkit")]
    pub fn faults(mut self, faults: super::faults::Faults) -> Self {
        self.faults = Some(faults);
        self
    }

    /// Marks one of the System's own services: it does not report to the registry.
    pub(crate) fn internal(mut self) -> Self {
        self.internal = true;
        self
    }
}

impl<S: Service> fmt::Debug for ServiceSpec<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("service", &short_type_name::<S>())
            .field(
                "factory",
                &match self.init {
                    Init::Value(_) => "none",
                    Init::Factory(_) => "sync",
                    Init::AsyncFactory { .. } => "async",
                },
            )
            .field("mailbox_capacity", &self.mailbox_capacity)
            .field("name", &self.name)
            .field("label", &self.label)
            .field("own_thread", &self.own_thread)
            .finish()
    }
}

/// Anything that can be spawned: a [`Service`] value or a [`ServiceSpec`].
pub trait IntoServiceSpec: Send + 'static {
    /// The service type.
    type Service: Service;
    /// The spec.
    fn into_spec(self) -> ServiceSpec<Self::Service>;
}

impl<S: Service> IntoServiceSpec for S {
    type Service = S;
    fn into_spec(self) -> ServiceSpec<S> {
        ServiceSpec::new(self)
    }
}

impl<S: Service> IntoServiceSpec for ServiceSpec<S> {
    type Service = S;
    fn into_spec(self) -> ServiceSpec<S> {
        self
    }
}

/// A spec whose service type is erased: what a [`Dependency`] holds. The runner knows how
/// to build and launch one (`runner/mod.rs`).
pub(crate) trait AnySpec: Send + 'static {
    /// Builds the service as a child under `parent` and launches its task.
    fn launch_child(self: Box<Self>, host: &Arc<dyn Host>, parent: Parent) -> ServiceRef;
}

/// A child service of any type, as returned by [`Service::dependencies`].
///
/// Made with `.into()` from a service value or a [`ServiceSpec`].
pub struct Dependency {
    spec: Box<dyn AnySpec>,
    label: &'static str,
}

impl fmt::Debug for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Dependency").field(&self.label).finish()
    }
}

impl<T: IntoServiceSpec> From<T> for Dependency {
    fn from(spec: T) -> Self {
        Dependency {
            spec: Box::new(spec.into_spec()),
            label: short_type_name::<T::Service>(),
        }
    }
}

impl Dependency {
    pub(crate) fn create(self, host: &Arc<dyn Host>, parent: Parent) -> ServiceRef {
        self.spec.launch_child(host, parent)
    }
}
