//! Security across hosts, against a real nats-server with per-user permissions: a node needs
//! its system's credentials (user/password or nkey), a wrong one is a typed error; a client
//! without them can neither send to the services nor read their subjects; a second system
//! under another user can neither see nor reach the first; TLS with a CA made at test time,
//! and client certificates. Without nats-server (or openssl, for TLS) the tests print why and
//! pass.

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

    use futures::StreamExt;
    use modo::prelude::*;
    use modo::remote::{GetExportStats, Node, NodeOptions, RemoteError, WatchTarget, wire};
    use tokio::sync::mpsc;

    use crate::remote_app::*;
    use crate::remote_support::{Certs, NatsServer, print_skip};

    /// A server where `shop` and `other` may use only their own system's subjects, an nkey
    /// user has `shop`'s rights, and `outsider` may use neither.
    fn server(nkey_public: &str) -> Option<NatsServer> {
        let config = format!(
            r#"
authorization {{
  users = [
    {{ user: shop, password: shop-pass,
       permissions: {{ publish: ["modo.shop.>"], subscribe: ["modo.shop.>"] }} }}
    {{ nkey: {nkey_public},
       permissions: {{ publish: ["modo.shop.>"], subscribe: ["modo.shop.>"] }} }}
    {{ user: other, password: other-pass,
       permissions: {{ publish: ["modo.other.>"], subscribe: ["modo.other.>"] }} }}
    {{ user: outsider, password: outsider-pass,
       permissions: {{ publish: ["public.>"], subscribe: ["public.>", "_INBOX.>"] }} }}
  ]
}}
"#
        );
        NatsServer::start_with(&[], Some(&config))
    }

    const HB: Duration = Duration::from_millis(200);

    async fn shop_node(url: &str, name: &str) -> (System, Node) {
        let system = System::new();
        let node = Node::connect(
            url,
            NodeOptions::new("shop")
                .node_name(name)
                .heartbeat_interval(HB)
                .user_password("shop", "shop-pass"),
        )
        .await
        .expect("shop's credentials are accepted");
        system.spawn(node.clone()).await.unwrap();
        (system, node)
    }

    /// A raw client as `outsider`, and the server errors it is told about.
    async fn outsider(url: &str) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            .user_and_password("outsider".into(), "outsider-pass".into())
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .connect(url)
            .await
            .expect("the outsider connects (to its own subjects)");
        (client, rx)
    }

    async fn violation(errors: &mut mpsc::UnboundedReceiver<String>, subject: &str) {
        let e = tokio::time::timeout(Duration::from_secs(5), errors.recv())
            .await
            .expect("the server says no within 5 s")
            .expect("the callback runs");
        assert!(
            e.to_lowercase().contains("permissions violation") && e.contains(subject),
            "{e}"
        );
    }

    fn ask_frame() -> Vec<u8> {
        let head = wire::RequestHead {
            kind: wire::Kind::Ask,
            id: wire::MessageId {
                node: wire::NodeId([9; 16]),
                seq: 1,
            },
            message: "test.Add",
            version: 1,
            wait_ms: 1000,
        };
        wire::encode_request(&head, &Add(1000)).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn only_the_system_credentials_get_in_and_a_wrong_one_is_a_typed_error() {
        let key = nkeys::KeyPair::new_user();
        let Some(server) = server(&key.public_key()) else {
            return print_skip();
        };
        let url = server.url();
        let (sys_a, a) = shop_node(&url, "a").await;
        let counter = sys_a.spawn(Counter::new("a")).await.unwrap();
        export_counter(&a, "counter", counter).await.unwrap();

        // A second node of the system, with the nkey user: calls and watches work.
        let system = System::new();
        let b = Node::connect(
            &url,
            NodeOptions::new("shop")
                .node_name("b")
                .heartbeat_interval(HB)
                .nkey(key.seed().unwrap()),
        )
        .await
        .expect("the nkey is accepted");
        system.spawn(b.clone()).await.unwrap();
        let remote = b.lookup::<Counter>("counter").unwrap();
        assert_eq!(remote.ask(Add(2)).await.unwrap(), 2);
        let watch = b.watch(WatchTarget::name("counter")).start().await.unwrap();
        assert!(watch.is_started());

        // Wrong password, unknown user, no credentials, a seed the server does not know:
        // typed errors, at once.
        for options in [
            NodeOptions::new("shop").user_password("shop", "wrong"),
            NodeOptions::new("shop").user_password("nobody", "x"),
            NodeOptions::new("shop"),
            NodeOptions::new("shop").nkey(nkeys::KeyPair::new_user().seed().unwrap()),
        ] {
            let shown = format!("{options:?}");
            assert!(!shown.contains("wrong") && !shown.contains("SU"), "{shown}");
            let err = Node::connect(&url, options.connect_timeout(Duration::from_secs(3)))
                .await
                .unwrap_err();
            assert!(
                matches!(err, RemoteError::Unauthorized { .. }),
                "{shown}: {err}"
            );
        }
        // A seed that is no seed: a typed error too.
        let err = Node::connect(&url, NodeOptions::new("shop").nkey("not-a-seed"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                RemoteError::Unauthorized { .. } | RemoteError::Connect { .. }
            ),
            "{err}"
        );
        system.shutdown().await.unwrap();
        sys_a.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_without_the_system_credentials_can_neither_send_to_nor_read_its_subjects() {
        let key = nkeys::KeyPair::new_user();
        let Some(server) = server(&key.public_key()) else {
            return print_skip();
        };
        let url = server.url();
        let (sys_a, a) = shop_node(&url, "a").await;
        let counter = sys_a.spawn(Counter::new("a")).await.unwrap();
        let export = export_counter(&a, "counter", counter.clone())
            .await
            .unwrap();
        let (client, mut errors) = outsider(&url).await;

        // Reading: subscribing to the system's subjects is refused by the server, and nothing
        // of the traffic below reaches the outsider.
        let mut spy = client.subscribe("modo.shop.>").await.unwrap();
        client.flush().await.unwrap();
        violation(&mut errors, "modo.shop.>").await;
        let remote = a.lookup::<Counter>("counter").unwrap();
        assert_eq!(remote.ask(Add(1)).await.unwrap(), 1);
        let overheard = tokio::time::timeout(HB * 3, spy.next()).await;
        assert!(
            !matches!(overheard, Ok(Some(_))),
            "the outsider read {:?}",
            overheard.ok().flatten().map(|m| m.subject)
        );

        // Sending: a well-formed request to the export is refused by the server; the service
        // never sees it, and the request gets no answer (bounded).
        let request = async_nats::Request::new()
            .payload(ask_frame().into())
            .timeout(Some(Duration::from_secs(1)));
        let res = client.send_request("modo.shop.svc.counter", request).await;
        assert!(res.is_err(), "the outsider got an answer");
        violation(&mut errors, "modo.shop.svc.counter").await;
        client
            .publish("modo.shop.svc.counter", ask_frame().into())
            .await
            .unwrap();
        client.flush().await.unwrap();
        violation(&mut errors, "modo.shop.svc.counter").await;
        let stats = export.ask(GetExportStats).await.unwrap();
        assert_eq!(
            stats.served, 1,
            "only the shop's own ask was served: {stats:?}"
        );
        assert_eq!(
            remote.ask(Add(0)).await.unwrap(),
            1,
            "the total moved only once"
        );
        sys_a.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_system_on_the_same_server_cannot_see_or_reach_the_first() {
        let key = nkeys::KeyPair::new_user();
        let Some(server) = server(&key.public_key()) else {
            return print_skip();
        };
        let url = server.url();
        let (sys_a, a) = shop_node(&url, "a").await;
        let counter = sys_a.spawn(Counter::new("a")).await.unwrap();
        export_counter(&a, "counter", counter).await.unwrap();

        let sys_o = System::new();
        let o = Node::connect(
            &url,
            NodeOptions::new("other")
                .node_name("o")
                .heartbeat_interval(HB)
                .user_password("other", "other-pass"),
        )
        .await
        .unwrap();
        sys_o.spawn(o.clone()).await.unwrap();
        // Its lookups are in its own system: nobody there exports "counter".
        let err = o
            .lookup::<Counter>("counter")
            .unwrap()
            .ask(Add(1))
            .await
            .unwrap_err();
        assert!(err.is_no_responders(), "{err}");
        // It hears none of shop's nodes, in watches or in the cluster graph.
        let err = o.watch(WatchTarget::node("a")).start().await.unwrap_err();
        assert!(matches!(err, RemoteError::UnknownTarget { .. }), "{err}");
        let cluster = o.cluster_graph(Duration::from_millis(500)).await.unwrap();
        let names: Vec<&str> = cluster.members().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["o"]);
        // And shop's graph does not list it.
        let cluster = a.cluster_graph(Duration::from_millis(500)).await.unwrap();
        assert!(cluster.member("o").is_none());
        // Its raw client cannot address shop's subjects at all.
        let (tx, mut errors) = mpsc::unbounded_channel();
        let raw = async_nats::ConnectOptions::new()
            .user_and_password("other".into(), "other-pass".into())
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let async_nats::Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            })
            .connect(&url)
            .await
            .unwrap();
        raw.publish("modo.shop.svc.counter", ask_frame().into())
            .await
            .unwrap();
        raw.flush().await.unwrap();
        violation(&mut errors, "modo.shop.svc.counter").await;
        sys_o.shutdown().await.unwrap();
        sys_a.shutdown().await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_with_a_ca_and_client_certificates() {
        let Some(certs) = Certs::make() else {
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                b"skipped: openssl not found; install it with: apt-get install openssl\n",
            );
            return;
        };
        let config = format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  ca_file: \"{}\"\n  verify: true\n  timeout: 2\n}}\n",
            certs.server.0.display(),
            certs.server.1.display(),
            certs.ca.display()
        );
        let Some(server) = NatsServer::start_with(&[], Some(&config)) else {
            return print_skip();
        };
        let url = server.url();
        let system = System::new();
        let node = Node::connect(
            &url,
            NodeOptions::new("tls")
                .tls_root_ca(&certs.ca)
                .tls_client_cert(&certs.client.0, &certs.client.1),
        )
        .await
        .expect("TLS with the CA and a client certificate");
        system.spawn(node.clone()).await.unwrap();
        let counter = system.spawn(Counter::new("t")).await.unwrap();
        export_counter(&node, "counter", counter).await.unwrap();
        assert_eq!(
            node.lookup::<Counter>("counter")
                .unwrap()
                .ask(Add(3))
                .await
                .unwrap(),
            3
        );
        // The same from the environment's variables.
        let vars = [
            ("MODO_NATS_TLS_CA", certs.ca.display().to_string()),
            ("MODO_NATS_TLS_CERT", certs.client.0.display().to_string()),
            ("MODO_NATS_TLS_KEY", certs.client.1.display().to_string()),
        ];
        let from_env = NodeOptions::from_vars("tls", |k| {
            vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        let second = Node::connect(&url, from_env)
            .await
            .expect("TLS from the variables");
        assert_eq!(
            second
                .lookup::<Counter>("counter")
                .unwrap()
                .ask(Add(1))
                .await
                .unwrap(),
            4
        );
        // Without a client certificate the server refuses; without the CA the node refuses
        // the server's certificate; a CA file that is not there is a configuration error.
        for (what, options) in [
            (
                "no client cert",
                NodeOptions::new("tls").tls_root_ca(&certs.ca),
            ),
            (
                "no CA",
                NodeOptions::new("tls").tls_client_cert(&certs.client.0, &certs.client.1),
            ),
            ("plain", NodeOptions::new("tls")),
        ] {
            let res = Node::connect(&url, options.connect_timeout(Duration::from_secs(3))).await;
            assert!(res.is_err(), "{what}: connected");
        }
        let err = Node::connect(
            &url,
            NodeOptions::new("tls").tls_root_ca("/nonexistent/ca.pem"),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RemoteError::Config { .. }), "{err}");
        second.close().await.unwrap();
        system.shutdown().await.unwrap();
    }
}
