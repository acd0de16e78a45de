//! [`ClusterGraph`]: the service trees of every node of a cluster, each under its node, with
//! each node's state as the node that gathered them saw it. Gathered by
//! `modo::remote::Node::cluster_graph` (cargo feature `nats`); shown by the Worker's tree
//! dump and as Graphviz DOT.

use std::fmt;

use super::Graph;
use super::graph::dot_escape;

/// How a member of a cluster stood when the graph was gathered, as the gathering node saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemberState {
    /// Sending heartbeats.
    Up,
    /// Silent for longer than its allowed missed heartbeats (dead, or cut off).
    Unreachable,
    /// Left cleanly.
    Left,
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemberState::Up => "up",
            MemberState::Unreachable => "unreachable",
            MemberState::Left => "left",
        })
    }
}

/// One node of a [`ClusterGraph`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Member {
    /// The node's id (32 hex digits).
    pub id: String,
    /// The node's name.
    pub name: String,
    /// Its state as seen.
    pub state: MemberState,
    /// Whether it is the node that gathered the graph.
    pub this_node: bool,
    /// Whether it answered in time; a node that did not has an empty `graph`.
    pub answered: bool,
    /// Its service tree (its own System's registry graph).
    pub graph: Graph,
}

impl Member {
    /// A member.
    pub fn new(id: String, name: String, state: MemberState, graph: Graph) -> Self {
        Member {
            id,
            name,
            state,
            this_node: false,
            answered: true,
            graph,
        }
    }

    /// This member, marked as the gathering node.
    pub fn this_node(mut self, yes: bool) -> Self {
        self.this_node = yes;
        self
    }

    /// This member, marked as having answered or not.
    pub fn answered(mut self, yes: bool) -> Self {
        self.answered = yes;
        self
    }
}

/// The service trees of every node of a system, each under its node.
///
/// ```
/// use modo::registry::{ClusterGraph, Graph, Member, MemberState};
///
/// let cluster = ClusterGraph::new(
///     "shop",
///     vec![
///         Member::new("aa".repeat(16), "web".into(), MemberState::Up, Graph::default()),
///         Member::new("bb".repeat(16), "db".into(), MemberState::Unreachable, Graph::default())
///             .answered(false),
///     ],
/// );
/// assert_eq!(cluster.len(), 2);
/// assert_eq!(cluster.member("db").unwrap().state, MemberState::Unreachable);
/// let dot = cluster.to_dot();
/// assert!(dot.starts_with("digraph modo_cluster {"));
/// assert!(dot.contains("label=\"db (bbbbbbbb)\\nunreachable, no answer\""));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClusterGraph {
    system: String,
    members: Vec<Member>,
}

impl ClusterGraph {
    /// A cluster graph of `system`; members are kept sorted by name, then id.
    pub fn new(system: impl Into<String>, mut members: Vec<Member>) -> Self {
        members.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        ClusterGraph {
            system: system.into(),
            members,
        }
    }

    /// The system's name.
    pub fn system(&self) -> &str {
        &self.system
    }

    /// Every member, by name.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// The first member named `name` (several can share a name for a while: a node
    /// restarted, its old self not yet forgotten).
    pub fn member(&self, name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.name == name)
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The cluster in Graphviz DOT: `digraph modo_cluster {`, then one
    /// `subgraph "cluster_<n>"` per member, labelled `<name> (<first 8 hex of its id>)` and
    /// its state (`, no answer` when it did not answer; an unreachable member is drawn
    /// dashed and red), holding its services as [`Graph::to_dot`] writes them, then `}`.
    pub fn to_dot(&self) -> String {
        use std::fmt::Write as _;

        let mut out = String::from("digraph modo_cluster {\n    node [shape=box];\n");
        for (i, m) in self.members.iter().enumerate() {
            let short = m.id.get(..8).unwrap_or(&m.id);
            let mut label = format!("{} ({short})\\n{}", dot_escape(&m.name), m.state);
            if !m.answered {
                label.push_str(", no answer");
            }
            let _ = writeln!(out, "    subgraph \"cluster_{i}\" {{");
            let _ = writeln!(out, "        label=\"{label}\";");
            if m.state != MemberState::Up {
                out.push_str("        style=dashed; color=red;\n");
            }
            m.graph.dot_body(&mut out, "        ");
            out.push_str("    }\n");
        }
        out.push_str("}\n");
        out
    }
}
