//! Faults survived, with real processes: a server of a 3-server NATS cluster killed while
//! 10,000 acknowledged tells flow; a node process killed with SIGKILL and restarted (its
//! watchers hear Down then Up, the remote child it held restarts on the survivor); a node's
//! connection cut in a network namespace and restored. The figures (time to Down, time to
//! restart) are printed. Without nats-server (or, for the cut, without root and `ip netns`)
//! the tests print why and pass.

#[cfg(not(feature = "nats"))]
#[test]
fn skipped_without_the_nats_feature() {
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: built without the `nats` feature; run cargo test --features nats"
    );
}

#[cfg(feature = "nats")]
mod remote_support;

#[cfg(feature = "nats")]
#[path = "../examples/remote_app/mod.rs"]
mod remote_app;

#[cfg(feature = "nats")]
mod with_nats {
    use std::collections::HashSet;
    use std::io::{BufRead, BufReader, Write as _};
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::Duration;

    use futures::StreamExt;
    use modo::prelude::*;
    use modo::remote::{
        DownCause, GetExportStats, Node, NodeOptions, RemoteChildSpec, WatchTarget,
    };
    use modo::supervisor::RestartPolicy;
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use crate::remote_app::*;
    use crate::remote_support::watcher::{Heard, next, watcher};
    use crate::remote_support::{NatsCluster, NatsServer, Netns, example_binary, print_skip};
    use crate::server_or_skip;

    fn say(line: std::fmt::Arguments<'_>) {
        let _ = writeln!(std::io::stderr(), "{line}");
    }

    /// A `remote_cluster_node` process: its READY line and its stderr lines.
    struct Member {
        child: Child,
        ready: mpsc::UnboundedReceiver<String>,
        stderr: mpsc::UnboundedReceiver<String>,
    }

    impl Member {
        fn spawn(prefix: &[String], url: &str, name: &str, exports: &str, hb: Duration) -> Member {
            let binary = example_binary("remote_cluster_node");
            let mut command = match prefix.split_first() {
                Some((first, rest)) => {
                    let mut c = Command::new(first);
                    c.args(rest).arg(&binary);
                    c
                }
                None => Command::new(&binary),
            };
            let mut child = command
                .args([url, name, exports, &hb.as_millis().to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the node starts");
            let (ready_tx, ready) = mpsc::unbounded_channel();
            let stdout = child.stdout.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                    if line.starts_with("READY ") {
                        let _ = ready_tx.send(line);
                    }
                }
            });
            let (err_tx, stderr) = mpsc::unbounded_channel();
            let err = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let _ = err_tx.send(line);
                }
            });
            Member {
                child,
                ready,
                stderr,
            }
        }

        async fn wait_ready(&mut self) {
            let line = tokio::time::timeout(Duration::from_secs(60), self.ready.recv())
                .await
                .expect("READY within 60 s");
            assert!(line.is_some(), "the node exited before READY");
        }

        fn kill(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }

        /// Waits for a stderr line containing `needle`; returns the lines read up to it.
        async fn wait_stderr(&mut self, needle: &str) -> Vec<String> {
            let mut lines = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                match tokio::time::timeout_at(deadline, self.stderr.recv()).await {
                    Ok(Some(line)) => {
                        let found = line.contains(needle);
                        lines.push(line);
                        if found {
                            return lines;
                        }
                    }
                    _ => panic!("no {needle:?} on stderr within 10 s; read {lines:#?}"),
                }
            }
        }
    }

    impl Drop for Member {
        fn drop(&mut self) {
            self.kill();
        }
    }

    /// A Down caused by a lost node (unreachable), heard within `within` of `since`.
    async fn lost(rx: &mut mpsc::UnboundedReceiver<Heard>, since: Instant) -> Duration {
        match next(rx).await {
            Heard::Down {
                at,
                remote: Some(down),
                ..
            } => {
                assert!(
                    matches!(down.cause, DownCause::Unreachable { .. }),
                    "{down}"
                );
                at - since
            }
            other => panic!("expected a lost node, heard {other:?}"),
        }
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !cond() {
            assert!(Instant::now() < deadline, "{what}: not within 15 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    const HB: Duration = Duration::from_millis(250);
    /// Scheduling slack on a loaded 2-core machine, on top of the two intervals.
    const SLACK: Duration = Duration::from_millis(250);

    async fn local(url: &str, name: &str) -> (System, Node) {
        let system = System::new();
        let node = Node::connect(
            url,
            NodeOptions::new("modo-test")
                .node_name(name)
                .heartbeat_interval(HB),
        )
        .await
        .expect("connect");
        system.spawn(node.clone()).await.unwrap();
        (system, node)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_of_three_dies_while_10000_acked_tells_flow_and_each_accepted_is_handled_once()
    {
        let Some(mut cluster) = NatsCluster::start(3) else {
            return print_skip();
        };
        let urls = cluster.urls();
        let (sys, exporter) = local(&urls, "exporter").await;
        let counter = sys.spawn(Counter::new("e")).await.unwrap();
        let export = export_counter(&exporter, "counter", counter.clone())
            .await
            .unwrap();
        let caller = Node::connect(&urls, NodeOptions::new("modo-test"))
            .await
            .unwrap();
        // The routes carry the export's interest to every server.
        let probe = caller
            .lookup::<Counter>("counter")
            .unwrap()
            .with_retries(50);
        probe.ask(Who).await.expect("the export is reached");
        let on = exporter.client().server_info().port;
        let victim = cluster
            .servers
            .iter()
            .position(|s| s.port() == on)
            .expect("the exporter's server is one of the three");

        const SENT: u64 = 10_000;
        let tells = caller
            .lookup::<Counter>("counter")
            .unwrap()
            .with_timeout(Duration::from_secs(1))
            .with_retries(10);
        let asks = caller
            .lookup::<Counter>("counter")
            .unwrap()
            .with_timeout(Duration::from_secs(1));
        let accepted = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sender = {
            let (tells, accepted) = (tells.clone(), accepted.clone());
            tokio::spawn(async move {
                futures::stream::iter(0..SENT)
                    .map(|seq| {
                        let (tells, accepted) = (tells.clone(), accepted.clone());
                        async move {
                            let res = tells.tell(Record(seq)).await.map_err(|e| e.into_parts().0);
                            if res.is_ok() {
                                accepted.fetch_add(1, Ordering::SeqCst);
                            }
                            (seq, res)
                        }
                    })
                    .buffer_unordered(64)
                    .collect::<Vec<_>>()
                    .await
            })
        };
        // Asks alongside, without retries: each ends within its timeout, answered or typed.
        let asker = {
            let (asks, done) = (asks.clone(), done.clone());
            tokio::spawn(async move {
                let (mut n, mut failed, mut slowest) = (0u32, 0u32, Duration::ZERO);
                while !done.load(Ordering::SeqCst) && n < 100_000 {
                    let t = Instant::now();
                    if asks.ask(Who).await.is_err() {
                        failed += 1;
                    }
                    slowest = slowest.max(t.elapsed());
                    n += 1;
                }
                (n, failed, slowest)
            })
        };
        wait_for("3,000 tells accepted", || {
            accepted.load(Ordering::SeqCst) >= 3000
        })
        .await;
        let killed_at = Instant::now();
        cluster.servers[victim].kill();
        let results = tokio::time::timeout(Duration::from_secs(60), sender)
            .await
            .expect("the tells end within 60 s")
            .unwrap();
        let took = killed_at.elapsed();
        done.store(true, Ordering::SeqCst);
        let (asked, asks_failed, slowest) = tokio::time::timeout(Duration::from_secs(10), asker)
            .await
            .expect("the asks end")
            .unwrap();
        assert!(
            slowest < Duration::from_millis(1500),
            "an ask took {slowest:?} (its timeout is 1 s)"
        );

        // Every accepted tell handled exactly once; every failure typed.
        let seen = counter.ask(SeenList).await.unwrap();
        let mut unique = HashSet::new();
        for seq in &seen {
            assert!(unique.insert(*seq), "record {seq} handled twice");
        }
        let mut failed = 0;
        for (seq, res) in &results {
            match res {
                Ok(()) => assert!(unique.contains(seq), "record {seq} accepted, never handled"),
                Err(e) => {
                    failed += 1;
                    assert!(
                        e.is_timeout() || e.is_no_responders() || !e.certainly_not_handled(),
                        "record {seq}: {e}"
                    );
                }
            }
        }
        let stats = export.ask(GetExportStats).await.unwrap();
        say(format_args!(
            "3-server cluster, server {victim} killed: {SENT} tells, {} accepted, {failed} failed (typed), {} handled, \
             {} copies answered by the dedup window; {asked} asks, {asks_failed} failed, slowest {slowest:?}; \
             the tells ended {took:?} after the kill",
            SENT - failed,
            seen.len(),
            stats.duplicates
        ));
        assert_eq!(failed, 0, "with 10 retries, every tell got through");
        drop(caller);
        sys.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_killed_and_restarted_is_heard_down_then_up_and_its_child_restarts_on_the_survivor()
     {
        let server = server_or_skip!();
        let url = server.url();
        let mut w1 = Member::spawn(&[], &url, "w1", "svc-w1", HB);
        w1.wait_ready().await;
        let (sys, s) = local(&url, "s").await;
        wait_for("w1 heard", || s.is_up(&WatchTarget::name("svc-w1"))).await;
        // The child starts on w1, the only node offering the factory yet.
        let sup = sys
            .spawn(
                Supervisor::builder()
                    .max_restarts(5)
                    .over(Duration::from_secs(30))
                    .build(),
            )
            .await
            .unwrap();
        let spec: RemoteChildSpec<Counter> = s.remote_child("counter");
        let proxy = sup
            .supervise_with(spec.clone(), RestartPolicy::Permanent)
            .await
            .unwrap();
        assert_eq!(spec.holder().unwrap().1, "w1");
        let remote = spec.remote().with_timeout(Duration::from_secs(1));
        assert_eq!(remote.ask(Who).await.unwrap().0, "w1");
        let mut w2 = Member::spawn(&[], &url, "w2", "svc-w2", HB);
        w2.wait_ready().await;
        wait_for("w2 heard", || s.is_up(&WatchTarget::name("svc-w2"))).await;
        let (_, mut on_node) = watcher(&sys, &s, WatchTarget::node("w1")).await;
        let (_, mut on_name) = watcher(&sys, &s, WatchTarget::name("svc-w1")).await;

        let killed_at = Instant::now();
        w1.kill();
        let node_down = lost(&mut on_node, killed_at).await;
        let name_down = lost(&mut on_name, killed_at).await;
        proxy
            .wait_until(|p| p.restart_count() == 1 && p.state() == ServiceState::Running)
            .await;
        let restarted = killed_at.elapsed();
        assert_eq!(spec.holder().unwrap().1, "w2");
        let served = {
            let r = remote.clone().with_retries(20);
            assert_eq!(r.ask(Who).await.unwrap().0, "w2");
            killed_at.elapsed()
        };
        assert!(node_down <= HB * 2 + SLACK, "node down after {node_down:?}");
        assert!(name_down <= HB * 2 + SLACK, "name down after {name_down:?}");
        assert!(
            restarted < Duration::from_secs(2),
            "restarted after {restarted:?}"
        );

        // w1 again, under its name (a new process, a new node id): up.
        let restarted_at = Instant::now();
        let mut w1 = Member::spawn(&[], &url, "w1", "svc-w1", HB);
        w1.wait_ready().await;
        assert!(matches!(next(&mut on_node).await, Heard::Up { .. }));
        assert!(matches!(next(&mut on_name).await, Heard::Up { .. }));
        let up_after = restarted_at.elapsed();

        // SIGUSR1 to w2: its dump shows the cluster, each node's tree under it.
        let _ = Command::new("kill")
            .args(["-USR1", &w2.child.id().to_string()])
            .status();
        let dump = w2.wait_stderr("--- end of cluster ---").await;
        let start = dump
            .iter()
            .position(|l| l.starts_with("--- modo cluster modo-test"))
            .expect("a cluster section");
        let cluster = &dump[start..];
        for name in ["s", "w1", "w2"] {
            assert!(
                cluster
                    .iter()
                    .any(|l| l.starts_with(&format!("node {name} ")) && l.contains("state=up")),
                "{name} in {cluster:#?}"
            );
        }
        assert!(
            cluster.iter().any(|l| l
                .trim_start()
                .starts_with(&format!("{} state=running", spec.name()))),
            "the remote child under w2: {cluster:#?}"
        );
        say(format_args!(
            "SIGKILL of a node (heartbeat {HB:?}, 2 misses): node Down heard after {node_down:?}, name Down after {name_down:?}; \
             remote child restarted on the survivor after {restarted:?}, answering after {served:?}; \
             the node restarted under its name was heard Up {up_after:?} after its process started"
        ));
        sys.shutdown().await.unwrap();
        drop(w1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cut_connection_is_heard_down_within_two_intervals_and_up_when_restored() {
        if crate::remote_support::server_binary().is_none() {
            return print_skip();
        }
        let Some(netns) = Netns::create() else {
            say(format_args!(
                "skipped: network namespaces need root and iproute2 (ip netns); the cut is not tested here"
            ));
            return;
        };
        let Some(server) = NatsServer::start_on(&netns.host_addr, &[], None) else {
            return print_skip();
        };
        let url = server.url();
        let mut w1 = Member::spawn(&netns.exec_prefix(), &url, "w1", "svc-w1", HB);
        w1.wait_ready().await;
        let (sys, s) = local(&url, "s").await;
        wait_for("w1 heard", || s.is_up(&WatchTarget::name("svc-w1"))).await;
        let (_, mut on_node) = watcher(&sys, &s, WatchTarget::node("w1")).await;
        let remote = s
            .lookup::<Counter>("svc-w1")
            .unwrap()
            .with_timeout(Duration::from_secs(1));
        assert_eq!(remote.ask(Who).await.unwrap().0, "w1");

        let cut_at = Instant::now();
        netns.cut();
        let down = lost(&mut on_node, cut_at).await;
        // A call meanwhile fails, typed and bounded: nobody serves the name, or no reply.
        let t = Instant::now();
        let err = remote.ask(Who).await.unwrap_err();
        assert!(err.is_timeout() || err.is_no_responders(), "{err}");
        assert!(
            t.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t.elapsed()
        );
        let restored_at = Instant::now();
        netns.restore();
        assert!(matches!(next(&mut on_node).await, Heard::Up { .. }));
        let up = restored_at.elapsed();
        let r = remote.clone().with_retries(20);
        assert_eq!(
            r.ask(Who).await.unwrap().0,
            "w1",
            "the same process, reconnected"
        );
        assert!(down <= HB * 2 + SLACK, "down after {down:?}");
        say(format_args!(
            "connection cut (veth down in a network namespace, heartbeat {HB:?}): Down heard after {down:?}; \
             link restored: Up heard after {up:?}"
        ));
        sys.shutdown().await.unwrap();
        drop(w1);
        drop(server);
        drop(netns);
    }
}
