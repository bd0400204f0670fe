//! The dashboard on the HTTP port: its pages (`/status`, `/workers`,
//! `/workers/{id}`, `/graph`, `/system`, `/jobs`), their static files, the
//! JSON they read (`/api/v1/dashboard/...`) and the status stream
//! (`/api/v1/dashboard/events`, server-sent events).
//!
//! A stream asks the scheduler loop for what is new twice a second, so an open
//! page costs the loop one small query per half second, whatever the graph's
//! size: bars are capped per answer and everything else is counted per group
//! or per worker. At most [`MAX_STREAMS`] streams are served at once.

use super::{ask, unavailable};
use crate::comm::launcher::ClusterRequest;
use crate::comm::protocol::{Reply, Request};
use crate::diagnostics::assets::{self, Page};
use crate::diagnostics::{DashboardQuery, DashboardView};
use crate::server::ToScheduler;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use crossbeam_channel::Sender;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Live streams served at once; more wait for 503s to clear.
pub const MAX_STREAMS: usize = 32;
/// How often a stream asks the scheduler for news.
pub const STREAM_INTERVAL: Duration = Duration::from_millis(500);
/// The most task-stream bars in one answer (the loop's own cap).
const MAX_BARS: u32 = super::super::dashboard_data::MAX_BARS;

type Scheduler = State<DashboardState>;

/// What the dashboard's handlers share.
#[derive(Clone)]
pub struct DashboardState {
    scheduler: Sender<ToScheduler>,
    streams: Arc<Semaphore>,
}

/// The pages and static files (for everybody with the token).
pub fn pages() -> Router<DashboardState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/status") }))
        .route(
            "/status",
            get(|| async { Html(assets::page(Page::Status)) }),
        )
        .route(
            "/workers",
            get(|| async { Html(assets::page(Page::Workers)) }),
        )
        .route("/workers/{id}", get(worker_page))
        .route("/graph", get(|| async { Html(assets::page(Page::Graph)) }))
        .route(
            "/system",
            get(|| async { Html(assets::page(Page::System)) }),
        )
        .route("/jobs", get(|| async { Html(assets::page(Page::Jobs)) }))
}

/// The static files (no secrets in them: open to all).
pub fn statics() -> Router<DashboardState> {
    Router::new()
        .route(
            "/static/dashboard.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css")], assets::CSS) }),
        )
        .route(
            "/static/dashboard.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], assets::JS) }),
        )
}

/// The data endpoints.
pub fn api() -> Router<DashboardState> {
    Router::new()
        .route("/api/v1/dashboard/status", get(status))
        .route("/api/v1/dashboard/graph", get(graph))
        .route("/api/v1/dashboard/system", get(system))
        .route("/api/v1/dashboard/jobs", get(jobs))
        .route("/api/v1/dashboard/events", get(events))
}

impl DashboardState {
    /// The state, talking to the loop through `scheduler`.
    pub fn new(scheduler: Sender<ToScheduler>) -> Self {
        DashboardState {
            scheduler,
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
        }
    }
}

async fn worker_page(Path(id): Path<u32>) -> Html<String> {
    Html(assets::page(Page::Worker(id)))
}

async fn view(
    scheduler: &Sender<ToScheduler>,
    query: DashboardQuery,
) -> Result<DashboardView, Response> {
    match ask(scheduler.clone(), Request::Dashboard(query)).await? {
        Reply::Dashboard(view) => Ok(*view),
        _ => Err(unavailable()),
    }
}

fn json_of(view: Result<DashboardView, Response>) -> Response {
    match view {
        Ok(DashboardView::Status(v)) => Json(v).into_response(),
        Ok(DashboardView::Graph(v)) => Json(v).into_response(),
        Ok(DashboardView::System(v)) => Json(v).into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct StatusQuery {
    #[serde(default)]
    since_bar: u64,
    #[serde(default)]
    since_sample: u64,
    max_bars: Option<u32>,
    #[serde(default)]
    oldest_first: bool,
}

async fn status(State(s): Scheduler, Query(q): Query<StatusQuery>) -> Response {
    json_of(
        view(
            &s.scheduler,
            DashboardQuery::Status {
                since_bar: q.since_bar,
                max_bars: q.max_bars.unwrap_or(MAX_BARS).min(MAX_BARS),
                oldest_first: q.oldest_first,
                since_sample: q.since_sample,
            },
        )
        .await,
    )
}

#[derive(Deserialize)]
struct GraphQuery {
    max_tasks: Option<u32>,
}

async fn graph(State(s): Scheduler, Query(q): Query<GraphQuery>) -> Response {
    let max_tasks = q.max_tasks.unwrap_or(500).min(5_000);
    json_of(view(&s.scheduler, DashboardQuery::Graph { max_tasks }).await)
}

async fn system(State(s): Scheduler) -> Response {
    json_of(view(&s.scheduler, DashboardQuery::System).await)
}

async fn jobs(State(s): Scheduler) -> Response {
    match ask(
        s.scheduler.clone(),
        Request::Cluster(ClusterRequest::Status),
    )
    .await
    {
        Ok(Reply::Cluster(status)) => Json(status).into_response(),
        Ok(Reply::Error(message)) => Json(serde_json::json!({ "error": message })).into_response(),
        Ok(other) => Json(serde_json::json!({ "error": format!("unexpected reply {other:?}") }))
            .into_response(),
        Err(response) => response,
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    max_bars: Option<u32>,
}

/// Server-sent events named `status`, each a [`crate::diagnostics::StatusView`]
/// with what is new since the one before.
async fn events(State(s): Scheduler, Query(q): Query<EventsQuery>) -> Response {
    let Ok(permit) = s.streams.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_STREAMS} dashboard streams are open already\n"),
        )
            .into_response();
    };
    let max_bars = q.max_bars.unwrap_or(5_000).min(MAX_BARS);
    let start = (s.scheduler, permit, 0u64, 0u64, true);
    let stream = futures::stream::unfold(
        start,
        move |(scheduler, permit, bar, sample, first)| async move {
            if !first {
                tokio::time::sleep(STREAM_INTERVAL).await;
            }
            let query = DashboardQuery::Status {
                since_bar: bar,
                max_bars,
                oldest_first: false,
                since_sample: sample,
            };
            let (event, bar, sample) = match view(&scheduler, query).await {
                Ok(DashboardView::Status(v)) => {
                    let (bar, sample) = (v.next_bar, v.next_sample);
                    let event = SseEvent::default().event("status").json_data(&v);
                    (event, bar, sample)
                }
                _ => (
                    Ok(SseEvent::default().event("unavailable").data("")),
                    bar,
                    sample,
                ),
            };
            Some((event, (scheduler, permit, bar, sample, false)))
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
