//! What every capability gets: the API client, the CI reporter, cancellation.

use crate::api::Client;
use crate::ci::Reporter;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct Ctx {
    pub api: Arc<Client>,
    pub ci: Arc<Reporter>,
    pub cancel: CancellationToken,
}

impl Ctx {
    pub fn new(api: Arc<Client>, ci: Arc<Reporter>, cancel: CancellationToken) -> Self {
        Self { api, ci, cancel }
    }

    /// Run `fut` unless cancellation comes first.
    pub async fn or_cancel<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T, crate::error::Error>>,
    ) -> Result<T, crate::error::Error> {
        tokio::select! {
            r = fut => r,
            _ = self.cancel.cancelled() => Err(crate::error::Error::cancelled()),
        }
    }
}
