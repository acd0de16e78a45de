//! A link checker, the way a user would write one with modo: it crawls a fake site of 2,000
//! pages (made up in-process: no network), checks every link, prints a summary and exits 0 by
//! itself.
//!
//! ```text
//! cargo run --example crawler                        # crawl, summary on stdout, exit code 0
//! cargo run --example crawler -- --unsupervised-crash
//!     # the Frontier itself parses the bad page: nobody supervises it, so its crash
//!     # escalates to the Worker and the program exits with code 1
//! ```
//!
//! What it shows (issue 12, "what the first real programs ran into"):
//!
//! - A **pool** of three fetchers (`modo::pool::Pool`): each `Fetch` goes to the next one,
//!   round-robin; the pool's supervisor restarts a fetcher that crashes, in place.
//! - **Supervised vs not**: page 1234 has HTML that makes the parser panic. In a fetcher,
//!   that is one crashed replica, restarted by the pool: the crawl goes on and the page is
//!   reported as failed. In the Frontier, which nobody supervises, the same panic escalates
//!   (`Service::on_child_crashed` defaults to `Escalate`) up to the Worker: exit code 1.
//! - A **`Recipient`**: a fetcher reports to "whoever asked", a `Recipient<Fetched>` carried
//!   in the request; it does not know the Frontier's type.
//! - **Replying later**: the Crawler asks the Frontier "tell me when the crawl is done"
//!   (`ask_with` + `ReplyTo`); the Frontier keeps the `ReplyTo` and answers once the last page
//!   is in, while it goes on handling results in between.
//! - A **timer** (`Context::tell_every`): the Stats service logs progress, the Frontier sweeps
//!   for requests that never came back.
//! - **The program ends by itself**: once the Crawler stops, the Worker has no service left
//!   and exits 0.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::process::ExitCode;
use std::time::Duration;

use modo::pool::Pool;
use modo::prelude::*;
use modo::{Recipient, ReplyTo, Worker};
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------
// The fake site.

/// How many pages the site has: page `i` links to pages `2i+1` and `2i+2` (a binary tree, so
/// every page is reachable from page 0), back to its parent, and every 97th page to a page
/// that does not exist.
const PAGES: u32 = 2_000;

/// The page whose HTML makes the parser panic.
const BAD_PAGE: u32 = 1_234;

/// How many requests the Frontier keeps in flight at most (politeness, and a bound that
/// keeps both mailboxes far from full: nobody waits on a full mailbox while holding a slot
/// of another).
const MAX_IN_FLIGHT: usize = 32;

/// A request not answered within this time is sent again once, then given up.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

fn page_url(i: u32) -> String {
    format!("fake://site/page/{i}")
}

/// "Downloads" a URL: the status and the HTML.
async fn download(url: &str) -> (u16, String) {
    // A little latency, as a real server would have.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let Some(i) = url
        .strip_prefix("fake://site/page/")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|i| *i < PAGES)
    else {
        return (404, String::new());
    };
    let mut html = String::new();
    for child in [2 * i + 1, 2 * i + 2] {
        if child < PAGES {
            html.push_str(&format!("<a href=\"{}\">", page_url(child)));
        }
    }
    if i > 0 {
        html.push_str(&format!("<a href=\"{}\">", page_url((i - 1) / 2)));
    }
    if i > 0 && i % 97 == 0 {
        html.push_str(&format!("<a href=\"fake://site/missing/{i}\">"));
    }
    if i == BAD_PAGE {
        html.push_str("<a href=\"");
    }
    (200, html)
}

/// Extracts the links of a page. Has a bug: an unterminated `href` makes it panic.
fn parse_links(html: &str) -> Vec<String> {
    html.split("<a href=\"")
        .skip(1)
        .map(|rest| {
            let end = rest.find('"').expect("malformed HTML: unterminated href");
            rest[..end].to_string()
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Fetchers: a pool of three, each reporting to a `Recipient` it was handed.

/// The result of one fetch.
struct Fetched {
    url: String,
    status: u16,
    links: Vec<String>,
}

/// Fetch `url` and report to `report_to`, whoever that is.
struct Fetch {
    url: String,
    report_to: Recipient<Fetched>,
}

/// One replica of the pool; its label says which (`Fetcher#1`), in logs and in the graph.
struct Fetcher {
    index: usize,
}

impl Service for Fetcher {
    fn label(&self) -> Cow<'static, str> {
        format!("Fetcher#{}", self.index).into()
    }
}

impl Handler<Fetch> for Fetcher {
    type Reply = ();
    async fn handle(&mut self, Fetch { url, report_to }: Fetch, _ctx: &mut Context<Self>) {
        let (status, html) = download(&url).await;
        // Page 1234 panics here: this fetcher crashes, the pool's supervisor restarts it,
        // and the Frontier never hears back about that page (its sweep notices).
        let links = parse_links(&html);
        // The asker may have stopped meanwhile: then there is no one left to tell.
        let _ = report_to.tell(Fetched { url, status, links }).await;
    }
}

// ---------------------------------------------------------------------------------------
// Stats: counts outcomes and logs progress on a timer.

/// What became of one URL.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Ok,
    Broken,
    Failed,
}

struct Tally(Outcome);
struct LogProgress;

#[derive(Default)]
struct Stats {
    ok: u32,
    broken: u32,
    failed: u32,
    started: Option<Instant>,
}

impl Service for Stats {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        self.started = Some(Instant::now());
        ctx.tell_every(Duration::from_millis(250), || LogProgress);
        Ok(())
    }

    async fn on_stop(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log().info(format_args!(
            "{} ok, {} broken, {} failed",
            self.ok, self.broken, self.failed
        ));
        Ok(())
    }
}

impl Handler<Tally> for Stats {
    type Reply = ();
    async fn handle(&mut self, Tally(outcome): Tally, _ctx: &mut Context<Self>) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Broken => self.broken += 1,
            Outcome::Failed => self.failed += 1,
        }
    }
}

impl Handler<LogProgress> for Stats {
    type Reply = ();
    async fn handle(&mut self, _: LogProgress, ctx: &mut Context<Self>) {
        let checked = self.ok + self.broken + self.failed;
        let secs = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        ctx.log().info(format_args!(
            "{checked} URLs checked ({:.0}/s), {} broken",
            f64::from(checked) / secs.max(0.001),
            self.broken
        ));
    }
}

// ---------------------------------------------------------------------------------------
// The Frontier: what to fetch next, what is in flight, and who waits for the end.

/// What the crawl found, for whoever asked to be told at the end.
#[derive(Debug, Clone)]
struct Summary {
    ok: u32,
    broken: Vec<String>,
    failed: Vec<String>,
}

/// "Tell me when the crawl is done": answered later, through the `ReplyTo`.
struct WaitDone(ReplyTo<Summary>);

/// Timer tick: look for requests that never came back.
struct Sweep;

struct Frontier {
    pool: Pool<Fetcher>,
    stats: Addr<Stats>,
    /// `--unsupervised-crash`: parse pages here too (and so crash here, unsupervised).
    parse_here: bool,
    seen: HashSet<String>,
    queue: VecDeque<String>,
    /// URL -> (sent at, attempts).
    in_flight: HashMap<String, (Instant, u32)>,
    summary: Summary,
    waiting: Vec<ReplyTo<Summary>>,
}

impl Frontier {
    fn new(pool: Pool<Fetcher>, stats: Addr<Stats>, parse_here: bool) -> Self {
        Frontier {
            pool,
            stats,
            parse_here,
            seen: HashSet::new(),
            queue: VecDeque::new(),
            in_flight: HashMap::new(),
            summary: Summary {
                ok: 0,
                broken: Vec::new(),
                failed: Vec::new(),
            },
            waiting: Vec::new(),
        }
    }

    fn discover(&mut self, url: String) {
        if self.seen.insert(url.clone()) {
            self.queue.push_back(url);
        }
    }

    /// Sends queued URLs to the pool, up to `MAX_IN_FLIGHT`.
    async fn dispatch(&mut self, ctx: &mut Context<Self>) {
        while self.in_flight.len() < MAX_IN_FLIGHT {
            let Some(url) = self.queue.pop_front() else {
                break;
            };
            self.send(url, 1, ctx).await;
        }
        self.answer_if_done();
    }

    async fn send(&mut self, url: String, attempt: u32, ctx: &mut Context<Self>) {
        self.in_flight
            .insert(url.clone(), (Instant::now(), attempt));
        // The fetcher learns only that someone handles `Fetched`.
        let report_to: Recipient<Fetched> = ctx.myself().recipient();
        if self.pool.tell(Fetch { url, report_to }).await.is_err() {
            // Every fetcher has stopped for good: nothing more can be checked.
            ctx.log().error("no fetcher left");
            ctx.crash("no fetcher left");
        }
    }

    async fn record(&mut self, url: &str, outcome: Outcome) {
        match outcome {
            Outcome::Ok => self.summary.ok += 1,
            Outcome::Broken => self.summary.broken.push(url.to_string()),
            Outcome::Failed => self.summary.failed.push(url.to_string()),
        }
        let _ = self.stats.tell(Tally(outcome)).await;
    }

    /// Answers everyone waiting for the end, once nothing is queued or in flight.
    fn answer_if_done(&mut self) {
        if self.queue.is_empty() && self.in_flight.is_empty() {
            for reply in self.waiting.drain(..) {
                // An asker that gave up does not need the answer.
                let _ = reply.send(self.summary.clone());
            }
        }
    }
}

impl Service for Frontier {
    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.tell_every(Duration::from_millis(100), || Sweep);
        self.discover(page_url(0));
        self.dispatch(ctx).await;
        Ok(())
    }
}

impl Handler<Fetched> for Frontier {
    type Reply = ();
    async fn handle(&mut self, page: Fetched, ctx: &mut Context<Self>) {
        if self.in_flight.remove(&page.url).is_none() {
            // A late answer to a request already retried or given up.
            return;
        }
        if page.status == 200 {
            self.record(&page.url, Outcome::Ok).await;
            for link in page.links {
                if self.parse_here && link == page_url(BAD_PAGE) {
                    // The bug, this time outside the pool: parsing the bad page here
                    // panics in the Frontier, which nobody supervises.
                    let (_, html) = download(&link).await;
                    parse_links(&html);
                }
                self.discover(link);
            }
        } else {
            ctx.log()
                .warn(format_args!("broken link: {} ({})", page.url, page.status));
            self.record(&page.url, Outcome::Broken).await;
        }
        self.dispatch(ctx).await;
    }
}

impl Handler<Sweep> for Frontier {
    type Reply = ();
    async fn handle(&mut self, _: Sweep, ctx: &mut Context<Self>) {
        let late: Vec<(String, u32)> = self
            .in_flight
            .iter()
            .filter(|(_, (sent, _))| sent.elapsed() >= REQUEST_TIMEOUT)
            .map(|(url, (_, attempts))| (url.clone(), *attempts))
            .collect();
        for (url, attempts) in late {
            if attempts < 2 {
                ctx.log()
                    .warn(format_args!("no answer for {url}: retrying"));
                self.send(url, attempts + 1, ctx).await;
            } else {
                ctx.log().warn(format_args!(
                    "no answer for {url} after {attempts} tries: giving up"
                ));
                self.in_flight.remove(&url);
                self.record(&url, Outcome::Failed).await;
            }
        }
        self.dispatch(ctx).await;
    }
}

impl Handler<WaitDone> for Frontier {
    type Reply = ();
    async fn handle(&mut self, WaitDone(reply): WaitDone, _ctx: &mut Context<Self>) {
        // Not answered now: kept until the crawl is done (see `answer_if_done`).
        self.waiting.push(reply);
        self.answer_if_done();
    }
}

// ---------------------------------------------------------------------------------------
// The Crawler: builds the tree, waits for the end, prints the summary and stops.

struct Crawler {
    parse_in_frontier: bool,
    started: Option<Instant>,
    pool: Option<Pool<Fetcher>>,
}

/// The Frontier's answer, brought back to the Crawler's own mailbox.
struct Done(Result<Summary, Error>);

impl Service for Crawler {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        self.started = Some(Instant::now());
        // The pool's supervisor is an ordinary child of the Crawler: it restarts a crashed
        // fetcher in place (same address, same mailbox).
        let (supervisor, router) = Pool::builder(3, |index| Fetcher { index })
            .label("Fetchers")
            .build()?;
        let supervisor = ctx
            .add_runtime_dependency(ServiceSpec::new(supervisor))
            .await?;
        let pool = router.attach(&supervisor).await?;
        let stats = ctx.add_runtime_dependency(Stats::default()).await?;
        // The Frontier is not supervised: a crash in it escalates to the Crawler (the
        // default `on_child_crashed`), and from there to the Worker.
        let frontier = ctx
            .add_runtime_dependency(Frontier::new(pool.clone(), stats, self.parse_in_frontier))
            .await?;
        self.pool = Some(pool);
        // Ask to be told when the crawl is done. The answer comes later, so wait for it in a
        // background task and bring it back to this service as a message.
        let me = ctx.myself().clone();
        ctx.spawn(async move {
            let summary = frontier.ask_with(WaitDone).await;
            let _ = me.tell(Done(summary)).await;
        });
        Ok(())
    }
}

impl Handler<Done> for Crawler {
    type Reply = ();
    async fn handle(&mut self, Done(summary): Done, ctx: &mut Context<Self>) {
        let summary = match summary {
            Ok(summary) => summary,
            Err(e) => {
                ctx.crash(format!("the Frontier did not finish: {e}"));
                return;
            }
        };
        let elapsed = self.started.map_or(Duration::ZERO, |t| t.elapsed());
        let restarts: u32 = self
            .pool
            .iter()
            .flat_map(|p| p.replicas())
            .map(|r| r.restart_count())
            .sum();
        for url in &summary.broken {
            println!("broken: {url}");
        }
        for url in &summary.failed {
            println!("failed: {url} (its fetcher crashed)");
        }
        println!(
            "summary: {} URLs checked in {:.2}s: {} ok, {} broken, {} failed; fetchers restarted {} time(s)",
            summary.ok as usize + summary.broken.len() + summary.failed.len(),
            elapsed.as_secs_f64(),
            summary.ok,
            summary.broken.len(),
            summary.failed.len(),
            restarts,
        );
        // Done: stopping the Crawler stops its children (newest first). The Worker then has
        // no service left running and ends by itself, with exit code 0.
        ctx.stop();
    }
}

fn main() -> ExitCode {
    let parse_in_frontier = std::env::args().any(|a| a == "--unsupervised-crash");
    Worker::new(Crawler {
        parse_in_frontier,
        started: None,
        pool: None,
    })
    // A panic is logged as one line naming the service (`[^---Fetcher#2]: panicked at ...`).
    .log_panics(true)
    .execute_from_commandline()
}
