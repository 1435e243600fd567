//! Executing a plan: each step in order, inside a CI group, feeding the next
//! (the upload's ids to the wait, the wait's build to TestFlight and feedback).

use crate::api::resources as r;
use crate::config::Settings;
use crate::context::Ctx;
use crate::error::Error;
use crate::outcome::Row;
use crate::plan::{AppRef, BuildRef, FeedbackPlan, Plan, Step, WaitTarget};
use crate::upload::Uploaded;
use crate::{feedback, testflight, upload, wait};

/// What the steps so far produced.
#[derive(Default)]
pub struct Carry {
    pub upload: Option<Uploaded>,
    pub build_id: Option<String>,
}

pub async fn execute(
    ctx: &Ctx,
    plan: &Plan,
    settings: &Settings,
    rows: &mut Vec<Row>,
) -> Result<Carry, Error> {
    let mut carry = Carry::default();
    for (i, step) in plan.steps.iter().enumerate() {
        let title = format!("step {}/{}: {}", i + 1, plan.steps.len(), step.name());
        ctx.ci.group_start(&title);
        let result = match step {
            // The wait handles cancellation itself, so it can delete its
            // temporary webhook on the way out; dropping it here would not.
            Step::Wait(_) => run_step(ctx, step, plan, settings, &mut carry).await,
            Step::Upload(_) => ctx
                .or_cancel(run_step(ctx, step, plan, settings, &mut carry))
                .await
                .map_err(crate::upload::with_resume_hint),
            _ => {
                ctx.or_cancel(run_step(ctx, step, plan, settings, &mut carry))
                    .await
            }
        };
        ctx.ci.group_end();
        match result {
            Ok(row) => rows.push(Row {
                step: step.name().into(),
                result: row,
            }),
            Err(e) => {
                rows.push(Row {
                    step: step.name().into(),
                    result: format!("failed: {}", e.message),
                });
                return Err(e);
            }
        }
    }
    Ok(carry)
}

/// The app id for steps that need one: the upload's, else the plan's.
async fn app_id(ctx: &Ctx, plan: &Plan, carry: &Carry) -> Result<String, Error> {
    if let Some(u) = &carry.upload {
        return Ok(u.app_id.clone());
    }
    match &plan.app {
        Some(AppRef::Id(id)) => Ok(id.clone()),
        Some(AppRef::BundleId(b)) => r::find_app_by_bundle_id(&ctx.api, b)
            .await?
            .map(|a| a.id)
            .ok_or_else(|| {
                Error::input(format!("App Store Connect has no app with bundle id {b}"))
            }),
        None => Err(Error::input(
            "this step needs the app: set `app:` in the pipeline, ASC_APP_ID or ASC_BUNDLE_ID",
        )),
    }
}

/// The build made by the upload step (asking App Store Connect if no wait step saw it).
async fn previous_build(ctx: &Ctx, carry: &mut Carry) -> Result<String, Error> {
    if let Some(b) = &carry.build_id {
        return Ok(b.clone());
    }
    let u = carry
        .upload
        .as_ref()
        .ok_or_else(|| Error::input("no earlier upload step produced a build"))?;
    let (_, build) = r::get_build_upload(&ctx.api, &u.build_upload_id).await?;
    let b = build.ok_or_else(|| {
        Error::input(format!(
            "build upload {} has no build yet",
            u.build_upload_id
        ))
        .with_hint("add a `wait` step before this one")
    })?;
    carry.build_id = Some(b.id.clone());
    Ok(b.id)
}

async fn run_step(
    ctx: &Ctx,
    step: &Step,
    plan: &Plan,
    settings: &Settings,
    carry: &mut Carry,
) -> Result<String, Error> {
    match step {
        Step::Upload(u) => {
            let done = upload::run(ctx, u).await?;
            done.report(ctx);
            let row = upload_row(&done);
            carry.upload = Some(done);
            Ok(row)
        }
        Step::Wait(w) => {
            let target = match &w.target {
                WaitTarget::PreviousUpload => wait::Target::BuildUpload(
                    carry
                        .upload
                        .as_ref()
                        .map(|u| u.build_upload_id.clone())
                        .ok_or_else(|| Error::input("wait needs an earlier upload step"))?,
                ),
                WaitTarget::BuildUpload(id) => wait::Target::BuildUpload(id.clone()),
                WaitTarget::Build(id) => wait::Target::Build(id.clone()),
            };
            let app = app_id(ctx, plan, carry).await.ok();
            let done = wait::run(
                ctx,
                w,
                target,
                app.as_deref(),
                settings.webhook_secret.as_ref(),
            )
            .await?;
            done.report(ctx);
            carry.build_id = done.build_id.clone();
            Ok(done.summary())
        }
        Step::Testflight(t) => {
            let build = match &t.build {
                BuildRef::Id(id) => id.clone(),
                BuildRef::Previous => previous_build(ctx, carry).await?,
            };
            let enc = carry
                .upload
                .as_ref()
                .and_then(|u| u.artifact.uses_non_exempt_encryption);
            let d = testflight::run(ctx, t, &build, enc).await?;
            ctx.ci.set_output("build-id", &d.build_id);
            Ok(testflight_row(&d))
        }
        Step::Feedback(f) => {
            let app = app_id(ctx, plan, carry).await?;
            let build = match &f.build {
                Some(BuildRef::Id(id)) => Some(id.clone()),
                Some(BuildRef::Previous) => Some(previous_build(ctx, carry).await?),
                None => None,
            };
            feedback_step(ctx, settings, f, &app, build)
                .await
                .map(|(line, _)| line)
        }
    }
}

pub fn upload_row(u: &Uploaded) -> String {
    if u.skipped {
        return format!(
            "{} {} ({}) already uploaded: build upload {}",
            u.version, u.build_number, u.platform, u.build_upload_id
        );
    }
    let mib = u.bytes_uploaded as f64 / (1024.0 * 1024.0);
    format!(
        "{} {} ({}) as build upload {}: {:.1} MiB in {:.1}s ({:.1} MiB/s){}",
        u.version,
        u.build_number,
        u.platform,
        u.build_upload_id,
        mib,
        u.upload_seconds,
        mib / u.upload_seconds.max(0.001),
        if u.resumed { ", resumed" } else { "" }
    )
}

pub fn testflight_row(d: &testflight::Distributed) -> String {
    let mut parts = vec![format!("build {}", d.build_id)];
    if !d.groups_added.is_empty() {
        parts.push(format!("groups: {}", d.groups_added.join(", ")));
    }
    if !d.localizations.is_empty() {
        parts.push(format!("notes: {}", d.localizations.join(", ")));
    }
    if d.submitted_for_review {
        parts.push("submitted for review".into());
    }
    if d.notified {
        parts.push("testers notified".into());
    }
    parts.join("; ")
}

/// Pull, report, file issues, then gate: the `feedback` step and command.
/// Returns the summary line and what was pulled.
pub async fn feedback_step(
    ctx: &Ctx,
    settings: &Settings,
    f: &FeedbackPlan,
    app: &str,
    build: Option<String>,
) -> Result<(String, feedback::Pulled), Error> {
    // Check the issue target's token before pulling anything.
    let tracker = f
        .to_issues
        .as_ref()
        .map(|t| feedback::issues::Tracker::connect(t, &settings.issues))
        .transpose()?;
    let req = feedback::Request {
        app_id: app.to_string(),
        filter: r::FeedbackFilter {
            build,
            platform: f.platform.as_ref().map(|p| p.as_str().to_string()),
            device_model: f.device_model.clone(),
            os_version: f.os_version.clone(),
        },
        since: f.since.clone(),
        out: f.out.clone(),
    };
    let p = feedback::run(&ctx.api, &req).await?;
    report_feedback(ctx, &p);
    let mut line = feedback::report::line(&p);
    if let (Some(t), Some(target)) = (&tracker, &f.to_issues) {
        let todo = feedback::unfiled(&p);
        let filed = if todo.is_empty() {
            Default::default()
        } else {
            feedback::issues::file(t, &f.labels, &todo, Some(&p.dir)).await?
        };
        let ids: Vec<String> = todo.into_iter().map(|e| e.id).collect();
        feedback::mark_filed(&p.dir, &ids)?;
        line.push_str(&format!(
            "; {target}: {} issue(s) opened, {} occurrence(s) added, {} already filed",
            filed.opened.len(),
            filed.commented,
            filed.already
        ));
    }
    if f.fail_on_crash {
        let findings = feedback::report::gate_findings(&p);
        for m in &findings {
            ctx.ci.annotate(
                crate::ci::Annotation::new(crate::ci::Level::Error, m.clone())
                    .titled("TestFlight crash"),
            );
        }
        if !findings.is_empty() {
            return Err(Error::rejected(format!(
                "{} new TestFlight crash submission(s) (fail-on-crash)",
                findings.len()
            ))
            .with_hint(format!(
                "see {}/feedback.md; a re-run with the same directory passes once they are recorded",
                p.dir.display()
            )));
        }
    }
    Ok((line, p))
}

pub fn report_feedback(ctx: &Ctx, p: &feedback::Pulled) {
    ctx.ci.set_output("feedback-count", p.count);
    ctx.ci.set_output("crash-count", p.crashes);
    ctx.ci.set_output("screenshot-count", p.screenshots);
    ctx.ci.set_output("feedback-dir", p.dir.display());
    for w in &p.warnings {
        ctx.ci.warning(w.clone());
    }
    ctx.ci
        .summary_section(&feedback::report::summary_markdown(p));
}
