//! `flightdeck webhooks ...`: manage the app's webhooks, and `listen`, a
//! long-running receiver that verifies, dedupes, logs and forwards.

use super::SIGNATURE_HEADER;
use super::receiver::{self, Receiver};
use crate::api::resources::{self as r, WebhookChanges};
use crate::ci::Reporter;
use crate::cli::WebhooksCmd;
use crate::commands::{Report, app_id};
use crate::config::Settings;
use crate::config::env::Env;
use crate::context::Ctx;
use crate::error::Error;
use crate::outcome::Row;
use crate::secret::Secret;
use tokio_util::sync::CancellationToken;

const EVENT_TYPES: &[&str] = &[
    "ALTERNATIVE_DISTRIBUTION_PACKAGE_AVAILABLE_UPDATED",
    "ALTERNATIVE_DISTRIBUTION_PACKAGE_VERSION_CREATED",
    "ALTERNATIVE_DISTRIBUTION_TERRITORY_AVAILABILITY_UPDATED",
    "APP_STORE_VERSION_APP_VERSION_STATE_UPDATED",
    "BACKGROUND_ASSET_VERSION_APP_STORE_RELEASE_STATE_UPDATED",
    "BACKGROUND_ASSET_VERSION_EXTERNAL_BETA_RELEASE_STATE_UPDATED",
    "BACKGROUND_ASSET_VERSION_INTERNAL_BETA_RELEASE_CREATED",
    "BACKGROUND_ASSET_VERSION_STATE_UPDATED",
    "BETA_FEEDBACK_CRASH_SUBMISSION_CREATED",
    "BETA_FEEDBACK_SCREENSHOT_SUBMISSION_CREATED",
    "BUILD_BETA_DETAIL_EXTERNAL_BUILD_STATE_UPDATED",
    "BUILD_UPLOAD_STATE_UPDATED",
];

/// Check event type names before sending them, with a suggestion.
pub fn check_events(events: &[String]) -> Result<Vec<String>, Error> {
    events
        .iter()
        .map(|e| {
            let up = e.trim().to_ascii_uppercase().replace('-', "_");
            if EVENT_TYPES.contains(&up.as_str()) {
                Ok(up)
            } else {
                let near = EVENT_TYPES
                    .iter()
                    .min_by_key(|k| strsim::levenshtein(k, &up))
                    .copied()
                    .unwrap_or_default();
                Err(Error::input(format!("unknown webhook event type {e:?}"))
                    .with_hint(format!("did you mean {near}?")))
            }
        })
        .collect()
}

fn secret_from(env: &Env, var: &str) -> Result<String, Error> {
    Ok(env
        .lookup(&[var])?
        .ok_or_else(|| {
            Error::input(format!("{var} is not set: a webhook needs a secret"))
                .with_hint(format!("export {var}=<a long random string>"))
        })?
        .value)
}

pub async fn run(
    ctx: &Ctx,
    cmd: &WebhooksCmd,
    s: &Settings,
    env: &Env,
    report: &mut Report,
) -> Result<(), Error> {
    match cmd {
        WebhooksCmd::List(a) => {
            let app = app_id(ctx, a, s).await?;
            let hooks = r::list_webhooks(&ctx.api, &app).await?;
            let mut text = String::new();
            for h in &hooks {
                let at = h.attrs();
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    h.id,
                    if at.enabled.unwrap_or(false) {
                        "enabled"
                    } else {
                        "disabled"
                    },
                    at.name.unwrap_or_default(),
                    at.url.unwrap_or_default(),
                    at.event_types.unwrap_or_default().join(",")
                ));
            }
            report.rows.push(Row {
                step: "webhooks list".into(),
                result: format!("{} webhook(s)", hooks.len()),
            });
            report.data = Some(serde_json::json!(
                hooks
                    .iter()
                    .map(|h| serde_json::json!({"id": h.id, "attributes": h.attrs()}))
                    .collect::<Vec<_>>()
            ));
            report.text = Some(text);
            Ok(())
        }
        WebhooksCmd::Create {
            app,
            name,
            url,
            events,
            secret_env,
            disabled,
        } => {
            let events = check_events(events)?;
            let app = app_id(ctx, app, s).await?;
            let secret = secret_from(env, secret_env)?;
            ctx.ci.mask(&secret);
            let h =
                r::create_webhook(&ctx.api, &app, name, url, &secret, &events, !disabled).await?;
            ctx.ci.set_output("webhook-id", &h.id);
            report.rows.push(Row {
                step: "webhooks create".into(),
                result: format!("webhook {} for {url}", h.id),
            });
            report.text = Some(format!("{}\n", h.id));
            Ok(())
        }
        WebhooksCmd::Update {
            id,
            name,
            url,
            events,
            secret_env,
            enabled,
        } => {
            let secret = match secret_env {
                Some(v) => {
                    let s = secret_from(env, v)?;
                    ctx.ci.mask(&s);
                    Some(s)
                }
                None => None,
            };
            let ch = WebhookChanges {
                enabled: *enabled,
                event_types: if events.is_empty() {
                    None
                } else {
                    Some(check_events(events)?)
                },
                name: name.clone(),
                secret,
                url: url.clone(),
            };
            r::update_webhook(&ctx.api, id, &ch).await?;
            report.rows.push(Row {
                step: "webhooks update".into(),
                result: format!("webhook {id} updated"),
            });
            Ok(())
        }
        WebhooksCmd::Delete { id } => {
            r::delete_webhook(&ctx.api, id).await?;
            report.rows.push(Row {
                step: "webhooks delete".into(),
                result: format!("webhook {id} deleted"),
            });
            Ok(())
        }
        WebhooksCmd::Ping { id } => {
            let ping = r::ping_webhook(&ctx.api, id).await?;
            report.rows.push(Row {
                step: "webhooks ping".into(),
                result: format!("ping {ping} sent to webhook {id}"),
            });
            report.text = Some(format!("{ping}\n"));
            Ok(())
        }
        WebhooksCmd::Deliveries { id, state } => {
            let state = state.as_ref().map(|s| s.to_ascii_uppercase());
            let page = r::list_deliveries(&ctx.api, id, state.as_deref()).await?;
            let mut text = String::new();
            for d in &page.data {
                let a = d.attrs();
                let status = a
                    .response
                    .as_ref()
                    .and_then(|r| r.get("httpStatusCode"))
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into());
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    d.id,
                    a.delivery_state.unwrap_or_default(),
                    a.created_date.unwrap_or_default(),
                    status,
                    crate::ci::neutralize(&a.error_message.unwrap_or_default())
                ));
            }
            report.rows.push(Row {
                step: "webhooks deliveries".into(),
                result: format!("{} deliveries", page.data.len()),
            });
            report.data = Some(serde_json::json!({
                "deliveries": page.data.iter().map(|d| serde_json::json!({"id": d.id, "attributes": d.attrs()})).collect::<Vec<_>>(),
                "events": page.included,
            }));
            report.text = Some(text);
            Ok(())
        }
        WebhooksCmd::Redeliver { delivery_id } => {
            let d = r::redeliver(&ctx.api, delivery_id).await?;
            report.rows.push(Row {
                step: "webhooks redeliver".into(),
                result: format!("delivery {} queued", d.id),
            });
            report.text = Some(format!("{}\n", d.id));
            Ok(())
        }
        WebhooksCmd::Listen { .. } => Err(Error::input(
            "`webhooks listen` runs without App Store Connect credentials",
        )),
    }
}

/// `--feedback-to-issues`: file each feedback event's submission as an issue.
pub struct FeedbackIssues {
    pub api: std::sync::Arc<crate::api::Client>,
    pub tracker: crate::feedback::issues::Tracker,
    pub target: crate::feedback::issues::Target,
    pub labels: Vec<String>,
}

impl FeedbackIssues {
    async fn handle(&self, event: &super::Event, reporter: &Reporter) {
        match crate::feedback::issues::file_event(&self.api, &self.tracker, &self.labels, event)
            .await
        {
            Ok(Some(f)) => reporter.line(&format!(
                "filed {} {} in {}: {} issue(s) opened, {} occurrence(s) added, {} already filed",
                event.kind,
                event.instance_id.as_deref().unwrap_or_default(),
                self.target,
                f.opened.len(),
                f.commented,
                f.already
            )),
            Ok(None) => {}
            Err(e) => reporter.warning(format!(
                "filing {} {} in {}: {}",
                event.kind,
                event.instance_id.as_deref().unwrap_or_default(),
                self.target,
                e.message
            )),
        }
    }
}

/// Receive deliveries until cancelled; forward each verified one.
pub async fn listen(
    addr: &str,
    secret: Secret,
    forward: &[String],
    issues: Option<FeedbackIssues>,
    reporter: &Reporter,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::input(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::input(e.to_string()))?;
    let (recv, mut rx) = Receiver::new(secret);
    let server = receiver::serve(listener, recv, cancel.clone());
    reporter.line(&format!(
        "listening for App Store Connect webhooks on {bound}; forwarding to {} URL(s)",
        forward.len()
    ));
    let http = crate::api::client::transfer_client()?;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(d) = rx.recv() => {
                if let Some(i) = &issues {
                    i.handle(&d.event, reporter).await;
                }
                for url in forward {
                    let sent = http.post(url).header("content-type", "application/json").header(SIGNATURE_HEADER, &d.signature).body(d.body.clone()).send().await;
                    match sent {
                        Ok(r) if r.status().is_success() => tracing::info!("forwarded {} to {url}", d.event.kind),
                        Ok(r) => reporter.warning(format!("forwarding {} to {url}: answered {}", d.event.kind, r.status())),
                        Err(e) => reporter.warning(format!("forwarding {} to {url}: {}", d.event.kind, crate::api::client::describe_transport(&e))),
                    }
                }
            }
        }
    }
    let _ = server.await;
    Ok(())
}
