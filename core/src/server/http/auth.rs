//! Who may use the HTTP API: when the cluster has a token, every `/api/`
//! endpoint, every dashboard page (and `/metrics`, when protected) wants it
//! and answers 401 without it.
//!
//! Programs send `Authorization: Bearer <token>`. A browser opens the URL
//! `rask dashboard` prints, which carries `?token=<token>` (as Jupyter's do);
//! the answer sets the `rask-token` cookie (HttpOnly, SameSite=Strict), which
//! the page's own requests then carry.

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
    /// Whether the request's `Authorization` header or `rask-token` cookie
    /// carries the token.
    fn allows(&self, request: &Request) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let matches = |presented: &str| {
            crate::comm::security::constant_time_eq(
                presented.trim().as_bytes(),
                expected.as_bytes(),
            )
        };
        let bearer = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(matches);
        bearer || cookie(request, COOKIE).is_some_and(matches)
    }

    /// Whether the URL's `?token=` query carries the token.
    fn allows_query(&self, request: &Request) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        query_token(request).is_some_and(|presented| {
            crate::comm::security::constant_time_eq(presented.as_bytes(), expected.as_bytes())
        })
    }
}

/// The cookie a dashboard page's requests carry the token in.
pub const COOKIE: &str = "rask-token";

fn cookie<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn query_token(request: &Request) -> Option<String> {
    request.uri().query()?.split('&').find_map(|pair| {
        let value = pair.strip_prefix("token=")?;
        percent_decode(value)
    })
}

/// Decodes `%XX` escapes and `+`; `None` for a malformed escape.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Middleware for pages a browser opens: like [`require_token`], and a
/// `?token=` in the URL is accepted too and answered with the cookie.
pub(super) async fn require_token_or_query(
    State(auth): State<Arc<HttpAuth>>,
    request: Request,
    next: Next,
) -> Response {
    if auth.token.is_some() && !auth.allows(&request) && auth.allows_query(&request) {
        let token = query_token(&request).unwrap_or_default();
        let mut response = next.run(request).await;
        let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        return response;
    }
    require_token(State(auth), request, next).await
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
        "this scheduler needs its token: send `Authorization: Bearer <token>`, \
         or open the URL `rask dashboard --scheduler-file FILE` prints\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, cookie_header: Option<&str>) -> Request {
        let mut builder = axum::http::Request::builder().uri(uri);
        if let Some(c) = cookie_header {
            builder = builder.header(header::COOKIE, c);
        }
        builder.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn the_token_may_come_in_a_cookie_or_the_query() {
        let auth = HttpAuth {
            token: Some("s3cret+/=".into()),
            protect_metrics: false,
        };
        assert!(auth.allows(&request("/status", Some("a=b; rask-token=s3cret+/="))));
        assert!(!auth.allows(&request("/status", Some("rask-token=wrong"))));
        assert!(!auth.allows(&request("/status", None)));
        assert!(auth.allows_query(&request("/status?token=s3cret%2B%2F%3D", None)));
        assert!(!auth.allows_query(&request("/status?token=s3cret", None)));
        assert!(!auth.allows_query(&request("/status?token=%zz", None)));
    }
}
