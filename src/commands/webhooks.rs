//! `flightdeck webhooks ...`: manage the app's webhooks, and `listen`, the
//! relay (`crate::relay`) configured from its flags.

use super::Invocation;
use super::report::{self, Report};
use crate::api::resources::{self as r, WebhookChanges};
use crate::ci::Reporter;
use crate::cli::{ListenArgs, WebhookCreateArgs, WebhookUpdateArgs, WebhooksCmd};
use crate::config::env::Env;
use crate::context::Ctx;
use crate::error::Error;
use crate::feedback::issues::{self, Tracker};
use crate::relay::forward::{NamedSink, Sink, Target};
use crate::relay::{Config as RelayConfig, RelayError, StoreConfig, Tuning};
use crate::secret::Secret;
use crate::webhooks::Event;

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
    if let WebhooksCmd::Listen(a) = cmd {
        return listen(a, inv).await;
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
        WebhooksCmd::Listen(_) => Err(Error::input(
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

/// Run the relay (`crate::relay`) with the flags' configuration until cancelled.
async fn listen(a: &ListenArgs, inv: &Invocation<'_>) -> Result<(), Error> {
    let (env, reporter, cancel) = (inv.env, &inv.reporter, inv.cancel.clone());
    let mut config = relay_config(a, env, reporter)?;
    if let Some(t) = &a.feedback_to_issues {
        // Filing is one more forward target: persisted, deduped and retried
        // like the others, so a tracker that is down loses no feedback.
        let issues = FeedbackIssues::connect(t, &a.feedback_labels, inv)?;
        config.targets.push(Target::Sink(NamedSink {
            key: format!("issues:{}", issues.target),
            sink: std::sync::Arc::new(issues),
        }));
    }
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
        RelayError::Bind(addr, cause) => Error::bind("listen on", &addr, &cause),
        RelayError::Store(_) | RelayError::Http(_) => Error::transient(e.to_string()),
    })
}

/// `--feedback-to-issues`: file each feedback event's submission as an issue.
struct FeedbackIssues {
    api: std::sync::Arc<crate::api::Client>,
    tracker: Tracker,
    target: issues::Target,
    labels: Vec<String>,
}

impl FeedbackIssues {
    /// Check the target and its token before listening.
    fn connect(target: &str, labels: &[String], inv: &Invocation<'_>) -> Result<Self, Error> {
        let target =
            issues::Target::parse(target).map_err(|e| e.context("--feedback-to-issues"))?;
        let tracker = Tracker::connect(&target, &inv.settings.issues)?;
        Ok(FeedbackIssues {
            api: inv.ctx()?.api.clone(),
            tracker,
            target,
            labels: labels.to_vec(),
        })
    }

    /// File one event's submission; anything but a feedback event is taken as is.
    async fn handle(&self, body: &[u8]) -> Result<(), String> {
        let event = Event::parse(body).map_err(|e| e.to_string())?;
        let which = format!(
            "{} {} in {}",
            event.kind,
            event.instance_id.as_deref().unwrap_or_default(),
            self.target
        );
        match issues::file_event(&self.api, &self.tracker, &self.labels, &event).await {
            Ok(Some(f)) => {
                tracing::info!(
                    "filed {which}: {} issue(s) opened, {} occurrence(s) added, {} already filed",
                    f.opened.len(),
                    f.commented,
                    f.already
                );
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(format!("filing {which}: {}", e.message)),
        }
    }
}

impl Sink for FeedbackIssues {
    fn send<'a>(
        &'a self,
        body: &'a [u8],
    ) -> futures_util::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(self.handle(body))
    }
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
                Error::unset(
                    var,
                    "--subscriber-token-env names the variable holding the subscribers' token",
                )
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
    let d =
        |v: &str, flag: &str| crate::config::duration::parse(v).map_err(|e| Error::flag(flag, e));
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
        node: env.get("HOSTNAME").unwrap_or("relay").to_string(),
    })
}
