//! Webhook writes that survive an ambiguous failure. `POST /v1/webhooks` is
//! not idempotent: when the connection broke after the request was sent (a
//! drop, a timeout), the webhook may exist already. Before sending it again,
//! read back the app's webhooks and adopt the one the first attempt made.
//! Pings are read back the same way (a new delivery); deletes treat a 404
//! after a lost answer as done. (PATCH updates are idempotent: retried as
//! they are by the client.)

use crate::api::Client;
use crate::api::error::ApiError;
use crate::api::models::Webhook;
use crate::api::resources as r;

/// Attempts at most, read-backs included.
const ATTEMPTS: usize = 3;

/// What to create.
#[derive(Debug, Clone)]
pub struct NewWebhook<'a> {
    pub app_id: &'a str,
    pub name: &'a str,
    pub url: &'a str,
    pub secret: &'a str,
    pub events: &'a [String],
    pub enabled: bool,
}

/// Create a webhook exactly once.
pub async fn create(c: &Client, w: &NewWebhook<'_>) -> Result<Webhook, ApiError> {
    let before: Vec<String> = r::list_webhooks(c, w.app_id)
        .await?
        .into_iter()
        .map(|h| h.id)
        .collect();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = r::create_webhook(c, w.app_id, w.name, w.url, w.secret, w.events, w.enabled);
        match sent.await {
            Ok(h) => return Ok(h),
            Err(e) if e.ambiguous && e.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!("{e}; checking whether the webhook was created before retrying");
                if let Some(h) = landed(c, w, &before).await? {
                    tracing::info!("the first attempt created webhook {}", h.id);
                    return Ok(h);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// The webhook a previous attempt created, if it did.
async fn landed(
    c: &Client,
    w: &NewWebhook<'_>,
    before: &[String],
) -> Result<Option<Webhook>, ApiError> {
    Ok(r::list_webhooks(c, w.app_id).await?.into_iter().find(|h| {
        let a = h.attributes.as_ref();
        !before.contains(&h.id)
            && a.and_then(|a| a.name.as_deref()) == Some(w.name)
            && a.and_then(|a| a.url.as_deref()) == Some(w.url)
    }))
}

/// Delete a webhook; a 404 after an attempt whose answer was lost means the
/// lost attempt deleted it. A webhook that never existed is still an error:
/// it is read first.
pub async fn delete(c: &Client, id: &str) -> Result<(), ApiError> {
    c.get::<serde_json::Value>(&format!("/v1/webhooks/{id}"))
        .await?;
    match r::delete_webhook(c, id).await {
        Err(e) if e.kind == crate::api::error::ApiErrorKind::NotFound => {
            tracing::info!("webhook {id} is gone: an earlier attempt deleted it");
            Ok(())
        }
        other => other,
    }
}

/// Ping a webhook once: after an ambiguous failure, a delivery that appeared
/// since the first attempt means it landed (its id is returned instead of
/// the ping's); otherwise the ping is sent again.
pub async fn ping(c: &Client, webhook_id: &str) -> Result<String, ApiError> {
    let before = delivery_ids(c, webhook_id).await?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match r::ping_webhook(c, webhook_id).await {
            Ok(id) => return Ok(id),
            Err(e) if e.ambiguous && e.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!("{e}; checking whether the ping was sent before retrying");
                let after = delivery_ids(c, webhook_id).await?;
                if let Some(new) = after.into_iter().find(|d| !before.contains(d)) {
                    tracing::info!("the first attempt sent the ping (delivery {new})");
                    return Ok(new);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

async fn delivery_ids(c: &Client, webhook_id: &str) -> Result<Vec<String>, ApiError> {
    Ok(r::list_deliveries(c, webhook_id, None)
        .await?
        .data
        .into_iter()
        .map(|d| d.id)
        .collect())
}
