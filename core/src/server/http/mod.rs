//! The scheduler's HTTP endpoints on the dashboard port: the dashboard
//! ([`dashboard`]), Prometheus `/metrics`, and the API the launchers use
//! (`/api/v1/adaptive_target`, `/api/v1/workers_to_close`,
//! `/api/v1/retire_workers`).
//!
//! When the cluster has a token, the API wants it as a bearer token
//! (`auth`); when it has TLS, so does this port.

mod auth;
pub mod dashboard;

pub use auth::HttpAuth;

use crate::comm::protocol::{Reply, Request, WorkerSummary};
use crate::scheduler::WorkerId;
use crate::server::ToScheduler;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crossbeam_channel::Sender;
use serde::Deserialize;
use std::time::Duration;

/// How long an HTTP request waits for the scheduler loop.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The router, talking to the scheduler loop through `scheduler`, with
/// access by `auth`.
pub fn router(scheduler: Sender<ToScheduler>, auth: HttpAuth) -> Router {
    let auth = std::sync::Arc::new(auth);
    let require = || axum::middleware::from_fn_with_state(auth.clone(), auth::require_token);
    let api = Router::new()
        .route("/api/v1/adaptive_target", get(adaptive_target))
        .route("/api/v1/workers_to_close", get(workers_to_close))
        .route("/api/v1/retire_workers", post(retire_workers))
        .route("/api/v1/workers", get(workers))
        .layer(require());
    let mut metrics_route = Router::new().route("/metrics", get(metrics));
    if auth.protect_metrics {
        metrics_route = metrics_route.layer(require());
    }
    let dashboard_state = dashboard::DashboardState::new(scheduler.clone());
    let dashboard = dashboard::pages()
        .merge(dashboard::api())
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            auth::require_token_or_query,
        ))
        .merge(dashboard::statics())
        .with_state(dashboard_state);
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(api)
        .merge(metrics_route)
        .with_state(scheduler)
        .merge(dashboard)
}

type Scheduler = State<Sender<ToScheduler>>;

pub(super) async fn ask(
    scheduler: Sender<ToScheduler>,
    request: Request,
) -> Result<Reply, Response> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    scheduler
        .send(ToScheduler::Query { request, reply: tx })
        .map_err(|_| unavailable())?;
    tokio::task::spawn_blocking(move || rx.recv_timeout(REPLY_TIMEOUT))
        .await
        .map_err(|_| unavailable())?
        .map_err(|_| unavailable())
}

pub(super) fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "the scheduler is not answering\n",
    )
        .into_response()
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

async fn metrics(State(scheduler): Scheduler) -> Response {
    let (tx, rx) = crossbeam_channel::bounded(1);
    if scheduler.send(ToScheduler::Metrics { reply: tx }).is_err() {
        return unavailable();
    }
    match tokio::task::spawn_blocking(move || rx.recv_timeout(REPLY_TIMEOUT)).await {
        Ok(Ok(text)) => ([("content-type", "text/plain; version=0.0.4")], text).into_response(),
        _ => unavailable(),
    }
}

async fn adaptive_target(State(scheduler): Scheduler) -> Response {
    match ask(scheduler, Request::AdaptiveTarget).await {
        Ok(Reply::Count(n)) => Json(serde_json::json!({ "workers": n })).into_response(),
        Ok(other) => bad_request(format!("unexpected reply {other:?}")),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct CloseQuery {
    n: Option<u32>,
}

async fn workers_to_close(State(scheduler): Scheduler, Query(q): Query<CloseQuery>) -> Response {
    let n = q.n.unwrap_or(1);
    workers_reply(ask(scheduler, Request::WorkersToClose { n }).await)
}

async fn workers(State(scheduler): Scheduler) -> Response {
    workers_reply(ask(scheduler, Request::Info).await)
}

/// `{"n": 2}` retires two workers of the scheduler's choice; `{"workers": [0, 3]}`
/// retires those.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetireBody {
    #[serde(default)]
    workers: Vec<u32>,
    #[serde(default)]
    n: Option<u32>,
}

async fn retire_workers(State(scheduler): Scheduler, body: axum::body::Bytes) -> Response {
    let body: RetireBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => {
            return bad_request(format!(
                "expected a JSON body like {{\"n\": 2}} or {{\"workers\": [0, 3]}}: {e}"
            ))
        }
    };
    if body.workers.is_empty() && body.n.is_none() {
        return bad_request("give \"n\" or \"workers\"".into());
    }
    let request = Request::RetireWorkers {
        workers: body.workers.into_iter().map(WorkerId).collect(),
        n: body.n.unwrap_or(0),
    };
    workers_reply(ask(scheduler, request).await)
}

fn workers_reply(reply: Result<Reply, Response>) -> Response {
    match reply {
        Ok(Reply::Workers(workers)) => Json(
            workers
                .iter()
                .map(summary_json)
                .collect::<Vec<serde_json::Value>>(),
        )
        .into_response(),
        Ok(Reply::Error(message)) => bad_request(message),
        Ok(other) => bad_request(format!("unexpected reply {other:?}")),
        Err(response) => response,
    }
}

fn summary_json(w: &WorkerSummary) -> serde_json::Value {
    serde_json::json!({
        "id": w.id.0,
        "name": w.name,
        "address": w.data_address,
        "pid": w.pid,
        "nthreads": w.nthreads,
        "memory": w.metrics.rss,
        "managed_bytes": w.metrics.managed,
        "spilled_bytes": w.metrics.spilled,
        "shuffle_spilled_bytes": w.metrics.shuffle_spilled,
        "shuffle_held_bytes": w.metrics.shuffle_held,
        "executing": w.metrics.executing,
    })
}
