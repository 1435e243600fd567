//! `flightdeck webhooks ...`: manage the app's webhooks, and `listen`, the
//! relay (`crate::relay`) configured from its flags.

use crate::api::resources::{self as r, WebhookChanges};
use crate::ci::Reporter;
use crate::cli::{ListenArgs, WebhooksCmd};
use crate::commands::{Report, app_id};
use crate::config::Settings;
use crate::config::env::Env;
use crate::context::Ctx;
use crate::error::Error;
use crate::outcome::Row;
use crate::relay::forward::Target;
use crate::relay::{Config as RelayConfig, StoreConfig, Tuning};
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
        WebhooksCmd::Listen(_) => Err(Error::input(
            "`webhooks listen` runs without App Store Connect credentials",
        )),
    }
}

/// Run the relay (`crate::relay`) with the flags' configuration until cancelled.
pub async fn listen(
    a: &ListenArgs,
    env: &Env,
    reporter: &Reporter,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let config = relay_config(a, env, reporter)?;
    let targets = config.targets.len();
    let store = match &config.store {
        StoreConfig::Spool(d) => format!("spool {}", d.display()),
        StoreConfig::Redis(_) => "Redis".to_string(),
    };
    crate::relay::serve(config, cancel, |bound| {
        reporter.line(&format!(
            "relay listening on {bound} ({store}); forwarding to {targets} target(s)"
        ))
    })
    .await
    .map_err(|e| match e {
        crate::relay::RelayError::Store(_) => Error::transient(e.to_string()),
        _ => Error::input(e.to_string()),
    })
}

fn relay_config(a: &ListenArgs, env: &Env, reporter: &Reporter) -> Result<RelayConfig, Error> {
    let secret = secret_from(env, &a.secret_env)?;
    reporter.mask(&secret);
    let lookup = |k: &str| env.get(k).map(str::to_string);
    let targets = a
        .forward
        .iter()
        .map(|f| Target::parse(f, &lookup).map_err(Error::input))
        .collect::<Result<Vec<_>, _>>()?;
    for t in &targets {
        if let Target::GitHub { token, .. } | Target::GitLab { token, .. } = t {
            reporter.mask(token.expose());
        }
    }
    let subscriber_token = match &a.subscriber_token_env {
        Some(var) => {
            let t = env.get(var).filter(|t| !t.is_empty()).ok_or_else(|| {
                Error::input(format!("{var} is not set: --subscriber-token-env names the variable holding the subscribers' token"))
            })?;
            reporter.mask(t);
            Some(Secret::new(t))
        }
        None => None,
    };
    let redis = a
        .redis
        .clone()
        .or_else(|| env.get("FLIGHTDECK_REDIS_URL").map(str::to_string))
        .filter(|u| !u.is_empty());
    let d = |v: &str, flag: &str| {
        crate::config::duration::parse(v).map_err(|e| Error::input(format!("{flag}: {e}")))
    };
    Ok(RelayConfig {
        listen: a.listen.clone(),
        secret: Secret::new(secret),
        targets,
        store: match redis {
            Some(u) => StoreConfig::Redis(u),
            None => StoreConfig::Spool(a.spool.clone()),
        },
        subscriber_token,
        tuning: Tuning {
            max_age: d(&a.max_age, "--max-age")?,
            retry_max_delay: d(&a.retry_max_delay, "--retry-max-delay")?,
            claim_idle: d(&a.claim_idle, "--claim-idle")?,
            replay_window: d(&a.replay_window, "--replay-window")?,
            request_timeout: d(&a.request_timeout, "--request-timeout")?,
            ..Tuning::default()
        },
    })
}
