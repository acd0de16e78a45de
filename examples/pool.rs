//! A pool of 4 image resizers: unkeyed work goes to the least-loaded replica, each user's
//! thumbnails go by key to one replica (which keeps that user's cache), one replica crashes
//! on a bad image and is restarted in place, and the tree is printed from the registry.
//!
//! Run with `cargo run --example pool`.

use std::collections::HashMap;
use std::time::Duration;

use modo::pool::{Pool, Routing};
use modo::prelude::*;
use modo::supervisor::Backoff;

struct Resizer {
    index: usize,
    /// Per-user cache: lost on a restart (the factory makes a fresh replica), kept otherwise.
    cache: HashMap<String, u32>,
}

impl Service for Resizer {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        format!("Resizer#{}", self.index).into()
    }
}

/// Resize an image to half its width; a width of 0 is a corrupt image the decoder panics on.
struct Resize(u32);

impl Handler<Resize> for Resizer {
    type Reply = (usize, u32);
    async fn handle(&mut self, Resize(width): Resize, _: &mut Context<Self>) -> (usize, u32) {
        assert!(width > 0, "corrupt image");
        (self.index, width / 2)
    }
}

/// A user's thumbnail: served from the replica's cache after the first time.
struct Thumbnail(String);

impl Handler<Thumbnail> for Resizer {
    type Reply = (usize, bool);
    async fn handle(&mut self, Thumbnail(user): Thumbnail, _: &mut Context<Self>) -> (usize, bool) {
        let cached = self.cache.contains_key(&user);
        self.cache.entry(user).or_insert(64);
        (self.index, cached)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let system = System::new();
    let pool = Pool::builder(4, |index| Resizer {
        index,
        cache: HashMap::new(),
    })
    .routing(Routing::LeastLoaded)
    .backoff(Backoff::Fixed(Duration::from_millis(10)))
    .spawn(&system)
    .await?;

    for width in [800, 640, 1024, 320] {
        let (replica, half) = pool.ask(Resize(width)).await?;
        println!("resize {width} -> {half} on replica {replica}");
    }

    for user in ["alice", "bob", "carol", "dave", "erin", "alice", "dave"] {
        let (replica, cached) = pool.ask_keyed(user, Thumbnail(user.into())).await?;
        println!("thumbnail of {user} on replica {replica} (cached: {cached})");
    }

    // A corrupt image crashes its replica; the pool's supervisor restarts it in place.
    let err = pool.ask(Resize(0)).await.unwrap_err();
    println!("corrupt image: {err}");
    for replica in pool.replicas() {
        replica.wait_until_running().await?;
    }
    let restarts: Vec<u32> = pool.replicas().iter().map(|r| r.restart_count()).collect();
    println!("restart counts: {restarts:?}");

    let graph = system.registry().graph().await;
    for node in graph.traverse(pool.id()) {
        println!(
            "{}{} ({}, restarts {})",
            "  ".repeat(node.depth),
            node.label,
            node.state,
            node.restart_count
        );
    }

    pool.stop().await?;
    println!("after stop: {}", pool.tell(Resize(10)).await.unwrap_err());
    system.shutdown().await?;
    Ok(())
}
