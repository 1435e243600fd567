//! The one-shot commands: upload, wait, testflight, feedback, next-build-number.
//! Each turns its flags into the same plan types a pipeline step uses.

use super::{Report, app_id, app_ref, build_ctx};
use crate::ci::Reporter;
use crate::cli::{FeedbackArgs, NextArgs, TestflightArgs, UploadArgs, WaitArgs, WebhookArgs};
use crate::config::Settings;
use crate::config::duration;
use crate::config::env::Env;
use crate::error::Error;
use crate::outcome::Row;
use crate::plan::{self, Register, WaitPlan, WebhookListen};
use crate::secret::Secret;
use crate::{pipeline, testflight, upload, wait};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

fn flag_duration(
    v: &Option<String>,
    flag: &str,
    default: std::time::Duration,
) -> Result<std::time::Duration, Error> {
    match v {
        Some(t) => duration::parse(t).map_err(|e| Error::input(format!("{flag}: {e}"))),
        None => Ok(default),
    }
}

fn wait_plan(
    target: plan::WaitTarget,
    timeout: &Option<String>,
    poll: &Option<String>,
    hook: &WebhookArgs,
    env: &Env,
) -> Result<WaitPlan, Error> {
    let webhook = match &hook.webhook_listen {
        Some(listen) => {
            let secret = match &hook.webhook_secret_env {
                Some(var) => Some(Secret::new(
                    env.lookup(&[var.as_str()])?
                        .ok_or_else(|| Error::input(format!("{var} is not set")))?
                        .value,
                )),
                None => None,
            };
            let register = hook.webhook_register.as_ref().map(|r| {
                if r == "auto" {
                    Register::Auto
                } else {
                    Register::Url(r.clone())
                }
            });
            Some(WebhookListen {
                listen: listen.clone(),
                secret,
                register,
            })
        }
        None => None,
    };
    let default_poll = if webhook.is_some() {
        plan::DEFAULT_POLL_WITH_WEBHOOK
    } else {
        plan::DEFAULT_POLL
    };
    Ok(WaitPlan {
        target,
        timeout: flag_duration(timeout, "--timeout", plan::DEFAULT_TIMEOUT)?,
        poll_interval: flag_duration(poll, "--poll-interval", default_poll)?,
        webhook,
    })
}

pub(super) async fn upload(
    a: &UploadArgs,
    s: &Settings,
    env: &Env,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
    report: &mut Report,
) -> Result<(), Error> {
    let up = plan::UploadPlan {
        file: a.file.clone(),
        app: app_ref(&a.app, s),
        version: a.version.clone(),
        build_number: a.build_number.clone(),
        platform: a
            .platform
            .as_deref()
            .map(plan::parse_platform)
            .transpose()
            .map_err(|e| Error::input(format!("--platform: {e}")))?,
        skip_if_exists: a.skip_if_exists,
        concurrency: plan::parse_concurrency(&a.concurrency.to_string())
            .map_err(|e| Error::input(format!("--concurrency: {e}")))?,
        checksum: plan::parse_checksum(&a.checksum)
            .map_err(|e| Error::input(format!("--checksum: {e}")))?,
        origin: None,
    };
    let wait = if a.wait {
        Some(wait_plan(
            plan::WaitTarget::PreviousUpload,
            &a.timeout,
            &a.poll_interval,
            &a.webhook,
            env,
        )?)
    } else {
        None
    };
    // Catch artifact problems before any credential or network use.
    let art = crate::artifact::inspect(&up.file)?;
    upload::reconcile(&up, &art)?;
    let ctx = build_ctx(s, reporter, cancel)?;
    ctx.ci.group_start("upload");
    let done = ctx
        .or_cancel(upload::run(&ctx, &up))
        .await
        .map_err(crate::upload::with_resume_hint);
    ctx.ci.group_end();
    let done = done?;
    done.report(&ctx);
    report.rows.push(Row {
        step: "upload".into(),
        result: pipeline::upload_row(&done),
    });
    if let Some(w) = wait {
        ctx.ci.group_start("wait");
        let r = wait::run(
            &ctx,
            &w,
            wait::Target::BuildUpload(done.build_upload_id.clone()),
            Some(&done.app_id),
            s.webhook_secret.as_ref(),
        )
        .await;
        ctx.ci.group_end();
        report_wait(&ctx, report, &r?);
    }
    Ok(())
}

/// Outputs and the summary row of a finished wait.
fn report_wait(ctx: &crate::context::Ctx, report: &mut Report, waited: &wait::Waited) {
    waited.report(ctx);
    report.rows.push(Row {
        step: "wait".into(),
        result: waited.summary(),
    });
}

pub(super) async fn wait(
    a: &WaitArgs,
    s: &Settings,
    env: &Env,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
    report: &mut Report,
) -> Result<(), Error> {
    let (target, t) = match (&a.build_upload, &a.build) {
        (Some(u), _) => (
            plan::WaitTarget::BuildUpload(u.clone()),
            wait::Target::BuildUpload(u.clone()),
        ),
        (None, Some(b)) => (
            plan::WaitTarget::Build(b.clone()),
            wait::Target::Build(b.clone()),
        ),
        (None, None) => return Err(Error::input("pass --build-upload ID or --build ID")),
    };
    let w = wait_plan(target, &a.timeout, &a.poll_interval, &a.webhook, env)?;
    let ctx = build_ctx(s, reporter, cancel)?;
    let app = if w.webhook.as_ref().is_some_and(|h| h.register.is_some()) {
        Some(app_id(&ctx, &a.app, s).await?)
    } else {
        None
    };
    let waited = wait::run(&ctx, &w, t, app.as_deref(), s.webhook_secret.as_ref()).await?;
    report_wait(&ctx, report, &waited);
    Ok(())
}

pub(super) async fn testflight(
    a: &TestflightArgs,
    s: &Settings,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
    report: &mut Report,
) -> Result<(), Error> {
    let mut whats_new = std::collections::BTreeMap::new();
    if let Some(t) = &a.whats_new {
        whats_new.insert(a.locale.clone(), t.clone());
    }
    let tf = plan::TestFlightPlan {
        build: plan::BuildRef::Id(a.build.clone()),
        groups: a.groups.clone(),
        whats_new,
        submit_for_review: a.submit_for_review,
        notify: a.notify,
        uses_non_exempt_encryption: a.uses_non_exempt_encryption,
    };
    let ctx = build_ctx(s, reporter, cancel)?;
    let d = ctx
        .or_cancel(testflight::run(&ctx, &tf, &a.build, None))
        .await?;
    ctx.ci.set_output("build-id", &d.build_id);
    report.rows.push(Row {
        step: "testflight".into(),
        result: pipeline::testflight_row(&d),
    });
    report.data = serde_json::to_value(&d).ok();
    Ok(())
}

pub(super) async fn feedback(
    a: &FeedbackArgs,
    s: &Settings,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
    report: &mut Report,
) -> Result<(), Error> {
    let since = a
        .since
        .as_deref()
        .map(plan::parse_since)
        .transpose()
        .map_err(|e| Error::input(format!("--since: {e}")))?;
    let platform = a
        .platform
        .as_deref()
        .map(plan::parse_platform)
        .transpose()
        .map_err(|e| Error::input(format!("--platform: {e}")))?;
    let to_issues = a
        .to_issues
        .as_deref()
        .map(crate::feedback::issues::Target::parse)
        .transpose()
        .map_err(|e| e.context("--to-issues"))?;
    let f = plan::FeedbackPlan {
        app: None,
        build: a.build.clone().map(plan::BuildRef::Id),
        since,
        out: a.out.clone(),
        platform,
        device_model: a.device_model.clone(),
        os_version: a.os_version.clone(),
        fail_on_crash: a.fail_on_crash,
        to_issues,
        labels: a.labels.clone(),
    };
    let ctx = build_ctx(s, reporter, cancel)?;
    let app = app_id(&ctx, &a.app, s).await?;
    let result = ctx
        .or_cancel(pipeline::feedback_step(&ctx, s, &f, &app, a.build.clone()))
        .await;
    report.rows.push(Row {
        step: "feedback".into(),
        result: match &result {
            Ok((line, _)) => line.clone(),
            Err(e) => format!("failed: {}", e.message),
        },
    });
    let (_, pulled) = result?;
    report.data = serde_json::to_value(&pulled).ok();
    Ok(())
}

pub(super) async fn next_build_number(
    a: &NextArgs,
    s: &Settings,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
    report: &mut Report,
) -> Result<(), Error> {
    let platform =
        plan::parse_platform(&a.platform).map_err(|e| Error::input(format!("--platform: {e}")))?;
    let ctx = build_ctx(s, reporter, cancel)?;
    let app = app_id(&ctx, &a.app, s).await?;
    let next = upload::guard::next(&ctx.api, &app, a.version.as_deref(), &platform).await?;
    ctx.ci.set_output("build-number", &next);
    ctx.ci.set_output("app-id", &app);
    report.text = Some(format!("{next}\n"));
    report.data = Some(serde_json::json!({ "next_build_number": next }));
    Ok(())
}
