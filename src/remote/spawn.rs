//! Remote supervision: factories a node registers by name, and [`RemoteChild`], the local
//! proxy a [`Supervisor`](crate::Supervisor) holds for a child that runs on another node.
//!
//! A node that [registers a factory](super::Node::factory) serves spawn requests for it, on
//! its control subject `modo.<system>.node.<node-id>.ctl` and in the queue group of
//! `modo.<system>.factory.<name>`, and lists it in its heartbeat. A [`RemoteChild`]'s start
//! picks an up node that lists the factory, asks it to spawn the child (a child of that
//! node's service) and export it under the proxy's unique name, and watches it (a pinned
//! watch: that node, that name). The proxy crashes when the child crashes, is stopped
//! without being asked, or its node is lost; its supervisor then applies its strategy as to
//! a local child, and the proxy's restart spawns again, on another node if the first is
//! down. Stopping the proxy stops the remote child. A node stops the children it spawned for
//! a node it no longer hears (their owner died, or was cut off).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::cluster::{self, Target};
use super::export::Export;
use super::wire::NodeId;
use super::{Node, RemoteAddr, RemoteError, RemoteMessage, check_name};
use crate::{
    Addr, Context, Handler, HookResult, IntoServiceSpec, Service, ServiceRef, ServiceSpec,
};

/// A request on a node's control subject, or a factory's subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Ctl {
    /// Spawn a child from `factory` and export it as `name`, for `owner`.
    Spawn {
        factory: String,
        name: String,
        owner: NodeId,
        owner_name: String,
    },
    /// Stop the child exported as `name`.
    Stop { name: String },
}

/// The reply to a [`Ctl`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum CtlReply {
    Spawned { node: NodeId, node_name: String },
    Stopped,
    NoFactory,
    Failed(String),
}

/// A factory, with its type erased: spawns a child under the node's service and exports it.
pub(crate) trait Factory: Send + Sync + 'static {
    /// Spawns and exports; returns the child and its export.
    fn spawn(
        &self,
        node: Node,
        name: String,
    ) -> BoxFuture<'static, Result<(ServiceRef, ServiceRef), RemoteError>>;
}

type Route<A> = Arc<dyn Fn(Export<A>) -> Export<A> + Send + Sync>;

struct Typed<A: Service> {
    make: Arc<dyn Fn() -> A + Send + Sync>,
    routes: Arc<Vec<Route<A>>>,
}

impl<A: Service> Factory for Typed<A> {
    fn spawn(
        &self,
        node: Node,
        name: String,
    ) -> BoxFuture<'static, Result<(ServiceRef, ServiceRef), RemoteError>> {
        let make = self.make.clone();
        let routes = self.routes.clone();
        Box::pin(async move {
            let service = node.service().ok_or(RemoteError::NodeNotRunning)?;
            let spec = ServiceSpec::new(make()).label(name.clone());
            let addr: Addr<A> = service
                .ask(super::node::AddChild(spec))
                .await
                .map_err(RemoteError::from)?
                .map_err(RemoteError::from)?;
            let mut export = node.export(name, addr.clone());
            for route in routes.iter() {
                export = route(export);
            }
            match export.start().await {
                Ok(export) => Ok((addr.service_ref(), export.service_ref())),
                Err(e) => {
                    let _ = service
                        .ask(super::node::RemoveChild(addr.service_ref()))
                        .await;
                    Err(e)
                }
            }
        })
    }
}

/// Registers a factory: [`Node::factory`](super::Node::factory), the message types its
/// children take from other nodes, then [`register`](Self::register).
#[must_use = "a factory does nothing until registered"]
pub struct FactoryBuilder<A: Service> {
    node: Node,
    name: String,
    make: Arc<dyn Fn() -> A + Send + Sync>,
    routes: Vec<Route<A>>,
}

impl<A: Service> fmt::Debug for FactoryBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactoryBuilder")
            .field("name", &self.name)
            .field("messages", &self.routes.len())
            .finish()
    }
}

impl<A: Service> FactoryBuilder<A> {
    pub(crate) fn new(node: Node, name: String, make: Arc<dyn Fn() -> A + Send + Sync>) -> Self {
        FactoryBuilder {
            node,
            name,
            make,
            routes: Vec::new(),
        }
    }

    /// The children take messages of type `M` from other nodes (as
    /// [`Export::message`](super::Export::message)).
    pub fn message<M>(mut self) -> Self
    where
        A: Handler<M>,
        M: RemoteMessage,
        <A as Handler<M>>::Reply: Serialize,
    {
        self.routes.push(Arc::new(|e: Export<A>| e.message::<M>()));
        self
    }

    /// Registers the factory: from now on this node spawns children from it when asked, and
    /// its heartbeat says so. Registering a name again replaces the factory.
    ///
    /// # Errors
    /// [`RemoteError::InvalidName`] for a bad name; [`RemoteError::NodeNotRunning`] if the
    /// node's service is not running.
    pub async fn register(self) -> Result<(), RemoteError> {
        check_name(&self.name)?;
        let service = self.node.service().ok_or(RemoteError::NodeNotRunning)?;
        let factory: Arc<dyn Factory> = Arc::new(Typed {
            make: self.make,
            routes: Arc::new(self.routes),
        });
        let fresh = self.node.add_factory(&self.name, factory);
        if fresh {
            service
                .ask(super::node::ServeFactory(self.name.clone()))
                .await
                .map_err(RemoteError::from)??;
        }
        self.node.cluster().add_factory(&self.name);
        Ok(())
    }
}

/// Serves one control request on this node.
pub(crate) async fn serve_ctl(node: &Node, ctl: Ctl) -> CtlReply {
    match ctl {
        Ctl::Spawn {
            factory,
            name,
            owner,
            owner_name,
        } => {
            let Some(make) = node.factory_named(&factory) else {
                return CtlReply::NoFactory;
            };
            if let Err(e) = check_name(&name) {
                return CtlReply::Failed(e.to_string());
            }
            let cluster = node.cluster();
            // The same name again (a proxy restarted before this node saw its child go):
            // the old child goes first.
            if let Some(old) = cluster.take_spawned(&name) {
                node.stop_spawned(old).await;
            }
            cluster.note_alive(owner, &owner_name);
            match make.spawn(node.clone(), name.clone()).await {
                Ok((child, export)) => {
                    cluster.add_spawned(name.clone(), owner, child, export);
                    // Its owner may have gone while it started.
                    if cluster.peer_up(owner) == Some(false)
                        && let Some(s) = cluster.take_spawned(&name)
                    {
                        node.stop_spawned(s).await;
                        return CtlReply::Failed(format!("the owner node {owner_name} is gone"));
                    }
                    tracing::info!(target: "modo", "spawned {name} from factory {factory} for node {owner_name}");
                    CtlReply::Spawned {
                        node: node.id(),
                        node_name: node.node_name().to_owned(),
                    }
                }
                Err(e) => CtlReply::Failed(e.to_string()),
            }
        }
        Ctl::Stop { name } => {
            if let Some(s) = node.cluster().take_spawned(&name) {
                node.stop_spawned(s).await;
            }
            CtlReply::Stopped
        }
    }
}

/// What the proxies of one [`RemoteChildSpec`] share across restarts.
#[derive(Debug, Default)]
struct Shared {
    holder: Option<(NodeId, Arc<str>)>,
    spawns: u64,
}

/// A child to run on another node, from the factory registered there under a name: give it
/// to a [`Supervisor`](crate::Supervisor) (`sup.supervise_with(spec.clone(), policy)`, or
/// `sup.supervise(move || spec.proxy())`), and send to the child through
/// [`remote`](Self::remote).
///
/// Made by [`Node::remote_child`](super::Node::remote_child), with a unique export name
/// (`<factory>-<random>`) that every respawn of the child uses, so [`remote`](Self::remote)
/// stays valid across restarts and moves (a call between a crash and the respawn fails with
/// [`RemoteError::NoResponders`], or succeeds after it with
/// [`RemoteAddr::with_retries`]).
pub struct RemoteChildSpec<A> {
    node: Node,
    factory: Arc<str>,
    name: Arc<str>,
    spawn_timeout: Duration,
    shared: Arc<Mutex<Shared>>,
    _child: PhantomData<fn() -> A>,
}

impl<A> Clone for RemoteChildSpec<A> {
    fn clone(&self) -> Self {
        RemoteChildSpec {
            node: self.node.clone(),
            factory: self.factory.clone(),
            name: self.name.clone(),
            spawn_timeout: self.spawn_timeout,
            shared: self.shared.clone(),
            _child: PhantomData,
        }
    }
}

impl<A> fmt::Debug for RemoteChildSpec<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteChildSpec")
            .field("factory", &self.factory)
            .field("name", &self.name)
            .finish()
    }
}

impl<A: Service> RemoteChildSpec<A> {
    pub(crate) fn new(node: Node, factory: &str, timeout: Duration) -> Self {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        RemoteChildSpec {
            node,
            factory: Arc::from(factory),
            name: Arc::from(format!("{factory}-{}", &suffix[..12])),
            spawn_timeout: timeout,
            shared: Arc::default(),
            _child: PhantomData,
        }
    }

    /// The name the child is exported under, on whichever node runs it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The factory's name.
    pub fn factory(&self) -> &str {
        &self.factory
    }

    /// The bound on one spawn request (default: the node's request timeout).
    pub fn spawn_timeout(mut self, timeout: Duration) -> Self {
        self.spawn_timeout = timeout;
        self
    }

    /// A typed handle on the child, wherever it runs (see the type's docs).
    pub fn remote(&self) -> RemoteAddr<A> {
        RemoteAddr::new(
            self.node.clone(),
            self.name.clone(),
            self.node.export_subject(&self.name),
            self.node.request_timeout(),
        )
    }

    /// The node that runs (or last ran) the child: its id and name.
    pub fn holder(&self) -> Option<(NodeId, String)> {
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        shared.holder.as_ref().map(|(id, n)| (*id, n.to_string()))
    }

    /// How many times the child was spawned.
    pub fn spawns(&self) -> u64 {
        self.shared.lock().unwrap_or_else(|e| e.into_inner()).spawns
    }

    /// A fresh proxy (for a factory: `sup.supervise(move || spec.proxy())`).
    pub fn proxy(&self) -> RemoteChild<A> {
        RemoteChild {
            spec: self.clone(),
            entry: None,
        }
    }
}

impl<A: Service> IntoServiceSpec for RemoteChildSpec<A> {
    type Service = RemoteChild<A>;

    fn into_spec(self) -> ServiceSpec<RemoteChild<A>> {
        ServiceSpec::from_factory(move || self.proxy())
    }
}

/// The local proxy of a child running on another node (see [`RemoteChildSpec`]): an
/// ordinary service, so any [`Supervisor`](crate::Supervisor) holds it like a local child.
/// Running while the remote child runs; crashed with a
/// [`RemoteDown`](super::RemoteDown) when the child crashed, stopped unasked, or its node was
/// lost; its start spawns the child, its stop stops it.
pub struct RemoteChild<A> {
    spec: RemoteChildSpec<A>,
    entry: Option<(u64, NodeId)>,
}

impl<A> fmt::Debug for RemoteChild<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteChild")
            .field("factory", &self.spec.factory)
            .field("name", &self.spec.name)
            .field("entry", &self.entry)
            .finish()
    }
}

impl<A: Service> RemoteChild<A> {
    /// Asks `to` (a node's control subject, or the factory's queue subject) to spawn.
    async fn request_spawn(&self, subject: String) -> Result<(NodeId, Arc<str>), RemoteError> {
        let node = &self.spec.node;
        node.check_open()?;
        let ctl = Ctl::Spawn {
            factory: self.spec.factory.to_string(),
            name: self.spec.name.to_string(),
            owner: node.id(),
            owner_name: node.node_name().to_owned(),
        };
        let request = async_nats::Request::new()
            .payload(cluster::encode(&ctl).into())
            .timeout(Some(self.spec.spawn_timeout));
        let reply = node
            .client()
            .send_request(subject, request)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => RemoteError::NoFactory {
                    factory: self.spec.factory.to_string(),
                },
                RequestErrorKind::TimedOut => RemoteError::Timeout {
                    name: self.spec.name.clone(),
                    timeout: self.spec.spawn_timeout,
                },
                _ => RemoteError::Disconnected {
                    reason: e.to_string(),
                },
            })?;
        let reply: CtlReply = cluster::decode(&reply.payload, "control reply")
            .map_err(|e| RemoteError::from_wire(&self.spec.name, e))?;
        match reply {
            CtlReply::Spawned { node, node_name } => Ok((node, Arc::from(node_name))),
            CtlReply::NoFactory => Err(RemoteError::NoFactory {
                factory: self.spec.factory.to_string(),
            }),
            CtlReply::Failed(what) => Err(RemoteError::Failed {
                name: self.spec.name.clone(),
                what,
            }),
            CtlReply::Stopped => Err(RemoteError::Failed {
                name: self.spec.name.clone(),
                what: "unexpected reply to a spawn".into(),
            }),
        }
    }
}

impl<A: Service> Service for RemoteChild<A> {
    fn label(&self) -> Cow<'static, str> {
        Cow::Owned(format!("remote {}", self.spec.name))
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let node = self.spec.node.clone();
        let cluster = node.cluster();
        let candidates = cluster.offering(&self.spec.factory);
        let (turn, last) = {
            let shared = self.spec.shared.lock().unwrap_or_else(|e| e.into_inner());
            (shared.spawns, shared.holder.as_ref().map(|(id, _)| *id))
        };
        // Round robin over the up nodes that offer the factory, not the last holder when
        // another one is there (it crashed the child, or was lost).
        let mut order: Vec<(NodeId, Arc<str>)> = candidates
            .iter()
            .filter(|(id, _)| Some(*id) != last)
            .cloned()
            .collect();
        if order.is_empty() {
            order = candidates;
        }
        let subject = match order.get(usize::try_from(turn).unwrap_or(0) % order.len().max(1)) {
            Some((id, _)) => node.ctl_subject(*id),
            // Nobody heard yet: the factory's queue group picks one.
            None => node.factory_subject(&self.spec.factory),
        };
        let (holder, holder_name) = self.request_spawn(subject).await?;
        {
            let mut shared = self.spec.shared.lock().unwrap_or_else(|e| e.into_inner());
            shared.holder = Some((holder, holder_name.clone()));
            shared.spawns += 1;
        }
        ctx.log().info(format_args!(
            "{} runs on node {holder_name}",
            self.spec.name
        ));
        // Followed by the detector even before its first heartbeat reaches this node (a
        // holder that dies right after its reply is then heard unreachable all the same).
        cluster.note_alive(holder, &holder_name);
        let me = ctx.myself().service_ref();
        let (id, actions) = cluster.add_entry(
            Target::Pinned(holder, self.spec.name.clone()),
            me.clone(),
            true,
            None,
        );
        self.entry = Some((id, holder));
        node.run_actions(actions);
        // However this run ends (a stop, a crash, a restart by the supervisor), the remote
        // child ends with it.
        let name = self.spec.name.clone();
        ctx.add_async_context(async move {
            let cluster = node.cluster();
            cluster.remove_entry(id, &me);
            if cluster.peer_up(holder) != Some(false) {
                let ctl = Ctl::Stop {
                    name: name.to_string(),
                };
                let request = async_nats::Request::new()
                    .payload(cluster::encode(&ctl).into())
                    .timeout(Some(Duration::from_secs(2)));
                if let Err(e) = node
                    .client()
                    .send_request(node.ctl_subject(holder), request)
                    .await
                {
                    tracing::warn!(target: "modo", "remote {name}: could not ask node {holder} to stop it: {e}");
                }
            }
        });
        Ok(())
    }
}

/// Which node runs a remote child now: `proxy.ask(GetHolder)`.
#[derive(Debug, Clone, Copy)]
pub struct GetHolder;

impl<A: Service> Handler<GetHolder> for RemoteChild<A> {
    type Reply = Option<(NodeId, String)>;

    async fn handle(&mut self, _: GetHolder, _ctx: &mut Context<Self>) -> Self::Reply {
        self.spec.holder()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_frames_round_trip() {
        for ctl in [
            Ctl::Spawn {
                factory: "f".into(),
                name: "f-1".into(),
                owner: NodeId([3; 16]),
                owner_name: "a".into(),
            },
            Ctl::Stop { name: "f-1".into() },
        ] {
            let back: Ctl = cluster::decode(&cluster::encode(&ctl), "control").unwrap();
            assert_eq!(back, ctl);
        }
        let reply = CtlReply::Spawned {
            node: NodeId([1; 16]),
            node_name: "b".into(),
        };
        let back: CtlReply = cluster::decode(&cluster::encode(&reply), "reply").unwrap();
        assert_eq!(back, reply);
    }
}
