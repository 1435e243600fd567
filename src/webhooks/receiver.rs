//! The HTTP receiver: POST to any path, body at most `MAX_BODY`, verified
//! signature, parsed payload, duplicates answered 200 but not passed on.

use super::{Event, SIGNATURE_HEADER, verify};
use crate::secret::Secret;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

pub const MAX_BODY: usize = 256 * 1024;
const REMEMBERED: usize = 4096;

/// A verified delivery: the parsed event, the raw body and its signature.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub event: Event,
    pub body: Bytes,
    pub signature: String,
}

pub struct Receiver {
    secret: Secret,
    tx: mpsc::UnboundedSender<Delivery>,
    seen: Mutex<VecDeque<String>>,
}

impl Receiver {
    pub fn new(secret: Secret) -> (Arc<Self>, mpsc::UnboundedReceiver<Delivery>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Arc::new(Self {
                secret,
                tx,
                seen: Mutex::new(VecDeque::new()),
            }),
            rx,
        )
    }

    /// True when `id` was seen before (and remembers it otherwise).
    fn duplicate(&self, id: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.iter().any(|s| s == id) {
            return true;
        }
        seen.push_back(id.to_string());
        if seen.len() > REMEMBERED {
            seen.pop_front();
        }
        false
    }
}

fn reply(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "status": message }).to_string(),
    )
        .into_response()
}

async fn handle(
    State(r): State<Arc<Receiver>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "POST webhook deliveries here",
        );
    }
    if body.len() > MAX_BODY {
        tracing::warn!(
            "webhook: refused a {}-byte body (limit {MAX_BODY})",
            body.len()
        );
        return reply(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    }
    let sig = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    if let Err(e) = verify(r.secret.expose().as_bytes(), &body, sig) {
        tracing::warn!("webhook: refused a delivery: {e}");
        return reply(StatusCode::UNAUTHORIZED, "signature verification failed");
    }
    let event = match Event::parse(&body) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!("webhook: refused a signed but malformed delivery: {e}");
            return reply(StatusCode::BAD_REQUEST, "malformed payload");
        }
    };
    if let Some(id) = &event.id
        && r.duplicate(id)
    {
        tracing::info!("webhook: duplicate delivery of event {id} ignored");
        return reply(StatusCode::OK, "duplicate");
    }
    tracing::info!(
        "webhook: {}{}{}",
        event.kind,
        event
            .instance_id
            .as_deref()
            .map(|i| format!(" for {i}"))
            .unwrap_or_default(),
        event
            .new_state
            .as_deref()
            .map(|s| format!(": {s}"))
            .unwrap_or_default()
    );
    let _ = r.tx.send(Delivery {
        event,
        body,
        signature: sig.unwrap_or_default().to_string(),
    });
    reply(StatusCode::OK, "accepted")
}

pub fn router(r: Arc<Receiver>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY + 1))
        .with_state(r)
}

/// Serve the receiver on `listener` until `stop` is cancelled.
pub fn serve(
    listener: tokio::net::TcpListener,
    r: Arc<Receiver>,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = axum::serve(listener, router(r))
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    })
}
