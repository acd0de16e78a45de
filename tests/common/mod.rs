//! Helpers shared by the behaviour tests: a journal of hook calls and a configurable probe
//! service that records every hook and can fail at any of them.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use modo::prelude::*;

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
