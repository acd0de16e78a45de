//! A small supervision tree: a root supervisor over a team supervisor over three workers.
//! One worker panics now and then; the team restarts it (OneForOne) with its mailbox intact,
//! and the restarts are printed as they happen. Then the tree is shut down.
//!
//! ```text
//! cargo run --example supervision          # 40 jobs
//! cargo run --example supervision -- 200   # 200 jobs
//! ```

use std::time::Duration;

use modo::prelude::*;
use modo::supervisor::{Backoff, Strategy, Supervisor};

/// Does jobs; a "flaky" worker panics on every seventh one.
struct Worker {
    name: &'static str,
    flaky: bool,
    done: u32,
}

/// One unit of work.
struct Job(u32);

/// How many jobs this instance finished.
struct Done;

impl Service for Worker {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.name.into()
    }

    async fn on_restart(&mut self, ctx: &mut Context<Self>) -> HookResult {
        println!(
            "  restarted {} (restart #{})",
            ctx.label(),
            ctx.restart_count()
        );
        Ok(())
    }
}

impl Handler<Job> for Worker {
    type Reply = ();
    async fn handle(&mut self, Job(n): Job, _ctx: &mut Context<Self>) {
        if self.flaky && n % 7 == 0 {
            println!("  {} fails on job {n}", self.name);
            panic!("job {n} was too much for {}", self.name);
        }
        self.done += 1;
    }
}

impl Handler<Done> for Worker {
    type Reply = u32;
    async fn handle(&mut self, _: Done, _ctx: &mut Context<Self>) -> u32 {
        self.done
    }
}

fn worker(name: &'static str, flaky: bool) -> impl FnMut() -> Worker + Send + 'static {
    move || Worker {
        name,
        flaky,
        done: 0,
    }
}

#[tokio::main]
async fn main() -> Result<(), modo::Error> {
    // Panics are part of the demo: keep their messages to one line.
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .unwrap_or("a panic");
        eprintln!("  (panic: {message})");
    }));

    let jobs: u32 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);

    let system = System::new();
    let root = system
        .spawn(
            Supervisor::builder()
                .label("root")
                .strategy(Strategy::OneForOne)
                .build(),
        )
        .await?;
    let team = root
        .supervise(|| {
            Supervisor::builder()
                .label("team")
                .strategy(Strategy::OneForOne)
                .max_restarts(50)
                .over(Duration::from_secs(1))
                .backoff(Backoff::Fixed(Duration::from_millis(5)))
                .build()
        })
        .await?;
    let steady = team.supervise(worker("steady", false)).await?;
    let flaky = team.supervise(worker("flaky", true)).await?;
    let other = team.supervise(worker("other", false)).await?;

    println!("sending {jobs} jobs to each worker");
    for n in 1..=jobs {
        for w in [&steady, &flaky, &other] {
            w.tell(Job(n)).await?;
        }
    }
    // Queued behind the jobs: answered once each worker got through them.
    let counts = (
        steady.ask(Done).await?,
        flaky.ask(Done).await?,
        other.ask(Done).await?,
    );
    println!(
        "done: steady {} jobs, flaky {} jobs since its last restart ({} restarts), other {} jobs",
        counts.0,
        counts.1,
        flaky.restart_count(),
        counts.2
    );
    println!(
        "team restarted {} times, root supervisor {}",
        team.restart_count(),
        root.state()
    );
    system.shutdown().await
}
