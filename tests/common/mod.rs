//! Helpers shared by the behaviour tests: a journal of hook calls, a configurable probe
//! service that records every hook and can fail at any of them, a guard that notes its drop,
//! a buffer that captures what a tracing subscriber writes, and short ways to write journal
//! entries and durations.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modo::prelude::*;
use tracing_subscriber::fmt::MakeWriter;

/// Journal entries, as `Journal::take` returns them.
pub fn j(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|s| s.to_string()).collect()
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// An ordered, shared record of what happened.
#[derive(Clone, Default, Debug)]
pub struct Journal(Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&self, entry: impl Into<String>) {
        self.0.lock().unwrap().push(entry.into());
    }

    /// Everything recorded so far, leaving the journal empty.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub fn count(&self, entry: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == entry)
            .count()
    }
}

/// Writes `drop:<name>` into the journal when dropped: a task or future holding one shows
/// when it was dropped.
pub struct Noted(pub String, pub Journal);

impl Noted {
    pub fn new(name: impl Into<String>, journal: &Journal) -> Self {
        Noted(name.into(), journal.clone())
    }
}

impl Drop for Noted {
    fn drop(&mut self) {
        self.1.push(format!("drop:{}", self.0));
    }
}

/// How a probe fails at its chosen hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    Err,
    Panic,
}

/// A service that writes `name:hook` into the journal for every hook, has the given children,
/// and fails at one hook if asked to.
pub struct Probe {
    pub name: &'static str,
    pub journal: Journal,
    pub children: Vec<Probe>,
    pub fail_at: Option<(&'static str, Fail)>,
}

impl Probe {
    pub fn new(name: &'static str, journal: &Journal) -> Self {
        Probe {
            name,
            journal: journal.clone(),
            children: Vec::new(),
            fail_at: None,
        }
    }

    pub fn with_children(mut self, children: Vec<Probe>) -> Self {
        self.children = children;
        self
    }

    pub fn failing(mut self, hook: &'static str, how: Fail) -> Self {
        self.fail_at = Some((hook, how));
        self
    }

    fn record(&self, hook: &'static str) -> HookResult {
        self.journal.push(format!("{}:{hook}", self.name));
        match self.fail_at {
            Some((at, Fail::Err)) if at == hook => {
                Err(format!("{} failed in {hook}", self.name).into())
            }
            Some((at, Fail::Panic)) if at == hook => panic!("{} panicked in {hook}", self.name),
            _ => Ok(()),
        }
    }
}

impl Service for Probe {
    fn on_init(&mut self) {
        self.journal.push(format!("{}:on_init", self.name));
    }

    fn dependencies(&mut self) -> Vec<Dependency> {
        std::mem::take(&mut self.children)
            .into_iter()
            .map(Dependency::from)
            .collect()
    }

    async fn on_first_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record("on_first_start")
    }

    async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record("on_start")
    }

    async fn on_started(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record("on_started")
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record("on_stop")
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record("on_shutdown")
    }

    async fn on_restart(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record("on_restart")
    }

    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.name.into()
    }
}

/// Asks a probe for its name (any message type works for liveness checks).
pub struct Ping;

impl Handler<Ping> for Probe {
    type Reply = &'static str;
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> &'static str {
        self.name
    }
}

/// Collects everything a tracing subscriber writes (`with_writer(buffer.clone())`).
#[derive(Clone, Default)]
pub struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Everything written so far, line by line.
    pub fn lines(&self) -> Vec<String> {
        self.text().lines().map(String::from).collect()
    }
}

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}
