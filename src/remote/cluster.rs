//! Membership: the heartbeats a node publishes, the failure detector that reads everyone's,
//! and the table of watches it fires.
//!
//! Every node publishes a [`Heartbeat`] on `modo.<system>.hb.<node-id>` every heartbeat
//! interval, and at once when something changes (an export starts or stops, an exported
//! service crashes, a factory is registered), and a last one marked `leaving` when its
//! service stops. Every node reads every heartbeat of its system (`modo.<system>.hb.*`): a
//! peer is up from its first heartbeat and unreachable once `misses` intervals passed without
//! one (its own interval, carried in the heartbeat). Down notices of exported services travel
//! in the heartbeat itself, so they are ordered with it: one subject, one publisher, and NATS
//! keeps one publisher's order.
//!
//! The table of watches ([`Entry`]) says, for each local proxy ([`RemoteWatch`], or a
//! [`RemoteChild`](super::RemoteChild)), what it stands for; every change of the membership
//! re-evaluates it and returns the [`Action`]s to run (outside the lock).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::watch::{DownCause, RemoteDown, RemoteUp, WatchTarget};
use super::wire::{NodeId, WIRE_VERSION, WireError};
use crate::{Recipient, ServiceRef, ServiceState};

/// How an exported service is doing, as its node reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Health {
    Starting,
    Running,
    Stopping,
    Crashed,
    Stopped,
}

impl Health {
    pub(crate) fn of(state: ServiceState) -> Health {
        match state {
            ServiceState::Init | ServiceState::Starting => Health::Starting,
            ServiceState::Running => Health::Running,
            ServiceState::Stopping => Health::Stopping,
            ServiceState::Crashed => Health::Crashed,
            _ => Health::Stopped,
        }
    }

    /// Whether a name in this state counts as served.
    fn serves(self) -> bool {
        matches!(self, Health::Starting | Health::Running | Health::Stopping)
    }
}

/// An exported service that went down on the node that exports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DownNotice {
    pub(crate) name: String,
    /// `Some(reason)` for a crash, `None` for a stop (or a withdrawn export).
    pub(crate) crashed: Option<String>,
}

/// What a node publishes on `modo.<system>.hb.<node-id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Heartbeat {
    pub(crate) node: NodeId,
    /// The node's name ([`NodeOptions::node_name`](super::NodeOptions::node_name)).
    pub(crate) name: String,
    pub(crate) seq: u64,
    /// How often this node publishes, in milliseconds.
    pub(crate) interval_ms: u32,
    /// The node is leaving: its service stopped (or it closed).
    pub(crate) leaving: bool,
    /// Its exports and how each exported service is doing.
    pub(crate) exports: Vec<(String, Health)>,
    /// The factories it spawns children from.
    pub(crate) factories: Vec<String>,
    /// Exported services that went down since the last heartbeat.
    pub(crate) downs: Vec<DownNotice>,
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let buf = vec![WIRE_VERSION];
    // Strings, integers and enums only: postcard does not fail on them.
    postcard::to_extend(value, buf).unwrap_or_default()
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    frame: &[u8],
    part: &'static str,
) -> Result<T, WireError> {
    match frame.split_first() {
        None => Err(WireError::Empty),
        Some((&WIRE_VERSION, rest)) => super::wire::decode_body(rest, part),
        Some((&got, _)) => Err(WireError::Version {
            got,
            supported: WIRE_VERSION,
        }),
    }
}

/// What the watches stand for, inside the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A node, by its name.
    Node(Arc<str>),
    /// An exported name, on any node.
    Name(Arc<str>),
    /// An exported name on one node (a remote child).
    Pinned(NodeId, Arc<str>),
}

impl Target {
    pub(crate) fn public(&self) -> WatchTarget {
        match self {
            Target::Node(n) => WatchTarget::Node(n.to_string()),
            Target::Name(n) | Target::Pinned(_, n) => WatchTarget::Name(n.to_string()),
        }
    }
}

/// One peer, as this node last heard it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    pub(crate) id: NodeId,
    pub(crate) name: Arc<str>,
    pub(crate) last_seen: Instant,
    pub(crate) interval: Duration,
    pub(crate) up: bool,
    pub(crate) left: bool,
    pub(crate) exports: HashMap<String, Health>,
    pub(crate) factories: Vec<String>,
}

impl Peer {
    fn serves(&self, name: &str) -> bool {
        self.up && self.exports.get(name).is_some_and(|h| h.serves())
    }

    fn silent_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_seen)
    }
}

/// One watch: a local proxy standing for a remote target.
pub(crate) struct Entry {
    pub(crate) id: u64,
    pub(crate) target: Target,
    /// The proxy to crash or stop when the target goes down; `None` once fired.
    pub(crate) armed: Option<ServiceRef>,
    /// A remote child's proxy: every down is a crash, and it is not re-armed.
    pub(crate) child: bool,
    /// Told when the target is up again (a fresh proxy is made for it first).
    pub(crate) on_up: Option<Recipient<RemoteUp>>,
    /// A fresh proxy is being made after an up.
    pub(crate) rearming: bool,
    /// For a pinned target: the name was seen in its node's heartbeat.
    pub(crate) listed: bool,
    /// Why the target is going down, as last heard.
    pub(crate) cause: Option<DownCause>,
}

/// What the membership asks its caller to do, outside the lock.
pub(crate) enum Action {
    /// Crash the proxy with this reason, or stop it (`stop`: a clean stop or a node that left).
    Down {
        proxy: ServiceRef,
        down: RemoteDown,
        stop: bool,
    },
    /// The target of a fired watch is up again: make a fresh proxy for entry `entry` and tell
    /// `to`.
    Up {
        entry: u64,
        target: Target,
        node: (NodeId, Arc<str>),
        to: Recipient<RemoteUp>,
    },
    /// A child spawned for a node that is gone: stop it.
    StopOrphan { spawned: Spawned, name: String },
}

/// A child this node spawned for another node.
pub(crate) struct Spawned {
    pub(crate) owner: NodeId,
    pub(crate) child: ServiceRef,
    /// Its export, withdrawn first when it is stopped.
    pub(crate) export: ServiceRef,
}

/// A local export, as the heartbeat lists it.
pub(crate) struct LocalExport {
    pub(crate) name: Arc<str>,
    pub(crate) target: ServiceRef,
}

/// The membership of one node: peers, watches, and what its heartbeat says.
pub(crate) struct Cluster {
    pub(crate) me: NodeId,
    pub(crate) name: Arc<str>,
    pub(crate) interval: Duration,
    pub(crate) misses: u32,
    /// Publish a heartbeat now.
    pub(crate) kick: Notify,
    /// The detector re-checks its deadlines (a watch was added).
    pub(crate) recheck: Notify,
    /// Set while the node's service stops (or once it closed): every heartbeat says leaving.
    pub(crate) leaving: std::sync::atomic::AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    peers: HashMap<NodeId, Peer>,
    entries: Vec<Entry>,
    next_id: u64,
    seq: u64,
    exports: BTreeMap<u64, LocalExport>,
    factories: Vec<String>,
    spawned: HashMap<String, Spawned>,
    downs: Vec<DownNotice>,
}

impl Cluster {
    pub(crate) fn new(me: NodeId, name: Arc<str>, interval: Duration, misses: u32) -> Self {
        Cluster {
            me,
            name,
            interval,
            misses: misses.max(1),
            kick: Notify::new(),
            recheck: Notify::new(),
            leaving: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a peer publishing every `interval` may stay silent before it is unreachable.
    pub(crate) fn allowance(&self, interval: Duration) -> Duration {
        interval.saturating_mul(self.misses)
    }

    // ---- What this node publishes ----

    /// Adds a local export to the heartbeat (published at once); returns its key.
    pub(crate) fn add_export(&self, name: Arc<str>, target: ServiceRef) -> u64 {
        let key = {
            let mut s = self.lock();
            s.next_id += 1;
            let key = s.next_id;
            s.exports.insert(key, LocalExport { name, target });
            key
        };
        self.kick.notify_one();
        key
    }

    /// Removes a local export; `notice`: also announce it down (unless `crashed` says a crash
    /// was announced already).
    pub(crate) fn remove_export(&self, key: u64, notice: Option<DownNotice>) {
        {
            let mut s = self.lock();
            s.exports.remove(&key);
            s.downs.extend(notice);
        }
        self.kick.notify_one();
    }

    /// Announces an exported service down in the next heartbeat, published at once.
    pub(crate) fn announce_down(&self, notice: DownNotice) {
        self.lock().downs.push(notice);
        self.kick.notify_one();
    }

    pub(crate) fn add_factory(&self, name: &str) {
        {
            let mut s = self.lock();
            if !s.factories.iter().any(|f| f == name) {
                s.factories.push(name.to_owned());
            }
        }
        self.kick.notify_one();
    }

    pub(crate) fn add_spawned(
        &self,
        name: String,
        owner: NodeId,
        child: ServiceRef,
        export: ServiceRef,
    ) {
        self.lock().spawned.insert(
            name,
            Spawned {
                owner,
                child,
                export,
            },
        );
    }

    /// Forgets a spawned child that ended by itself (it crashed).
    pub(crate) fn forget_spawned(&self, child: &ServiceRef) {
        self.lock().spawned.retain(|_, s| s.child != *child);
    }

    /// A request from `id` is a sign of life: a peer not heard yet is taken as up (so that
    /// its loss is detected, and its orphans stopped).
    pub(crate) fn note_alive(&self, id: NodeId, name: &str) {
        let mut s = self.lock();
        let interval = self.interval;
        s.peers.entry(id).or_insert_with(|| Peer {
            id,
            name: Arc::from(name),
            last_seen: Instant::now(),
            interval,
            up: true,
            left: false,
            exports: HashMap::new(),
            factories: Vec::new(),
        });
    }

    pub(crate) fn take_spawned(&self, name: &str) -> Option<Spawned> {
        self.lock().spawned.remove(name)
    }

    pub(crate) fn is_spawned(&self, child: &ServiceRef) -> bool {
        self.lock().spawned.values().any(|s| s.child == *child)
    }

    /// The next heartbeat (taking the pending down notices).
    pub(crate) fn heartbeat(&self, leaving: bool) -> Heartbeat {
        let leaving = leaving || self.leaving.load(std::sync::atomic::Ordering::Acquire);
        let mut s = self.lock();
        s.seq += 1;
        Heartbeat {
            node: self.me,
            name: self.name.to_string(),
            seq: s.seq,
            interval_ms: u32::try_from(self.interval.as_millis())
                .unwrap_or(u32::MAX)
                .max(1),
            leaving,
            exports: if leaving {
                Vec::new()
            } else {
                s.exports
                    .values()
                    .map(|e| (e.name.to_string(), Health::of(e.target.state())))
                    .collect()
            },
            factories: s.factories.clone(),
            downs: std::mem::take(&mut s.downs),
        }
    }

    // ---- What this node hears ----

    /// A heartbeat arrived at `now`.
    pub(crate) fn on_heartbeat(&self, hb: Heartbeat, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut s = self.lock();
        let interval = Duration::from_millis(u64::from(hb.interval_ms.max(1)));
        let peer = s.peers.entry(hb.node).or_insert_with(|| Peer {
            id: hb.node,
            name: Arc::from(hb.name.as_str()),
            last_seen: now,
            interval,
            up: false,
            left: false,
            exports: HashMap::new(),
            factories: Vec::new(),
        });
        peer.last_seen = now;
        peer.interval = interval;
        if *peer.name != *hb.name {
            peer.name = Arc::from(hb.name.as_str());
        }
        let (id, name) = (peer.id, peer.name.clone());
        if hb.leaving {
            peer.up = false;
            peer.left = true;
            let cause = DownCause::NodeLeft {
                node: name.to_string(),
                id,
            };
            s.peer_down(id, &name, &cause, &mut actions);
            if let Some(peer) = s.peers.get_mut(&id) {
                peer.exports.clear();
            }
            s.evaluate(&mut actions);
            return actions;
        }
        for down in &hb.downs {
            if let Some(peer) = s.peers.get_mut(&id) {
                peer.exports.remove(&down.name);
            }
            let cause = match &down.crashed {
                Some(reason) => DownCause::Crashed {
                    node: name.to_string(),
                    reason: reason.clone(),
                },
                None => DownCause::Stopped {
                    node: name.to_string(),
                },
            };
            for e in &mut s.entries {
                let hit = match &e.target {
                    Target::Name(n) => **n == *down.name,
                    Target::Pinned(node, n) => *node == id && **n == *down.name,
                    Target::Node(_) => false,
                };
                // The first notice of a heartbeat says why (a crash, then the withdrawal
                // that follows it).
                if hit && e.armed.is_some() && e.cause.is_none() {
                    e.cause = Some(cause.clone());
                }
            }
        }
        if !hb.downs.is_empty() {
            s.evaluate(&mut actions);
        }
        // Names this peer no longer lists were withdrawn (stopped) there.
        let withdrawn: Vec<String> = s.peers.get(&id).map_or_else(Vec::new, |p| {
            p.exports
                .keys()
                .filter(|n| !hb.exports.iter().any(|(x, _)| x == *n))
                .cloned()
                .collect()
        });
        for e in &mut s.entries {
            let hit = match &e.target {
                Target::Name(n) => withdrawn.iter().any(|w| **w == **n),
                Target::Pinned(node, n) => *node == id && withdrawn.iter().any(|w| **w == **n),
                Target::Node(_) => false,
            };
            if hit && e.armed.is_some() && e.cause.is_none() {
                e.cause = Some(DownCause::Stopped {
                    node: name.to_string(),
                });
            }
        }
        if let Some(peer) = s.peers.get_mut(&id) {
            peer.up = true;
            peer.left = false;
            peer.exports = hb.exports.into_iter().collect();
            peer.factories = hb.factories;
        }
        s.evaluate(&mut actions);
        actions
    }

    /// Marks the peers silent for too long unreachable; returns what to do and when to check
    /// again.
    pub(crate) fn check(&self, now: Instant) -> (Vec<Action>, Option<Instant>) {
        let mut actions = Vec::new();
        let mut s = self.lock();
        let mut gone = Vec::new();
        let mut next: Option<Instant> = None;
        for peer in s.peers.values_mut() {
            if !peer.up {
                continue;
            }
            let deadline = peer.last_seen + self.allowance(peer.interval);
            if now >= deadline {
                peer.up = false;
                gone.push((peer.id, peer.name.clone(), peer.silent_for(now)));
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        for (id, name, silent_for) in gone {
            let cause = DownCause::Unreachable {
                node: name.to_string(),
                id,
                silent_for,
            };
            s.peer_down(id, &name, &cause, &mut actions);
        }
        // Forget peers long gone (their names were announced down already).
        let forget = Duration::from_secs(60).max(self.allowance(self.interval) * 10);
        s.peers
            .retain(|_, p| p.up || now.saturating_duration_since(p.last_seen) < forget);
        s.evaluate(&mut actions);
        (actions, next)
    }

    /// Registers a watch for `proxy`; evaluates it at once (the target may be down already).
    pub(crate) fn add_entry(
        &self,
        target: Target,
        proxy: ServiceRef,
        child: bool,
        on_up: Option<Recipient<RemoteUp>>,
    ) -> (u64, Vec<Action>) {
        let mut actions = Vec::new();
        let mut s = self.lock();
        s.next_id += 1;
        let id = s.next_id;
        s.entries.push(Entry {
            id,
            target,
            armed: Some(proxy),
            child,
            on_up,
            rearming: false,
            listed: false,
            cause: None,
        });
        s.evaluate(&mut actions);
        drop(s);
        self.recheck.notify_one();
        (id, actions)
    }

    /// A fresh proxy for a fired entry whose target is up again.
    pub(crate) fn rearm(&self, id: u64, proxy: Option<ServiceRef>) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut s = self.lock();
        if let Some(e) = s.entries.iter_mut().find(|e| e.id == id) {
            e.rearming = false;
            match proxy {
                Some(proxy) => {
                    e.armed = Some(proxy);
                    e.cause = None;
                }
                None => e.on_up = None,
            }
        }
        s.evaluate(&mut actions);
        actions
    }

    /// Removes entry `id` if `proxy` still holds it (a proxy stopped by its owner); an entry
    /// that fired stays, waiting to be re-armed.
    pub(crate) fn remove_entry(&self, id: u64, proxy: &ServiceRef) {
        let mut s = self.lock();
        s.entries
            .retain(|e| !(e.id == id && e.armed.as_ref() == Some(proxy)));
    }

    /// Whether the target of a watch is up now.
    pub(crate) fn is_up(&self, target: &Target) -> bool {
        let s = self.lock();
        let mut listed = false;
        s.target_up(target, &mut listed, None)
    }

    /// The peers as heard now.
    pub(crate) fn peers(&self) -> Vec<Peer> {
        let mut peers: Vec<Peer> = self.lock().peers.values().cloned().collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        peers
    }

    /// The up peers that offer `factory`.
    pub(crate) fn offering(&self, factory: &str) -> Vec<(NodeId, Arc<str>)> {
        let s = self.lock();
        let mut out: Vec<(NodeId, Arc<str>)> = s
            .peers
            .values()
            .filter(|p| p.up && p.factories.iter().any(|f| f == factory))
            .map(|p| (p.id, p.name.clone()))
            .collect();
        out.sort();
        out
    }

    /// The state of peer `id`: `Some(true)` up, `Some(false)` down, `None` unknown.
    pub(crate) fn peer_up(&self, id: NodeId) -> Option<bool> {
        self.lock().peers.get(&id).map(|p| p.up)
    }
}

impl State {
    /// Peer `id` went down: the watches on it learn why, its orphans are stopped.
    fn peer_down(&mut self, id: NodeId, name: &Arc<str>, cause: &DownCause, out: &mut Vec<Action>) {
        let exports: Vec<String> = self
            .peers
            .get(&id)
            .map(|p| p.exports.keys().cloned().collect())
            .unwrap_or_default();
        for e in &mut self.entries {
            if e.armed.is_none() {
                continue;
            }
            let hit = match &e.target {
                Target::Node(n) => n == name,
                Target::Name(n) => exports.iter().any(|x| **x == **n),
                Target::Pinned(node, _) => *node == id,
            };
            if hit && e.cause.is_none() {
                e.cause = Some(cause.clone());
            }
        }
        let orphans: Vec<String> = self
            .spawned
            .iter()
            .filter(|(_, s)| s.owner == id)
            .map(|(n, _)| n.clone())
            .collect();
        for name in orphans {
            if let Some(spawned) = self.spawned.remove(&name) {
                out.push(Action::StopOrphan { spawned, name });
            }
        }
    }

    fn target_up(&self, target: &Target, listed: &mut bool, cause: Option<&DownCause>) -> bool {
        match target {
            Target::Node(n) => self.peers.values().any(|p| p.up && p.name == *n),
            Target::Name(n) => self.peers.values().any(|p| p.serves(n)),
            Target::Pinned(id, n) => {
                if cause.is_some() {
                    return false;
                }
                match self.peers.get(id) {
                    Some(p) if p.up => {
                        if p.serves(n) {
                            *listed = true;
                            true
                        } else {
                            // Not listed yet (the spawn's heartbeat is on its way), or
                            // withdrawn after it was.
                            !*listed
                        }
                    }
                    Some(_) => false,
                    // Not heard yet: the spawn's reply came first.
                    None => !*listed,
                }
            }
        }
    }

    /// Why `target` is down when no notice said so.
    fn default_cause(&self, target: &Target, now: Instant) -> DownCause {
        let node_of = |pred: &dyn Fn(&Peer) -> bool| {
            self.peers
                .values()
                .filter(|p| pred(p))
                .max_by_key(|p| p.last_seen)
                .cloned()
        };
        let peer = match target {
            Target::Node(n) => node_of(&|p: &Peer| p.name == *n),
            Target::Pinned(id, _) => self.peers.get(id).cloned(),
            Target::Name(_) => None,
        };
        match peer {
            Some(p) if p.left => DownCause::NodeLeft {
                node: p.name.to_string(),
                id: p.id,
            },
            Some(p) if !p.up => DownCause::Unreachable {
                node: p.name.to_string(),
                id: p.id,
                silent_for: p.silent_for(now),
            },
            Some(p) => DownCause::Stopped {
                node: p.name.to_string(),
            },
            None => DownCause::Stopped {
                node: String::new(),
            },
        }
    }

    /// Fires the armed watches whose target is down, re-arms the fired ones whose target is
    /// up again.
    fn evaluate(&mut self, out: &mut Vec<Action>) {
        let now = Instant::now();
        let mut drop_ids = Vec::new();
        for i in 0..self.entries.len() {
            let (target, mut listed, cause) = {
                let e = &self.entries[i];
                (e.target.clone(), e.listed, e.cause.clone())
            };
            let up = self.target_up(&target, &mut listed, cause.as_ref());
            let default = (!up).then(|| self.default_cause(&target, now));
            let e = &mut self.entries[i];
            e.listed = listed;
            if up {
                e.cause = None;
            }
            match (&e.armed, up) {
                (Some(_), false) => {
                    let proxy = e.armed.take().expect("armed");
                    let cause = e
                        .cause
                        .take()
                        .or(default)
                        .expect("a down target has a cause");
                    let stop = !e.child
                        && matches!(
                            cause,
                            DownCause::Stopped { .. } | DownCause::NodeLeft { .. }
                        );
                    out.push(Action::Down {
                        proxy,
                        down: RemoteDown {
                            target: target.public(),
                            cause,
                        },
                        stop,
                    });
                    if e.child || e.on_up.is_none() {
                        drop_ids.push(e.id);
                    }
                }
                (None, true) if !e.rearming => {
                    if let Some(to) = e.on_up.clone() {
                        let node = match &target {
                            Target::Node(n) => self_peer(&self.peers, |p| p.up && p.name == *n),
                            Target::Name(n) | Target::Pinned(_, n) => {
                                self_peer(&self.peers, |p| p.serves(n))
                            }
                        };
                        if let Some(node) = node {
                            let e = &mut self.entries[i];
                            e.rearming = true;
                            out.push(Action::Up {
                                entry: e.id,
                                target,
                                node,
                                to,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        self.entries.retain(|e| !drop_ids.contains(&e.id));
    }
}

fn self_peer(
    peers: &HashMap<NodeId, Peer>,
    pred: impl Fn(&Peer) -> bool,
) -> Option<(NodeId, Arc<str>)> {
    peers
        .values()
        .filter(|p| pred(p))
        .max_by_key(|p| p.last_seen)
        .map(|p| (p.id, p.name.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hb(node: u8, name: &str, exports: &[(&str, Health)]) -> Heartbeat {
        Heartbeat {
            node: NodeId([node; 16]),
            name: name.into(),
            seq: 1,
            interval_ms: 100,
            leaving: false,
            exports: exports.iter().map(|(n, h)| ((*n).into(), *h)).collect(),
            factories: vec![],
            downs: vec![],
        }
    }

    #[test]
    fn heartbeats_round_trip_and_bad_frames_are_errors() {
        let h = hb(1, "a", &[("svc", Health::Running)]);
        let back: Heartbeat = decode(&encode(&h), "heartbeat").unwrap();
        assert_eq!(back, h);
        assert!(decode::<Heartbeat>(&[], "heartbeat").is_err());
        assert!(decode::<Heartbeat>(&[9, 1], "heartbeat").is_err());
        assert!(decode::<Heartbeat>(&[WIRE_VERSION, 200], "heartbeat").is_err());
    }

    #[test]
    fn a_silent_peer_is_unreachable_after_the_allowance() {
        let c = Cluster::new(NodeId([0; 16]), "me".into(), Duration::from_millis(100), 2);
        let t0 = Instant::now();
        c.on_heartbeat(hb(1, "a", &[]), t0);
        assert_eq!(c.peer_up(NodeId([1; 16])), Some(true));
        let (_, next) = c.check(t0 + Duration::from_millis(150));
        assert_eq!(next, Some(t0 + Duration::from_millis(200)));
        assert_eq!(c.peer_up(NodeId([1; 16])), Some(true));
        c.check(t0 + Duration::from_millis(200));
        assert_eq!(c.peer_up(NodeId([1; 16])), Some(false));
        // Its first heartbeat after brings it back.
        c.on_heartbeat(hb(1, "a", &[]), t0 + Duration::from_millis(300));
        assert_eq!(c.peer_up(NodeId([1; 16])), Some(true));
    }

    #[test]
    fn names_are_served_while_one_up_peer_lists_them_running() {
        let c = Cluster::new(NodeId([0; 16]), "me".into(), Duration::from_millis(100), 2);
        let t0 = Instant::now();
        c.on_heartbeat(hb(1, "a", &[("svc", Health::Running)]), t0);
        c.on_heartbeat(hb(2, "b", &[("svc", Health::Crashed)]), t0);
        assert!(c.is_up(&Target::Name("svc".into())));
        assert!(c.is_up(&Target::Node("b".into())));
        c.on_heartbeat(hb(1, "a", &[]), t0);
        assert!(!c.is_up(&Target::Name("svc".into())));
        assert_eq!(c.offering("f"), vec![]);
    }
}
