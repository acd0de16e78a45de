//! Helpers shared by the behaviour tests. The journal of hook calls and the service that
//! records every hook and fails at any of them come from the test kit (`modo::testkit`:
//! `Journal`, and `Recorder`, named `Probe` here as the older tests call it); what stays here
//! is for modo's own tests only: a guard that notes its drop, a buffer that captures what a
//! tracing subscriber writes, and short ways to write journal entries and durations.
#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

// Not every test file uses all of them.
#[allow(unused_imports)]
pub use modo::testkit::{Fail, Journal, Ping, Recorder as Probe};

/// Writes `drop:<name>` into the journal when dropped: a task or future holding one shows
/// when it was dropped (the kit's [`modo::testkit::DropNote`], as a tuple struct the tests
/// build in place).
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
