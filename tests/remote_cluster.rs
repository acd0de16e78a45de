//! Several nodes in one process, each in its own System, around a real nats-server: watches
//! across nodes (a remote crash, stop, withdrawal, a node leaving and coming back), remote
//! supervision (a child spawned on another node from a factory, restarted by its supervisor's
//! strategy, moved when its node goes), and the cluster graph. Without nats-server the tests
//! print how to install it and pass.

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
    use std::time::Duration;

    use modo::prelude::*;
    use modo::registry::MemberState;
    use modo::remote::{DownCause, Node, NodeOptions, RemoteChildSpec, RemoteError, WatchTarget};
    use modo::supervisor::RestartPolicy;
    use tokio::sync::mpsc;
    use tokio::time::Instant;

    use crate::remote_app::*;
    use crate::remote_support::NatsServer;
    use crate::remote_support::watcher::{Heard, next, watcher};
    use crate::server_or_skip;

    /// The heartbeat interval of these tests' nodes (misses: 2).
    const HB: Duration = Duration::from_millis(200);

    /// A node named `name` in a System of its own, its service running.
    async fn member(server: &NatsServer, name: &str) -> (System, Node) {
        let system = System::new();
        let node = Node::connect(
            &server.url(),
            NodeOptions::new("cluster-test")
                .node_name(name)
                .heartbeat_interval(HB),
        )
        .await
        .expect("connect");
        system
            .spawn(node.clone())
            .await
            .expect("the node's service");
        (system, node)
    }

    /// Nothing more is heard for `quiet`.
    async fn silence(rx: &mut mpsc::UnboundedReceiver<Heard>, quiet: Duration) {
        if let Ok(Some(h)) = tokio::time::timeout(quiet, rx.recv()).await {
            panic!("heard {h:?}, expected nothing");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watched_name_is_down_at_once_when_its_service_crashes_or_stops_and_up_when_back() {
        let server = server_or_skip!();
        let (sys_a, a) = member(&server, "a").await;
        let (sys_b, b) = member(&server, "b").await;
        let counter = sys_b.spawn(Counter::new("b")).await.unwrap();
        export_counter(&b, "svc", counter.clone()).await.unwrap();
        let (_w, mut heard) = watcher(&sys_a, &a, WatchTarget::name("svc")).await;

        // The service crashes on b: a's watcher hears a crash at once (well within one
        // heartbeat interval), with b's reason.
        let t = Instant::now();
        counter.crash("on purpose");
        match next(&mut heard).await {
            Heard::Down {
                at,
                stopped: false,
                remote: Some(down),
            } => {
                assert!(at - t < HB, "heard after {:?}", at - t);
                assert_eq!(down.target, WatchTarget::name("svc"));
                match &down.cause {
                    DownCause::Crashed { node, reason } => {
                        assert_eq!(node, "b");
                        assert!(reason.contains("on purpose"), "{reason}");
                    }
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
        // Exported again (a fresh service): up, with a fresh watch.
        let again = sys_b.spawn(Counter::new("b2")).await.unwrap();
        let export = export_counter(&b, "svc", again.clone()).await.unwrap();
        assert!(matches!(next(&mut heard).await, Heard::Up { node, .. } if node == "b"));
        // Withdrawn: a clean stop, heard at once.
        let t = Instant::now();
        export.stop().await.unwrap();
        match next(&mut heard).await {
            Heard::Down {
                at, stopped: true, ..
            } => assert!(at - t < HB, "heard after {:?}", at - t),
            other => panic!("{other:?}"),
        }
        silence(&mut heard, HB * 3).await;
        sys_a.shutdown().await.unwrap();
        sys_b.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_watched_node_is_down_when_it_leaves_and_up_when_it_comes_back_under_its_name() {
        let server = server_or_skip!();
        let (sys_a, a) = member(&server, "a").await;
        let (sys_b, _b) = member(&server, "b").await;
        let (_w, mut heard) = watcher(&sys_a, &a, WatchTarget::node("b")).await;
        // Nothing is heard while b runs.
        silence(&mut heard, HB * 3).await;
        let t = Instant::now();
        sys_b.shutdown().await.unwrap();
        match next(&mut heard).await {
            Heard::Down {
                at, stopped: true, ..
            } => assert!(at - t < HB * 2, "heard after {:?}", at - t),
            other => panic!("{other:?}"),
        }
        // A new process (a new node id) under the same name: up.
        let (sys_b2, b2) = member(&server, "b").await;
        assert!(matches!(next(&mut heard).await, Heard::Up { node, .. } if node == "b"));
        assert!(a.is_up(&WatchTarget::node("b")));
        // And it is watched again: b2 closes its connection without leaving its System.
        b2.close().await.unwrap();
        assert!(matches!(
            next(&mut heard).await,
            Heard::Down { stopped: true, .. }
        ));
        sys_b2.shutdown().await.unwrap();
        sys_a.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watching_what_is_not_up_is_a_typed_error() {
        let server = server_or_skip!();
        let (sys_a, a) = member(&server, "a").await;
        let t = Instant::now();
        let err = a
            .watch(WatchTarget::name("nobody"))
            .start()
            .await
            .unwrap_err();
        assert!(matches!(err, RemoteError::UnknownTarget { .. }), "{err}");
        // It waited for the heartbeat allowance (2 intervals), not more.
        assert!(
            t.elapsed() < HB * 2 + Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        let err = a.watch(WatchTarget::name("a.b")).start().await.unwrap_err();
        assert!(matches!(err, RemoteError::InvalidName { .. }), "{err}");
        // The node watches itself by name.
        let own = a.watch(WatchTarget::node("a")).start().await.unwrap();
        assert!(own.is_started());
        sys_a.shutdown().await.unwrap();
    }

    /// A supervised remote child: where it runs, and a handle to it.
    async fn workers(server: &NatsServer) -> [(System, Node); 2] {
        let mut out = Vec::new();
        for name in ["w1", "w2"] {
            let (system, node) = member(server, name).await;
            let me = name.to_owned();
            node.factory("counter", move || Counter::new(me.clone()))
                .message::<Add>()
                .message::<Who>()
                .message::<Boom>()
                .register()
                .await
                .unwrap();
            out.push((system, node));
        }
        out.try_into().unwrap()
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "{what}: not within 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn holder(spec: &RemoteChildSpec<Counter>) -> String {
        spec.holder().map(|(_, n)| n).unwrap_or_default()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_supervisor_restarts_a_remote_child_that_crashed_and_moves_it_when_its_node_goes() {
        let server = server_or_skip!();
        let [(sys_w1, w1), (sys_w2, w2)] = workers(&server).await;
        let (sys_s, s) = member(&server, "s").await;
        // Both workers heard.
        wait_for("the factories are heard", || {
            s.is_up(&WatchTarget::node("w1")) && s.is_up(&WatchTarget::node("w2"))
        })
        .await;
        let sup = sys_s
            .spawn(
                Supervisor::builder()
                    .max_restarts(10)
                    .over(Duration::from_secs(10))
                    .build(),
            )
            .await
            .unwrap();
        let spec: RemoteChildSpec<Counter> = s.remote_child("counter");
        let proxy = sup
            .supervise_with(spec.clone(), RestartPolicy::Permanent)
            .await
            .unwrap();
        let remote = spec
            .remote()
            .with_retries(20)
            .with_timeout(Duration::from_secs(1));
        let first = holder(&spec);
        assert!(first == "w1" || first == "w2", "{first}");
        assert_eq!(remote.ask(Who).await.unwrap().0, first);
        assert_eq!(remote.ask(Add(5)).await.unwrap(), 5);

        // The child crashes on its node: the proxy crashes with the remote reason, the
        // supervisor restarts it, which spawns a fresh child (on the other node).
        let err = spec.remote().ask(Boom).await.unwrap_err();
        assert!(err.is_crashed(), "{err}");
        proxy
            .wait_until(|p| p.restart_count() == 1 && p.state() == ServiceState::Running)
            .await;
        let second = holder(&spec);
        assert_ne!(
            second,
            first,
            "moved to the other node ({} spawns, restarted {} times)",
            spec.spawns(),
            proxy.restart_count()
        );
        assert_eq!(remote.ask(Add(1)).await.unwrap(), 1, "a fresh child");
        assert_eq!(spec.spawns(), 2);

        // Its node goes: the supervisor sees a crash and restarts it on the survivor.
        let t = Instant::now();
        let (gone_sys, gone) = if second == "w1" {
            (&sys_w1, &w1)
        } else {
            (&sys_w2, &w2)
        };
        let _ = gone;
        gone_sys.shutdown().await.unwrap();
        proxy
            .wait_until(|p| p.restart_count() == 2 && p.state() == ServiceState::Running)
            .await;
        let restarted_in = t.elapsed();
        assert_eq!(holder(&spec), first);
        assert_eq!(remote.ask(Who).await.unwrap().0, first);
        assert!(restarted_in < Duration::from_secs(3), "{restarted_in:?}");

        // Stopping the proxy stops the remote child.
        sup.discard(&proxy.service_ref()).await.unwrap();
        let err = spec.remote().ask(Who).await.unwrap_err();
        assert!(err.is_no_responders(), "{err}");
        sys_s.shutdown().await.unwrap();
        let _ = sys_w1.shutdown().await;
        let _ = sys_w2.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_for_all_and_intensity_apply_to_a_remote_child_as_to_a_local_one() {
        let server = server_or_skip!();
        let [(sys_w1, _w1), (sys_w2, _w2)] = workers(&server).await;
        let (sys_s, s) = member(&server, "s").await;
        wait_for("the factories are heard", || {
            s.is_up(&WatchTarget::node("w1")) && s.is_up(&WatchTarget::node("w2"))
        })
        .await;
        let sup = sys_s
            .spawn(
                Supervisor::builder()
                    .strategy(Strategy::OneForAll)
                    .max_restarts(1)
                    .over(Duration::from_secs(30))
                    .build(),
            )
            .await
            .unwrap();
        let local = sup.supervise(|| Counter::new("local")).await.unwrap();
        let spec: RemoteChildSpec<Counter> = s.remote_child("counter");
        let proxy = sup
            .supervise_with(spec.clone(), RestartPolicy::Permanent)
            .await
            .unwrap();
        // The remote child crashes: its local sibling is restarted with it.
        let _ = spec.remote().ask(Boom).await;
        local
            .wait_until(|l| l.restart_count() == 1 && l.state() == ServiceState::Running)
            .await;
        proxy
            .wait_until(|p| p.restart_count() == 1 && p.state() == ServiceState::Running)
            .await;
        // Once more within the window: past the intensity, the supervisor gives up (it
        // crashes with MaxRestartsExceeded) and the remote child is stopped on its node.
        let spawned_as = spec.name().to_owned();
        let _ = spec.remote().with_retries(20).ask(Boom).await;
        sup.wait_until(|s| s.is_crashed()).await;
        let reason = sup.crash_reason().unwrap().to_string();
        assert!(reason.contains("restart"), "{reason}");
        let err = spec.remote().ask(Who).await.unwrap_err();
        assert!(err.is_no_responders(), "{spawned_as}: {err}");
        sys_s.shutdown().await.unwrap_or(());
        sys_w1.shutdown().await.unwrap();
        sys_w2.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_spawn_that_no_node_can_serve_fails_the_start_with_a_typed_error() {
        let server = server_or_skip!();
        let (sys_s, s) = member(&server, "s").await;
        let sup = sys_s.spawn(Supervisor::builder().build()).await.unwrap();
        let spec: RemoteChildSpec<Counter> = s.remote_child("nobody-offers-this");
        let err = sup
            .supervise_with(spec, RestartPolicy::Permanent)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no node offers the factory"),
            "{err}"
        );
        sys_s.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cluster_graph_shows_every_node_tree_under_its_node() {
        let server = server_or_skip!();
        let (sys_a, a) = member(&server, "a").await;
        let (sys_b, b) = member(&server, "b").await;
        let (sys_c, c) = member(&server, "c").await;
        let counter = sys_b.spawn(Counter::new("b")).await.unwrap();
        export_counter(&b, "svc", counter).await.unwrap();
        wait_for("everyone heard", || {
            ["b", "c"].iter().all(|n| a.is_up(&WatchTarget::node(*n)))
        })
        .await;
        let t = Instant::now();
        let cluster = a.cluster_graph(Duration::from_secs(5)).await.unwrap();
        // Everyone answered: no waiting for the deadline.
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let names: Vec<&str> = cluster.members().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let mb = cluster.member("b").unwrap();
        assert_eq!(mb.state, MemberState::Up);
        assert!(mb.answered && !mb.this_node);
        assert_eq!(mb.id, b.id().to_string());
        assert!(cluster.member("a").unwrap().this_node);
        // b's tree: its node with the export under it, and the counter.
        let labels: Vec<String> = mb.graph.nodes().iter().map(|n| n.label.clone()).collect();
        assert!(
            labels.contains(&"Node(cluster-test)".to_string()),
            "{labels:?}"
        );
        assert!(labels.contains(&"export svc".to_string()), "{labels:?}");
        assert!(labels.contains(&"Counter".to_string()), "{labels:?}");
        let export = mb.graph.find_by_label("export svc")[0];
        assert_eq!(
            mb.graph.parent(export.id).unwrap().label,
            "Node(cluster-test)"
        );
        let dot = cluster.to_dot();
        assert!(
            dot.contains(&format!("label=\"b ({})\\nup\"", &b.id().to_string()[..8])),
            "{dot}"
        );
        assert_eq!(dot.matches("subgraph").count(), 3);
        // c leaves: it is listed as left, without a tree (once a has heard it leave: a watch on
        // c stops when c's leaving heartbeat arrives).
        let (_, mut on_c) = watcher(&sys_a, &a, WatchTarget::node("c")).await;
        sys_c.shutdown().await.unwrap();
        let _ = c;
        assert!(matches!(
            next(&mut on_c).await,
            Heard::Down { stopped: true, .. }
        ));
        let cluster = a.cluster_graph(Duration::from_millis(500)).await.unwrap();
        let mc = cluster.member("c").unwrap();
        assert_eq!(mc.state, MemberState::Left);
        assert!(!mc.answered && mc.graph.is_empty());
        sys_a.shutdown().await.unwrap();
        sys_b.shutdown().await.unwrap();
    }
}
