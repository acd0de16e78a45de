//! The registry's graph (Mode's Beacon) through the public API: the shape of a tree, how it
//! changes when a child is removed, restarted or crashes, and at shutdown; the dependency
//! graph's topological sort, cycles and valency; the DOT output, parsed back.
//!
//! Events reach the registry asynchronously, so every snapshot here is taken after something
//! that was queued behind the events it depends on: a `spawn`, `stop`, `restart` or `ask` that
//! returned, or a `wait_until_stopped` on the current-thread runtime (the state change and its
//! event happen in one poll of the service's task).

mod common;

use common::{Journal, Ping, Probe};
use modo::Graph;
use modo::prelude::*;
use modo::registry::{DependencyGraph, Node};
use uuid::Uuid;

fn labels(nodes: &[&Node]) -> Vec<String> {
    nodes.iter().map(|n| n.label.clone()).collect()
}

/// The id of the one service labelled `label`.
fn id_of(graph: &Graph, label: &str) -> Uuid {
    let found = graph.find_by_label(label);
    assert_eq!(found.len(), 1, "one service labelled {label}");
    found[0].id
}

/// A (B (B1, B2), C): three levels.
fn tree(journal: &Journal) -> Probe {
    Probe::new("A", journal).with_children(vec![
        Probe::new("B", journal)
            .with_children(vec![Probe::new("B1", journal), Probe::new("B2", journal)]),
        Probe::new("C", journal),
    ])
}

// ----- a parent that adds, removes and supervises children ----------------------------------

/// A parent with one declared child `D`; it adds `R` at run time, removes it, and decides
/// what happens to a crashed child.
struct Parent {
    journal: Journal,
    on_crash: ChildAction,
    added: Option<ServiceRef>,
}

impl Parent {
    fn new(journal: &Journal, on_crash: ChildAction) -> Self {
        Parent {
            journal: journal.clone(),
            on_crash,
            added: None,
        }
    }
}

impl Service for Parent {
    fn dependencies(&mut self) -> Vec<Dependency> {
        vec![Probe::new("D", &self.journal).into()]
    }

    async fn on_child_crashed(
        &mut self,
        _child: &ServiceRef,
        _reason: &CrashReason,
        _ctx: &mut Context<Self>,
    ) -> ChildAction {
        self.on_crash
    }
}

struct AddChild;
struct RemoveChild;
struct Children;

impl Handler<AddChild> for Parent {
    type Reply = Result<Addr<Probe>, Error>;
    async fn handle(&mut self, _: AddChild, ctx: &mut Context<Self>) -> Self::Reply {
        let child = ctx
            .add_runtime_dependency(Probe::new("R", &self.journal))
            .await?;
        self.added = Some(child.service_ref());
        Ok(child)
    }
}

impl Handler<RemoveChild> for Parent {
    type Reply = Result<(), Error>;
    async fn handle(&mut self, _: RemoveChild, ctx: &mut Context<Self>) -> Self::Reply {
        let child = self.added.take().expect("added first");
        ctx.remove_dependency(&child).await
    }
}

impl Handler<Children> for Parent {
    type Reply = Vec<ServiceRef>;
    async fn handle(&mut self, _: Children, ctx: &mut Context<Self>) -> Vec<ServiceRef> {
        ctx.children().to_vec()
    }
}

// ----- the shape of a tree -------------------------------------------------------------------

#[tokio::test]
async fn a_three_level_tree_is_seen_whole() {
    let journal = Journal::new();
    let system = System::new();
    let a = system.spawn(tree(&journal)).await.unwrap();
    let graph = system.registry().graph().await;

    assert_eq!(graph.len(), 5);
    assert!(!graph.is_empty());
    // Creation order: A's declared children are created before any of them starts.
    assert_eq!(labels(&graph.nodes()), ["A", "B", "C", "B1", "B2"]);
    assert_eq!(labels(&graph.roots()), ["A"]);
    let [b, c, b1, b2] = ["B", "C", "B1", "B2"].map(|l| id_of(&graph, l));

    let root = graph.node(a.id()).unwrap();
    assert_eq!(root.label, "A");
    assert_eq!(root.shortlabel, "A");
    assert_eq!(root.type_name, std::any::type_name::<Probe>());
    assert_eq!(root.name, None);
    assert_eq!(root.parent, None);
    assert_eq!(root.children, [b, c]);
    assert_eq!(root.state, ServiceState::Running);
    assert_eq!(root.restart_count, 0);
    for node in graph.nodes() {
        assert_eq!(node.state, ServiceState::Running, "{}", node.label);
    }

    assert_eq!(labels(&graph.children(a.id())), ["B", "C"]);
    assert_eq!(labels(&graph.children(b)), ["B1", "B2"]);
    assert!(graph.children(c).is_empty());
    assert_eq!(graph.parent(b1).unwrap().id, b);
    assert_eq!(graph.parent(b).unwrap().id, a.id());
    assert!(graph.parent(a.id()).is_none());

    assert_eq!(graph.depth(a.id()), Some(0));
    assert_eq!(graph.depth(b), Some(1));
    assert_eq!(graph.depth(b2), Some(2));
    assert_eq!(graph.depth(c), Some(1));
    assert_eq!(graph.path(b2), ["A", "B", "B2"]);
    assert_eq!(graph.path(c), ["A", "C"]);
    assert_eq!(graph.path(a.id()), ["A"]);

    assert_eq!(labels(&graph.traverse(a.id())), ["A", "B", "C", "B1", "B2"]);
    assert_eq!(labels(&graph.traverse(b)), ["B", "B1", "B2"]);
    assert_eq!(labels(&graph.traverse(b1)), ["B1"]);
    assert_eq!(labels(&graph.walk(b2)), ["B2", "B", "A"]);
    assert_eq!(labels(&graph.walk(a.id())), ["A"]);
    // The depth is the walk's length less one, for every node.
    for node in graph.nodes() {
        assert_eq!(graph.depth(node.id), Some(graph.walk(node.id).len() - 1));
    }

    // An id that is not in the graph.
    let unknown = Uuid::nil();
    assert!(graph.node(unknown).is_none());
    assert!(graph.children(unknown).is_empty());
    assert!(graph.parent(unknown).is_none());
    assert_eq!(graph.depth(unknown), None);
    assert!(graph.path(unknown).is_empty());
    assert!(graph.traverse(unknown).is_empty());
    assert!(graph.walk(unknown).is_empty());
    assert!(graph.find_by_label("Z").is_empty());
    assert!(graph.find_by_name("a").is_none());

    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn roots_are_listed_in_spawn_order_and_labels_may_repeat() {
    let journal = Journal::new();
    let system = System::new();
    let first = system
        .spawn(Probe::new("X", &journal).with_children(vec![Probe::new("X", &journal)]))
        .await
        .unwrap();
    let second = system.spawn(Probe::new("Y", &journal)).await.unwrap();
    let graph = system.registry().graph().await;
    let roots: Vec<Uuid> = graph.roots().iter().map(|n| n.id).collect();
    assert_eq!(roots, [first.id(), second.id()]);
    let xs = graph.find_by_label("X");
    assert_eq!(xs.len(), 2);
    assert_eq!(xs[0].id, first.id());
    assert_eq!(xs[1].parent, Some(first.id()));
    assert_eq!(graph.path(xs[1].id), ["X", "X"]);
    system.shutdown().await.unwrap();
}

// ----- changes -------------------------------------------------------------------------------

#[tokio::test]
async fn a_runtime_child_joins_and_a_removed_child_leaves() {
    let journal = Journal::new();
    let system = System::new();
    let parent = system
        .spawn(Parent::new(&journal, ChildAction::Remove))
        .await
        .unwrap();
    let r = parent.ask(AddChild).await.unwrap().unwrap();

    let graph = system.registry().graph().await;
    assert_eq!(labels(&graph.children(parent.id())), ["D", "R"]);
    assert_eq!(graph.node(r.id()).unwrap().state, ServiceState::Running);
    assert_eq!(graph.parent(r.id()).unwrap().id, parent.id());

    // The removed child's last event was queued before its stop returned to the parent.
    parent.ask(RemoveChild).await.unwrap().unwrap();
    assert!(r.is_terminated());
    let graph = system.registry().graph().await;
    assert!(graph.node(r.id()).is_none());
    assert_eq!(labels(&graph.children(parent.id())), ["D"]);
    assert_eq!(labels(&graph.nodes()), ["Parent", "D"]);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_child_stopped_through_its_address_leaves_the_graph() {
    let journal = Journal::new();
    let system = System::new();
    let parent = system
        .spawn(Parent::new(&journal, ChildAction::Remove))
        .await
        .unwrap();
    let r = parent.ask(AddChild).await.unwrap().unwrap();
    r.stop().await.unwrap();
    assert!(r.is_terminated());
    let graph = system.registry().graph().await;
    assert!(graph.node(r.id()).is_none());
    assert_eq!(labels(&graph.nodes()), ["Parent", "D"]);
    assert_eq!(labels(&graph.children(parent.id())), ["D"]);
    // The parent let it go too.
    assert_eq!(parent.ask(Children).await.unwrap().len(), 1);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restart_keeps_the_nodes_and_counts() {
    let journal = Journal::new();
    let system = System::new();
    let a = system.spawn(tree(&journal)).await.unwrap();
    let before = system.registry().graph().await;
    let ids: Vec<Uuid> = before.nodes().iter().map(|n| n.id).collect();

    a.restart().await.unwrap();
    let graph = system.registry().graph().await;
    // The same services, in the same places: a restart is not a new service.
    assert_eq!(graph.nodes().iter().map(|n| n.id).collect::<Vec<_>>(), ids);
    for node in graph.nodes() {
        let old = before.node(node.id).unwrap();
        assert_eq!(node.children, old.children, "{}", node.label);
        assert_eq!(node.parent, old.parent, "{}", node.label);
        // Children restart with their parent.
        assert_eq!(node.restart_count, 1, "{}", node.label);
        assert_eq!(node.state, ServiceState::Running, "{}", node.label);
    }

    system.shutdown().await.unwrap();
}

/// On two worker threads the services' tasks report from other threads than the test's: a
/// snapshot after `spawn`, `restart` or `stop` returned still has every event before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_are_consistent_on_a_multi_thread_runtime() {
    let journal = Journal::new();
    let system = System::new();
    for round in 0..20 {
        let a = system.spawn(tree(&journal)).await.unwrap();
        let graph = system.registry().graph().await;
        assert_eq!(labels(&graph.traverse(a.id())), ["A", "B", "C", "B1", "B2"]);
        assert!(
            graph
                .nodes()
                .iter()
                .all(|n| n.state == ServiceState::Running)
        );
        a.restart().await.unwrap();
        let graph = system.registry().graph().await;
        assert!(
            graph
                .nodes()
                .iter()
                .all(|n| n.state == ServiceState::Running && n.restart_count == 1),
            "round {round}"
        );
        a.stop().await.unwrap();
        assert!(system.registry().graph().await.is_empty(), "round {round}");
    }
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_child_restarted_alone_counts_alone() {
    let journal = Journal::new();
    let system = System::new();
    let parent = system
        .spawn(Parent::new(&journal, ChildAction::Remove))
        .await
        .unwrap();
    let d = parent.ask(Children).await.unwrap()[0].clone();
    parent.restart().await.unwrap();
    d.restart().await.unwrap();
    d.restart().await.unwrap();
    let graph = system.registry().graph().await;
    let counts: Vec<(String, u32, ServiceState)> = graph
        .nodes()
        .iter()
        .map(|n| (n.label.clone(), n.restart_count, n.state))
        .collect();
    assert_eq!(
        counts,
        [
            ("Parent".to_string(), 1, ServiceState::Running),
            ("D".to_string(), 3, ServiceState::Running),
        ]
    );
    assert_eq!(graph.children(parent.id())[0].id, d.id());
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_crashed_child_restarted_by_its_parent_is_the_same_node_counted_once() {
    let journal = Journal::new();
    let system = System::new();
    let parent = system
        .spawn(Parent::new(&journal, ChildAction::Restart))
        .await
        .unwrap();
    let d = parent.ask(Children).await.unwrap()[0]
        .downcast::<Probe>()
        .unwrap();
    d.crash("boom");
    // Served once the parent has restarted it.
    assert_eq!(d.ask(Ping).await.unwrap(), "D");
    let graph = system.registry().graph().await;
    let node = graph.node(d.id()).unwrap();
    assert_eq!(node.restart_count, 1);
    assert_eq!(node.state, ServiceState::Running);
    assert_eq!(graph.parent(d.id()).unwrap().id, parent.id());
    assert_eq!(graph.node(parent.id()).unwrap().restart_count, 0);
    let dot = parse_dot(&graph.to_dot());
    assert_eq!(dot.node(d.id()).label, "D\nrunning\nrestarts: 1");
    assert!(dot.node(d.id()).attrs.is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_crashed_child_kept_by_its_parent_shows_crashed() {
    let journal = Journal::new();
    let system = System::new();
    let parent = system
        .spawn(Parent::new(&journal, ChildAction::Keep))
        .await
        .unwrap();
    let d = parent.ask(Children).await.unwrap()[0]
        .downcast::<Probe>()
        .unwrap();
    d.crash("boom");
    d.wait_until_stopped().await;
    let graph = system.registry().graph().await;
    assert_eq!(graph.node(d.id()).unwrap().state, ServiceState::Crashed);
    assert_eq!(
        graph.node(parent.id()).unwrap().state,
        ServiceState::Running
    );

    let dot = parse_dot(&graph.to_dot());
    let node = dot.node(d.id());
    assert_eq!(node.label, "D\ncrashed");
    assert_eq!(
        node.attrs,
        [
            ("color".to_string(), "red".to_string()),
            ("style".to_string(), "filled".to_string()),
            ("fillcolor".to_string(), "#ffd6d6".to_string()),
        ]
    );
    assert!(dot.node(parent.id()).attrs.is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_crashed_root_leaves_the_graph() {
    let journal = Journal::new();
    let system = System::new();
    let a = system.spawn(tree(&journal)).await.unwrap();
    let other = system.spawn(Probe::new("O", &journal)).await.unwrap();
    a.crash("boom");
    a.wait_until_stopped().await;
    assert!(a.is_terminated());
    let graph = system.registry().graph().await;
    assert_eq!(labels(&graph.nodes()), ["O"]);
    assert_eq!(graph.roots()[0].id, other.id());
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_graph_is_empty_once_everything_stopped() {
    let journal = Journal::new();
    let system = System::new();
    let a = system.spawn(tree(&journal)).await.unwrap();
    assert_eq!(system.registry().graph().await.len(), 5);
    a.stop().await.unwrap();
    // The registry is still running: it saw all five leave.
    let graph = system.registry().graph().await;
    assert!(graph.is_empty());
    assert_eq!(graph.len(), 0);
    assert!(graph.nodes().is_empty() && graph.roots().is_empty());
    assert_eq!(graph.to_dot(), "digraph modo {\n    node [shape=box];\n}\n");
    assert!(graph.dependencies().is_empty());

    system.spawn(tree(&journal)).await.unwrap();
    system.shutdown().await.unwrap();
    assert!(system.registry().is_terminated());
    assert!(system.registry().graph().await.is_empty());
}

// ----- the dependency graph -----------------------------------------------------------------

#[tokio::test]
async fn the_tree_as_a_dependency_graph() {
    let journal = Journal::new();
    let system = System::new();
    let a = system.spawn(tree(&journal)).await.unwrap();
    let e = system
        .spawn(Probe::new("E", &journal).with_children(vec![Probe::new("E1", &journal)]))
        .await
        .unwrap();
    let graph = system.registry().graph().await;
    let deps = graph.dependencies();
    let label = |id: &Uuid| graph.node(*id).unwrap().label.clone();

    assert_eq!(deps.len(), 7);
    assert_eq!(deps.edge_count(), 5);
    assert_eq!(
        deps.nodes().map(label).collect::<Vec<_>>(),
        ["A", "B", "C", "B1", "B2", "E", "E1"]
    );
    assert_eq!(
        deps.edges()
            .map(|(x, y)| (label(x), label(y)))
            .collect::<Vec<_>>(),
        [
            ("A".to_string(), "B".to_string()),
            ("A".to_string(), "C".to_string()),
            ("B".to_string(), "B1".to_string()),
            ("B".to_string(), "B2".to_string()),
            ("E".to_string(), "E1".to_string()),
        ]
    );
    // Dependencies first: each subtree in post-order, the trees in spawn order.
    let order: Vec<String> = deps.topsort().unwrap().iter().map(label).collect();
    assert_eq!(order, ["B1", "B2", "B", "C", "A", "E1", "E"]);

    let b = id_of(&graph, "B");
    assert_eq!(deps.valency_of(&a.id()), 2);
    assert_eq!(deps.valency_of(&b), 3);
    assert_eq!(deps.valency_of(&id_of(&graph, "B1")), 1);
    assert_eq!(deps.valency_of(&e.id()), 1);
    assert_eq!(deps.valency_of(&Uuid::nil()), 0);
    assert_eq!(
        deps.successors(&b)
            .into_iter()
            .map(label)
            .collect::<Vec<_>>(),
        ["B1", "B2"]
    );
    system.shutdown().await.unwrap();
}

#[test]
fn topsort_puts_dependencies_first_and_keeps_the_order_added() {
    let mut g = DependencyGraph::new();
    g.add_node("app");
    g.add_edge("app", "web");
    g.add_edge("app", "cache");
    g.add_edge("web", "db");
    g.add_edge("cache", "db");
    g.add_edge("app", "web"); // a duplicate is kept once
    g.add_node("logger");
    g.add_node("app");
    assert_eq!(g.len(), 5);
    assert_eq!(g.edge_count(), 4);
    assert!(g.contains(&"db") && !g.contains(&"nope"));
    assert_eq!(
        g.topsort().unwrap(),
        ["db", "web", "cache", "app", "logger"]
    );
    assert_eq!(g.successors(&"app"), [&"web", &"cache"]);
    assert!(g.successors(&"db").is_empty());

    // Every edge points from a later node to an earlier one in the order.
    let order = g.topsort().unwrap();
    let pos = |x: &&str| order.iter().position(|y| y == x).unwrap();
    for (from, to) in g.edges() {
        assert!(pos(to) < pos(from), "{to} before {from}");
    }

    let empty: DependencyGraph<u32> = DependencyGraph::new();
    assert!(empty.is_empty());
    assert_eq!(empty.topsort().unwrap(), Vec::<u32>::new());
}

#[test]
fn a_cycle_is_an_error_that_names_it() {
    let mut g = DependencyGraph::new();
    g.add_edge("start", "a");
    g.add_edge("a", "b");
    g.add_edge("b", "c");
    g.add_edge("c", "a");
    g.add_edge("c", "end");
    let err = g.topsort().unwrap_err();
    assert_eq!(err.cycle(), ["a", "b", "c"]);
    assert_eq!(err.cycle, vec!["a", "b", "c"]);
    assert_eq!(err, err.clone());
    assert_eq!(
        err.to_string(),
        r#"dependency cycle: "a" -> "b" -> "c" -> "a""#
    );
    let boxed: Box<dyn std::error::Error> = Box::new(err);
    assert!(boxed.to_string().starts_with("dependency cycle"));

    // The shortest way round from the first-added node of the cycle is named.
    let g: DependencyGraph<u32> = [(1, 2), (2, 3), (3, 4), (4, 1), (3, 1)]
        .into_iter()
        .collect();
    assert_eq!(g.topsort().unwrap_err().cycle(), [1, 2, 3]);

    // A node that depends on itself.
    let mut g = DependencyGraph::new();
    g.add_edge("x", "y");
    g.add_edge("y", "y");
    let err = g.topsort().unwrap_err();
    assert_eq!(err.cycle(), ["y"]);
    assert_eq!(err.to_string(), r#"dependency cycle: "y" -> "y""#);
    assert_eq!(g.valency_of(&"y"), 3, "the self-loop counts twice");
}

#[test]
fn valency_is_the_degree() {
    let g: DependencyGraph<&str> = [
        ("app", "web"),
        ("app", "cache"),
        ("web", "db"),
        ("cache", "db"),
    ]
    .into_iter()
    .collect();
    assert_eq!(g.valency_of(&"app"), 2);
    assert_eq!(g.valency_of(&"web"), 2);
    assert_eq!(g.valency_of(&"db"), 2);
    assert_eq!(g.valency_of(&"unknown"), 0);
    let mut g = g;
    g.extend([("db", "disk")]);
    g.add_node("alone");
    assert_eq!(g.valency_of(&"db"), 3);
    assert_eq!(g.valency_of(&"alone"), 0);
}

// ----- DOT -----------------------------------------------------------------------------------

/// A node line of the DOT output: its id, its label (unescaped) and its other attributes.
#[derive(Debug)]
struct DotNode {
    id: String,
    label: String,
    attrs: Vec<(String, String)>,
}

#[derive(Debug)]
struct Dot {
    nodes: Vec<DotNode>,
    edges: Vec<(String, String)>,
}

impl Dot {
    fn node(&self, id: Uuid) -> &DotNode {
        let id = id.to_string();
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id} in the DOT output"))
    }
}

/// Reads a double-quoted DOT string at the start of `s`: its text, unescaped, and the rest.
fn quoted(s: &str) -> (String, &str) {
    let s = s.strip_prefix('"').expect("a quoted string");
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, &s[i + 1..]),
            '\\' => match chars.next().expect("an escape").1 {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    panic!("unterminated string");
}

/// Parses what `Graph::to_dot` writes, line by line, checking the frame as documented.
fn parse_dot(dot: &str) -> Dot {
    let lines: Vec<&str> = dot.lines().collect();
    assert!(dot.ends_with("}\n"));
    assert_eq!(lines[0], "digraph modo {");
    assert_eq!(lines[1], "    node [shape=box];");
    assert_eq!(lines[lines.len() - 1], "}");
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for line in &lines[2..lines.len() - 1] {
        let body = line
            .strip_prefix("    ")
            .and_then(|l| l.strip_suffix(';'))
            .unwrap_or_else(|| panic!("malformed line {line:?}"));
        let (id, rest) = quoted(body);
        if let Some(rest) = rest.strip_prefix(" -> ") {
            assert!(!nodes.is_empty(), "nodes come first");
            let (to, rest) = quoted(rest);
            assert_eq!(rest, "");
            edges.push((id, to));
            continue;
        }
        assert!(
            edges.is_empty(),
            "node lines come before edge lines: {line:?}"
        );
        let mut rest = rest.strip_prefix(" [").expect("attributes");
        let mut attrs = Vec::new();
        loop {
            let (key, value) = rest.split_once('=').expect("key=value");
            let (value, after) = if value.starts_with('"') {
                quoted(value)
            } else {
                let end = value.find([',', ']']).expect("end of a bare value");
                (value[..end].to_string(), &value[end..])
            };
            attrs.push((key.to_string(), value));
            if let Some(after) = after.strip_prefix(", ") {
                rest = after;
            } else {
                assert_eq!(after, "]");
                break;
            }
        }
        assert_eq!(attrs[0].0, "label", "the label comes first");
        let label = attrs.remove(0).1;
        nodes.push(DotNode { id, label, attrs });
    }
    Dot { nodes, edges }
}

/// A service with whatever label it is given.
struct Labelled(&'static str);

impl Service for Labelled {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.0.into()
    }
}

#[tokio::test]
async fn dot_output_parses_back_to_the_graph() {
    let journal = Journal::new();
    let system = System::new();
    let a = system.spawn(tree(&journal)).await.unwrap();
    let quoted_label = system.spawn(Labelled(r#"Say "hi" \ bye"#)).await.unwrap();
    a.restart().await.unwrap();
    let graph = system.registry().graph().await;
    let dot = parse_dot(&graph.to_dot());

    // Every node, in creation order, with its label, state and restart count.
    let expected: Vec<(String, String)> = graph
        .nodes()
        .iter()
        .map(|n| {
            let restarts = if n.restart_count > 0 {
                format!("\nrestarts: {}", n.restart_count)
            } else {
                String::new()
            };
            (
                n.id.to_string(),
                format!("{}\n{}{restarts}", n.label, n.state),
            )
        })
        .collect();
    let parsed: Vec<(String, String)> = dot
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.label.clone()))
        .collect();
    assert_eq!(parsed, expected);
    assert_eq!(dot.node(a.id()).label, "A\nrunning\nrestarts: 1");
    assert_eq!(
        dot.node(quoted_label.id()).label,
        "Say \"hi\" \\ bye\nrunning"
    );
    assert!(dot.nodes.iter().all(|n| n.attrs.is_empty()), "none crashed");

    // Every edge, parent to child.
    let expected: Vec<(String, String)> = graph
        .dependencies()
        .edges()
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect();
    assert_eq!(dot.edges, expected);
    assert_eq!(dot.edges.len(), 4);
    assert_eq!(
        dot.edges[0],
        (a.id().to_string(), id_of(&graph, "B").to_string())
    );

    // The output is a function of the snapshot.
    assert_eq!(graph.to_dot(), graph.clone().to_dot());
    system.shutdown().await.unwrap();
}
