//! The routes: the JSON API, the event stream, the page, `/metrics`. What every request passes
//! first, and the token check for actions, are in `guard.rs`.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::Response;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::ApiError;
use super::guard::{Auth, guard};
use super::hub::Hub;
use super::page;
use super::sample::{Crash, Figures, Quantiles, VERSION, now_ms, state_str};
use super::serve::Counters;
use super::watch::Watchers;
use crate::{CrashReason, ServiceRef, ServiceState, System};

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) hub: Arc<Hub>,
    /// Who watches: reading figures (the graph, a service, `/metrics`, the stream) counts.
    pub(crate) watchers: Arc<Watchers>,
    pub(crate) system: System,
    pub(crate) auth: Auth,
    /// The observer and its ancestors: acting on them would stop the observer under the
    /// request that asked.
    pub(crate) protected: HashSet<Uuid>,
    pub(crate) action_timeout: Duration,
    /// The host names accepted in `Host` (lowercase, without port); `None`: any.
    pub(crate) hosts: Option<Vec<String>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) interval: Duration,
    /// The largest request body accepted.
    pub(crate) max_body: usize,
    /// How long a request body may take to arrive.
    pub(crate) body_timeout: Duration,
    #[cfg(feature = "prometheus")]
    pub(crate) prometheus: Result<metrics_exporter_prometheus::PrometheusHandle, String>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

pub(super) type St = State<Arc<Shared>>;

/// The observer's routes.
pub(crate) fn router(shared: Arc<Shared>, max_body: usize) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/assets/observer.js", get(page::script))
        .route("/assets/observer.css", get(page::style))
        .route("/api/v1/graph", get(graph))
        .route("/api/v1/status", get(status))
        .route("/api/v1/events", get(events))
        .route("/api/v1/services/{id}", get(service))
        .route("/api/v1/services/{id}/{action}", post(action))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

pub(super) fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the request body is larger than {limit} bytes"),
    )
}

/// Reads a request body of at most `limit` bytes, within `timeout`.
///
/// # Errors
/// `413 too_large` past the limit, `408 body_timeout` when it is too slow, `400 bad_body` when
/// the connection fails mid-body.
async fn read_body(body: Body, limit: usize, timeout: Duration) -> Result<Vec<u8>, ApiError> {
    use futures::StreamExt as _;

    let read = async {
        let mut data = body.into_data_stream();
        let mut out = Vec::new();
        while let Some(chunk) = data.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.to_string()))?;
            if out.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!("the request body did not arrive within {timeout:?}"),
            ))
        })
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn to_json(value: &impl Serialize) -> Vec<u8> {
    // Plain data to memory: cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

/// `GET /api/v1/graph`: the latest snapshot.
async fn graph(State(shared): St) -> Response {
    shared.watchers.touch();
    shared.fresh().await;
    json_response(StatusCode::OK, shared.hub.latest_for_reading().json())
}

#[derive(Serialize)]
struct StatusDoc {
    version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    at_ms: u64,
    seq: u64,
    snapshot_at_ms: u64,
    services: usize,
    /// Whether message observation is on (someone watches, or the program turned it on).
    observing: bool,
    read_only: bool,
    interval_ms: u64,
    /// How long the last look (graph snapshot, figures, diff) took, in microseconds.
    look_us: u64,
    /// Looks taken since the observer started (none while nobody watches).
    looks: u64,
    stream_clients: usize,
    stream_queued_bytes: usize,
    streams_dropped: u64,
    connections: usize,
    connections_refused: u64,
    writes_timed_out: u64,
}

/// `GET /api/v1/status`: the observer's own figures.
async fn status(State(shared): St) -> Response {
    let latest = shared.hub.latest();
    let doc = StatusDoc {
        version: VERSION,
        kind: "status",
        at_ms: now_ms(),
        seq: latest.seq,
        snapshot_at_ms: latest.at_ms,
        services: latest.services.len(),
        observing: shared.system.is_observing(),
        read_only: shared.auth.is_read_only(),
        interval_ms: u64::try_from(shared.interval.as_millis()).unwrap_or(u64::MAX),
        look_us: u64::try_from(shared.hub.look_time().as_micros()).unwrap_or(u64::MAX),
        looks: shared.hub.looks(),
        stream_clients: shared.hub.clients(),
        stream_queued_bytes: shared.hub.queued_bytes(),
        streams_dropped: shared.hub.dropped(),
        connections: shared.counters.connections.load(Ordering::Relaxed),
        connections_refused: shared.counters.refused.load(Ordering::Relaxed),
        writes_timed_out: shared.counters.writes_timed_out.load(Ordering::Relaxed),
    };
    json_response(StatusCode::OK, to_json(&doc))
}

/// `GET /api/v1/events`: the live stream (Server-Sent Events).
async fn events(State(shared): St) -> Result<Response, ApiError> {
    use futures::StreamExt as _;

    let subscription = shared.hub.subscribe().map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!("{} event streams are open already", e.0),
        )
    })?;
    // The stream is a watcher for as long as it lives (the guard goes with it).
    let watch = shared.watchers.stream();
    let stream = subscription.into_stream().map(move |item| {
        let _watching = &watch;
        item
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The id in a request path.
fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_id",
            format!("{raw:?} is not a service id (a UUID)"),
        )
    })
}

fn path_error(e: &PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_path", e.body_text())
}

impl Shared {
    /// Makes sure the latest snapshot is at most two intervals old: while nobody watched, the
    /// sampler took no looks, and a reader gets one made for it (waiting at most a second).
    async fn fresh(&self) {
        self.hub
            .fresh(self.interval * 2, Duration::from_secs(1))
            .await;
    }

    /// The live service `id`.
    async fn find(&self, id: Uuid) -> Result<ServiceRef, ApiError> {
        self.system.registry().service(id).await.ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_service",
                format!("no live service has id {id}"),
            )
        })
    }
}

#[derive(Serialize)]
struct ServiceDoc {
    version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    at_ms: u64,
    service: Detail,
}

/// One service, read live (its structure, children and name, from the latest snapshot).
#[derive(Serialize)]
struct Detail {
    id: Uuid,
    label: String,
    shortlabel: String,
    type_name: &'static str,
    name: Option<String>,
    parent: Option<Uuid>,
    children: Vec<Uuid>,
    depth: usize,
    #[serde(serialize_with = "state_str")]
    state: ServiceState,
    restart_count: u32,
    tasks: Vec<String>,
    flags: Vec<String>,
    mailbox: usize,
    stats: Figures,
    crash_reason: Option<String>,
    dead_letters: u64,
}

impl Detail {
    fn of(service: &ServiceRef, shared: &Shared) -> Detail {
        let latest = shared.hub.latest();
        let seen = latest.get(service.id());
        let stats = service.stats();
        Detail {
            id: service.id(),
            label: service.label().to_owned(),
            shortlabel: service.shortlabel().to_owned(),
            type_name: service.type_name(),
            name: seen.and_then(|v| v.name.clone()),
            parent: service.parent().map(|p| p.id()),
            children: seen.map(|v| v.children.clone()).unwrap_or_default(),
            depth: service.depth(),
            state: service.state(),
            restart_count: service.restart_count(),
            tasks: service.task_names(),
            flags: service.diag().flags(),
            mailbox: service.mailbox_len(),
            stats: Figures {
                handled: stats.handled,
                rate: seen.map_or(0.0, |v| v.stats.rate),
                handle_time: Quantiles::from(stats.handle_time),
                mailbox_wait: Quantiles::from(stats.mailbox_wait),
                crashes: stats.crashes,
                last_crash: stats.last_crash.as_ref().map(Crash::from),
            },
            crash_reason: service.crash_reason().map(|r| r.to_string()),
            dead_letters: service.dead_letters(),
        }
    }
}

/// `GET /api/v1/services/{id}`: one service in detail.
async fn service(
    State(shared): St,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(raw) = path.map_err(|e| path_error(&e))?;
    let id = parse_id(&raw)?;
    shared.watchers.touch();
    shared.fresh().await;
    let found = shared.find(id).await?;
    let doc = ServiceDoc {
        version: VERSION,
        kind: "service",
        at_ms: now_ms(),
        service: Detail::of(&found, &shared),
    };
    Ok(json_response(StatusCode::OK, to_json(&doc)))
}

/// What an action may carry: `{"reason": "..."}` for a crash; nothing (or `{}`) otherwise.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    reason: Option<String>,
}

/// The longest crash reason accepted.
const MAX_REASON: usize = 1024;

#[derive(Clone, Copy, Serialize)]
#[serde(rename_all = "snake_case")]
enum Action {
    Stop,
    Restart,
    Crash,
}

#[derive(Serialize)]
struct ActionDoc {
    version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    at_ms: u64,
    ok: bool,
    action: Action,
    id: Uuid,
    /// The action was still going on when the request stopped waiting for it.
    pending: bool,
    #[serde(serialize_with = "state_str")]
    state: ServiceState,
    restart_count: u32,
}

/// `POST /api/v1/services/{id}/{stop|restart|crash}`: acts on a service. Needs the token.
async fn action(
    State(shared): St,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    shared.auth.check(&headers)?;
    let Path((raw_id, raw_action)) = path.map_err(|e| path_error(&e))?;
    let action = match raw_action.as_str() {
        "stop" => Action::Stop,
        "restart" => Action::Restart,
        "crash" => Action::Crash,
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_action",
                format!("no action {other:?}: use stop, restart or crash"),
            ));
        }
    };
    let id = parse_id(&raw_id)?;
    let body = read_body(body, shared.max_body, shared.body_timeout).await?;
    let parsed: ActionBody = if body.iter().all(u8::is_ascii_whitespace) {
        ActionBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_json",
                format!("the body is not an action document ({{\"reason\": \"...\"}}): {e}"),
            )
        })?
    };
    if parsed.reason.is_some() && !matches!(action, Action::Crash) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            "only a crash takes a reason",
        ));
    }
    if parsed.reason.as_ref().is_some_and(|r| r.len() > MAX_REASON) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the reason is longer than {MAX_REASON} bytes"),
        ));
    }
    let target = shared.find(id).await?;
    if shared.protected.contains(&id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "would_stop_observer",
            format!(
                "{} is the observer or runs it: acting on it would stop the observer",
                target.label()
            ),
        ));
    }
    let pending = match action {
        Action::Crash => {
            let reason = parsed
                .reason
                .unwrap_or_else(|| "crashed from the observer".to_owned());
            target.crash(CrashReason::msg(reason));
            false
        }
        Action::Stop | Action::Restart => {
            let done = match action {
                Action::Stop => tokio::time::timeout(shared.action_timeout, target.stop()).await,
                _ => tokio::time::timeout(shared.action_timeout, target.restart()).await,
            };
            match done {
                Ok(Ok(())) => false,
                Ok(Err(e)) => {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "action_failed",
                        e.to_string(),
                    ));
                }
                // Dropping the wait does not cancel the stop or restart: it goes on.
                Err(_) => true,
            }
        }
    };
    tracing::info!(
        target: "modo::observe",
        "[observer] {} {} ({id}) from the HTTP API",
        match action {
            Action::Stop => "stop",
            Action::Restart => "restart",
            Action::Crash => "crash",
        },
        target.label()
    );
    let doc = ActionDoc {
        version: VERSION,
        kind: "action",
        at_ms: now_ms(),
        ok: true,
        action,
        id,
        pending,
        state: target.state(),
        restart_count: target.restart_count(),
    };
    let status = if pending {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok(json_response(status, to_json(&doc)))
}

/// `GET /metrics`: the Prometheus text format (feature `prometheus`).
#[cfg(feature = "prometheus")]
async fn metrics(State(shared): St) -> Result<Response, ApiError> {
    shared.watchers.touch();
    match &shared.prometheus {
        Ok(handle) => {
            let mut response = Response::new(Body::from(handle.render()));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            Ok(response)
        }
        Err(why) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics_unavailable",
            why.clone(),
        )),
    }
}

/// `GET /metrics` without the `prometheus` feature.
#[cfg(not(feature = "prometheus"))]
async fn metrics() -> ApiError {
    ApiError::not_found("no /metrics here: modo was built without the `prometheus` feature")
}

async fn not_found(request: Request) -> ApiError {
    ApiError::not_found(format!("no route for {}", request.uri().path()))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}
