//! The node as a service: what it does when started and stopped, its children (exports,
//! watch proxies, children spawned for other nodes), and the factory requests it serves.

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::StreamExt;

use super::super::RemoteError;
use super::super::cluster;
use super::super::export::{AddExport, ExportService};
use super::super::spawn::{Ctl, CtlReply};
use super::super::watch::RemoteWatch;
use super::{ConnectionState, Node};
use crate::{
    Addr, ChildAction, Context, CrashReason, Error, Handler, HookResult, Service, ServiceRef,
    ServiceSpec, WeakAddr,
};

pub(super) fn show_state(addr: &Addr<Node>, state: ConnectionState) {
    let diag = addr.diag();
    for other in ConnectionState::ALL {
        if other != state {
            diag.unset_flag(other.flag());
        }
    }
    diag.set_flag(state.flag());
}

/// A node already in a tree cannot be spawned a second time.
#[derive(Debug, thiserror::Error)]
#[error("this node already runs as a service ({0}); spawn it once")]
struct AlreadySpawned(String);

impl Service for Node {
    fn label(&self) -> Cow<'static, str> {
        Cow::Owned(format!("Node({})", self.inner.system))
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        {
            let mut service = self.inner.service.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(other) = service.as_ref().and_then(WeakAddr::upgrade)
                && other != *ctx.myself()
                && !other.is_terminated()
            {
                return Err(Box::new(AlreadySpawned(format!("{other:?}"))));
            }
            *service = Some(ctx.myself().downgrade());
        }
        let mut state = self.inner.state.clone();
        let me = ctx.myself().downgrade();
        let system = self.inner.system.clone();
        let id = self.inner.id;
        show_state(ctx.myself(), *state.borrow_and_update());
        ctx.log().info(format_args!(
            "node {id} of system {system}: {}",
            *state.borrow()
        ));
        self.cluster().leaving.store(false, Ordering::Release);
        self.start_membership(ctx).await?;
        ctx.spawn_named("nats-connection", async move {
            // The callback raised the flag already; this task logs the change.
            while state.changed().await.is_ok() {
                let now = *state.borrow_and_update();
                if me.upgrade().is_none() {
                    break;
                }
                match now {
                    ConnectionState::Connected => {
                        tracing::info!(target: "modo", "node {id} of system {system}: connected")
                    }
                    _ => {
                        tracing::warn!(target: "modo", "node {id} of system {system}: {now}")
                    }
                }
            }
        });
        Ok(())
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        // The others hear this node leave at once, not after its heartbeats stop.
        self.cluster().leaving.store(true, Ordering::Release);
        if self.check_open().is_ok() {
            self.publish_heartbeat(true).await;
        }
        Ok(())
    }

    async fn on_child_crashed(
        &mut self,
        child: &ServiceRef,
        reason: &CrashReason,
        ctx: &mut Context<Self>,
    ) -> ChildAction {
        // A child spawned for another node: its owner's supervisor decides (it heard of the
        // crash through the export's down notice). A watch proxy: it crashed on purpose.
        if self.cluster().is_spawned(child) {
            self.cluster().forget_spawned(child);
            ctx.log()
                .warn(format_args!("{} crashed: {reason}", child.label()));
            return ChildAction::Remove;
        }
        if child.downcast::<RemoteWatch>().is_some() {
            return ChildAction::Remove;
        }
        ChildAction::Escalate
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        // The exports (children) have answered what they took: send it before going on.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.inner.client.flush()).await;
        Ok(())
    }
}

impl<A: Service> Handler<AddExport<A>> for Node {
    type Reply = Result<Addr<ExportService<A>>, Error>;

    async fn handle(&mut self, msg: AddExport<A>, ctx: &mut Context<Self>) -> Self::Reply {
        ctx.add_runtime_dependency(msg.0).await
    }
}

/// Stops every export of the node (its children).
pub(super) struct StopExports;

impl Handler<StopExports> for Node {
    type Reply = ();

    async fn handle(&mut self, _: StopExports, ctx: &mut Context<Self>) {
        for child in ctx.children().to_vec() {
            let _ = ctx.remove_dependency(&child).await;
        }
    }
}

impl Node {
    /// Subscribes to a factory's subject (in the queue group of the nodes offering it) and
    /// serves its spawn requests.
    pub(super) async fn serve_factory(&self, ctx: &mut Context<Self>, name: &str) -> HookResult {
        let subject = self.factory_subject(name);
        let sub = self
            .client()
            .queue_subscribe(subject.clone(), "factory".to_owned())
            .await
            .map_err(|e| {
                Box::new(SubscribeError(format!(
                    "cannot subscribe to {subject}: {e}"
                )))
            })?;
        let _ = self.client().flush().await;
        let node = self.clone();
        ctx.spawn_named(format!("factory {name}"), async move {
            let mut sub = sub;
            while let Some(msg) = sub.next().await {
                node.answer_ctl(msg).await;
            }
        });
        Ok(())
    }

    /// Answers one control request.
    pub(super) async fn answer_ctl(&self, msg: async_nats::Message) {
        let reply = match cluster::decode::<Ctl>(&msg.payload, "control request") {
            Ok(ctl) => super::super::spawn::serve_ctl(self, ctl).await,
            Err(e) => CtlReply::Failed(e.to_string()),
        };
        if let Some(to) = msg.reply
            && let Err(e) = self
                .client()
                .publish(to, cluster::encode(&reply).into())
                .await
        {
            tracing::debug!(target: "modo", "could not answer a control request: {e}");
        }
    }
}

/// A subscription the node's service needs failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct SubscribeError(pub(super) String);

/// Adds a watch proxy as a child of the node's service.
pub(crate) struct AddWatch(pub(crate) RemoteWatch);

impl Handler<AddWatch> for Node {
    type Reply = Result<Addr<RemoteWatch>, Error>;

    async fn handle(&mut self, msg: AddWatch, ctx: &mut Context<Self>) -> Self::Reply {
        ctx.add_runtime_dependency(msg.0).await
    }
}

/// Adds a spawned child as a child of the node's service.
pub(crate) struct AddChild<A: Service>(pub(crate) ServiceSpec<A>);

impl<A: Service> Handler<AddChild<A>> for Node {
    type Reply = Result<Addr<A>, Error>;

    async fn handle(&mut self, msg: AddChild<A>, ctx: &mut Context<Self>) -> Self::Reply {
        ctx.add_runtime_dependency(msg.0).await
    }
}

/// Stops a child of the node's service for good.
pub(crate) struct RemoveChild(pub(crate) ServiceRef);

impl Handler<RemoveChild> for Node {
    type Reply = ();

    async fn handle(&mut self, msg: RemoveChild, ctx: &mut Context<Self>) {
        if ctx.children().contains(&msg.0) {
            let _ = ctx.remove_dependency(&msg.0).await;
        } else {
            let _ = msg.0.stop().await;
        }
    }
}

/// Starts serving a newly registered factory.
pub(crate) struct ServeFactory(pub(crate) String);

impl Handler<ServeFactory> for Node {
    type Reply = Result<(), RemoteError>;

    async fn handle(&mut self, msg: ServeFactory, ctx: &mut Context<Self>) -> Self::Reply {
        self.serve_factory(ctx, &msg.0)
            .await
            .map_err(|e| RemoteError::Disconnected {
                reason: e.to_string(),
            })
    }
}
