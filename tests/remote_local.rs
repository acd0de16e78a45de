//! Remote services between nodes in this process, over a real nats-server on a free
//! loopback port: round trips, the error of every failure, replicas, the dedup window, bad
//! input, back-pressure, and a server restart. Without nats-server the tests print how to
//! install it and pass; without the `nats` feature they say so.

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
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use bytes::Bytes;
    use futures::StreamExt;
    use modo::prelude::*;
    use modo::remote::wire::{self, Fault, Kind, MessageId, NodeId, ReplyHead, RequestHead};
    use modo::remote::{
        ConnectionState, ExportService, GetExportStats, Node, NodeOptions, RemoteError,
        RemoteMessage,
    };
    use proptest::prelude::{ProptestConfig, any, prop_assert_eq, proptest};

    use crate::remote_app::*;
    use crate::remote_support::NatsServer;
    use crate::server_or_skip;

    async fn node(server: &NatsServer, system: &System) -> Node {
        let node = Node::connect(&server.url(), NodeOptions::new("t"))
            .await
            .expect("connect");
        system.spawn(node.clone()).await.expect("spawn the node");
        node
    }

    async fn node_running(system: &System) -> bool {
        let graph = system.registry().graph().await;
        graph.find_by_label("Node(t)")[0].state == ServiceState::Running
    }

    /// A node, a counter exported as `name`, and a second node to call it from.
    async fn pair(server: &NatsServer, name: &str) -> (System, Node, Addr<Counter>, Node) {
        let (system, exporter, counter, caller, _) = pair_with_export(server, name).await;
        (system, exporter, counter, caller)
    }

    /// As `pair`, with the export's service (for its stats).
    async fn pair_with_export(
        server: &NatsServer,
        name: &str,
    ) -> (
        System,
        Node,
        Addr<Counter>,
        Node,
        Addr<ExportService<Counter>>,
    ) {
        let system = System::new();
        let exporter = node(server, &system).await;
        let counter = system.spawn(Counter::new("a")).await.unwrap();
        let export = export_counter(&exporter, name, counter.clone())
            .await
            .unwrap();
        let caller = Node::connect(&server.url(), NodeOptions::new("t"))
            .await
            .unwrap();
        (system, exporter, counter, caller, export)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ask_tell_try_tell_and_unacked_round_trip() {
        let server = server_or_skip!();
        let (system, _exporter, counter, caller) = pair(&server, "counter").await;
        let remote = caller.lookup::<Counter>("counter").unwrap();

        assert_eq!(remote.ask(Add(2)).await.unwrap(), 2);
        assert_eq!(
            remote
                .ask_timeout(Add(3), Duration::from_secs(1))
                .await
                .unwrap(),
            5
        );
        remote.tell(Record(1)).await.unwrap();
        remote.try_tell(Record(2)).await.unwrap();
        remote.tell_unacked(Record(3)).await.unwrap();
        // `Who` queues behind the three records (one sender, one connection: in order).
        assert_eq!(remote.ask(Who).await.unwrap(), ("a".to_string(), 3));
        assert_eq!(
            counter.ask(SeenList).await.unwrap(),
            [1, 2, 3],
            "handled once each, in order"
        );
        system.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_name_nobody_exports_fails_at_once() {
        let server = server_or_skip!();
        let caller = Node::connect(&server.url(), NodeOptions::new("t"))
            .await
            .unwrap();
        let remote = caller
            .lookup::<Counter>("nobody")
            .unwrap()
            .with_timeout(Duration::from_secs(10));
        let t = Instant::now();
        let err = remote.ask(Add(1)).await.unwrap_err();
        assert!(err.is_no_responders(), "{err}");
        let err = remote.tell(Record(1)).await.unwrap_err();
        assert!(err.error().is_no_responders(), "{err}");
        assert_eq!(err.into_inner().0, 1, "the message comes back");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        // Another system's export is not seen either.
        let system = System::new();
        let other = Node::connect(&server.url(), NodeOptions::new("other"))
            .await
            .unwrap();
        system.spawn(other.clone()).await.unwrap();
        let c = system.spawn(Counter::new("o")).await.unwrap();
        export_counter(&other, "nobody", c).await.unwrap();
        assert!(remote.ask(Add(1)).await.unwrap_err().is_no_responders());
        assert_eq!(
            other
                .lookup::<Counter>("nobody")
                .unwrap()
                .ask(Add(1))
                .await
                .unwrap(),
            1
        );
        system.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_handler_gives_crashed_and_the_node_goes_on() {
        let server = server_or_skip!();
        let system = System::new();
        let exporter = node(&server, &system).await;
        // Under a supervisor, as a real app would run it: the crash restarts it.
        let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
        let counter = sup.supervise(|| Counter::new("a")).await.unwrap();
        export_counter(&exporter, "counter", counter.clone())
            .await
            .unwrap();
        let caller = Node::connect(&server.url(), NodeOptions::new("t"))
            .await
            .unwrap();
        let remote = caller.lookup::<Counter>("counter").unwrap();
        let err = remote.ask(Boom).await.unwrap_err();
        assert!(err.is_crashed(), "{err}");
        assert!(err.to_string().contains("boom on purpose"), "{err}");
        counter.wait_until(|c| c.restart_count() == 1).await;
        assert_eq!(remote.ask(Add(7)).await.unwrap(), 7, "served again");

        // A root that crashes stops for good, as locally: its export withdraws, and callers
        // hear that nobody exports the name.
        let root = system.spawn(Counter::new("root")).await.unwrap();
        export_counter(&exporter, "root", root.clone())
            .await
            .unwrap();
        let remote_root = caller.lookup::<Counter>("root").unwrap();
        let err = remote_root.ask(Boom).await.unwrap_err();
        assert!(err.is_crashed(), "{err:?}");
        root.wait_until_stopped().await;
        let mut last = None;
        for _ in 0..100 {
            match remote_root.ask(Add(1)).await {
                Err(e) if e.is_no_responders() => {
                    last = None;
                    break;
                }
                other => last = Some(format!("{other:?}")),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(last, None, "the export of a stopped service withdraws");
        assert!(node_running(&system).await);
        system.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unknown_types_and_versions_get_typed_errors() {
        let server = server_or_skip!();
        let (system, _exporter, counter, caller) = pair(&server, "counter").await;
        let remote = caller.lookup::<Counter>("counter").unwrap();
        match remote.ask(Unlisted).await.unwrap_err() {
            RemoteError::UnknownMessage { message, .. } => assert_eq!(message, "test.Unlisted"),
            other => panic!("{other}"),
        }
        match remote.ask(AddV2(1)).await.unwrap_err() {
            RemoteError::VersionMismatch {
                message,
                expected,
                got,
                ..
            } => assert_eq!((message.as_str(), expected, got), ("test.Add", 1, 2)),
            other => panic!("{other}"),
        }
        let err = remote.tell(AddV2(1)).await.unwrap_err();
        assert!(matches!(err.error(), RemoteError::VersionMismatch { .. }));
        assert_eq!(remote.ask(Add(1)).await.unwrap(), 1, "nothing was handled");
        assert_eq!(counter.state(), ServiceState::Running);
        system.shutdown().await.unwrap();
    }

    /// Sends a raw frame to `subject` and decodes the reply.
    async fn raw(client: &async_nats::Client, subject: &str, frame: Vec<u8>) -> ReplyHead {
        let reply = client
            .request(subject.to_string(), Bytes::from(frame))
            .await
            .expect("a reply");
        wire::decode_reply(&reply.payload).expect("a reply frame").0
    }

    fn frame<M: serde::Serialize>(
        kind: Kind,
        seq: u64,
        name: &str,
        version: u16,
        msg: &M,
    ) -> Vec<u8> {
        let head = RequestHead {
            kind,
            id: MessageId {
                node: NodeId([9; 16]),
                seq,
            },
            message: name,
            version,
            wait_ms: 2000,
        };
        wire::encode_request(&head, msg).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn garbage_gets_typed_error_replies_and_crashes_nothing() {
        let server = server_or_skip!();
        let (system, exporter, counter, caller, export) =
            pair_with_export(&server, "counter").await;
        let subject = exporter.export_subject("counter");
        let client = caller.client();

        assert!(matches!(
            raw(client, &subject, vec![]).await,
            ReplyHead::Fault(Fault::Decode { .. })
        ));
        assert_eq!(
            raw(client, &subject, vec![200, 1, 2]).await,
            ReplyHead::Fault(Fault::WireVersion {
                got: 200,
                supported: wire::WIRE_VERSION
            })
        );
        assert!(matches!(
            raw(client, &subject, vec![wire::WIRE_VERSION, 0xff, 0xff]).await,
            ReplyHead::Fault(Fault::Decode { .. })
        ));
        // A good head with a body that is not an `Add`: refused, never handed to the service.
        let bad_body = frame(Kind::Ask, 1, Add::NAME, 1, &"not a number");
        match raw(client, &subject, bad_body).await {
            ReplyHead::Fault(Fault::Decode { what }) => {
                assert!(what.contains("test.Add"), "{what}")
            }
            other => panic!("{other:?}"),
        }
        // Trailing bytes after a good body: refused too.
        let mut trailing = frame(Kind::Ask, 2, Add::NAME, 1, &5u64);
        trailing.push(0);
        assert!(matches!(
            raw(client, &subject, trailing).await,
            ReplyHead::Fault(Fault::Decode { .. })
        ));
        // Fire-and-forget garbage: dropped (and logged), nothing else.
        for junk in [vec![], vec![1, 2, 3], vec![wire::WIRE_VERSION, 3, 0]] {
            client
                .publish(subject.clone(), Bytes::from(junk))
                .await
                .unwrap();
        }
        let remote = caller.lookup::<Counter>("counter").unwrap();
        assert_eq!(remote.ask(Add(4)).await.unwrap(), 4);
        assert_eq!(counter.state(), ServiceState::Running);
        assert_eq!(counter.restart_count(), 0);
        let stats = export.ask(GetExportStats).await.unwrap();
        assert_eq!(
            (stats.served, stats.refused, stats.dropped),
            (1, 5, 3),
            "{stats:?}"
        );
        assert!(node_running(&system).await);
        system.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_sent_twice_is_handled_once() {
        let server = server_or_skip!();
        let (system, exporter, counter, caller, export) =
            pair_with_export(&server, "counter").await;
        let subject = exporter.export_subject("counter");
        let client = caller.client();

        // The same ask twice: one handling, the same reply.
        let ask = frame(Kind::Ask, 10, Add::NAME, 1, &Add(5));
        let first = raw(client, &subject, ask.clone()).await;
        let (head, body) = {
            let reply = client
                .request(subject.clone(), Bytes::from(ask))
                .await
                .unwrap();
            let (h, b) = wire::decode_reply(&reply.payload).unwrap();
            (h, wire::decode_body::<u64>(b, "reply").unwrap())
        };
        assert_eq!((first, head), (ReplyHead::Ok, ReplyHead::Ok));
        assert_eq!(body, 5, "the stored reply, not a second addition");
        // The same tell three times: accepted each time, handled once.
        let tell = frame(Kind::Tell, 11, Record::NAME, 1, &Record(77));
        for _ in 0..3 {
            assert_eq!(
                raw(client, &subject, tell.clone()).await,
                ReplyHead::Accepted
            );
        }
        let remote = caller.lookup::<Counter>("counter").unwrap();
        assert_eq!(remote.ask(Add(0)).await.unwrap(), 5);
        assert_eq!(counter.ask(SeenList).await.unwrap(), [77]);

        // Retries of a slow ask (the first attempt times out) reach the same node, which
        // answers the copies with the first one's reply: handled once.
        let slow = caller
            .lookup::<Counter>("counter")
            .unwrap()
            .with_timeout(Duration::from_millis(150))
            .with_retries(10);
        assert_eq!(slow.ask(Sleep(500)).await.unwrap(), 1);
        assert_eq!(counter.ask(Who).await.unwrap().1, 1, "records unchanged");
        assert_eq!(remote.ask(Sleep(0)).await.unwrap(), 2, "one Sleep before");
        let stats = export.ask(GetExportStats).await.unwrap();
        // 1 ask + 1 tell + Add(0) + Sleep(500) + Sleep(0) served; 1 + 2 raw copies and at
        // least 2 retried copies of the slow ask answered from the window.
        assert_eq!(stats.served, 5, "{stats:?}");
        assert!(stats.duplicates >= 5, "{stats:?}");
        system.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicas_share_the_load() {
        let server = server_or_skip!();
        let system = System::new();
        let mut counters = Vec::new();
        for me in ["r1", "r2", "r3"] {
            let n = node(&server, &system).await;
            let c = system.spawn(Counter::new(me)).await.unwrap();
            export_counter(&n, "counter", c.clone()).await.unwrap();
            counters.push(c);
        }
        let caller = Node::connect(&server.url(), NodeOptions::new("t"))
            .await
            .unwrap();
        let remote = caller.lookup::<Counter>("counter").unwrap();
        let sent = 300u64;
        let results = futures::stream::iter(0..sent)
            .map(|seq| {
                let remote = remote.clone();
                async move { remote.tell(Record(seq)).await.is_ok() }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        assert!(results.iter().all(|ok| *ok));
        let mut by_replica = HashMap::new();
        let mut all = Vec::new();
        for c in &counters {
            let (me, n) = c.ask(Who).await.unwrap();
            by_replica.insert(me, n);
            all.extend(c.ask(SeenList).await.unwrap());
        }
        all.sort_unstable();
        assert_eq!(all, (0..sent).collect::<Vec<_>>(), "each handled once");
        for (me, n) in &by_replica {
            assert!(*n > 0, "replica {me} got nothing: {by_replica:?}");
        }
        system.shutdown().await.unwrap();
    }

    /// A replica withdrawn in the middle of traffic (its export stopped) drains: what
    /// reached its process is answered, new requests go to the other replica. Requests the
    /// server routed to it during the unsubscription's round trip can still be dropped by
    /// the client library (core NATS is at most once): their senders time out, and a sender
    /// with retries gets them served by the other replica. With retries, every tell is
    /// accepted, and each handled exactly once across the two replicas.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_withdrawn_mid_traffic_loses_no_request_sent_with_retries() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU64, Ordering};

        let server = server_or_skip!();
        let system = System::new();
        let mut exports = Vec::new();
        let mut counters = Vec::new();
        for me in ["r1", "r2"] {
            let n = node(&server, &system).await;
            let c = system.spawn(Counter::new(me)).await.unwrap();
            exports.push(export_counter(&n, "counter", c.clone()).await.unwrap());
            counters.push(c);
        }
        let caller = Node::connect(&server.url(), NodeOptions::new("t"))
            .await
            .unwrap();
        let remote = caller
            .lookup::<Counter>("counter")
            .unwrap()
            .with_timeout(Duration::from_secs(1))
            .with_retries(5);
        let done = Arc::new(AtomicU64::new(0));
        let sender = {
            let done = done.clone();
            tokio::spawn(async move {
                futures::stream::iter(0..1000u64)
                    .map(|seq| {
                        let (remote, done) = (remote.clone(), done.clone());
                        async move {
                            let res = remote.tell(Record(seq)).await.map_err(|e| e.to_string());
                            done.fetch_add(1, Ordering::SeqCst);
                            res
                        }
                    })
                    .buffer_unordered(16)
                    .collect::<Vec<_>>()
                    .await
            })
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while done.load(Ordering::SeqCst) < 200 {
            assert!(Instant::now() < deadline, "traffic did not start");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        exports[0].stop().await.unwrap();
        let results = tokio::time::timeout(Duration::from_secs(60), sender)
            .await
            .expect("the sender ends")
            .unwrap();
        let errors: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(errors.is_empty(), "{errors:?}");
        let mut handled = Vec::new();
        for c in &counters {
            handled.extend(c.ask(SeenList).await.unwrap());
        }
        handled.sort_unstable();
        assert_eq!(handled, (0..1000).collect::<Vec<_>>(), "each once");
        system.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_mailbox_delays_tell_and_refuses_try_tell() {
        let server = server_or_skip!();
        let (system, _exporter, counter, caller) = pair(&server, "counter").await;
        let remote = caller.lookup::<Counter>("counter").unwrap();
        // Occupy the handler, then fill the mailbox (capacity 64).
        let busy = {
            let remote = remote.clone();
            tokio::spawn(async move { remote.ask(Sleep(700)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        for seq in 0..64 {
            remote.tell(Record(seq)).await.unwrap();
        }
        let err = remote.try_tell(Record(1000)).await.unwrap_err();
        assert!(
            matches!(err.error(), RemoteError::MailboxFull { .. }),
            "{err}"
        );
        // A tell waits for room: accepted once the handler is done.
        let t = Instant::now();
        remote.tell(Record(64)).await.unwrap();
        assert!(
            t.elapsed() > Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        assert_eq!(busy.await.unwrap().unwrap(), 1);
        // A tell that finds no room within its timeout is not queued, and says so.
        let busy = {
            let remote = remote.clone();
            tokio::spawn(async move { remote.ask(Sleep(600)).await })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let quick = remote.clone().with_timeout(Duration::from_millis(150));
        let mut refused = 0;
        for seq in 100..200 {
            if let Err(e) = quick.tell(Record(seq)).await {
                assert!(e.error().is_timeout(), "{e}");
                refused += 1;
                break;
            }
        }
        assert_eq!(refused, 1);
        busy.await.unwrap().unwrap();
        let seen = counter.ask(SeenList).await.unwrap();
        assert_eq!(&seen[..65], (0..65).collect::<Vec<_>>().as_slice());
        system.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_ask_that_outlives_its_timeout_fails_in_time() {
        let server = server_or_skip!();
        let (system, _exporter, _counter, caller) = pair(&server, "counter").await;
        let remote = caller.lookup::<Counter>("counter").unwrap();
        let t = Instant::now();
        let err = remote
            .ask_timeout(Sleep(2_000), Duration::from_millis(200))
            .await
            .unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(
            t.elapsed() < Duration::from_millis(1_000),
            "{:?}",
            t.elapsed()
        );
        system.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_node_is_a_service_with_its_connection_state_and_exports_in_the_graph() {
        let server = server_or_skip!();
        let (system, exporter, _counter, caller) = pair(&server, "counter").await;
        let graph = system.registry().graph().await;
        let node = &graph.find_by_label("Node(t)")[0];
        assert_eq!(node.flags, ["nats:connected"]);
        assert!(
            node.tasks.iter().any(|t| t == "nats-connection"),
            "{:?}",
            node.tasks
        );
        let children: Vec<_> = graph
            .children(node.id)
            .iter()
            .map(|n| n.label.clone())
            .collect();
        assert_eq!(children, ["export counter"]);
        // One node, one service: a second spawn of the same node is refused.
        let err = system.spawn(exporter.clone()).await.unwrap_err();
        assert!(err.to_string().contains("already runs"), "{err}");
        // Stopping the node's service withdraws its exports.
        let node_ref = system
            .roots()
            .into_iter()
            .find(|r| r.label() == "Node(t)")
            .unwrap();
        node_ref.stop().await.unwrap();
        let remote = caller.lookup::<Counter>("counter").unwrap();
        assert!(remote.ask(Add(1)).await.unwrap_err().is_no_responders());
        // Without its service running, the node cannot export.
        let c = system.spawn(Counter::new("x")).await.unwrap();
        assert!(matches!(
            export_counter(&exporter, "again", c).await.unwrap_err(),
            RemoteError::NodeNotRunning
        ));
        system.shutdown().await.unwrap();
        exporter.close().await.unwrap();
        assert_eq!(exporter.state(), ConnectionState::Closed);
        let closed = exporter.lookup::<Counter>("counter").unwrap();
        let err = closed.ask(Add(1)).await.unwrap_err();
        assert!(matches!(err, RemoteError::Disconnected { .. }), "{err:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_survive_a_server_restart() {
        let mut server = server_or_skip!();
        let (system, exporter, _counter, caller) = pair(&server, "counter").await;
        let remote = caller.lookup::<Counter>("counter").unwrap();
        assert_eq!(remote.ask(Add(1)).await.unwrap(), 1);
        let mut state = exporter.watch_state();

        server.kill();
        let lost = tokio::time::timeout(
            Duration::from_secs(10),
            state.wait_for(|s| *s == ConnectionState::Reconnecting),
        )
        .await
        .is_ok();
        assert!(lost, "the node saw the connection break");
        let graph = system.registry().graph().await;
        assert_eq!(
            graph.find_by_label("Node(t)")[0].flags,
            ["nats:reconnecting"]
        );

        server.restart();
        let back = tokio::time::timeout(
            Duration::from_secs(10),
            state.wait_for(|s| *s == ConnectionState::Connected),
        )
        .await
        .is_ok();
        assert!(back, "the node reconnected");
        // The caller reconnects too, and the export's subscription is restored: asks work
        // again (bounded: a few attempts while the caller's own reconnect completes).
        let mut answer = None;
        for _ in 0..50 {
            match remote.ask_timeout(Add(1), Duration::from_millis(500)).await {
                Ok(n) => {
                    answer = Some(n);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert_eq!(answer, Some(2));
        let graph = system.registry().graph().await;
        assert_eq!(graph.find_by_label("Node(t)")[0].flags, ["nats:connected"]);
        system.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn payloads_larger_than_the_server_takes_are_typed_errors() {
        let server = server_or_skip!();
        let (system, _exporter, counter, caller) = pair(&server, "counter").await;
        let remote = caller.lookup::<Counter>("counter").unwrap();
        // The server's default max_payload is 1 MiB.
        assert_eq!(remote.ask(Payload(vec![1; 1000])).await.unwrap(), 1000);
        let t = Instant::now();
        let err = remote.ask(Payload(vec![1; 2 << 20])).await.unwrap_err();
        assert!(matches!(err, RemoteError::TooLarge { .. }), "{err}");
        let err = remote.ask(Blob(2 << 20)).await.unwrap_err();
        assert!(
            matches!(err, RemoteError::Encode { remote: true, .. }),
            "{err}"
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(remote.ask(Blob(10)).await.unwrap(), vec![7; 10]);
        assert_eq!(counter.state(), ServiceState::Running);
        system.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_a_node_stops_its_exports() {
        let server = server_or_skip!();
        let system = System::new();
        let exporter = node(&server, &system).await;
        let counter = system.spawn(Counter::new("a")).await.unwrap();
        let export = export_counter(&exporter, "counter", counter.clone())
            .await
            .unwrap();
        exporter.close().await.unwrap();
        let stopped = tokio::time::timeout(
            Duration::from_secs(10),
            export.wait_until(|e| e.is_terminated()),
        )
        .await
        .is_ok();
        assert!(stopped, "the export stopped for good");
        let graph = system.registry().graph().await;
        assert_eq!(graph.find_by_label("Node(t)")[0].flags, ["nats:closed"]);
        assert!(graph.find_by_label("export counter").is_empty());
        assert_eq!(
            counter.state(),
            ServiceState::Running,
            "the service itself goes on"
        );
        system.shutdown().await.unwrap();
    }

    /// REMOTE.md: a request in flight when the server dies may time out although it was
    /// handled. Tells sent with retries (same message id) through server restarts: every
    /// accepted tell is handled, and none twice, while copies did reach the node (the
    /// restarts are repeated, at most 6 times, until the window has answered some).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retries_across_a_server_restart_handle_each_tell_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

        let mut server = server_or_skip!();
        let (system, _exporter, counter, caller, export) =
            pair_with_export(&server, "counter").await;
        let remote = caller
            .lookup::<Counter>("counter")
            .unwrap()
            .with_timeout(Duration::from_millis(300))
            .with_retries(30);
        let accepted = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let sender = {
            let (accepted, done) = (accepted.clone(), done.clone());
            tokio::spawn(async move {
                futures::stream::iter(0..100_000u64)
                    .take_while(move |_| std::future::ready(!done.load(Ordering::SeqCst)))
                    .map(|seq| {
                        let (remote, accepted) = (remote.clone(), accepted.clone());
                        async move {
                            let res = remote.tell(Record(seq)).await;
                            if res.is_ok() {
                                accepted.fetch_add(1, Ordering::SeqCst);
                            }
                            (seq, res.map_err(|e| e.into_parts().0))
                        }
                    })
                    .buffer_unordered(8)
                    .collect::<Vec<_>>()
                    .await
            })
        };
        let wait_accepted = |n: u64| {
            let accepted = accepted.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                while accepted.load(Ordering::SeqCst) < n {
                    assert!(Instant::now() < deadline, "traffic stalled before {n}");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        let mut restarts = 0;
        for _ in 0..6 {
            wait_accepted(accepted.load(Ordering::SeqCst) + 200).await;
            // Down long enough for the requests in flight to time out and be sent again.
            server.kill();
            tokio::time::sleep(Duration::from_millis(700)).await;
            server.restart();
            restarts += 1;
            wait_accepted(accepted.load(Ordering::SeqCst) + 50).await;
            if export.ask(GetExportStats).await.unwrap().duplicates > 0 {
                break;
            }
        }
        done.store(true, Ordering::SeqCst);
        let results = tokio::time::timeout(Duration::from_secs(120), sender)
            .await
            .expect("the sender ends")
            .unwrap();
        let seen = counter.ask(SeenList).await.unwrap();
        let mut unique = std::collections::HashSet::new();
        for seq in &seen {
            assert!(unique.insert(*seq), "record {seq} handled twice");
        }
        let mut failed = 0;
        for (seq, res) in &results {
            match res {
                Ok(()) => assert!(unique.contains(seq), "record {seq} accepted, not handled"),
                Err(e) => {
                    assert!(!e.certainly_not_handled(), "{e}");
                    failed += 1;
                }
            }
        }
        let stats = export.ask(GetExportStats).await.unwrap();
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!(
                "through {restarts} restart(s): {} tells, {stats:?}, {failed} failed\n",
                results.len()
            ),
        );
        assert!(failed < 20, "{failed} tells failed through 30 retries");
        // Each record reached the service once; the copies that a restart produced (sent
        // before it, buffered by the client, sent again after it) were answered from the
        // window.
        assert_eq!(stats.served as usize, seen.len());
        assert!(stats.duplicates > 0, "{stats:?}");
        system.shutdown().await.unwrap();
    }

    #[test]
    fn bad_names_are_refused() {
        let server = server_or_skip!();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let err = Node::connect(&server.url(), NodeOptions::new("a.b"))
                .await
                .unwrap_err();
            assert!(matches!(err, RemoteError::InvalidName { .. }), "{err}");
            let node = Node::connect(&server.url(), NodeOptions::new("t"))
                .await
                .unwrap();
            assert!(node.lookup::<Counter>("x y").is_err());
            assert!(matches!(
                Node::connect(
                    "nats://127.0.0.1:1",
                    NodeOptions::new("t").connect_timeout(Duration::from_millis(500))
                )
                .await
                .unwrap_err(),
                RemoteError::Connect { .. }
            ));
        });
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any bytes decode to a value or a typed error, never a panic.
        #[test]
        fn decoders_are_total(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = wire::decode_request(&bytes);
            let _ = wire::decode_reply(&bytes);
            let _ = wire::decode_body::<(u64, String, Vec<u32>)>(&bytes, "message");
            let mut versioned = bytes.clone();
            versioned.insert(0, wire::WIRE_VERSION);
            if let Ok((head, body)) = wire::decode_request(&versioned) {
                // What decodes encodes back to the same head.
                let again = wire::encode_request(&head, &()).unwrap();
                let (back, _) = wire::decode_request(&again).unwrap();
                prop_assert_eq!(back, head.clone());
                let _ = body;
            }
            let _ = wire::decode_reply(&versioned);
        }
    }

    /// Random frames sent to a live export: every one gets a reply that decodes (a typed
    /// error, or a reply when the bytes happen to be a valid request), and the service
    /// never crashes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn random_frames_to_a_live_export_get_typed_replies() {
        use proptest::strategy::{Strategy as _, ValueTree};
        use proptest::test_runner::TestRunner;

        let server = server_or_skip!();
        let (system, exporter, counter, caller) = pair(&server, "counter").await;
        let subject = exporter.export_subject("counter");
        let mut runner = TestRunner::deterministic();
        let strategy = proptest::collection::vec(any::<u8>(), 0..48);
        for i in 0..300u32 {
            let mut bytes = strategy.new_tree(&mut runner).unwrap().current();
            if i % 2 == 0 {
                bytes.insert(0, wire::WIRE_VERSION);
            }
            let reply = caller
                .client()
                .request(subject.clone(), Bytes::from(bytes.clone()))
                .await
                .unwrap_or_else(|e| panic!("no reply to {bytes:?}: {e}"));
            assert!(
                wire::decode_reply(&reply.payload).is_ok(),
                "undecodable reply to {bytes:?}"
            );
        }
        assert_eq!(counter.state(), ServiceState::Running);
        assert_eq!(counter.restart_count(), 0);
        system.shutdown().await.unwrap();
    }
}
