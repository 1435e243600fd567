//! The relay's HTTP face: deliveries (`POST` to any path), `GET /healthz`,
//! `GET /metrics` and `GET /events` (SSE for subscribers).

use super::metrics::{Metrics, bump};
use super::sse::{Filter, Hub, Published};
use super::store::{Incoming, Store};
use crate::secret::Secret;
use crate::webhooks::{Event, SIGNATURE_HEADER, verify};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const MAX_BODY: usize = crate::webhooks::receiver::MAX_BODY;

pub struct AppState {
    pub secret: Secret,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    pub subscriber_token: Option<Secret>,
    pub request_timeout: Duration,
    pub cancel: CancellationToken,
    /// The store does no fan-out of its own (the spool): publish here.
    pub publish_locally: bool,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/events", get(events))
        .fallback(delivery)
        .with_state(state)
}

fn reply(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "status": message }).to_string(),
    )
        .into_response()
}

async fn healthz(State(s): State<Arc<AppState>>) -> Response {
    let ok = tokio::time::timeout(Duration::from_secs(2), s.store.healthy())
        .await
        .unwrap_or(false);
    if ok {
        reply(StatusCode::OK, "ok")
    } else {
        reply(StatusCode::SERVICE_UNAVAILABLE, "the store is unreachable")
    }
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let pending = tokio::time::timeout(Duration::from_secs(2), s.store.pending())
        .await
        .ok()
        .and_then(Result::ok);
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4")],
        s.metrics.render(pending),
    )
        .into_response()
}

/// Why a delivery was refused, with its answer.
fn refuse(s: &AppState, status: StatusCode, log: String, answer: &str) -> Response {
    bump(&s.metrics.rejected);
    tracing::warn!("relay: refused a delivery: {log}");
    reply(status, answer)
}

/// Read the body within the size and time limits.
async fn read_body(s: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(refuse(
            s,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a {}-byte body (limit {MAX_BODY})", declared.unwrap_or(0)),
            "body too large",
        ));
    }
    match tokio::time::timeout(s.request_timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => Err(refuse(
            s,
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive in time".into(),
            "request timeout",
        )),
        Ok(Err(_)) => Err(refuse(
            s,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a body over {MAX_BODY} bytes"),
            "body too large",
        )),
        Ok(Ok(b)) => Ok(b),
    }
}

async fn delivery(
    State(s): State<Arc<AppState>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method != Method::POST {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST webhook deliveries here",
        );
    }
    let body = match read_body(&s, &headers, body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let sig = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if let Err(e) = verify(s.secret.expose().as_bytes(), &body, sig) {
        return refuse(
            &s,
            StatusCode::UNAUTHORIZED,
            e.to_string(),
            "signature verification failed",
        );
    }
    let event = match Event::parse(&body) {
        Ok(e) => e,
        Err(e) => {
            return refuse(
                &s,
                StatusCode::BAD_REQUEST,
                format!("signed but malformed: {e}"),
                "malformed payload",
            );
        }
    };
    let id = event.id.clone().unwrap_or_else(|| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body))
    });
    let incoming = Incoming {
        id: id.clone(),
        body: body.clone(),
        signature: sig.unwrap_or_default().trim().to_string(),
        received_ms: super::now_ms(),
    };
    let accepted = match s.store.accept(&incoming).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!("relay: cannot persist event {id}: {e}");
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "cannot persist the delivery; try again",
            );
        }
    };
    if accepted.duplicate() {
        bump(&s.metrics.duplicate);
        tracing::debug!("relay: duplicate delivery of event {id}");
        return reply(StatusCode::OK, "duplicate");
    }
    bump(&s.metrics.verified);
    tracing::info!(
        "relay: {} {id}{} queued for {} target(s)",
        event.kind,
        event
            .instance_id
            .as_deref()
            .map(|i| format!(" for {i}"))
            .unwrap_or_default(),
        accepted.queued
    );
    if accepted.fresh && s.publish_locally {
        s.hub.publish(Published {
            id,
            received_ms: incoming.received_ms,
            event,
            body,
        });
    }
    reply(StatusCode::OK, "accepted")
}

/// `Authorization: Bearer <token>`, compared in constant time.
fn authorized(expected: &Secret, headers: &HeaderMap) -> bool {
    use sha2::Digest;
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .unwrap_or("");
    // Equal-length digests, then a comparison that does not stop early.
    let a = sha2::Sha256::digest(given.trim().as_bytes());
    let b = sha2::Sha256::digest(expected.expose().as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

async fn events(
    State(s): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(token) = &s.subscriber_token else {
        return reply(
            StatusCode::NOT_FOUND,
            "subscriptions are off (start the relay with --subscriber-token-env)",
        );
    };
    if !authorized(token, &headers) {
        return reply(StatusCode::UNAUTHORIZED, "a valid bearer token is needed");
    }
    let filter = Filter {
        build_upload: q.get("build-upload").cloned(),
        app: q.get("app").cloned(),
        kind: q.get("type").cloned(),
    };
    let (replay, live) = s.hub.subscribe(&filter);
    let f = filter.clone();
    let live = tokio_stream_from(live).filter(move |p| std::future::ready(f.matches(p)));
    let stop = s.cancel.clone();
    let stream = futures_util::stream::iter(replay)
        .chain(live)
        .map(|p| {
            Ok::<_, Infallible>(
                SseEvent::default()
                    .id(p.id.clone())
                    .event(p.event.kind.clone())
                    .data(p.data()),
            )
        })
        .take_until(async move { stop.cancelled().await });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A broadcast receiver as a stream; a lagging subscriber skips what it missed.
fn tokio_stream_from(
    rx: tokio::sync::broadcast::Receiver<Arc<Published>>,
) -> impl futures_util::Stream<Item = Arc<Published>> + Send {
    futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(p) => return Some((p, rx)),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("relay: a slow subscriber missed {n} event(s)");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}
