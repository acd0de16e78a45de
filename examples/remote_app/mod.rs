//! The service the remote tests and `examples/remote_node.rs` export: a counter that
//! records what it handled. Not an example itself; included with `#[path]` / `mod`.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modo::prelude::*;
use modo::remote::RemoteMessage;
use serde::{Deserialize, Serialize};

/// Counts, records each `Record` it handles, and says who it is.
pub struct Counter {
    /// Which replica this is (in replies to `Who`).
    pub me: String,
    /// The running total of `Add`.
    pub total: u64,
    /// The sequence numbers of `Record`s handled, in order.
    pub seen: Arc<Mutex<Vec<u64>>>,
    /// Print `HANDLED <seq>` for each `Record` (the process tests read it).
    pub print: bool,
    /// How many `Sleep`s were handled.
    pub sleeps: Arc<AtomicU64>,
}

impl Counter {
    /// A counter named `me`.
    pub fn new(me: impl Into<String>) -> Self {
        Counter {
            me: me.into(),
            total: 0,
            seen: Arc::default(),
            print: false,
            sleeps: Arc::default(),
        }
    }
}

impl Service for Counter {
    fn mailbox_capacity(&self) -> usize {
        64
    }
}

/// Adds to the total; replies with the new total.
#[derive(Debug, Serialize, Deserialize)]
pub struct Add(pub u64);
impl RemoteMessage for Add {
    const NAME: &'static str = "test.Add";
}

/// The same name as `Add`, in version 2: a node that takes version 1 refuses it.
#[derive(Debug, Serialize, Deserialize)]
pub struct AddV2(pub u64);
impl RemoteMessage for AddV2 {
    const NAME: &'static str = "test.Add";
    const VERSION: u16 = 2;
}

/// Records a sequence number (sent with tell).
#[derive(Debug, Serialize, Deserialize)]
pub struct Record(pub u64);
impl RemoteMessage for Record {
    const NAME: &'static str = "test.Record";
}

/// Which replica answers, and how many `Record`s it handled.
#[derive(Debug, Serialize, Deserialize)]
pub struct Who;
impl RemoteMessage for Who {
    const NAME: &'static str = "test.Who";
}

/// Panics in the handler.
#[derive(Debug, Serialize, Deserialize)]
pub struct Boom;
impl RemoteMessage for Boom {
    const NAME: &'static str = "test.Boom";
}

/// Sleeps this many milliseconds, then replies with how many `Sleep`s it handled.
#[derive(Debug, Serialize, Deserialize)]
pub struct Sleep(pub u64);
impl RemoteMessage for Sleep {
    const NAME: &'static str = "test.Sleep";
}

/// Replies with this many bytes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Blob(pub u32);
impl RemoteMessage for Blob {
    const NAME: &'static str = "test.Blob";
}

/// Carries bytes; replies with how many.
#[derive(Debug, Serialize, Deserialize)]
pub struct Payload(pub Vec<u8>);
impl RemoteMessage for Payload {
    const NAME: &'static str = "test.Payload";
}

impl Handler<Blob> for Counter {
    type Reply = Vec<u8>;
    async fn handle(&mut self, Blob(n): Blob, _ctx: &mut Context<Self>) -> Vec<u8> {
        vec![7; n as usize]
    }
}

impl Handler<Payload> for Counter {
    type Reply = usize;
    async fn handle(&mut self, Payload(bytes): Payload, _ctx: &mut Context<Self>) -> usize {
        bytes.len()
    }
}

/// A message type the exports never register.
#[derive(Debug, Serialize, Deserialize)]
pub struct Unlisted;
impl RemoteMessage for Unlisted {
    const NAME: &'static str = "test.Unlisted";
}

impl Handler<Add> for Counter {
    type Reply = u64;
    async fn handle(&mut self, Add(n): Add, _ctx: &mut Context<Self>) -> u64 {
        self.total += n;
        self.total
    }
}

impl Handler<AddV2> for Counter {
    type Reply = u64;
    async fn handle(&mut self, AddV2(n): AddV2, _ctx: &mut Context<Self>) -> u64 {
        self.total += n;
        self.total
    }
}

impl Handler<Record> for Counter {
    type Reply = ();
    async fn handle(&mut self, Record(seq): Record, _ctx: &mut Context<Self>) {
        self.seen.lock().unwrap().push(seq);
        if self.print {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "HANDLED {seq}");
            let _ = out.flush();
        }
    }
}

impl Handler<Who> for Counter {
    type Reply = (String, u64);
    async fn handle(&mut self, _: Who, _ctx: &mut Context<Self>) -> (String, u64) {
        (self.me.clone(), self.seen.lock().unwrap().len() as u64)
    }
}

impl Handler<Boom> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) {
        panic!("boom on purpose");
    }
}

impl Handler<Sleep> for Counter {
    type Reply = u64;
    async fn handle(&mut self, Sleep(ms): Sleep, _ctx: &mut Context<Self>) -> u64 {
        let n = self.sleeps.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(Duration::from_millis(ms)).await;
        n
    }
}

/// The `Record`s handled so far, in order (a local message).
#[derive(Debug)]
pub struct SeenList;

impl Handler<SeenList> for Counter {
    type Reply = Vec<u64>;
    async fn handle(&mut self, _: SeenList, _ctx: &mut Context<Self>) -> Vec<u64> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler<Unlisted> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Unlisted, _ctx: &mut Context<Self>) {}
}

/// Exports `counter` on `node` under `name` with every message but `Unlisted` and `AddV2`.
pub async fn export_counter(
    node: &modo::remote::Node,
    name: &str,
    counter: Addr<Counter>,
) -> Result<Addr<modo::remote::ExportService<Counter>>, modo::remote::RemoteError> {
    node.export(name, counter)
        .message::<Add>()
        .message::<Record>()
        .message::<Who>()
        .message::<Boom>()
        .message::<Sleep>()
        .message::<Blob>()
        .message::<Payload>()
        .start()
        .await
}
