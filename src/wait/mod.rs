//! `flightdeck wait`, `upload --wait` and the pipeline's `wait` step: end as
//! soon as App Store Connect has decided, by webhook or polling, whichever
//! answers first, within a finite deadline.
//!
//! The webhook is a wake-up signal; the API is the truth: every decision is
//! confirmed with a GET. Polling continues as a (slower) safety net when a
//! webhook is configured. A temporary webhook registered for the wait is
//! deleted on every way out, including failure and cancellation.

pub mod poll;
pub mod relay;

use crate::api::models::{Build, BuildUploadState, ProcessingState};
use crate::api::resources as r;
use crate::config::duration;
use crate::context::Ctx;
use crate::error::{Detail, Error};
use crate::plan::{Register, WaitPlan, WebhookListen};
use crate::secret::Secret;
use crate::webhooks::receiver::{self, Delivery, Receiver};
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the wait is for: the plan's target, resolved (`WaitTarget::resolve`).
pub use crate::plan::WaitTarget as Target;

#[derive(Debug, Clone, Serialize)]
pub struct Waited {
    pub build_upload_id: Option<String>,
    pub upload_state: Option<String>,
    pub build_id: Option<String>,
    pub processing_state: Option<String>,
    pub processing_seconds: f64,
    /// (state, seconds spent in it)
    pub timeline: Vec<(String, f64)>,
    /// What ended the wait: "webhook" or "poll".
    pub decided_by: String,
}

/// Observed states with the time each was first seen.
struct Timeline {
    start: Instant,
    seen: Vec<(String, Instant)>,
}

impl Timeline {
    fn observe(&mut self, state: &str) {
        if self.seen.last().is_none_or(|(s, _)| s != state) {
            tracing::info!(
                "state: {state} after {}",
                duration::format(self.start.elapsed())
            );
            self.seen.push((state.to_string(), Instant::now()));
        }
    }
    /// Each state with the time until the next one was seen.
    fn spans(&self) -> Vec<(String, f64)> {
        self.seen
            .windows(2)
            .map(|w| (w[0].0.clone(), w[1].1.duration_since(w[0].1).as_secs_f64()))
            .collect()
    }
    fn last(&self) -> String {
        self.seen
            .last()
            .map(|(s, _)| s.clone())
            .unwrap_or_else(|| "unknown".into())
    }
}

enum Check {
    Pending,
    Done(Waited),
}

/// The upload's build when App Store Connect does not link it: the app's build
/// with the same version, build number and platform.
async fn find_build(
    ctx: &Ctx,
    app_id: Option<&str>,
    u: &crate::api::models::BuildUpload,
) -> Result<Option<crate::api::models::Build>, Error> {
    let (Some(app), at) = (app_id, u.attrs()) else {
        return Ok(None);
    };
    let (Some(platform), Some(number)) = (at.platform, at.cf_bundle_version) else {
        return Ok(None);
    };
    let builds = r::list_builds(
        &ctx.api,
        app,
        at.cf_bundle_short_version_string.as_deref(),
        &platform,
    )
    .await?;
    Ok(builds
        .into_iter()
        .find(|b| b.attrs().version.as_deref() == Some(number.as_str())))
}

/// Look once: Done on success, Err on a rejected build, Pending otherwise.
async fn check(
    ctx: &Ctx,
    target: &Target,
    app_id: Option<&str>,
    t: &mut Timeline,
) -> Result<Check, Error> {
    let (upload_id, upload_state, build) = match target {
        Target::BuildUpload(id) => {
            let (u, build) = r::get_build_upload(&ctx.api, id).await?;
            let st = u.attrs().state.unwrap_or_default();
            let state = st
                .state
                .clone()
                .unwrap_or(BuildUploadState::Unknown("UNKNOWN".into()));
            t.observe(&format!("upload {state}"));
            if state == BuildUploadState::Failed {
                let details = st
                    .errors
                    .unwrap_or_default()
                    .iter()
                    .map(|d| d.to_detail())
                    .collect();
                return Err(upload_failed(ctx, id, details));
            }
            if state != BuildUploadState::Complete {
                return Ok(Check::Pending);
            }
            let build = match (build, u.related_id("build")) {
                (Some(b), _) => Some(b),
                (None, Some(bid)) => Some(r::get_build(&ctx.api, &bid).await?),
                (None, None) => find_build(ctx, app_id, &u).await?,
            };
            (Some(id.clone()), Some(state.to_string()), build)
        }
        Target::Build(id) => (None, None, Some(r::get_build(&ctx.api, id).await?)),
        Target::PreviousUpload => return Err(unresolved()),
    };
    let Some(build) = build else {
        t.observe("upload COMPLETE, build not yet visible");
        return Ok(Check::Pending);
    };
    check_build(ctx, &build, upload_id, upload_state, t)
}

/// Apple's reasons for a FAILED upload, each as an error annotation, then one error carrying them.
fn upload_failed(ctx: &Ctx, id: &str, details: Vec<Detail>) -> Error {
    for d in &details {
        ctx.ci.error(format!(
            "App Store Connect: {}: {}",
            d.code,
            crate::ci::neutralize(&d.message)
        ));
    }
    Error::rejected(format!(
        "App Store Connect failed build upload {id} ({} error(s))",
        details.len()
    ))
    .with_details(details)
}

/// The build's processing state: VALID ends the wait, FAILED/INVALID fail it.
fn check_build(
    ctx: &Ctx,
    build: &Build,
    upload_id: Option<String>,
    upload_state: Option<String>,
    t: &mut Timeline,
) -> Result<Check, Error> {
    let ps = build
        .attrs()
        .processing_state
        .unwrap_or(ProcessingState::Unknown("UNKNOWN".into()));
    t.observe(&format!("build {ps}"));
    match ps {
        ProcessingState::Valid => Ok(Check::Done(Waited {
            build_upload_id: upload_id,
            upload_state,
            build_id: Some(build.id.clone()),
            processing_state: Some(ps.to_string()),
            processing_seconds: t.start.elapsed().as_secs_f64(),
            timeline: t.spans(),
            decided_by: String::new(),
        })),
        ProcessingState::Failed | ProcessingState::Invalid => {
            ctx.ci
                .error(format!("App Store Connect: build {} is {ps}", build.id));
            Err(Error::rejected(format!("App Store Connect marked build {} ({}) {ps}", build.id, build.attrs().version.unwrap_or_default()))
                .with_hint("App Store Connect sends the reasons by email to the account holder; check the build's page in App Store Connect"))
        }
        _ => Ok(Check::Pending),
    }
}

/// A running webhook listener and the temporary webhook registered for it.
struct Listener {
    rx: mpsc::UnboundedReceiver<Delivery>,
    stop: tokio_util::sync::CancellationToken,
    registered: Option<String>,
}

async fn start_listener(
    ctx: &Ctx,
    hook: &WebhookListen,
    app_id: Option<&str>,
    default_secret: Option<&Secret>,
) -> Result<Listener, Error> {
    let listener = tokio::net::TcpListener::bind(&hook.listen)
        .await
        .map_err(|e| {
            Error::bind("listen for webhooks on", &hook.listen, &e)
                .with_hint("choose a free port, e.g. 0.0.0.0:8787")
        })?;
    let bound = listener
        .local_addr()
        .map_err(|e| Error::input(e.to_string()))?;
    let secret = match (&hook.secret, default_secret, &hook.register) {
        (Some(s), _, _) => s.clone(),
        (None, Some(s), _) => s.clone(),
        (None, None, Some(_)) => crate::secret::random_hex(32),
        (None, None, None) => {
            return Err(Error::input("the webhook listener needs the webhook's secret").with_hint("set ASC_WEBHOOK_SECRET (or `secret:` in the wait step), or use `register:` to let flightdeck create a temporary webhook"));
        }
    };
    ctx.ci.mask(secret.expose());
    let (recv, rx) = Receiver::new(secret.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    receiver::serve(listener, recv, stop.clone());
    tracing::info!("listening for App Store Connect webhooks on {bound}");
    let mut registered = None;
    if let Some(reg) = &hook.register {
        let url = match reg {
            Register::Auto => format!("http://{bound}/"),
            Register::Url(u) => u.clone(),
        };
        let app = app_id.ok_or_else(|| Error::input("registering a webhook needs the app id"))?;
        let name = format!(
            "flightdeck-wait-{}",
            &crate::secret::random_hex(4).expose()[..8]
        );
        let events = ["BUILD_UPLOAD_STATE_UPDATED".to_string()];
        let new = crate::webhooks::writes::NewWebhook {
            app_id: app,
            name: &name,
            url: &url,
            secret: secret.expose(),
            events: &events,
            enabled: true,
        };
        match crate::webhooks::writes::create(&ctx.api, &new).await {
            Ok(w) => {
                tracing::info!("registered temporary webhook {} for {url}", w.id);
                registered = Some(w.id);
            }
            Err(e) => {
                stop.cancel();
                return Err(Error::from(e).context("registering the temporary webhook"));
            }
        }
    }
    Ok(Listener {
        rx,
        stop,
        registered,
    })
}

impl Listener {
    /// Events from a webhook relay instead of a local listener.
    fn relay(ctx: &Ctx, r: &crate::plan::RelayWait, target: &Target) -> Self {
        let interest = match target {
            Target::BuildUpload(id) => relay::Interest::BuildUpload(id.clone()),
            // An unresolved target is refused by the wait loop before any event matters.
            Target::Build(_) | Target::PreviousUpload => relay::Interest::Everything,
        };
        let stop = tokio_util::sync::CancellationToken::new();
        Self {
            rx: relay::subscribe(r, interest, ctx.ci.clone(), stop.clone()),
            stop,
            registered: None,
        }
    }

    async fn close(self, ctx: &Ctx) {
        self.stop.cancel();
        if let Some(id) = self.registered {
            match r::delete_webhook(&ctx.api, &id).await {
                Ok(()) => tracing::info!("deleted temporary webhook {id}"),
                Err(e) => ctx.ci.warning(format!("could not delete temporary webhook {id}: {e}; delete it with `flightdeck webhooks delete {id}`")),
            }
        }
    }
}

fn unresolved() -> Error {
    Error::input("wait needs an earlier upload step")
}

pub async fn run(
    ctx: &Ctx,
    plan: &WaitPlan,
    target: Target,
    app_id: Option<&str>,
    default_secret: Option<&Secret>,
) -> Result<Waited, Error> {
    let mut listener = match (&plan.webhook, &plan.relay) {
        (Some(h), _) => Some(start_listener(ctx, h, app_id, default_secret).await?),
        (None, Some(r)) => Some(Listener::relay(ctx, r, &target)),
        (None, None) => None,
    };
    let result = ctx
        .or_cancel(wait_loop(ctx, plan, &target, app_id, listener.as_mut()))
        .await;
    if let Some(l) = listener {
        l.close(ctx).await;
    }
    result
}

async fn wait_loop(
    ctx: &Ctx,
    plan: &WaitPlan,
    target: &Target,
    app_id: Option<&str>,
    mut listener: Option<&mut Listener>,
) -> Result<Waited, Error> {
    let mut t = Timeline {
        start: Instant::now(),
        seen: Vec::new(),
    };
    let deadline = tokio::time::Instant::now() + plan.timeout;
    let mut schedule = poll::Schedule::new(plan.poll_interval);
    let mut last_beat = Instant::now();
    let mut decided_by = "poll";
    let (what, id) = match target {
        Target::BuildUpload(id) => ("build upload", id.clone()),
        Target::Build(id) => ("build", id.clone()),
        Target::PreviousUpload => return Err(unresolved()),
    };
    tracing::info!(
        "waiting for {what} {id} (timeout {}, polling every {})",
        duration::format(plan.timeout),
        duration::format(plan.poll_interval)
    );
    loop {
        match check(ctx, target, app_id, &mut t).await {
            Ok(Check::Done(mut w)) => {
                w.decided_by = decided_by.into();
                return Ok(w);
            }
            Ok(Check::Pending) => {}
            Err(e) if e.kind == crate::error::ExitKind::Transient => {
                tracing::warn!("checking state failed, will retry: {e}")
            }
            Err(e) => return Err(e),
        }
        if last_beat.elapsed() > Duration::from_secs(60) {
            tracing::info!(
                "still waiting: {} for {}",
                t.last(),
                duration::format(t.start.elapsed())
            );
            last_beat = Instant::now();
        }
        let sleep = schedule.next(ctx.api.rate_limit());
        let wake = tokio::time::Instant::now() + sleep;
        decided_by = "poll";
        tokio::select! {
            _ = tokio::time::sleep_until(wake.min(deadline)) => {}
            Some(d) = async { match listener.as_mut() { Some(l) => l.rx.recv().await, None => std::future::pending().await } } => {
                if d.event.instance_id.as_deref() == Some(id.as_str()) || matches!(target, Target::Build(_)) {
                    tracing::info!("webhook says {} is {}; confirming", id, d.event.new_state.as_deref().unwrap_or("updated"));
                    decided_by = "webhook";
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::timeout(format!("timed out after {}: {what} {id} is still {}", duration::format(plan.timeout), t.last()))
                .with_hint(format!("raise the limit with --timeout or the wait step's `timeout:`; resume later with `flightdeck wait --{} {id}`", if what == "build" { "build" } else { "build-upload" })));
        }
    }
}
