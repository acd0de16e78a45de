//! Nodes as separate OS processes (`examples/remote_node.rs`) around a real nats-server:
//! round trips and replicas across processes, and a node killed with SIGKILL in the middle
//! of traffic. Without nats-server the tests print how to install it and pass.

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
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use futures::StreamExt;
    use modo::remote::{Node, NodeOptions, RemoteAddr, RemoteError};

    use crate::remote_app::*;
    use crate::remote_support::example_binary;
    use crate::server_or_skip;

    /// A node process: its READY line and the `Record`s it printed as handled.
    struct Replica {
        child: Child,
        ready: Arc<AtomicBool>,
        handled: Arc<Mutex<Vec<u64>>>,
        eof: Arc<AtomicBool>,
    }

    impl Replica {
        fn spawn(url: &str, me: &str, names: &str) -> Replica {
            let mut child = Command::new(example_binary("remote_node"))
                .args([url, me, names])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("the node starts");
            let stdout = child.stdout.take().unwrap();
            let ready = Arc::new(AtomicBool::new(false));
            let handled = Arc::new(Mutex::new(Vec::new()));
            let eof = Arc::new(AtomicBool::new(false));
            let (r, h, e) = (ready.clone(), handled.clone(), eof.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.starts_with("READY ") {
                        r.store(true, Ordering::SeqCst);
                    } else if let Some(seq) = line.strip_prefix("HANDLED ") {
                        h.lock().unwrap().push(seq.parse().expect("a number"));
                    }
                }
                e.store(true, Ordering::SeqCst);
            });
            Replica {
                child,
                ready,
                handled,
                eof,
            }
        }

        fn wait_ready(&mut self) {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !self.ready.load(Ordering::SeqCst) {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!("the node exited before READY: {status}");
                }
                assert!(Instant::now() < deadline, "no READY within 60 s");
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        /// SIGKILL, and wait until its output is read to the end.
        fn kill(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let deadline = Instant::now() + Duration::from_secs(10);
            while !self.eof.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        fn handled(&self) -> Vec<u64> {
            self.handled.lock().unwrap().clone()
        }
    }

    impl Drop for Replica {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    async fn caller(url: &str) -> Node {
        Node::connect(url, NodeOptions::new("modo-test"))
            .await
            .expect("connect")
    }

    /// Waits until `replica` printed `count` handled records (its stdout may lag a reply).
    async fn wait_handled(replica: &Replica, count: usize) -> Vec<u64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let handled = replica.handled();
            if handled.len() >= count || Instant::now() > deadline {
                return handled;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn no_duplicates(lists: &[&[u64]]) -> HashSet<u64> {
        let mut seen = HashSet::new();
        for list in lists {
            for seq in *list {
                assert!(seen.insert(*seq), "record {seq} handled twice");
            }
        }
        seen
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_node_processes_answer_and_share_the_load() {
        let server = server_or_skip!();
        let url = server.url();
        let mut r1 = Replica::spawn(&url, "r1", "counter,counter-r1");
        let mut r2 = Replica::spawn(&url, "r2", "counter,counter-r2");
        r1.wait_ready();
        r2.wait_ready();
        let node = caller(&url).await;
        let to_r1 = node.lookup::<Counter>("counter-r1").unwrap();
        let to_r2 = node.lookup::<Counter>("counter-r2").unwrap();
        assert_eq!(to_r1.ask(Who).await.unwrap(), ("r1".to_string(), 0));
        assert_eq!(to_r2.ask(Who).await.unwrap(), ("r2".to_string(), 0));
        assert_eq!(to_r1.ask(Add(5)).await.unwrap(), 5);
        assert_eq!(to_r2.ask(Add(1)).await.unwrap(), 1);

        let shared = node.lookup::<Counter>("counter").unwrap();
        let sent = 400u64;
        let oks = futures::stream::iter(0..sent)
            .map(|seq| {
                let shared = shared.clone();
                async move { shared.tell(Record(seq)).await.is_ok() }
            })
            .buffer_unordered(32)
            .filter(|ok| std::future::ready(*ok))
            .count()
            .await;
        assert_eq!(oks as u64, sent);
        // `Who` queues behind every record each replica accepted.
        let (_, n1) = to_r1.ask(Who).await.unwrap();
        let (_, n2) = to_r2.ask(Who).await.unwrap();
        assert_eq!(n1 + n2, sent);
        assert!(n1 > 0 && n2 > 0, "both replicas served: {n1} and {n2}");
        let h1 = wait_handled(&r1, n1 as usize).await;
        let h2 = wait_handled(&r2, n2 as usize).await;
        let all = no_duplicates(&[&h1, &h2]);
        assert_eq!(all, (0..sent).collect::<HashSet<_>>());
        // A message type the export does not take: typed error from the other process.
        assert!(matches!(
            to_r1.ask(Unlisted).await.unwrap_err(),
            RemoteError::UnknownMessage { .. }
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_node_killed_mid_traffic_fails_fast_and_nothing_is_handled_twice() {
        let server = server_or_skip!();
        let url = server.url();
        let mut r1 = Replica::spawn(&url, "r1", "counter,counter-r1");
        let mut r2 = Replica::spawn(&url, "r2", "counter,counter-r2");
        r1.wait_ready();
        r2.wait_ready();
        let node = caller(&url).await;
        let shared: RemoteAddr<Counter> = node
            .lookup::<Counter>("counter")
            .unwrap()
            .with_timeout(Duration::from_secs(2));

        // Tells, 16 in flight, until told to stop; each remembers whether it began after the
        // kill and how it ended.
        let accepted = Arc::new(AtomicU64::new(0));
        let killed = Arc::new(AtomicBool::new(false));
        let sender = {
            let (shared, accepted, killed) = (shared.clone(), accepted.clone(), killed.clone());
            tokio::spawn(async move {
                futures::stream::iter(0..3000u64)
                    .map(|seq| {
                        let (shared, accepted) = (shared.clone(), accepted.clone());
                        let after_kill = killed.load(Ordering::SeqCst);
                        async move {
                            let res = shared.tell(Record(seq)).await.map_err(|e| e.into_parts().0);
                            if res.is_ok() {
                                accepted.fetch_add(1, Ordering::SeqCst);
                            }
                            (seq, after_kill, res)
                        }
                    })
                    .buffer_unordered(16)
                    .collect::<Vec<_>>()
                    .await
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while accepted.load(Ordering::SeqCst) < 800 {
            assert!(Instant::now() < deadline, "traffic did not start");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // An ask in flight on the node when it dies: it fails with its timeout, no hang.
        let in_flight = {
            let to_r1 = node
                .lookup::<Counter>("counter-r1")
                .unwrap()
                .with_timeout(Duration::from_secs(3));
            tokio::spawn(async move {
                let t = Instant::now();
                (to_r1.ask(Sleep(60_000)).await, t.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        r1.kill();
        killed.store(true, Ordering::SeqCst);
        let (res, took) = tokio::time::timeout(Duration::from_secs(10), in_flight)
            .await
            .expect("the ask in flight ends")
            .unwrap();
        assert!(res.unwrap_err().is_timeout());
        assert!(took < Duration::from_secs(4), "{took:?}");

        // Asks to the dead node's own name fail at once, well within their timeout.
        let to_r1 = node
            .lookup::<Counter>("counter-r1")
            .unwrap()
            .with_timeout(Duration::from_secs(5));
        let t = Instant::now();
        let err = to_r1.ask(Who).await.unwrap_err();
        assert!(err.is_no_responders(), "{err}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        // The shared name goes on, served by the survivor.
        assert_eq!(shared.ask(Who).await.unwrap().0, "r2");

        let results = tokio::time::timeout(Duration::from_secs(120), sender)
            .await
            .expect("the sender ends")
            .unwrap();
        let failed: Vec<_> = results.iter().filter(|(_, _, r)| r.is_err()).collect();
        for (seq, _, res) in &failed {
            let e = res.as_ref().unwrap_err();
            assert!(
                e.is_timeout()
                    || e.is_no_responders()
                    || matches!(e, RemoteError::Disconnected { .. }),
                "record {seq}: {e}"
            );
        }
        let to_r2 = node.lookup::<Counter>("counter-r2").unwrap();
        let (_, n2) = to_r2.ask(Who).await.unwrap();
        let h2 = wait_handled(&r2, n2 as usize).await;
        let h1 = r1.handled();
        let handled = no_duplicates(&[&h1, &h2]);
        let h2: HashSet<u64> = h2.into_iter().collect();
        let mut lost = 0;
        for (seq, after_kill, res) in &results {
            if res.is_ok() {
                if *after_kill {
                    assert!(
                        h2.contains(seq),
                        "record {seq}, accepted after the kill, was not handled by the survivor"
                    );
                }
                if !handled.contains(seq) {
                    lost += 1;
                }
            }
        }
        // Only what the killed node had accepted into its mailbox (capacity 64) and not yet
        // handled can be lost with it.
        assert!(
            lost <= 64 + 16,
            "{lost} accepted records were never handled"
        );
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!(
                "killed mid-traffic: {} sent, {} failed (typed), {} handled by r1, {} by r2, {} lost with r1\n",
                results.len(),
                failed.len(),
                h1.len(),
                h2.len(),
                lost
            ),
        );
    }

    /// The two-terminal tutorial, run as two processes: the web side's requests are answered
    /// by the users side.
    #[test]
    fn the_tutorial_split_across_two_processes() {
        let server = server_or_skip!();
        let binary = example_binary("remote_tutorial");
        let mut users = Command::new(&binary)
            .args(["users", "30"])
            .env("NATS_URL", server.url())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the users side starts");
        // Every line of its log, to this thread.
        let stderr = users.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let wait_for = |needle: &str| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while let Some(left) = deadline.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(line) if line.contains(needle) => return Some(line),
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            None
        };
        let exported = wait_for("exported as").is_some();
        // SIGUSR1: the Worker's tree dump shows the node's connection state.
        let _ = Command::new("kill")
            .args(["-USR1", &users.id().to_string()])
            .status();
        let dumped = wait_for("Node(tutorial) state=running");
        let web = Command::new(&binary)
            .args(["web", "2.5"])
            .env("NATS_URL", server.url())
            .stdin(Stdio::null())
            .output()
            .expect("the web side runs");
        let _ = users.kill();
        let _ = users.wait();
        assert!(exported, "the users side did not export");
        let dumped = dumped.expect("the tree dump names the node");
        assert!(dumped.ends_with("flags=nats:connected"), "{dumped}");
        let log = String::from_utf8_lossy(&web.stderr);
        assert!(web.status.success(), "{log}");
        assert!(
            log.contains("user 1 is Some(\"user-1\") (from the other process)"),
            "{log}"
        );
        assert!(log.contains("user 2 is Some(\"user-2\")"), "{log}");
    }
}
