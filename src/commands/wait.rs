//! `flightdeck wait`, and the wait flags `upload --wait` shares: from flags
//! to the same `WaitPlan` a pipeline's `wait` step uses.

use super::Invocation;
use super::report::{self, Report};
use crate::cli::{WaitArgs, WaitFlags};
use crate::config::duration;
use crate::config::env::Env;
use crate::error::Error;
use crate::plan::{self, Register, WaitPlan, WaitTarget, WebhookListen};
use crate::secret::Secret;
use std::time::Duration;

fn flag_duration(v: &Option<String>, flag: &str, default: Duration) -> Result<Duration, Error> {
    match v {
        Some(t) => duration::parse(t).map_err(|e| Error::flag(flag, e)),
        None => Ok(default),
    }
}

fn webhook_listen(f: &WaitFlags, env: &Env) -> Result<Option<WebhookListen>, Error> {
    let hook = &f.webhook;
    let Some(listen) = &hook.webhook_listen else {
        return Ok(None);
    };
    let secret = match &hook.webhook_secret_env {
        Some(var) => Some(Secret::new(
            env.lookup(&[var.as_str()])?
                .ok_or_else(|| Error::unset(var, "it should hold the webhook's secret"))?
                .value,
        )),
        None => None,
    };
    let register = hook.webhook_register.as_ref().map(|r| match r.as_str() {
        "auto" => Register::Auto,
        url => Register::Url(url.into()),
    });
    Ok(Some(WebhookListen {
        listen: listen.clone(),
        secret,
        register,
    }))
}

/// The wait flags as a plan for `target`.
pub(super) fn wait_plan(target: WaitTarget, f: &WaitFlags, env: &Env) -> Result<WaitPlan, Error> {
    let webhook = webhook_listen(f, env)?;
    let relay = f.webhook.webhook_relay.as_ref().map(|url| plan::RelayWait {
        url: url.clone(),
        token: env.get(plan::RELAY_TOKEN).map(Secret::new),
    });
    let default_poll = if webhook.is_some() || relay.is_some() {
        plan::DEFAULT_POLL_WITH_WEBHOOK
    } else {
        plan::DEFAULT_POLL
    };
    Ok(WaitPlan {
        target,
        timeout: flag_duration(&f.timeout, "--timeout", plan::DEFAULT_TIMEOUT)?,
        poll_interval: flag_duration(&f.poll_interval, "--poll-interval", default_poll)?,
        webhook,
        relay,
    })
}

pub(super) async fn run(
    a: &WaitArgs,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let target = match (&a.build_upload, &a.build) {
        (Some(u), _) => WaitTarget::BuildUpload(u.clone()),
        (None, Some(b)) => WaitTarget::Build(b.clone()),
        (None, None) => return Err(Error::input("pass --build-upload ID or --build ID")),
    };
    let w = wait_plan(target.clone(), &a.waiting, inv.env)?;
    let ctx = inv.ctx()?;
    let app = if w.webhook.as_ref().is_some_and(|h| h.register.is_some()) {
        Some(inv.app_id(&ctx, &a.app).await?)
    } else {
        None
    };
    let secret = inv.settings.webhook_secret.as_ref();
    let waited = crate::wait::run(&ctx, &w, target, app.as_deref(), secret).await?;
    report::wait(&ctx.ci, report, &waited);
    Ok(())
}
