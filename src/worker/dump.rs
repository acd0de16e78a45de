//! The tree dump a Worker prints on SIGUSR1: every service a line, indented by depth, with its
//! state, restarts, flags and tasks; with a remote node in the tree, the cluster's trees after
//! it.

use std::fmt::Write as _;

use crate::System;
use crate::registry::{Graph, Node};

/// Prints the live tree to stderr; with a remote node running in the tree (cargo feature
/// `nats`), the cluster's trees after it.
pub(super) async fn dump_tree(system: &System) {
    let graph = system.registry().graph().await;
    eprint!("{}", render_tree(&graph));
    #[cfg(feature = "nats")]
    for cluster in crate::remote::cluster_graphs_in(&graph).await {
        eprint!("{}", render_cluster(&cluster));
    }
}

/// The services of `graph` below `n`, one a line, indented two spaces per level after `base`.
fn render_node(graph: &Graph, n: &Node, base: usize, out: &mut String) {
    let _ = write!(
        out,
        "{:indent$}{} state={} restarts={} depth={}",
        "",
        n.label,
        n.state,
        n.restart_count,
        n.depth,
        indent = base + 2 * n.depth
    );
    if !n.flags.is_empty() {
        let _ = write!(out, " flags={}", n.flags.join(","));
    }
    out.push('\n');
    for task in &n.tasks {
        let _ = writeln!(
            out,
            "{:indent$}task {task}",
            "",
            indent = base + 2 * n.depth + 2
        );
    }
    for child in graph.children(n.id) {
        render_node(graph, child, base, out);
    }
}

/// The tree, one service a line, indented two spaces per level.
fn render_tree(graph: &Graph) -> String {
    let mut out = format!("--- modo service tree ({} services) ---\n", graph.len());
    for root in graph.roots() {
        render_node(graph, root, 0, &mut out);
    }
    out.push_str("--- end of service tree ---\n");
    out
}

/// A cluster's trees: a line per node (`node <name> <id> state=<state>`, and `this-node` or
/// `no-answer`), its services indented below it.
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
fn render_cluster(cluster: &crate::registry::ClusterGraph) -> String {
    let mut out = format!(
        "--- modo cluster {} ({} nodes) ---\n",
        cluster.system(),
        cluster.len()
    );
    for m in cluster.members() {
        let _ = write!(out, "node {} {} state={}", m.name, m.id, m.state);
        if m.this_node {
            out.push_str(" this-node");
        }
        if !m.answered {
            out.push_str(" no-answer");
        }
        out.push('\n');
        for root in m.graph.roots() {
            render_node(&m.graph, root, 2, &mut out);
        }
    }
    out.push_str("--- end of cluster ---\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, HookResult, Service};

    struct Flagged;
    impl Service for Flagged {
        async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
            ctx.diag().set_flag("nats:connected");
            Ok(())
        }
    }

    /// A cluster's dump: each node's line, its tree indented below it.
    #[tokio::test(flavor = "current_thread")]
    async fn the_cluster_dump_puts_each_tree_under_its_node() {
        use crate::registry::{ClusterGraph, Member, MemberState};
        let system = System::new();
        system.spawn(Flagged).await.unwrap();
        let graph = system.registry().graph().await;
        let cluster = ClusterGraph::new(
            "shop",
            vec![
                Member::new("b".repeat(32), "web".into(), MemberState::Up, graph).this_node(true),
                Member::new(
                    "a".repeat(32),
                    "db".into(),
                    MemberState::Unreachable,
                    Graph::default(),
                )
                .answered(false),
            ],
        );
        let dump = render_cluster(&cluster);
        assert_eq!(
            dump,
            format!(
                "--- modo cluster shop (2 nodes) ---\n\
                 node db {} state=unreachable no-answer\n\
                 node web {} state=up this-node\n  \
                 Flagged state=running restarts=0 depth=0 flags=nats:connected\n\
                 --- end of cluster ---\n",
                "a".repeat(32),
                "b".repeat(32)
            )
        );
        system.shutdown().await.unwrap();
    }

    /// A service's raised diagnostic flags show on its line of the dump.
    #[tokio::test(flavor = "current_thread")]
    async fn the_dump_shows_diagnostic_flags() {
        let system = System::new();
        system.spawn(Flagged).await.unwrap();
        let graph = system.registry().graph().await;
        assert_eq!(graph.roots()[0].flags, ["nats:connected"]);
        let dump = render_tree(&graph);
        assert!(
            dump.contains("Flagged state=running restarts=0 depth=0 flags=nats:connected\n"),
            "{dump}"
        );
        system.shutdown().await.unwrap();
    }
}
