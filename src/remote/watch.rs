//! Watching across hosts: [`RemoteWatch`], a local service that stands for a remote node or
//! an exported name, and ends when its target goes down, so that a local watcher hears it
//! through the kernel's own [`Context::watch`](crate::Context::watch) and
//! [`Service::on_down`](crate::Service::on_down).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use super::cluster::Target;
use super::wire::NodeId;
use super::{Node, RemoteError, check_name};
use crate::{
    Addr, Context, CrashReason, Down, DownReason, Handler, HookResult, Recipient, Service,
    ServiceRef,
};

/// What a [`RemoteWatch`] stands for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WatchTarget {
    /// A node of the system, by its name ([`NodeOptions::node_name`](super::NodeOptions::node_name)):
    /// up while some node of that name sends heartbeats. A node restarted under the same name
    /// is the same target.
    Node(String),
    /// An exported name: up while some node that sends heartbeats exports it, and the
    /// exported service is not crashed or stopped there.
    Name(String),
}

impl WatchTarget {
    /// A node, by name.
    pub fn node(name: impl Into<String>) -> Self {
        WatchTarget::Node(name.into())
    }

    /// An exported name.
    pub fn name(name: impl Into<String>) -> Self {
        WatchTarget::Name(name.into())
    }

    fn label(&self) -> &str {
        match self {
            WatchTarget::Node(n) | WatchTarget::Name(n) => n,
        }
    }
}

impl fmt::Display for WatchTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchTarget::Node(n) => write!(f, "node {n}"),
            WatchTarget::Name(n) => write!(f, "name {n}"),
        }
    }
}

/// Why a remote target went down.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DownCause {
    /// No heartbeat from the node for `silent_for` (more than its allowed missed heartbeats):
    /// it died, or its connection (or this node's) is cut. Erlang's `noconnection`.
    Unreachable {
        /// The node's name.
        node: String,
        /// Its id.
        id: NodeId,
        /// How long it was silent when it was declared unreachable.
        silent_for: Duration,
    },
    /// The node left: its service stopped, or it was closed.
    NodeLeft {
        /// The node's name.
        node: String,
        /// Its id.
        id: NodeId,
    },
    /// The exported service stopped there, or its export was withdrawn.
    Stopped {
        /// The name of the node that reported it (empty when unknown).
        node: String,
    },
    /// The exported service crashed there.
    Crashed {
        /// The name of the node that reported it.
        node: String,
        /// The crash reason, as that node wrote it.
        reason: String,
    },
}

impl fmt::Display for DownCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownCause::Unreachable {
                node, silent_for, ..
            } => write!(
                f,
                "node {node} unreachable: no heartbeat for {}ms",
                silent_for.as_millis()
            ),
            DownCause::NodeLeft { node, .. } => write!(f, "node {node} left"),
            DownCause::Stopped { node } if node.is_empty() => f.write_str("stopped"),
            DownCause::Stopped { node } => write!(f, "stopped on node {node}"),
            DownCause::Crashed { node, reason } => write!(f, "crashed on node {node}: {reason}"),
        }
    }
}

/// A remote target that went down: the error a [`RemoteWatch`] (or a
/// [`RemoteChild`](super::RemoteChild)) crashes with. A watcher finds it in its
/// [`Down`] with [`RemoteDown::of`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{target} is down: {cause}")]
pub struct RemoteDown {
    /// What went down.
    pub target: WatchTarget,
    /// Why.
    pub cause: DownCause,
}

impl RemoteDown {
    /// The remote detail of a [`Down`] heard from a [`RemoteWatch`] or a
    /// [`RemoteChild`](super::RemoteChild) that crashed; `None` for a clean stop (the remote
    /// service stopped, or its node left: [`DownReason::Stopped`]) and for local services.
    pub fn of(down: &Down) -> Option<&RemoteDown> {
        match down.reason() {
            DownReason::Crashed(reason) => Self::of_reason(reason),
            _ => None,
        }
    }

    /// The remote detail of a crash reason.
    pub fn of_reason(reason: &CrashReason) -> Option<&RemoteDown> {
        match reason {
            CrashReason::Error(e) => e.downcast_ref::<RemoteDown>(),
            _ => None,
        }
    }

    /// Whether the node was lost (unreachable or gone), not only the service.
    pub fn is_node_lost(&self) -> bool {
        matches!(
            self.cause,
            DownCause::Unreachable { .. } | DownCause::NodeLeft { .. }
        )
    }
}

/// Told to a watch's `on_up` recipient when its target, after it went down, is up again
/// (a node restarted under the same name, a name exported again): with a fresh
/// [`RemoteWatch`] for the next time, already watching. Watch it again
/// ([`Context::watch`](crate::Context::watch)) to hear of its next down.
#[derive(Debug, Clone)]
pub struct RemoteUp {
    /// What is up again.
    pub target: WatchTarget,
    /// The node it was heard on (its id and name).
    pub node: (NodeId, String),
    /// The fresh watch.
    pub watch: Addr<RemoteWatch>,
}

/// A local service that stands for a remote target (a node, or an exported name): it runs
/// while the target is up, and ends as soon as the target is heard down, so that any local
/// service that [watches](crate::Context::watch) it hears a [`Down`] in its
/// [`on_down`](crate::Service::on_down), as for a local service:
///
/// - the node is unreachable (no heartbeat for [`NodeOptions::heartbeat_misses`] intervals:
///   killed, or a connection cut): it **crashes** with [`RemoteDown`]
///   ([`DownCause::Unreachable`]);
/// - the exported service crashed there: it crashes with [`DownCause::Crashed`];
/// - the exported service stopped, its export was withdrawn, or its node left cleanly: it
///   **stops** ([`DownReason::Stopped`]).
///
/// Made by [`Node::watch`] (a child of the node's service). A watch fires once; with
/// [`WatchBuilder::on_up`] the node keeps looking, and when the target is up again it makes
/// a fresh `RemoteWatch` and tells it in a [`RemoteUp`]. Stopping a running `RemoteWatch`
/// cancels the watch.
///
/// [`NodeOptions::heartbeat_misses`]: super::NodeOptions::heartbeat_misses
pub struct RemoteWatch {
    node: Node,
    target: Target,
    on_up: Option<Recipient<RemoteUp>>,
    /// The entry this proxy holds in the node's table (set once started).
    entry: Option<u64>,
    /// An entry being re-armed: this proxy takes it over.
    rearm: Option<u64>,
}

impl fmt::Debug for RemoteWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteWatch")
            .field("target", &self.target)
            .field("entry", &self.entry)
            .finish()
    }
}

impl Service for RemoteWatch {
    fn label(&self) -> Cow<'static, str> {
        Cow::Owned(format!("watch {}", self.target.public()))
    }

    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let me = ctx.myself().service_ref();
        let cluster = self.node.cluster();
        let actions = match self.rearm.take() {
            Some(id) => {
                self.entry = Some(id);
                cluster.rearm(id, Some(me))
            }
            None => {
                let (id, actions) =
                    cluster.add_entry(self.target.clone(), me, false, self.on_up.clone());
                self.entry = Some(id);
                actions
            }
        };
        self.node.run_actions(actions);
        Ok(())
    }

    async fn on_stop(&mut self, ctx: &mut Context<Self>) -> HookResult {
        if let Some(id) = self.entry {
            self.node
                .cluster()
                .remove_entry(id, &ctx.myself().service_ref());
        }
        Ok(())
    }
}

/// Builds a watch: [`Node::watch`], then [`on_up`](Self::on_up) optionally, then
/// [`start`](Self::start).
#[derive(Debug)]
#[must_use = "a watch does nothing until started"]
pub struct WatchBuilder {
    node: Node,
    target: WatchTarget,
    on_up: Option<Recipient<RemoteUp>>,
    wait: Duration,
}

impl WatchBuilder {
    pub(crate) fn new(node: Node, target: WatchTarget) -> Self {
        let wait = node.cluster().allowance(node.cluster().interval);
        WatchBuilder {
            node,
            target,
            on_up: None,
            wait,
        }
    }

    /// After the watch fires, keep looking: when the target is up again, make a fresh
    /// [`RemoteWatch`] and tell `to` a [`RemoteUp`] carrying it. The lookout ends when `to`
    /// can no longer be told (its service stopped).
    pub fn on_up(mut self, to: Recipient<RemoteUp>) -> Self {
        self.on_up = Some(to);
        self
    }

    /// How long [`start`](Self::start) waits to hear the target (default: the heartbeat
    /// allowance, `heartbeat_interval x heartbeat_misses`, so that a node that just joined
    /// has heard everyone's heartbeat).
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Starts the watch: returns the [`RemoteWatch`] (running) once the target is heard up.
    /// Watch it with [`Context::watch`](crate::Context::watch) to hear when the target goes
    /// down.
    ///
    /// # Errors
    /// [`RemoteError::InvalidName`] for a bad name; [`RemoteError::NodeNotRunning`] if the
    /// node's service is not running; [`RemoteError::UnknownTarget`] if the target is not
    /// heard up within the wait; [`RemoteError::Local`] if the watch's service did not start.
    ///
    /// # Cancel safety
    /// Dropping the future may leave a started watch running under the node's service.
    pub async fn start(self) -> Result<Addr<RemoteWatch>, RemoteError> {
        check_name(self.target.label())?;
        let service = self.node.service().ok_or(RemoteError::NodeNotRunning)?;
        let target = match &self.target {
            WatchTarget::Node(n) => Target::Node(n.as_str().into()),
            WatchTarget::Name(n) => Target::Name(n.as_str().into()),
        };
        let cluster = self.node.cluster();
        let deadline = tokio::time::Instant::now() + self.wait;
        while !cluster.is_up(&target) {
            if tokio::time::Instant::now() >= deadline {
                return Err(RemoteError::UnknownTarget {
                    target: self.target.to_string(),
                });
            }
            // Heartbeats come at least every interval; a node that probed hears sooner.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let watch = RemoteWatch {
            node: self.node.clone(),
            target,
            on_up: self.on_up,
            entry: None,
            rearm: None,
        };
        match service.ask(super::node::AddWatch(watch)).await {
            Ok(res) => res.map_err(RemoteError::from),
            Err(e) => Err(RemoteError::from(e)),
        }
    }
}

impl RemoteWatch {
    /// A proxy that takes over fired entry `entry` (after an up).
    pub(crate) fn rearmed(
        node: Node,
        target: Target,
        on_up: Option<Recipient<RemoteUp>>,
        entry: u64,
    ) -> Self {
        RemoteWatch {
            node,
            target,
            on_up,
            entry: None,
            rearm: Some(entry),
        }
    }
}

/// Which target a [`RemoteWatch`] stands for: `watch.ask(GetWatchTarget)`.
#[derive(Debug, Clone, Copy)]
pub struct GetWatchTarget;

impl Handler<GetWatchTarget> for RemoteWatch {
    type Reply = WatchTarget;

    async fn handle(&mut self, _: GetWatchTarget, _ctx: &mut Context<Self>) -> WatchTarget {
        self.target.public()
    }
}

/// Crashes or stops a proxy as a down action says.
pub(crate) fn end_proxy(proxy: &ServiceRef, down: super::watch::RemoteDown, stop: bool) {
    if stop {
        tracing::info!(target: "modo", "{}: {down}", proxy.label());
        let _ = proxy.send_lifecycle(crate::Lifecycle::Stop);
    } else {
        tracing::warn!(target: "modo", "{}: {down}", proxy.label());
        proxy.crash(CrashReason::error(down));
    }
}
