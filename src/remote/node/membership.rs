//! A node's membership: heartbeats out and in (the failure detector), the probe, and the
//! actions the membership asks for (ending proxies, re-arming watches, stopping orphans).

use std::fmt;

use futures::StreamExt;

use super::super::cluster::{self, Action, Heartbeat};
use super::super::watch::{RemoteUp, RemoteWatch, end_proxy};
use super::Node;
use super::service::{AddWatch, SubscribeError};
use crate::{Context, HookResult};

impl Node {
    /// Runs what the membership asked: proxies end now; the rest goes to the membership task.
    pub(crate) fn run_actions(&self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Down { proxy, down, stop } => end_proxy(&proxy, down, stop),
                other => {
                    let _ = self.inner.deferred.0.send(other);
                }
            }
        }
    }

    /// Runs an action that needs the node's service.
    pub(super) async fn run_deferred(&self, action: Action) {
        match action {
            Action::Down { proxy, down, stop } => end_proxy(&proxy, down, stop),
            Action::StopOrphan { spawned, name } => {
                tracing::warn!(target: "modo", "stopping {name}: the node it was spawned for is gone");
                self.stop_spawned(spawned).await;
            }
            Action::Up {
                entry,
                target,
                node,
                to,
            } => {
                let public = target.public();
                let watch = RemoteWatch::rearmed(self.clone(), target, Some(to.clone()), entry);
                let made = match self.service() {
                    Some(service) => service.ask(AddWatch(watch)).await.ok().and_then(Result::ok),
                    None => None,
                };
                let Some(watch) = made else {
                    let actions = self.cluster().rearm(entry, None);
                    self.run_actions(actions);
                    return;
                };
                let up = RemoteUp {
                    target: public,
                    node: (node.0, node.1.to_string()),
                    watch: watch.clone(),
                };
                if to.tell(up).await.is_err() {
                    // The watcher is gone: so is the lookout.
                    let me = watch.service_ref();
                    self.cluster().remove_entry(entry, &me);
                    let _ = watch.stop().await;
                }
            }
        }
    }

    /// Publishes a heartbeat now.
    pub(super) async fn publish_heartbeat(&self, leaving: bool) {
        let hb: Heartbeat = self.cluster().heartbeat(leaving);
        if let Err(e) = self
            .client()
            .publish(self.heartbeat_subject(), cluster::encode(&hb).into())
            .await
        {
            tracing::debug!(target: "modo", "could not publish a heartbeat: {e}");
        }
    }

    /// Starts the membership: heartbeats out, heartbeats in (the failure detector), control
    /// and factory requests, graph requests.
    pub(super) async fn start_membership(&self, ctx: &mut Context<Self>) -> HookResult {
        let client = self.client().clone();
        let prefix = &self.inner.prefix;
        let subscribe_error = |subject: &str, e: &dyn fmt::Display| {
            Box::new(SubscribeError(format!(
                "cannot subscribe to {subject}: {e}"
            )))
        };
        let hb_subject = format!("{prefix}hb.*");
        let heartbeats = client
            .subscribe(hb_subject.clone())
            .await
            .map_err(|e| subscribe_error(&hb_subject, &e))?;
        let probe_subject = format!("{prefix}probe");
        let probes = client
            .subscribe(probe_subject.clone())
            .await
            .map_err(|e| subscribe_error(&probe_subject, &e))?;
        let ctl_subject = self.ctl_subject(self.id());
        let control = client
            .subscribe(ctl_subject.clone())
            .await
            .map_err(|e| subscribe_error(&ctl_subject, &e))?;
        let graph_subject = self.graph_subject();
        let graphs = client
            .subscribe(graph_subject.clone())
            .await
            .map_err(|e| subscribe_error(&graph_subject, &e))?;
        let names: Vec<String> = {
            let factories = self
                .inner
                .factories
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            factories.keys().cloned().collect()
        };
        for name in names {
            self.serve_factory(ctx, &name).await?;
        }
        let _ = client.flush().await;

        let node = self.clone();
        ctx.spawn_named("heartbeat", async move {
            let interval = node.cluster().interval;
            // First a probe: every node answers with its heartbeat at once, so this one knows
            // the cluster within a round trip.
            node.publish_heartbeat(false).await;
            let _ = node
                .client()
                .publish(format!("{}probe", node.inner.prefix), bytes::Bytes::new())
                .await;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = node.cluster().kick.notified() => {}
                }
                node.publish_heartbeat(false).await;
                if node.check_open().is_err() {
                    break;
                }
            }
        });
        let node = self.clone();
        ctx.spawn_named("membership", node.membership(heartbeats, probes));
        let node = self.clone();
        ctx.spawn_named("control", async move {
            let mut control = control;
            while let Some(msg) = control.next().await {
                node.answer_ctl(msg).await;
            }
        });
        let system = ctx.system();
        ctx.spawn_named(
            "graph",
            super::super::graph::serve(self.clone(), system, graphs),
        );
        Ok(())
    }

    /// The failure detector: reads heartbeats and probes, declares silent peers unreachable,
    /// runs the actions that need the node's service.
    pub(super) async fn membership(
        self,
        mut heartbeats: async_nats::Subscriber,
        mut probes: async_nats::Subscriber,
    ) {
        let cluster = self.inner.cluster.clone();
        let deferred = self.inner.deferred.1.clone();
        let tick = cluster.interval / 4;
        let mut next = tokio::time::Instant::now() + tick;
        loop {
            tokio::select! {
                msg = heartbeats.next() => {
                    let Some(msg) = msg else { break };
                    match cluster::decode::<Heartbeat>(&msg.payload, "heartbeat") {
                        Ok(hb) => {
                            let actions = cluster.on_heartbeat(hb, tokio::time::Instant::now());
                            self.run_actions(actions);
                        }
                        Err(e) => tracing::debug!(target: "modo", "a heartbeat on {} did not decode: {e}", msg.subject),
                    }
                }
                msg = probes.next() => {
                    if msg.is_none() { break }
                    cluster.kick.notify_one();
                }
                () = tokio::time::sleep_until(next) => {
                    let now = tokio::time::Instant::now();
                    let (actions, deadline) = cluster.check(now);
                    self.run_actions(actions);
                    // The next deadline, but at least every quarter interval (a peer noted
                    // alive by a request has none yet).
                    next = deadline.map_or(now + tick, |d| d.min(now + tick));
                }
                () = cluster.recheck.notified() => {
                    next = tokio::time::Instant::now();
                }
                action = deferred.recv_async() => {
                    let Ok(action) = action else { break };
                    self.run_deferred(action).await;
                }
            }
        }
    }
}
