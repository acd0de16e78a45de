//! The live service graph (Mode's Beacon) of the tutorial's app: an `App` with `Websockets`,
//! `Webserver` and `UserCache` children, the webserver with a handler pool of its own. Prints
//! the tree, writes it in Graphviz DOT and, if Graphviz's `dot` is installed, renders a PNG.
//!
//! ```text
//! cargo run --example graph                     # writes target/modo-graph.dot (and .png)
//! cargo run --example graph -- /tmp/app.dot     # writes /tmp/app.dot (and /tmp/app.png)
//! dot -Tpng target/modo-graph.dot -o target/modo-graph.png   # render it by hand
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use modo::Graph;
use modo::prelude::*;
use modo::registry::Node;

/// The root: its children start in the order declared and stop in reverse.
struct App {
    port: u16,
}

impl Service for App {
    fn dependencies(&mut self) -> Vec<Dependency> {
        vec![
            Websockets {
                port: self.port + 1,
            }
            .into(),
            // Named, so it can be found with `system.lookup`.
            ServiceSpec::new(Webserver { port: self.port })
                .name("webserver")
                .into(),
            UserCache.into(),
        ]
    }
}

struct Websockets {
    port: u16,
}

impl Service for Websockets {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log()
            .info(format_args!("websockets on port {}", self.port));
        Ok(())
    }
}

struct Webserver {
    port: u16,
}

impl Service for Webserver {
    /// A small pool of request handlers: the third level of the tree.
    fn dependencies(&mut self) -> Vec<Dependency> {
        (1..=2).map(|n| RequestHandler { n }.into()).collect()
    }

    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log()
            .info(format_args!("serving on port {}", self.port));
        Ok(())
    }
}

struct RequestHandler {
    n: u32,
}

impl Service for RequestHandler {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        format!("Handler-{}", self.n).into()
    }
}

struct UserCache;

impl Service for UserCache {}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dot_path = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("target/modo-graph.dot"), PathBuf::from);

    let system = System::new();
    system.spawn(App { port: 8000 }).await?;
    // Found by name, restarted: the graph shows the count.
    let webserver = system.lookup::<Webserver>("webserver")?;
    webserver.restart().await?;

    let graph = system.registry().graph().await;
    println!("{} live services:", graph.len());
    for root in graph.roots() {
        print_tree(&graph, root);
    }
    let breadth_first: Vec<&str> = graph
        .roots()
        .iter()
        .flat_map(|root| graph.traverse(root.id))
        .map(|n| n.label.as_str())
        .collect();
    println!("breadth-first: {}", breadth_first.join(", "));
    let deps = graph.dependencies();
    let order: Vec<&str> = deps
        .topsort()?
        .into_iter()
        .filter_map(|id| graph.node(id).map(|n| n.label.as_str()))
        .collect();
    println!("dependencies first: {}", order.join(", "));

    if let Some(dir) = dot_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&dot_path, graph.to_dot())?;
    println!("wrote {}", dot_path.display());
    render_png(&dot_path);

    system.shutdown().await?;
    Ok(())
}

/// Prints `node` and everything below it, depth-first, one line each.
fn print_tree(graph: &Graph, node: &Node) {
    let restarts = match node.restart_count {
        0 => String::new(),
        n => format!(", restarts: {n}"),
    };
    let name = node
        .name
        .as_deref()
        .map(|n| format!(", named {n:?}"))
        .unwrap_or_default();
    println!(
        "  {:indent$}{:<width$} {:<8} path: {}{name}{restarts}",
        "",
        node.label,
        node.state.to_string(),
        graph.path(node.id).join("/"),
        indent = 2 * node.depth,
        width = 14 - 2 * node.depth,
    );
    for child in graph.children(node.id) {
        print_tree(graph, child);
    }
}

/// Renders `dot_path` to a PNG next to it with Graphviz's `dot`, if it is installed; otherwise
/// says how to. Never fails the example.
fn render_png(dot_path: &Path) {
    let png = dot_path.with_extension("png");
    let rendered = Command::new("dot")
        .arg("-Tpng")
        .arg(dot_path)
        .arg("-o")
        .arg(&png)
        .status();
    match rendered {
        Ok(status) if status.success() => println!("rendered {}", png.display()),
        Ok(status) => println!("dot failed ({status}); the DOT file is still there"),
        Err(_) => println!(
            "Graphviz's `dot` is not installed; to render the graph:\n  dot -Tpng {} -o {}",
            dot_path.display(),
            png.display()
        ),
    }
}
