//! What the relay needs from its storage, whichever it is: persist a
//! verified delivery (deduped per event id and forward target) before it is
//! acknowledged, hand out forwards that are due, and record their outcome.

use super::sse::Hub;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("spool {path}: {message}")]
    Spool { path: String, message: String },
    #[error("redis: {0}")]
    Redis(String),
}

/// A verified delivery on its way into the store.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// `data.id`, or the body's SHA-256 when Apple sent none.
    pub id: String,
    pub body: Bytes,
    pub signature: String,
    pub received_ms: u64,
}

/// What the store made of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The event was not seen before (subscribers should get it).
    pub fresh: bool,
    /// Forward targets that newly queued it (0 for a duplicate).
    pub queued: usize,
}

impl Accepted {
    pub fn duplicate(&self) -> bool {
        !self.fresh && self.queued == 0
    }
}

/// One forward of one event to one target.
#[derive(Debug, Clone)]
pub struct Job {
    pub target: usize,
    pub id: String,
    pub body: Bytes,
    pub signature: String,
    pub received_ms: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// The store's handle (a Redis stream entry id; empty for the spool).
    pub handle: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    Done,
    /// Try again at this time (ms since the epoch).
    Retry {
        at_ms: u64,
    },
    /// Given up (too old): not forwarded again unless redelivered.
    Failed,
}

pub trait Store: Send + Sync {
    /// Persist `d`; resolves only once it is durable.
    fn accept<'a>(&'a self, d: &'a Incoming) -> BoxFuture<'a, Result<Accepted, StoreError>>;
    /// Forwards due for `target`, at most `max`; waits up to about a second
    /// for one when none is due.
    fn next_jobs(&self, target: usize, max: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>>;
    fn settle(&self, job: Job, outcome: Settle) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Forwards not yet acknowledged, over all targets.
    fn pending(&self) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// True when a delivery can be persisted now.
    fn healthy(&self) -> BoxFuture<'_, bool>;
    /// A shared store feeds `hub` with events any relay received; a local
    /// one returns `None` and the relay publishes its own.
    fn fan_out(&self, hub: Arc<Hub>, cancel: CancellationToken) -> Option<JoinHandle<()>>;
    /// Flush and release.
    fn close(&self) -> BoxFuture<'_, ()>;
}
