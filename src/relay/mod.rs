//! The webhook relay behind `flightdeck webhooks listen`: a long-running
//! service that verifies App Store Connect deliveries, persists them before
//! answering 2xx, dedupes them by event id, forwards each to every target
//! until it answers 2xx, and streams them to subscribed CI jobs (SSE).
//!
//! Storage is behind [`store::Store`]: the embedded [`spool::Spool`] (one
//! node) or [`redis::RedisStore`] (any number of relays sharing one Redis).

pub mod forward;
pub mod http;
pub mod metrics;
pub mod redis;
pub mod spool;
pub mod sse;
pub mod store;

use crate::secret::Secret;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Where deliveries are persisted.
#[derive(Debug, Clone)]
pub enum StoreConfig {
    /// The embedded journal in this directory.
    Spool(PathBuf),
    /// A Redis shared by every relay (`redis://HOST:PORT/DB`).
    Redis(String),
}

/// Timings; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct Tuning {
    /// A forward not acknowledged after this long is reported as failed.
    pub max_age: Duration,
    /// The longest pause between two attempts of one forward.
    pub retry_max_delay: Duration,
    /// One forward attempt's time limit.
    pub forward_timeout: Duration,
    /// Redis: work held this long by a relay is taken over by another.
    pub claim_idle: Duration,
    /// How long subscribers can still receive an event after it arrived.
    pub replay_window: Duration,
    /// Time limit for reading one delivery's body.
    pub request_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 3600),
            retry_max_delay: Duration::from_secs(300),
            forward_timeout: Duration::from_secs(30),
            claim_idle: Duration::from_secs(90),
            replay_window: Duration::from_secs(600),
            request_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: String,
    pub secret: Secret,
    pub targets: Vec<forward::Target>,
    pub store: StoreConfig,
    /// Bearer token for `GET /events`; `None` turns the endpoint off.
    pub subscriber_token: Option<Secret>,
    pub tuning: Tuning,
    /// This relay's name among several (HOSTNAME): the prefix of its Redis consumer name.
    pub node: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("{0}")]
    Store(#[from] store::StoreError),
    #[error("cannot set up HTTP forwarding: {0}")]
    Http(String),
}

/// Run the relay until `cancel`: then stop accepting, finish in-flight
/// requests and forwards (bounded), and return with pending work persisted.
/// `ready` is told the bound address once deliveries are accepted.
pub async fn serve(
    config: Config,
    cancel: CancellationToken,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), RelayError> {
    let keys: Vec<String> = config.targets.iter().map(|t| t.key()).collect();
    let hub = Arc::new(sse::Hub::new(config.tuning.replay_window));
    let store: Arc<dyn store::Store> = match &config.store {
        StoreConfig::Spool(dir) => Arc::new(spool::Spool::open(dir, &keys).await?),
        StoreConfig::Redis(url) => {
            Arc::new(redis::RedisStore::connect(url, &keys, &config.tuning, &config.node).await?)
        }
    };
    let fanout = store.fan_out(hub.clone(), cancel.clone());
    let metrics = Arc::new(metrics::Metrics::default());
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| RelayError::Bind(config.listen.clone(), e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| RelayError::Bind(config.listen.clone(), e))?;
    let client =
        crate::api::client::transfer_client().map_err(|e| RelayError::Http(e.to_string()))?;
    let forwarders = forward::spawn_all(
        &config.targets,
        store.clone(),
        metrics.clone(),
        client,
        config.tuning.clone(),
        cancel.clone(),
    );
    let state = Arc::new(http::AppState {
        secret: config.secret.clone(),
        store: store.clone(),
        hub,
        metrics,
        subscriber_token: config.subscriber_token.clone(),
        request_timeout: config.tuning.request_timeout,
        cancel: cancel.clone(),
        publish_locally: fanout.is_none(),
    });
    ready(bound);
    let stop = cancel.clone();
    let served = axum::serve(listener, http::router(state))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = served {
        tracing::error!("relay: the HTTP server stopped: {e}");
    }
    forward::finish(forwarders, Duration::from_secs(10)).await;
    if let Some(f) = fanout {
        f.abort();
    }
    store.close().await;
    Ok(())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
