//! Snapshots of the live service graph.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::state::ServiceState;

/// One service in a [`Graph`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Node {
    /// The service's id.
    pub id: Uuid,
    /// Its label.
    pub label: String,
    /// Its log label.
    pub shortlabel: String,
    /// Its Rust type.
    pub type_name: &'static str,
    /// The name it was spawned under, if any.
    pub name: Option<String>,
    /// Its parent; `None` for a root.
    pub parent: Option<Uuid>,
    /// Its children, in the order they were added.
    pub children: Vec<Uuid>,
    /// 0 for a root.
    pub depth: usize,
    /// Its state when the snapshot was taken.
    pub state: ServiceState,
    /// How often it was restarted.
    pub restart_count: u32,
    /// Creation order in the System.
    pub(crate) seq: u64,
}

/// A consistent snapshot of every live service and how they hang together.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: BTreeMap<Uuid, Node>,
}

impl Graph {
    pub(crate) fn from_nodes(nodes: Vec<Node>) -> Self {
        Graph {
            nodes: nodes.into_iter().map(|n| (n.id, n)).collect(),
        }
    }

    /// Whether no service is live.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// How many services are live.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The node of service `id`.
    pub fn node(&self, id: Uuid) -> Option<&Node> {
        self.nodes.get(&id)
    }
}

/// A dependency graph over arbitrary nodes.
#[derive(Debug, Clone, Default)]
pub struct DependencyGraph;

/// The dependency graph has a cycle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle")]
pub struct CycleError;
