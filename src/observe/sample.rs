//! One look at the tree: the registry's graph snapshot plus each service's figures
//! ([`Snapshot`]), and what changed between two looks ([`diff`]).
//!
//! Everything the observer serves comes from here: the graph endpoint and a new stream client
//! get the latest snapshot, the stream gets the diffs. There is no other path that tracks
//! services: what the registry's graph holds is what exists.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use serde::Serialize;
use uuid::Uuid;

use crate::registry::{Graph, Node};
use crate::{CrashRecord, Percentiles, ServiceRef, ServiceState, ServiceStats};

/// The JSON schema's version: every document carries it as `"version"`.
pub(crate) const VERSION: u32 = 1;

/// Milliseconds since the Unix epoch.
pub(crate) fn ms_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The wall clock now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    ms_since_epoch(SystemTime::now())
}

/// Durations at three quantiles, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Quantiles {
    pub(crate) p50_ns: u64,
    pub(crate) p99_ns: u64,
    pub(crate) max_ns: u64,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl From<Percentiles> for Quantiles {
    fn from(p: Percentiles) -> Self {
        Quantiles {
            p50_ns: ns(p.p50),
            p99_ns: ns(p.p99),
            max_ns: ns(p.max),
        }
    }
}

/// A crash: when (ms since the epoch) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Crash {
    pub(crate) at_ms: u64,
    pub(crate) reason: String,
}

impl From<&CrashRecord> for Crash {
    fn from(c: &CrashRecord) -> Self {
        Crash {
            at_ms: ms_since_epoch(c.at),
            reason: c.reason.to_string(),
        }
    }
}

/// A service's figures at one look.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Figures {
    /// Messages handled (observed ones).
    pub(crate) handled: u64,
    /// Messages handled per second since the previous look.
    pub(crate) rate: f64,
    pub(crate) handle_time: Quantiles,
    pub(crate) mailbox_wait: Quantiles,
    pub(crate) crashes: u32,
    pub(crate) last_crash: Option<Crash>,
}

/// One service at one look.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct View {
    pub(crate) id: Uuid,
    pub(crate) label: String,
    pub(crate) shortlabel: String,
    pub(crate) type_name: &'static str,
    pub(crate) name: Option<String>,
    pub(crate) parent: Option<Uuid>,
    pub(crate) children: Vec<Uuid>,
    pub(crate) depth: usize,
    #[serde(serialize_with = "state_str")]
    pub(crate) state: ServiceState,
    pub(crate) restart_count: u32,
    pub(crate) tasks: Vec<String>,
    pub(crate) flags: Vec<String>,
    /// Messages waiting in its mailbox.
    pub(crate) mailbox: usize,
    pub(crate) stats: Figures,
}

pub(crate) fn state_str<S: serde::Serializer>(s: &ServiceState, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

impl View {
    /// The view of `node`, with `stats` read from the service now (`None`: it is gone).
    pub(crate) fn new(node: &Node, stats: Option<(usize, ServiceStats)>) -> View {
        let (mailbox, stats) = stats.unwrap_or_default();
        View {
            id: node.id,
            label: node.label.clone(),
            shortlabel: node.shortlabel.clone(),
            type_name: node.type_name,
            name: node.name.clone(),
            parent: node.parent,
            children: node.children.clone(),
            depth: node.depth,
            state: node.state,
            restart_count: node.restart_count,
            tasks: node.tasks.clone(),
            flags: node.flags.clone(),
            mailbox,
            stats: Figures {
                handled: stats.handled,
                rate: 0.0,
                handle_time: stats.handle_time.into(),
                mailbox_wait: stats.mailbox_wait.into(),
                crashes: stats.crashes,
                last_crash: stats.last_crash.as_ref().map(Crash::from),
            },
        }
    }
}

/// The tree at one look, in the registry's order (creation order: parents before children).
#[derive(Debug)]
pub(crate) struct Snapshot {
    /// The stream's sequence number this snapshot is current at.
    pub(crate) seq: u64,
    pub(crate) at_ms: u64,
    /// When it was taken (for rates).
    pub(crate) at: tokio::time::Instant,
    pub(crate) services: Vec<View>,
    index: HashMap<Uuid, usize>,
    /// The snapshot as a JSON document, made once on first use.
    json: OnceLock<Bytes>,
}

/// The snapshot document: `GET /api/v1/graph`, and the stream's first event.
#[derive(Serialize)]
struct SnapshotDoc<'a> {
    version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    at_ms: u64,
    services: &'a [View],
}

impl Snapshot {
    pub(crate) fn empty() -> Snapshot {
        Snapshot::new(0, now_ms(), tokio::time::Instant::now(), Vec::new())
    }

    pub(crate) fn new(
        seq: u64,
        at_ms: u64,
        at: tokio::time::Instant,
        services: Vec<View>,
    ) -> Snapshot {
        let index = services
            .iter()
            .enumerate()
            .map(|(i, v)| (v.id, i))
            .collect();
        Snapshot {
            seq,
            at_ms,
            at,
            services,
            index,
            json: OnceLock::new(),
        }
    }

    pub(crate) fn get(&self, id: Uuid) -> Option<&View> {
        self.index.get(&id).map(|&i| &self.services[i])
    }

    /// The snapshot document, serialized once.
    pub(crate) fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| {
                let doc = SnapshotDoc {
                    version: VERSION,
                    kind: "snapshot",
                    seq: self.seq,
                    at_ms: self.at_ms,
                    services: &self.services,
                };
                // Serializing plain data to memory cannot fail.
                Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
            })
            .clone()
    }
}

/// Takes a look: the views of `graph`'s services, reading each one's figures through `refs`
/// (kept by the caller; ids the graph no longer has are dropped from it, ids not in it yet are
/// looked up with `lookup`), with rates against `prev`.
pub(crate) async fn look<F, Fut>(
    graph: &Graph,
    refs: &mut HashMap<Uuid, ServiceRef>,
    mut lookup: F,
    prev: &Snapshot,
    seq: u64,
) -> Snapshot
where
    F: FnMut(Uuid) -> Fut,
    Fut: Future<Output = Option<ServiceRef>>,
{
    let at = tokio::time::Instant::now();
    let at_ms = now_ms();
    refs.retain(|id, _| graph.node(*id).is_some());
    let secs = at.saturating_duration_since(prev.at).as_secs_f64();
    let mut services = Vec::with_capacity(graph.len());
    for node in graph.nodes() {
        if !refs.contains_key(&node.id)
            && let Some(found) = lookup(node.id).await
        {
            refs.insert(node.id, found);
        }
        let stats = refs.get(&node.id).map(|s| (s.mailbox_len(), s.stats()));
        let mut view = View::new(node, stats);
        if let Some(before) = prev.get(node.id)
            && secs > 0.0
        {
            let delta = view.stats.handled.saturating_sub(before.stats.handled);
            // Two decimals: enough for a page, and steady figures compare equal.
            view.stats.rate = (delta as f64 / secs * 100.0).round() / 100.0;
        }
        services.push(view);
    }
    Snapshot::new(seq, at_ms, at, services)
}

/// One change between two looks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Change {
    /// A service appeared.
    Added { service: View },
    /// A service is gone (stopped for good).
    Removed { id: Uuid, label: String },
    /// Its state changed.
    State {
        id: Uuid,
        #[serde(serialize_with = "state_str")]
        from: ServiceState,
        #[serde(serialize_with = "state_str")]
        to: ServiceState,
    },
    /// It crashed (once or more) since the last look.
    Crashed {
        id: Uuid,
        crashes: u32,
        crash: Option<Crash>,
    },
    /// It was restarted (once or more) since the last look; `crash` is its last crash.
    Restarted {
        id: Uuid,
        restart_count: u32,
        crash: Option<Crash>,
    },
    /// Its figures, tasks, flags or children changed.
    Updated {
        id: Uuid,
        mailbox: usize,
        tasks: Vec<String>,
        flags: Vec<String>,
        children: Vec<Uuid>,
        stats: Figures,
    },
}

/// What changed from `prev` to `next`: removals first, then in `next`'s order additions and
/// per-service changes (state, crash, restart, then the rest).
pub(crate) fn diff(prev: &Snapshot, next: &Snapshot) -> Vec<Change> {
    let mut changes = Vec::new();
    for old in &prev.services {
        if next.get(old.id).is_none() {
            changes.push(Change::Removed {
                id: old.id,
                label: old.label.clone(),
            });
        }
    }
    for new in &next.services {
        let Some(old) = prev.get(new.id) else {
            changes.push(Change::Added {
                service: new.clone(),
            });
            continue;
        };
        if old.state != new.state {
            changes.push(Change::State {
                id: new.id,
                from: old.state,
                to: new.state,
            });
        }
        if new.stats.crashes != old.stats.crashes || new.stats.last_crash != old.stats.last_crash {
            changes.push(Change::Crashed {
                id: new.id,
                crashes: new.stats.crashes,
                crash: new.stats.last_crash.clone(),
            });
        }
        if new.restart_count != old.restart_count {
            changes.push(Change::Restarted {
                id: new.id,
                restart_count: new.restart_count,
                crash: new.stats.last_crash.clone(),
            });
        }
        if new.mailbox != old.mailbox
            || new.tasks != old.tasks
            || new.flags != old.flags
            || new.children != old.children
            || new.stats != old.stats
        {
            changes.push(Change::Updated {
                id: new.id,
                mailbox: new.mailbox,
                tasks: new.tasks.clone(),
                flags: new.flags.clone(),
                children: new.children.clone(),
                stats: new.stats.clone(),
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: Uuid, label: &str) -> View {
        View {
            id,
            label: label.into(),
            shortlabel: label.into(),
            type_name: "T",
            name: None,
            parent: None,
            children: Vec::new(),
            depth: 0,
            state: ServiceState::Running,
            restart_count: 0,
            tasks: Vec::new(),
            flags: Vec::new(),
            mailbox: 0,
            stats: Figures::default(),
        }
    }

    fn snap(views: Vec<View>) -> Snapshot {
        Snapshot::new(1, 0, tokio::time::Instant::now(), views)
    }

    #[test]
    fn same_looks_have_no_changes() {
        let a = view(Uuid::new_v4(), "A");
        assert!(diff(&snap(vec![a.clone()]), &snap(vec![a])).is_empty());
    }

    #[test]
    fn additions_removals_and_each_kind_of_change() {
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let before = snap(vec![view(a, "A"), view(b, "B")]);
        let mut a2 = view(a, "A");
        a2.state = ServiceState::Crashed;
        a2.restart_count = 2;
        a2.stats.crashes = 1;
        a2.stats.last_crash = Some(Crash {
            at_ms: 7,
            reason: "boom".into(),
        });
        a2.mailbox = 3;
        let after = snap(vec![a2, view(c, "C")]);
        let changes = diff(&before, &after);
        let kinds: Vec<String> = changes
            .iter()
            .map(|c| {
                serde_json::to_value(c).unwrap()["kind"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "removed",
                "state",
                "crashed",
                "restarted",
                "updated",
                "added"
            ]
        );
        let restarted = serde_json::to_value(&changes[3]).unwrap();
        assert_eq!(restarted["restart_count"], 2);
        assert_eq!(restarted["crash"]["reason"], "boom");
        assert_eq!(restarted["crash"]["at_ms"], 7);
        let state = serde_json::to_value(&changes[1]).unwrap();
        assert_eq!(
            (state["from"].as_str(), state["to"].as_str()),
            (Some("running"), Some("crashed"))
        );
    }

    #[test]
    fn the_snapshot_document_is_versioned_and_made_once() {
        let s = snap(vec![view(Uuid::new_v4(), "A")]);
        let json = s.json();
        let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(doc["version"], VERSION);
        assert_eq!(doc["type"], "snapshot");
        assert_eq!(doc["services"][0]["label"], "A");
        assert_eq!(doc["services"][0]["state"], "running");
        assert_eq!(json.as_ptr(), s.json().as_ptr(), "serialized once, shared");
    }
}
