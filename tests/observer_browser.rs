//! The observer's page in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, with fantoccini), against an observer running in this test.
//!
//! It checks that the page shows the tree, that a crash injected into a service turns its row
//! red and raises its restart count within 2 s without a reload, and that a restart from the
//! page is refused without the token and works with it. It saves a screenshot to
//! `target/observer.png` (and to the path in `MODO_OBSERVER_SCREENSHOT`, if set: that is how
//! `docs/observer.png` is made).
//!
//! Without Chromium and chromedriver on the machine the test prints how to install them and
//! passes (`MODO_CHROMIUM` / `MODO_CHROMEDRIVER` name the binaries; a path that does not exist
//! forces the skip). `bash scripts/ensure-chromium.sh` installs them as root.
#![cfg(feature = "observer")]

mod observer_support;

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use modo::observe::{Observer, ObserverConfig};
use modo::prelude::*;
use modo::supervisor::Backoff;
use serde_json::{Value, json};

const TOKEN: &str = "let-me-in-7f3a";

const SKIP: &str = "skipped: chromium and chromedriver not found; install them with: \
                    apt-get install chromium chromium-driver (or, as root: bash scripts/ensure-chromium.sh)";

/// A binary from `var` if set (and present), else the first of `candidates` that exists, else
/// the first of their names found on the `PATH`.
fn binary(var: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| p.is_file()) {
        return Some(found);
    }
    let path = std::env::var_os("PATH")?;
    candidates
        .iter()
        .filter_map(|c| Path::new(c).file_name())
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Driver {
    fn start(chromedriver: &Path, dir: &Path) -> Driver {
        let mut child = Command::new(chromedriver)
            .arg("--port=0")
            .arg(format!(
                "--log-path={}",
                dir.join("chromedriver.log").display()
            ))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the port from chromedriver's banner, then keeps its pipe drained.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('.').parse::<u16>().ok());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .ok()
            .flatten()
            .expect("chromedriver says its port within 20 s");
        Driver {
            child,
            port,
            dir: dir.to_owned(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A service that handles messages (for the figures on the page).
struct Stage(&'static str);
struct Work;

impl Service for Stage {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.0.into()
    }
}

impl Handler<Work> for Stage {
    type Reply = ();
    async fn handle(&mut self, _: Work, _ctx: &mut Context<Self>) {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// A service with a background task and a diagnostic flag.
struct Catalog;

impl Service for Catalog {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let stop = ctx.stop_signal();
        ctx.spawn_named("Catalog.refresh", async move { stop.stopped().await });
        ctx.diag().set_flag("db:connected");
        Ok(())
    }
}

/// Waits in the browser (not by polling from here) until `predicate` (a JS expression over
/// `document`) is truthy, for at most `within`; returns what it evaluated to last.
async fn wait_in_page(client: &Client, predicate: &str, within: Duration) -> Value {
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
           const until = Date.now() + {ms};
           const check = () => {{
             let v = null;
             try {{ v = ({predicate}); }} catch (e) {{ v = null; }}
             if (v || Date.now() > until) done(v); else setTimeout(check, 20);
           }};
           check();"#,
        ms = within.as_millis()
    );
    client
        .execute_async(&script, vec![])
        .await
        .expect("the wait script runs")
}

async fn eval(client: &Client, expr: &str) -> Value {
    client
        .execute(&format!("return ({expr});"), vec![])
        .await
        .expect("the script runs")
}

fn row(id: impl std::fmt::Display) -> String {
    format!("document.querySelector('.row[data-id=\"{id}\"]')")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_in_a_real_browser() {
    let chromium = binary(
        "MODO_CHROMIUM",
        &[
            "/usr/lib/chromium/chromium",
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
        ],
    );
    let chromedriver = binary("MODO_CHROMEDRIVER", &["/usr/bin/chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        let _ = writeln!(std::io::stderr(), "{SKIP}");
        return;
    };

    // The tree: a shop whose order stages are restarted one second after a crash, and a
    // catalog with a background task and a diagnostic flag.
    let system = System::new();
    let shop = system
        .spawn(Supervisor::builder().label("Shop").build())
        .await
        .unwrap();
    let orders = shop
        .supervise(|| {
            Supervisor::builder()
                .label("Orders")
                .backoff(Backoff::Fixed(Duration::from_millis(1000)))
                .build()
        })
        .await
        .unwrap();
    let checkout = orders.supervise(|| Stage("Checkout")).await.unwrap();
    let payments = orders.supervise(|| Stage("Payments")).await.unwrap();
    let shipping = orders.supervise(|| Stage("Shipping")).await.unwrap();
    shop.supervise(|| Catalog).await.unwrap();
    let config = ObserverConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .token(TOKEN);
    let listening = config.listening();
    system.spawn(Observer::new(config)).await.unwrap();
    assert!(
        !system.is_observing(),
        "nobody watches before the page opens"
    );
    let url = listening.url().unwrap();
    // Some traffic, for messages/s and handle times.
    let traffic = tokio::spawn({
        let (checkout, shipping) = (checkout.clone(), shipping.clone());
        async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(5));
            loop {
                ticks.tick().await;
                let _ = checkout.try_tell(Work);
                let _ = shipping.try_tell(Work);
            }
        }
    });

    let dir = std::env::temp_dir().join(format!(
        "modo-browser-{}-{}",
        std::process::id(),
        checkout.id().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let driver = Driver::start(&chromedriver, &dir);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1400,860",
                format!("--user-data-dir={}", dir.join("profile").display()),
            ],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session");
    client
        .update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(0)),
        ))
        .await
        .unwrap();

    let result = drive(&client, &url, &payments, &checkout).await;
    let shot = client.screenshot().await;
    let _ = client.close().await;
    traffic.abort();
    drop(driver);
    system.shutdown().await.unwrap();
    if let Ok(png) = shot {
        let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/observer.png");
        let _ = std::fs::write(&target, &png);
        if let Some(path) = std::env::var_os("MODO_OBSERVER_SCREENSHOT") {
            std::fs::write(&path, &png).expect("the screenshot is written");
        }
    }
    result.unwrap();
}

/// The checks; an `Err` names the first that failed.
async fn drive(
    client: &Client,
    url: &str,
    payments: &Addr<Stage>,
    checkout: &Addr<Stage>,
) -> Result<(), String> {
    client.goto(url).await.map_err(|e| e.to_string())?;

    // The tree shows the services, nested as they are.
    let labels = wait_in_page(
        client,
        "document.querySelectorAll('#tree .row').length >= 7 && \
         Array.from(document.querySelectorAll('#tree .label')).map(e => e.textContent)",
        Duration::from_secs(10),
    )
    .await;
    let labels: Vec<&str> = labels
        .as_array()
        .ok_or("the tree never filled")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if labels
        != [
            "Shop", "Orders", "Checkout", "Payments", "Shipping", "Catalog", "Observer",
        ]
    {
        return Err(format!("tree labels: {labels:?}"));
    }
    let nested = eval(
        client,
        &format!(
            "{}.closest('ul').closest('li').querySelector('.label').textContent",
            row(payments.id())
        ),
    )
    .await;
    if nested != "Orders" {
        return Err(format!("Payments sits under {nested}, not Orders"));
    }
    let live = wait_in_page(
        client,
        "document.getElementById('conn').textContent === 'live'",
        Duration::from_secs(5),
    )
    .await;
    if live != true {
        return Err("the stream never said live".into());
    }
    // The page watches, so the messages are observed: Checkout's messages/s shows.
    let rate = format!(
        "Number({}.querySelector('.rate').textContent) > 0",
        row(checkout.id())
    );
    if wait_in_page(client, &rate, Duration::from_secs(5)).await != true {
        return Err("Checkout's messages/s never rose above 0".into());
    }

    // A crash injected from here: red, and a higher restart count, within 2 s, no reload.
    eval(client, "(window.__noReload = 42)").await;
    let before = payments.restart_count();
    let injected = Instant::now();
    payments.crash(CrashReason::msg("card reader on fire"));
    let red = format!(
        "(() => {{ const r = {row}; if (!r) return false; \
           const dot = getComputedStyle(r.querySelector('.dot')).backgroundColor; \
           return dot === 'rgb(211, 47, 47)' && (r.dataset.state === 'crashed' || r.classList.contains('recent-crash')); }})()",
        row = row(payments.id())
    );
    if wait_in_page(client, &red, Duration::from_secs(2)).await != true {
        return Err("the crashed row did not turn red within 2 s".into());
    }
    let turned_red = injected.elapsed();
    let raised = format!(
        "Number({row}.dataset.restarts) > {before} && {row}.querySelector('.restarts').textContent === String({after})",
        row = row(payments.id()),
        after = before + 1
    );
    let left = Duration::from_secs(2).saturating_sub(injected.elapsed());
    if wait_in_page(client, &raised, left).await != true {
        return Err(format!(
            "the restart count did not rise within 2 s (red after {turned_red:?})"
        ));
    }
    let counted = injected.elapsed();
    if eval(client, "window.__noReload").await != 42 {
        return Err("the page reloaded".into());
    }
    let timeline = eval(
        client,
        "Array.from(document.querySelectorAll('#timeline li')).map(li => li.dataset.kind + ' ' + li.textContent)",
    )
    .await;
    let entries: Vec<&str> = timeline
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let has = |kind: &str, text: &str| {
        entries
            .iter()
            .any(|e| e.starts_with(kind) && e.contains(text))
    };
    if !(has("crashed ", "Payments crashed: card reader on fire")
        && has("restarted ", "Payments restarted (restart count 1)"))
    {
        return Err(format!("timeline: {entries:?}"));
    }
    eprintln!("crash seen red after {turned_red:?}, restart count raised after {counted:?}");

    // Restart from the page: refused without the token, done with it.
    client
        .find(Locator::Css(&format!(
            ".row[data-id=\"{}\"]",
            payments.id()
        )))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    let restarts = payments.restart_count();
    client
        .find(Locator::Id("btn-restart"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    let refused = wait_in_page(
        client,
        "document.getElementById('action-result').dataset.status === '401' && \
         document.getElementById('action-result').textContent",
        Duration::from_secs(5),
    )
    .await;
    if !refused.as_str().is_some_and(|t| t.contains("unauthorized")) {
        return Err(format!("a restart without the token: {refused}"));
    }
    if payments.restart_count() != restarts {
        return Err("the refused restart restarted".into());
    }
    client
        .find(Locator::Id("token"))
        .await
        .map_err(|e| e.to_string())?
        .send_keys(TOKEN)
        .await
        .map_err(|e| e.to_string())?;
    client
        .find(Locator::Id("btn-restart"))
        .await
        .map_err(|e| e.to_string())?
        .click()
        .await
        .map_err(|e| e.to_string())?;
    let done = wait_in_page(
        client,
        "document.getElementById('action-result').dataset.status === '200' && \
         document.getElementById('action-result').textContent",
        Duration::from_secs(5),
    )
    .await;
    if !done.as_str().is_some_and(|t| t.contains("restart done")) {
        return Err(format!("a restart with the token: {done}"));
    }
    if payments.restart_count() != restarts + 1 {
        return Err(format!(
            "restart count {} after the restart from the page, expected {}",
            payments.restart_count(),
            restarts + 1
        ));
    }
    let shown = format!(
        "{row}.querySelector('.restarts').textContent === String({n})",
        row = row(payments.id()),
        n = restarts + 1
    );
    if wait_in_page(client, &shown, Duration::from_secs(2)).await != true {
        return Err("the page did not show the new restart count".into());
    }
    // The details panel shows the last crash, for the screenshot too.
    let details = wait_in_page(
        client,
        "document.getElementById('d-fields').textContent.includes('card reader on fire') && \
         document.getElementById('d-fields').textContent",
        Duration::from_secs(2),
    )
    .await;
    if details == false || details.is_null() {
        return Err("the details do not show the last crash".into());
    }
    Ok(())
}
