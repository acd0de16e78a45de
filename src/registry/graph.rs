//! Snapshots of the live service graph ([`Graph`]: Mode's Beacon, a forest of [`Node`]s), and a
//! general dependency graph ([`DependencyGraph`]: Mode's `mode.utils.graphs.DependencyGraph`)
//! whose topological sort reports cycles ([`CycleError`]).
//!
//! # Where this differs from Mode
//! - [`Graph::depth`] is 0 for a root (Mode's `Node.depth` counts the root as 1).
//! - [`Graph::path`] is the list of labels from the root down (Mode joins the shortlabels with
//!   `/`; `path.join("/")` gives that string back).
//! - [`Graph::walk`] and [`Graph::traverse`] include the node they start from, as Mode's do.
//! - [`DependencyGraph::add_edge`] ignores an edge it already has (Mode appends duplicates).
//! - [`DependencyGraph::edges`] yields `(from, to)` pairs (Mode yields the nodes that have
//!   edges).
//! - [`DependencyGraph::valency_of`] is the degree, edges in plus edges out, as Mode's docstring
//!   says (Mode's code sums the out-degrees of everything reachable, and never returns on a
//!   cycle).
//! - [`DependencyGraph::topsort`] fails with a [`CycleError`] naming the nodes of a cycle; Mode
//!   does not detect cycles (it silently keeps one node of each).
//!
//! # Why petgraph
//! The graph algorithms here (topological sort, the cycle check, the shortest way round a
//! cycle) come from `petgraph` rather than being written by hand: they are iterative (no stack
//! overflow on a deep chain of services), handle self-loops and disconnected parts, are widely
//! used and tested, and their order depends only on the order nodes and edges were added, so
//! the results here are deterministic. This module only keeps the map from node values to
//! petgraph's indices and translates the results.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::hash::Hash;

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use uuid::Uuid;

use crate::ServiceState;

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
    /// The names of its background tasks running when the snapshot was taken.
    pub tasks: Vec<String>,
    /// Its diagnostic flags raised when the snapshot was taken ([`Diag`](crate::Diag)),
    /// sorted: what it is busy with, or a connection's state.
    pub flags: Vec<String>,
    /// Creation order in the System.
    pub(crate) seq: u64,
}

/// A consistent snapshot of every live service and how they hang together: Mode's Beacon.
///
/// Taken with [`Addr<Registry>::graph`](crate::Addr::graph). Every query takes a service id
/// ([`ServiceRef::id`](crate::ServiceRef::id)); an id that is not in the snapshot gives `None` or an
/// empty list. Lists of services are in creation order, children in the order they were added.
///
/// ```
/// use modo::prelude::*;
///
/// struct App;
/// impl Service for App {
///     fn dependencies(&mut self) -> Vec<Dependency> {
///         vec![Webserver.into(), UserCache.into()]
///     }
/// }
/// struct Webserver;
/// impl Service for Webserver {
///     fn dependencies(&mut self) -> Vec<Dependency> {
///         vec![Handler.into()]
///     }
/// }
/// struct Handler;
/// impl Service for Handler {}
/// struct UserCache;
/// impl Service for UserCache {}
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let app = system.spawn(App).await?;
/// let graph = system.registry().graph().await;
///
/// let labels = |nodes: Vec<&modo::registry::Node>| {
///     nodes.iter().map(|n| n.label.clone()).collect::<Vec<_>>()
/// };
/// assert_eq!(labels(graph.roots()), ["App"]);
/// assert_eq!(labels(graph.children(app.id())), ["Webserver", "UserCache"]);
/// // Breadth-first from the app: each level before the next.
/// assert_eq!(labels(graph.traverse(app.id())), ["App", "Webserver", "UserCache", "Handler"]);
///
/// let handler = graph.find_by_label("Handler")[0].id;
/// assert_eq!(graph.path(handler), ["App", "Webserver", "Handler"]);
/// assert_eq!(labels(graph.walk(handler)), ["Handler", "Webserver", "App"]);
/// assert_eq!(graph.depth(handler), Some(2));
/// assert_eq!(graph.parent(handler).unwrap().label, "Webserver");
/// assert_eq!(graph.node(handler).unwrap().state, ServiceState::Running);
/// # system.shutdown().await }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Graph {
    nodes: HashMap<Uuid, Node>,
    /// Every id, in creation order.
    order: Vec<Uuid>,
}

impl Graph {
    pub(crate) fn from_nodes(mut nodes: Vec<Node>) -> Self {
        nodes.sort_by_key(|n| n.seq);
        let order = nodes.iter().map(|n| n.id).collect();
        Graph {
            nodes: nodes.into_iter().map(|n| (n.id, n)).collect(),
            order,
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

    /// Every service, in creation order (a parent always comes before its children).
    pub fn nodes(&self) -> Vec<&Node> {
        self.order.iter().map(|id| &self.nodes[id]).collect()
    }

    /// The services without a parent in this snapshot (the System's root services), in
    /// creation order.
    pub fn roots(&self) -> Vec<&Node> {
        self.nodes()
            .into_iter()
            .filter(|n| n.parent.is_none_or(|p| !self.nodes.contains_key(&p)))
            .collect()
    }

    /// The children of `id`, in the order they were added.
    pub fn children(&self, id: Uuid) -> Vec<&Node> {
        self.node(id).map_or_else(Vec::new, |n| {
            n.children
                .iter()
                .filter_map(|c| self.nodes.get(c))
                .collect()
        })
    }

    /// The parent of `id`; `None` for a root (or an unknown id).
    pub fn parent(&self, id: Uuid) -> Option<&Node> {
        self.node(id)?.parent.and_then(|p| self.nodes.get(&p))
    }

    /// How far below its root `id` hangs: 0 for a root (Mode counts from 1).
    pub fn depth(&self, id: Uuid) -> Option<usize> {
        self.node(id).map(|n| n.depth)
    }

    /// The labels from the root down to `id`, both included (Mode's `path`, as a list).
    pub fn path(&self, id: Uuid) -> Vec<String> {
        let mut path: Vec<String> = self.walk(id).iter().map(|n| n.label.clone()).collect();
        path.reverse();
        path
    }

    /// `id` and everything below it, breadth-first (Mode's `traverse`): `id`, then its
    /// children in the order added, then their children, and so on.
    pub fn traverse(&self, id: Uuid) -> Vec<&Node> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut queue: VecDeque<&Node> = self.node(id).into_iter().collect();
        while let Some(node) = queue.pop_front() {
            if !seen.insert(node.id) {
                continue;
            }
            out.push(node);
            queue.extend(self.children(node.id));
        }
        out
    }

    /// `id`, its parent, and so on up to its root (Mode's `walk`).
    pub fn walk(&self, id: Uuid) -> Vec<&Node> {
        let mut out = Vec::new();
        let mut next = self.node(id);
        // A snapshot is a forest; the bound only guards against looping on a broken one.
        while let Some(node) = next.filter(|_| out.len() < self.nodes.len()) {
            out.push(node);
            next = node.parent.and_then(|p| self.nodes.get(&p));
        }
        out
    }

    /// The services with this label, in creation order (labels need not be unique).
    pub fn find_by_label(&self, label: &str) -> Vec<&Node> {
        self.nodes()
            .into_iter()
            .filter(|n| n.label == label)
            .collect()
    }

    /// The service spawned under `name` (see [`ServiceSpec::name`](crate::ServiceSpec::name)).
    pub fn find_by_name(&self, name: &str) -> Option<&Node> {
        self.nodes()
            .into_iter()
            .find(|n| n.name.as_deref() == Some(name))
    }

    /// The tree as a [`DependencyGraph`] of service ids (Mode's `as_graph`): every service, in
    /// creation order, and an edge from each parent to each of its children (a service depends
    /// on its children), parents in creation order, children in the order added. Its
    /// [`topsort`](DependencyGraph::topsort) lists every child before its parent.
    ///
    /// ```
    /// use modo::prelude::*;
    ///
    /// struct App;
    /// impl Service for App {
    ///     fn dependencies(&mut self) -> Vec<Dependency> {
    ///         vec![Web.into(), Cache.into()]
    ///     }
    /// }
    /// struct Web;
    /// impl Service for Web {}
    /// struct Cache;
    /// impl Service for Cache {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let app = system.spawn(App).await?;
    /// let graph = system.registry().graph().await;
    /// let deps = graph.dependencies();
    /// let label = |id| graph.node(id).unwrap().label.as_str();
    ///
    /// let edges: Vec<_> = deps.edges().map(|(a, b)| (label(*a), label(*b))).collect();
    /// assert_eq!(edges, [("App", "Web"), ("App", "Cache")]);
    /// let order: Vec<_> = deps.topsort().unwrap().into_iter().map(label).collect();
    /// assert_eq!(order, ["Web", "Cache", "App"]);
    /// assert_eq!(deps.valency_of(&app.id()), 2);
    /// # system.shutdown().await }
    /// ```
    pub fn dependencies(&self) -> DependencyGraph<Uuid> {
        let mut deps = DependencyGraph::new();
        for id in &self.order {
            deps.add_node(*id);
        }
        for id in &self.order {
            for child in &self.nodes[id].children {
                if self.nodes.contains_key(child) {
                    deps.add_edge(*id, *child);
                }
            }
        }
        deps
    }

    /// The graph in Graphviz DOT, for `dot -Tpng`.
    ///
    /// The output, line by line:
    /// - `digraph modo {`, then `    node [shape=box];`
    /// - one line per service, in creation order:
    ///   `    "<id>" [label="<label>\n<state>"];` where `<id>` is the service's id, `<label>`
    ///   its label (with `"` and `\` escaped) and `<state>` Mode's state string; a service
    ///   restarted `n` > 0 times has a third label line, `\nrestarts: <n>`. A crashed service
    ///   stands out: its attributes go on with `, color=red, style=filled, fillcolor="#ffd6d6"`.
    /// - one line per parent–child edge, parents in creation order, children in the order
    ///   added: `    "<parent id>" -> "<child id>";`
    /// - `}`
    ///
    /// ```
    /// use modo::prelude::*;
    ///
    /// struct App;
    /// impl Service for App {
    ///     fn dependencies(&mut self) -> Vec<Dependency> {
    ///         vec![Webserver.into()]
    ///     }
    /// }
    /// struct Webserver;
    /// impl Service for Webserver {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let app = system.spawn(App).await?;
    /// app.restart().await?;
    /// let graph = system.registry().graph().await;
    /// let web = graph.children(app.id())[0].id;
    /// let a = app.id();
    /// assert_eq!(
    ///     graph.to_dot(),
    ///     format!(
    ///         "digraph modo {{\n    node [shape=box];\n    \
    ///          \"{a}\" [label=\"App\\nrunning\\nrestarts: 1\"];\n    \
    ///          \"{web}\" [label=\"Webserver\\nrunning\\nrestarts: 1\"];\n    \
    ///          \"{a}\" -> \"{web}\";\n}}\n"
    ///     )
    /// );
    /// # system.shutdown().await }
    /// ```
    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph modo {\n    node [shape=box];\n");
        self.dot_body(&mut out, "    ");
        out.push_str("}\n");
        out
    }

    /// The service lines and the edges of [`to_dot`](Self::to_dot), each line after `indent`
    /// (a cluster's DOT nests them in a subgraph per node).
    pub(crate) fn dot_body(&self, out: &mut String, indent: &str) {
        use std::fmt::Write as _;

        for node in self.nodes() {
            let mut label = format!("{}\\n{}", dot_escape(&node.label), node.state);
            if node.restart_count > 0 {
                let _ = write!(label, "\\nrestarts: {}", node.restart_count);
            }
            let _ = write!(out, "{indent}\"{}\" [label=\"{label}\"", node.id);
            if node.state == ServiceState::Crashed {
                out.push_str(", color=red, style=filled, fillcolor=\"#ffd6d6\"");
            }
            out.push_str("];\n");
        }
        for node in self.nodes() {
            for child in self.children(node.id) {
                let _ = writeln!(out, "{indent}\"{}\" -> \"{}\";", node.id, child.id);
            }
        }
    }
}

/// Escapes a label for a double-quoted DOT string.
pub(crate) fn dot_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// A directed graph of things and what they depend on (Mode's `DependencyGraph`): an edge
/// `a -> b` reads "`a` depends on `b`".
///
/// Nodes are kept in the order they were first added, edges in the order added (an edge added
/// twice is kept once). [`topsort`](Self::topsort) gives the order in which the nodes must be
/// handled, dependencies first, or the cycle that makes that impossible.
///
/// ```
/// use modo::registry::DependencyGraph;
///
/// let mut g = DependencyGraph::new();
/// g.add_edge("app", "web");
/// g.add_edge("app", "cache");
/// g.add_edge("web", "cache");
/// g.add_node("logger");
///
/// assert_eq!(g.nodes().copied().collect::<Vec<_>>(), ["app", "web", "cache", "logger"]);
/// assert_eq!(
///     g.edges().map(|(a, b)| (*a, *b)).collect::<Vec<_>>(),
///     [("app", "web"), ("app", "cache"), ("web", "cache")]
/// );
/// assert_eq!(g.successors(&"app"), [&"web", &"cache"]);
/// assert_eq!(g.topsort().unwrap(), ["cache", "web", "app", "logger"]);
/// ```
#[derive(Clone)]
pub struct DependencyGraph<T = Uuid> {
    graph: DiGraph<T, ()>,
    index: HashMap<T, NodeIndex>,
}

impl<T> Default for DependencyGraph<T> {
    fn default() -> Self {
        DependencyGraph {
            graph: DiGraph::new(),
            index: HashMap::new(),
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for DependencyGraph<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let edges: Vec<(&T, &T)> = self
            .graph
            .edge_references()
            .map(|e| (&self.graph[e.source()], &self.graph[e.target()]))
            .collect();
        f.debug_struct("DependencyGraph")
            .field("nodes", &self.graph.node_weights().collect::<Vec<_>>())
            .field("edges", &edges)
            .finish()
    }
}

impl<T: Clone + Eq + Hash> DependencyGraph<T> {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `node` if it is not in the graph yet (Mode's `add_arc`).
    pub fn add_node(&mut self, node: T) {
        self.ensure(node);
    }

    fn ensure(&mut self, node: T) -> NodeIndex {
        if let Some(ix) = self.index.get(&node) {
            return *ix;
        }
        let ix = self.graph.add_node(node.clone());
        self.index.insert(node, ix);
        ix
    }

    /// Adds an edge from `from` to `to`: `from` depends on `to`. Either node is added first if
    /// it is new; an edge the graph already has is not added again.
    pub fn add_edge(&mut self, from: T, to: T) {
        let a = self.ensure(from);
        let b = self.ensure(to);
        if self.graph.find_edge(a, b).is_none() {
            self.graph.add_edge(a, b, ());
        }
    }

    /// Whether `node` is in the graph.
    pub fn contains(&self, node: &T) -> bool {
        self.index.contains_key(node)
    }

    /// How many nodes the graph has.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// How many edges the graph has.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// The nodes, in the order they were first added.
    pub fn nodes(&self) -> impl Iterator<Item = &T> + '_ {
        self.graph.node_weights()
    }

    /// The edges as `(from, to)` pairs (`from` depends on `to`), in the order added.
    pub fn edges(&self) -> impl Iterator<Item = (&T, &T)> + '_ {
        self.graph
            .edge_references()
            .map(|e| (&self.graph[e.source()], &self.graph[e.target()]))
    }

    /// What `node` depends on (its edges' targets), in the order the edges were added.
    pub fn successors(&self, node: &T) -> Vec<&T> {
        let Some(&ix) = self.index.get(node) else {
            return Vec::new();
        };
        // petgraph lists a node's neighbours newest edge first.
        let mut out: Vec<&T> = self.graph.neighbors(ix).map(|n| &self.graph[n]).collect();
        out.reverse();
        out
    }

    /// The valency (degree) of `node`: how many edges start or end at it (a self-loop counts
    /// twice). 0 for a node that is not in the graph, as in Mode.
    ///
    /// ```
    /// use modo::registry::DependencyGraph;
    ///
    /// let g: DependencyGraph<&str> = [("app", "web"), ("app", "cache"), ("web", "db")]
    ///     .into_iter()
    ///     .collect();
    /// assert_eq!(g.valency_of(&"app"), 2);
    /// assert_eq!(g.valency_of(&"web"), 2);
    /// assert_eq!(g.valency_of(&"db"), 1);
    /// assert_eq!(g.valency_of(&"nowhere"), 0);
    /// ```
    pub fn valency_of(&self, node: &T) -> usize {
        use petgraph::Direction::{Incoming, Outgoing};

        self.index.get(node).map_or(0, |&ix| {
            self.graph.edges_directed(ix, Outgoing).count()
                + self.graph.edges_directed(ix, Incoming).count()
        })
    }

    /// The nodes in the order in which they must be handled (Mode's `topsort`): every node
    /// after all the nodes it depends on.
    ///
    /// The order is deterministic. When every node was added before the nodes it depends on
    /// (as in [`Graph::dependencies`]), each tree comes out in post-order: a node's
    /// dependencies, in the order their edges were added, each preceded by its own
    /// dependencies, then the node itself; the trees in the order their roots were added.
    ///
    /// # Errors
    /// [`CycleError`] if some nodes depend on each other in a circle. It names the nodes of
    /// one cycle, in edge order: of the nodes that are on a cycle together, the one added
    /// first, then the shortest way back to it. Mode returns an order anyway; here a cycle is
    /// an error.
    ///
    /// ```
    /// use modo::registry::DependencyGraph;
    ///
    /// let mut g = DependencyGraph::new();
    /// g.add_edge("app", "web");
    /// g.add_edge("web", "db");
    /// g.add_edge("app", "cache");
    /// assert_eq!(g.topsort().unwrap(), ["db", "web", "cache", "app"]);
    ///
    /// g.add_edge("db", "app");
    /// let err = g.topsort().unwrap_err();
    /// assert_eq!(err.cycle(), ["app", "web", "db"]);
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"dependency cycle: "app" -> "web" -> "db" -> "app""#
    /// );
    /// ```
    pub fn topsort(&self) -> Result<Vec<T>, CycleError<T>> {
        match petgraph::algo::toposort(&self.graph, None) {
            Ok(order) => {
                // petgraph puts every node before the nodes its edges point to; an edge here
                // means "depends on", so the dependencies come first in reverse.
                Ok(order
                    .into_iter()
                    .rev()
                    .map(|ix| self.graph[ix].clone())
                    .collect())
            }
            Err(cycle) => Err(CycleError {
                cycle: self
                    .cycle_through(cycle.node_id())
                    .into_iter()
                    .map(|ix| self.graph[ix].clone())
                    .collect(),
            }),
        }
    }

    /// A cycle through `found` (which petgraph found to be on one), as the nodes in edge order:
    /// the shortest cycle through the first-added node of `found`'s strongly connected
    /// component, beginning with that node.
    fn cycle_through(&self, found: NodeIndex) -> Vec<NodeIndex> {
        let start = petgraph::algo::tarjan_scc(&self.graph)
            .into_iter()
            .find(|component| component.contains(&found))
            .and_then(|component| component.into_iter().min())
            .unwrap_or(found);
        let mut next: Vec<NodeIndex> = self.graph.neighbors(start).collect();
        // Oldest edge first, so that ties go to the edge added first.
        next.reverse();
        let shortest = next
            .into_iter()
            .filter_map(|n| {
                if n == start {
                    return Some((0, Vec::new()));
                }
                petgraph::algo::astar(&self.graph, n, |x| x == start, |_| 1usize, |_| 0).map(
                    |(cost, mut path)| {
                        path.pop(); // `start` again
                        (cost, path)
                    },
                )
            })
            .min_by_key(|(cost, _)| *cost);
        // Every node of a path back to `start` is in its component, so added after it.
        let mut cycle = vec![start];
        if let Some((_, path)) = shortest {
            cycle.extend(path);
        }
        cycle
    }
}

impl<T: Clone + Eq + Hash> FromIterator<(T, T)> for DependencyGraph<T> {
    /// A graph of these edges, `(from, to)`, added in order.
    fn from_iter<I: IntoIterator<Item = (T, T)>>(edges: I) -> Self {
        let mut g = DependencyGraph::new();
        g.extend(edges);
        g
    }
}

impl<T: Clone + Eq + Hash> Extend<(T, T)> for DependencyGraph<T> {
    /// Adds these edges, `(from, to)`, in order.
    fn extend<I: IntoIterator<Item = (T, T)>>(&mut self, edges: I) {
        for (from, to) in edges {
            self.add_edge(from, to);
        }
    }
}

/// A [`DependencyGraph`] has a cycle, so it has no topological order.
///
/// [`cycle`](Self::cycle) lists the nodes of one cycle in edge order (each depends on the
/// next, the last on the first): of the nodes that are on a cycle together (a strongly
/// connected component), the one added to the graph first, then the shortest way back to it.
/// A node that depends on itself is a cycle of one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CycleError<T = Uuid> {
    /// The nodes of the cycle, in edge order.
    pub cycle: Vec<T>,
}

impl<T> CycleError<T> {
    /// The nodes of the cycle, in edge order.
    pub fn cycle(&self) -> &[T] {
        &self.cycle
    }
}

impl<T: fmt::Debug> fmt::Display for CycleError<T> {
    /// `dependency cycle: a -> b -> a`, each node written with `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dependency cycle: ")?;
        for node in &self.cycle {
            write!(f, "{node:?} -> ")?;
        }
        match self.cycle.first() {
            Some(first) => write!(f, "{first:?}"),
            None => f.write_str("?"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for CycleError<T> {}
