//! Scoped services (Mode's `async with service:`): a service that lives exactly as long as a
//! piece of code, stopped when the code ends however it ends: returning, failing, panicking or
//! being cancelled.

use std::future::Future;
use std::ops::Deref;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use crate::{Addr, Error, IntoServiceSpec, Service, System};

/// A service that is stopped when this guard goes (see [`System::spawn_scoped`]): call
/// [`stop`](Self::stop) to stop it and hear how the stop went; if the guard is dropped
/// instead (an early return, a `?`, a panic, a cancelled future), the stop runs in the
/// background on the System's runtime. Derefs to the service's [`Addr`].
#[must_use = "the service is stopped as soon as the guard is dropped"]
#[derive(Debug)]
pub struct Scoped<A: Service> {
    addr: Addr<A>,
    system: System,
    /// Whether dropping the guard still has to stop the service.
    armed: bool,
}

impl<A: Service> Scoped<A> {
    /// The service's address.
    pub fn addr(&self) -> &Addr<A> {
        &self.addr
    }

    /// Stops the service now and says how the stop went.
    ///
    /// # Errors
    /// As [`ServiceRef::stop`](crate::ServiceRef::stop).
    pub async fn stop(mut self) -> Result<(), Error> {
        self.armed = false;
        self.addr.stop().await
    }
}

impl<A: Service> Deref for Scoped<A> {
    type Target = Addr<A>;

    fn deref(&self) -> &Addr<A> {
        self.addr()
    }
}

impl<A: Service> Drop for Scoped<A> {
    fn drop(&mut self) {
        if self.armed {
            // Cannot await here: the stop goes on in the background.
            let addr = self.addr.clone();
            self.system.spawn_background(async move {
                let _ = addr.stop().await;
            });
        }
    }
}

impl System {
    /// Spawns `service` (returning once it has started, like [`spawn`](Self::spawn)) under a
    /// guard that stops it when dropped: for code that cannot use
    /// [`scoped`](Self::scoped)'s closure.
    ///
    /// ```
    /// use modo::prelude::*;
    ///
    /// struct Db;
    /// impl Service for Db {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let db = system.spawn_scoped(Db).await?;
    /// let id = db.id();
    /// db.stop().await?; // or let it drop: stopped in the background
    /// assert!(system.registry().service(id).await.is_none());
    /// # system.shutdown().await }
    /// ```
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn).
    pub async fn spawn_scoped<T: IntoServiceSpec>(
        &self,
        service: T,
    ) -> Result<Scoped<T::Service>, Error> {
        let addr = self.spawn(service).await?;
        Ok(Scoped {
            addr,
            system: self.clone(),
            armed: true,
        })
    }

    /// Starts `service`, runs `body` with its address, then stops the service, even if `body`
    /// panics (the panic goes on after the stop) or the returned future is dropped (the stop
    /// then runs in the background). Returns what `body` returned. Mode's `async with
    /// service:`.
    ///
    /// ```
    /// use modo::prelude::*;
    ///
    /// #[derive(Default)]
    /// struct Counter { n: u64 }
    /// impl Service for Counter {}
    /// struct Add(u64);
    /// impl Handler<Add> for Counter {
    ///     type Reply = u64;
    ///     async fn handle(&mut self, Add(n): Add, _ctx: &mut Context<Self>) -> u64 {
    ///         self.n += n;
    ///         self.n
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let total = system
    ///     .scoped(Counter::default(), |counter| async move {
    ///         counter.ask(Add(2)).await?;
    ///         counter.ask(Add(3)).await
    ///     })
    ///     .await??;
    /// assert_eq!(total, 5);
    /// assert!(system.roots().is_empty(), "stopped when the body ended");
    /// # system.shutdown().await }
    /// ```
    ///
    /// # Errors
    /// The spawn's error, or the stop's (the body's own result is inside the `Ok`).
    ///
    /// # Cancel safety
    /// Dropping the future stops the service in the background.
    pub async fn scoped<T, F, Fut, R>(&self, service: T, body: F) -> Result<R, Error>
    where
        T: IntoServiceSpec,
        F: FnOnce(Addr<T::Service>) -> Fut,
        Fut: Future<Output = R>,
    {
        let guard = self.spawn_scoped(service).await?;
        let out = AssertUnwindSafe(body(guard.addr().clone()))
            .catch_unwind()
            .await;
        let stopped = guard.stop().await;
        match out {
            Ok(r) => stopped.map(|()| r),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
