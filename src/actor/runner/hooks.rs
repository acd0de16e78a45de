//! The service's async hooks as values: `runner.run_hook::<OnStart>()` runs one with panic
//! capture, with no macro and no boxing (each hook is a zero-sized type naming its method).

use std::future::Future;

use super::super::context::Context;
use super::super::error::{Hook, HookResult};
use super::super::service::Service;

/// One of [`Service`]'s async hooks.
pub(super) trait HookFn<A: Service> {
    /// Its name, for errors and logs.
    const HOOK: Hook;

    /// Calls the hook.
    fn call<'a>(
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
    ) -> impl Future<Output = HookResult> + Send + 'a;
}

/// [`Service::on_first_start`].
pub(super) struct OnFirstStart;

impl<A: Service> HookFn<A> for OnFirstStart {
    const HOOK: Hook = Hook::OnFirstStart;

    fn call<'a>(
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        actor.on_first_start(ctx)
    }
}

/// [`Service::on_start`].
pub(super) struct OnStart;

impl<A: Service> HookFn<A> for OnStart {
    const HOOK: Hook = Hook::OnStart;

    fn call<'a>(
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        actor.on_start(ctx)
    }
}

/// [`Service::on_started`].
pub(super) struct OnStarted;

impl<A: Service> HookFn<A> for OnStarted {
    const HOOK: Hook = Hook::OnStarted;

    fn call<'a>(
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        actor.on_started(ctx)
    }
}

/// [`Service::on_stop`].
pub(super) struct OnStop;

impl<A: Service> HookFn<A> for OnStop {
    const HOOK: Hook = Hook::OnStop;

    fn call<'a>(
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        actor.on_stop(ctx)
    }
}

/// [`Service::on_shutdown`].
pub(super) struct OnShutdown;

impl<A: Service> HookFn<A> for OnShutdown {
    const HOOK: Hook = Hook::OnShutdown;

    fn call<'a>(
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        actor.on_shutdown(ctx)
    }
}

/// [`Service::on_restart`].
pub(super) struct OnRestart;

impl<A: Service> HookFn<A> for OnRestart {
    const HOOK: Hook = Hook::OnRestart;

    fn call<'a>(
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        actor.on_restart(ctx)
    }
}

/// [`Service::on_thread_started`].
pub(super) struct OnThreadStarted;

impl<A: Service> HookFn<A> for OnThreadStarted {
    const HOOK: Hook = Hook::OnThreadStarted;

    fn call<'a>(
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        actor.on_thread_started(ctx)
    }
}

/// [`Service::on_thread_stop`].
pub(super) struct OnThreadStop;

impl<A: Service> HookFn<A> for OnThreadStop {
    const HOOK: Hook = Hook::OnThreadStop;

    fn call<'a>(
        actor: &'a mut A,
        ctx: &'a mut Context<A>,
    ) -> impl Future<Output = HookResult> + Send + 'a {
        actor.on_thread_stop(ctx)
    }
}
