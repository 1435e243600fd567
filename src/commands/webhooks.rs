//! `flightdeck webhooks ...`: manage the app's webhooks, and `listen`, a
//! long-running receiver that verifies, dedupes, logs and forwards.

use super::Invocation;
use super::report::{self, Report};
use crate::api::resources::{self as r, WebhookChanges};
use crate::ci::Reporter;
use crate::cli::{WebhookCreateArgs, WebhookUpdateArgs, WebhooksCmd};
use crate::config::env::Env;
use crate::context::Ctx;
use crate::error::Error;
use crate::secret::Secret;
use crate::webhooks::SIGNATURE_HEADER;
use crate::webhooks::receiver::{self, Delivery, Receiver};
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
            Error::unset(var, "a webhook needs a secret")
                .with_hint(format!("export {var}=<a long random string>"))
        })?
        .value)
}

pub(super) async fn run(
    cmd: &WebhooksCmd,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    if let WebhooksCmd::Listen {
        listen: addr,
        secret_env,
        forward,
    } = cmd
    {
        let secret = inv
            .env
            .lookup(&[secret_env.as_str()])?
            .ok_or_else(|| Error::unset(secret_env, "the listener needs the webhook's secret"))?;
        inv.reporter.mask(&secret.value);
        let secret = Secret::new(secret.value);
        return listen(addr, secret, forward, &inv.reporter, inv.cancel.clone()).await;
    }
    let ctx = inv.ctx()?;
    manage(&ctx, cmd, inv, report).await
}

/// The webhook secret from `var`, masked in the CI log before any use.
fn masked_secret(ctx: &Ctx, env: &Env, var: &str) -> Result<String, Error> {
    let secret = secret_from(env, var)?;
    ctx.ci.mask(&secret);
    Ok(secret)
}

/// The subcommands that call App Store Connect.
async fn manage(
    ctx: &Ctx,
    cmd: &WebhooksCmd,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    match cmd {
        WebhooksCmd::List(a) => {
            let app = inv.app_id(ctx, a).await?;
            list(ctx, &app, report).await
        }
        WebhooksCmd::Create(a) => create(ctx, inv, a, report).await,
        WebhooksCmd::Update(a) => update(ctx, inv, a, report).await,
        WebhooksCmd::Delete { id } => {
            crate::webhooks::writes::delete(&ctx.api, id).await?;
            report.row("webhooks delete", format!("webhook {id} deleted"));
            Ok(())
        }
        WebhooksCmd::Ping { id } => {
            let ping = crate::webhooks::writes::ping(&ctx.api, id).await?;
            report.row("webhooks ping", format!("ping {ping} sent to webhook {id}"));
            report.text = Some(format!("{ping}\n"));
            Ok(())
        }
        WebhooksCmd::Deliveries { id, state } => {
            deliveries(ctx, id, state.as_deref(), report).await
        }
        WebhooksCmd::Redeliver { delivery_id } => {
            let d = r::redeliver(&ctx.api, delivery_id).await?;
            report.row("webhooks redeliver", format!("delivery {} queued", d.id));
            report.text = Some(format!("{}\n", d.id));
            Ok(())
        }
        WebhooksCmd::Listen { .. } => Err(Error::input(
            "`webhooks listen` runs without App Store Connect credentials",
        )),
    }
}

/// `webhooks create`: the id as the `webhook-id` output and on stdout.
async fn create(
    ctx: &Ctx,
    inv: &Invocation<'_>,
    a: &WebhookCreateArgs,
    report: &mut Report,
) -> Result<(), Error> {
    let events = check_events(&a.events)?;
    let app = inv.app_id(ctx, &a.app).await?;
    let secret = masked_secret(ctx, inv.env, &a.secret_env)?;
    let enabled = !a.disabled;
    let new = crate::webhooks::writes::NewWebhook {
        app_id: &app,
        name: &a.name,
        url: &a.url,
        secret: &secret,
        events: &events,
        enabled,
    };
    let h = crate::webhooks::writes::create(&ctx.api, &new).await?;
    report::webhook_created(&ctx.ci, report, &h.id, &a.url);
    Ok(())
}

/// `webhooks update`: only the values given change.
async fn update(
    ctx: &Ctx,
    inv: &Invocation<'_>,
    a: &WebhookUpdateArgs,
    report: &mut Report,
) -> Result<(), Error> {
    let secret = a
        .secret_env
        .as_deref()
        .map(|v| masked_secret(ctx, inv.env, v))
        .transpose()?;
    let event_types = if a.events.is_empty() {
        None
    } else {
        Some(check_events(&a.events)?)
    };
    let ch = WebhookChanges {
        enabled: a.enabled,
        event_types,
        name: a.name.clone(),
        secret,
        url: a.url.clone(),
    };
    r::update_webhook(&ctx.api, &a.id, &ch).await?;
    report.row("webhooks update", format!("webhook {} updated", a.id));
    Ok(())
}

/// `webhooks list`: a tab-separated table on stdout, the webhooks as data.
async fn list(ctx: &Ctx, app: &str, report: &mut Report) -> Result<(), Error> {
    let hooks = r::list_webhooks(&ctx.api, app).await?;
    let mut text = String::new();
    for h in &hooks {
        let at = h.attrs();
        let enabled = if at.enabled.unwrap_or(false) {
            "enabled"
        } else {
            "disabled"
        };
        text.push_str(&format!(
            "{}\t{enabled}\t{}\t{}\t{}\n",
            h.id,
            at.name.unwrap_or_default(),
            at.url.unwrap_or_default(),
            at.event_types.unwrap_or_default().join(",")
        ));
    }
    report.row("webhooks list", format!("{} webhook(s)", hooks.len()));
    report.data = Some(serde_json::json!(
        hooks
            .iter()
            .map(|h| serde_json::json!({"id": h.id, "attributes": h.attrs()}))
            .collect::<Vec<_>>()
    ));
    report.text = Some(text);
    Ok(())
}

/// `webhooks deliveries`: a tab-separated table (Apple's error text made
/// inert as CI commands), the deliveries and their events as data.
async fn deliveries(
    ctx: &Ctx,
    id: &str,
    state: Option<&str>,
    report: &mut Report,
) -> Result<(), Error> {
    let state = state.map(|s| s.to_ascii_uppercase());
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
    report.row(
        "webhooks deliveries",
        format!("{} deliveries", page.data.len()),
    );
    report.data = Some(serde_json::json!({
        "deliveries": page.data.iter().map(|d| serde_json::json!({"id": d.id, "attributes": d.attrs()})).collect::<Vec<_>>(),
        "events": page.included,
    }));
    report.text = Some(text);
    Ok(())
}

/// Receive deliveries until cancelled; forward each verified one.
async fn listen(
    addr: &str,
    secret: Secret,
    forward: &[String],
    reporter: &Reporter,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::bind("listen on", addr, &e))?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::io("listen on", addr, e))?;
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
                for url in forward {
                    forward_one(&http, url, &d, reporter).await;
                }
            }
        }
    }
    let _ = server.await;
    Ok(())
}

/// Send one verified delivery (body and Apple's signature) on to `url`; a
/// failure is a warning, the listener keeps going.
async fn forward_one(http: &reqwest::Client, url: &str, d: &Delivery, reporter: &Reporter) {
    let sent = http
        .post(url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, &d.signature)
        .body(d.body.clone())
        .send()
        .await;
    let kind = &d.event.kind;
    match sent {
        Ok(r) if r.status().is_success() => tracing::info!("forwarded {kind} to {url}"),
        Ok(r) => reporter.warning(format!(
            "forwarding {kind} to {url}: answered {}",
            r.status()
        )),
        Err(e) => reporter.warning(format!(
            "forwarding {kind} to {url}: {}",
            crate::api::error::describe_transport(&e)
        )),
    }
}
