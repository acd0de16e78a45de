//! The cluster graph: every node answers a request on `modo.<system>.graph` with its own
//! registry graph; the asking node gathers the answers until a deadline (scatter-gather)
//! into a [`ClusterGraph`].

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::cluster;
use super::wire::NodeId;
use super::{Node, RemoteError};
use crate::ServiceState;
use crate::registry::{ClusterGraph, Graph, Member, MemberState, Node as Service};

/// One service, on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WireService {
    id: [u8; 16],
    label: String,
    shortlabel: String,
    type_name: String,
    name: Option<String>,
    parent: Option<[u8; 16]>,
    children: Vec<[u8; 16]>,
    depth: u32,
    state: u8,
    restart_count: u32,
    tasks: Vec<String>,
    flags: Vec<String>,
}

/// A node's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GraphReply {
    pub(crate) node: NodeId,
    pub(crate) name: String,
    pub(crate) services: Vec<WireService>,
}

/// Type names of remote services, kept for the life of the process (a graph's services name
/// their type as `&'static str`); bounded: past 4,096 distinct names, `"?"`.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(known) = names.get(name) {
        return known;
    }
    if names.len() >= 4096 {
        return "?";
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.insert(leaked);
    leaked
}

pub(crate) fn to_wire(graph: &Graph) -> Vec<WireService> {
    graph
        .nodes()
        .into_iter()
        .map(|n| WireService {
            id: *n.id.as_bytes(),
            label: n.label.clone(),
            shortlabel: n.shortlabel.clone(),
            type_name: n.type_name.to_owned(),
            name: n.name.clone(),
            parent: n.parent.map(|p| *p.as_bytes()),
            children: n.children.iter().map(|c| *c.as_bytes()).collect(),
            depth: u32::try_from(n.depth).unwrap_or(u32::MAX),
            state: n.state.code(),
            restart_count: n.restart_count,
            tasks: n.tasks.clone(),
            flags: n.flags.clone(),
        })
        .collect()
}

pub(crate) fn from_wire(services: Vec<WireService>) -> Graph {
    let nodes = services
        .into_iter()
        .enumerate()
        .map(|(seq, w)| Service {
            id: uuid::Uuid::from_bytes(w.id),
            label: w.label,
            shortlabel: w.shortlabel,
            type_name: intern(&w.type_name),
            name: w.name,
            parent: w.parent.map(uuid::Uuid::from_bytes),
            children: w.children.into_iter().map(uuid::Uuid::from_bytes).collect(),
            depth: w.depth as usize,
            state: ServiceState::from_code(w.state).unwrap_or(ServiceState::Shutdown),
            restart_count: w.restart_count,
            tasks: w.tasks,
            flags: w.flags,
            seq: seq as u64,
        })
        .collect();
    Graph::from_nodes(nodes)
}

/// Gathers the cluster graph (see [`Node::cluster_graph`]).
pub(crate) async fn gather(node: &Node, wait: Duration) -> Result<ClusterGraph, RemoteError> {
    node.check_open()?;
    let client = node.client();
    let inbox = client.new_inbox();
    let mut replies =
        client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| RemoteError::Disconnected {
                reason: e.to_string(),
            })?;
    client
        .publish_with_reply(node.graph_subject(), inbox, bytes::Bytes::new())
        .await
        .map_err(|e| RemoteError::Disconnected {
            reason: e.to_string(),
        })?;
    let _ = client.flush().await;
    let peers = node.cluster().peers();
    let expected: HashSet<NodeId> = peers.iter().filter(|p| p.up).map(|p| p.id).collect();
    let mut got: HashMap<NodeId, GraphReply> = HashMap::new();
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        // Every node heard up answered: no need to wait for the deadline.
        if !expected.is_empty() && expected.iter().all(|id| got.contains_key(id)) {
            break;
        }
        tokio::select! {
            () = &mut deadline => break,
            msg = replies.next() => match msg {
                Some(msg) => match cluster::decode::<GraphReply>(&msg.payload, "graph reply") {
                    Ok(reply) => {
                        got.insert(reply.node, reply);
                    }
                    Err(e) => tracing::debug!(target: "modo", "a graph reply did not decode: {e}"),
                },
                None => break,
            },
        }
    }
    let _ = replies.unsubscribe().await;
    let me = node.id();
    let mut members = Vec::new();
    for peer in &peers {
        let state = if peer.up {
            MemberState::Up
        } else if peer.left {
            MemberState::Left
        } else {
            MemberState::Unreachable
        };
        let reply = got.remove(&peer.id);
        let answered = reply.is_some();
        let graph = reply.map_or_else(Graph::default, |r| from_wire(r.services));
        members.push(
            Member::new(peer.id.to_string(), peer.name.to_string(), state, graph)
                .this_node(peer.id == me)
                .answered(answered),
        );
    }
    // Nodes that answered before their first heartbeat reached this one.
    for (id, reply) in got {
        members.push(
            Member::new(
                id.to_string(),
                reply.name,
                MemberState::Up,
                from_wire(reply.services),
            )
            .this_node(id == me),
        );
    }
    Ok(ClusterGraph::new(node.system(), members))
}

/// Answers graph requests with this node's registry graph, until the subscription ends.
pub(crate) async fn serve(node: Node, system: crate::System, mut requests: async_nats::Subscriber) {
    while let Some(msg) = requests.next().await {
        let Some(reply) = msg.reply else { continue };
        let graph = system.registry().graph().await;
        let answer = GraphReply {
            node: node.id(),
            name: node.node_name().to_owned(),
            services: to_wire(&graph),
        };
        if let Err(e) = node
            .client()
            .publish(reply, cluster::encode(&answer).into())
            .await
        {
            tracing::debug!(target: "modo", "could not answer a graph request: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_graph_survives_the_wire() {
        struct App;
        impl crate::Service for App {
            fn dependencies(&mut self) -> Vec<crate::Dependency> {
                vec![Leaf.into()]
            }
        }
        struct Leaf;
        impl crate::Service for Leaf {}
        let system = crate::System::new();
        let app = system.spawn(App).await.unwrap();
        let graph = system.registry().graph().await;
        let reply = GraphReply {
            node: NodeId([1; 16]),
            name: "n".into(),
            services: to_wire(&graph),
        };
        let back: GraphReply = cluster::decode(&cluster::encode(&reply), "graph").unwrap();
        let rebuilt = from_wire(back.services);
        assert_eq!(rebuilt.to_dot(), graph.to_dot());
        assert_eq!(
            rebuilt.path(graph.children(app.id())[0].id),
            ["App", "Leaf"]
        );
        system.shutdown().await.unwrap();
    }
}
