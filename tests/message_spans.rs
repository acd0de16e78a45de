//! Per-message spans: each handled message runs in a span naming the service, the message type
//! and tell or ask, with its mailbox wait and handle time, and following from the sender's span,
//! so a request can be followed across actors. Alone in its test binary: the subscriber it
//! installs is process-wide state.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use modo::prelude::*;
use tracing::span;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;

/// Answers `Ping` by telling its peer a `Pong` (if it has one).
struct Relay {
    peer: Option<Addr<Relay>>,
}

impl Service for Relay {}

struct Ping;
struct Pong;

impl Handler<Ping> for Relay {
    type Reply = ();
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) {
        if let Some(peer) = &self.peer {
            peer.tell(Pong).await.unwrap();
        }
    }
}

impl Handler<Pong> for Relay {
    type Reply = u8;
    async fn handle(&mut self, _: Pong, _ctx: &mut Context<Self>) -> u8 {
        7
    }
}

/// Records the `message` spans: their fields, and which span each follows from.
#[derive(Clone, Default)]
struct Spans {
    fields: Arc<Mutex<HashMap<u64, HashMap<String, String>>>>,
    follows: Arc<Mutex<Vec<(u64, u64)>>>,
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").replace('"', ""),
        );
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
    fn on_new_span(
        &self,
        attrs: &span::Attributes<'_>,
        id: &span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() != "message" {
            return;
        }
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        self.fields.lock().unwrap().insert(id.into_u64(), fields);
    }

    fn on_record(
        &self,
        id: &span::Id,
        values: &span::Record<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(fields) = self.fields.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }

    fn on_follows_from(
        &self,
        span: &span::Id,
        follows: &span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.follows
            .lock()
            .unwrap()
            .push((span.into_u64(), follows.into_u64()));
    }
}

impl Spans {
    fn find(&self, service: &str, message: &str) -> Vec<(u64, HashMap<String, String>)> {
        self.fields
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, f)| {
                f.get("service").map(String::as_str) == Some(service)
                    && f.get("message").map(String::as_str) == Some(message)
            })
            .map(|(id, f)| (*id, f.clone()))
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_can_be_followed_across_actors_in_its_spans() {
    let spans = Spans::default();
    let subscriber = tracing_subscriber::registry().with(
        spans.clone().with_filter(
            tracing_subscriber::filter::Targets::new()
                .with_target("modo::message", tracing::Level::DEBUG),
        ),
    );
    tracing::subscriber::set_global_default(subscriber).expect("the only test here");

    let system = System::new();
    let b = system
        .spawn(ServiceSpec::new(Relay { peer: None }).label("B"))
        .await
        .unwrap();
    let a = system
        .spawn(
            ServiceSpec::new(Relay {
                peer: Some(b.clone()),
            })
            .label("A"),
        )
        .await
        .unwrap();
    a.ask(Ping).await.unwrap();
    b.ask(Pong).await.unwrap();

    let pings = spans.find("A", "Ping");
    assert_eq!(pings.len(), 1, "one span per message");
    let (ping_id, ping) = &pings[0];
    assert_eq!(ping["kind"], "ask");
    assert!(
        ping.contains_key("wait_us") && ping.contains_key("handle_us"),
        "{ping:?}"
    );
    // The Pong A told B while handling Ping follows from Ping's span.
    let pongs = spans.find("B", "Pong");
    assert_eq!(pongs.len(), 2);
    let told = pongs
        .iter()
        .find(|(_, f)| f["kind"] == "tell")
        .expect("the told Pong");
    assert!(
        spans.follows.lock().unwrap().contains(&(told.0, *ping_id)),
        "B's Pong does not follow from A's Ping"
    );
    system.shutdown().await.unwrap();
}
