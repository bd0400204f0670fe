//! Who may use the HTTP API: when the cluster has a token, every `/api/`
//! endpoint (and `/metrics`, when protected) wants `Authorization: Bearer
//! <token>` and answers 401 without it.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The HTTP port's access rules.
#[derive(Debug, Clone, Default)]
pub struct HttpAuth {
    /// The cluster's token; `None` lets everyone in.
    pub token: Option<String>,
    /// Whether `/metrics` needs the token too (Prometheus scrapers usually
    /// read it without; `--protect-metrics` changes that).
    pub protect_metrics: bool,
}

impl HttpAuth {
    /// Whether the request's `Authorization` header carries the token.
    fn allows(&self, request: &Request) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|presented| {
                crate::comm::security::constant_time_eq(
                    presented.trim().as_bytes(),
                    expected.as_bytes(),
                )
            })
    }
}

/// Middleware: refuses requests without the token with 401.
pub(super) async fn require_token(
    State(auth): State<Arc<HttpAuth>>,
    request: Request,
    next: Next,
) -> Response {
    if auth.allows(&request) {
        return next.run(request).await;
    }
    let path = request.uri().path().to_string();
    tracing::warn!(%path, "HTTP request refused: missing or invalid token");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer realm=\"rask\"")],
        "this scheduler needs its token: send `Authorization: Bearer <token>`\n",
    )
        .into_response()
}
