//! `flightdeck run` and `flightdeck validate`: read and plan a pipeline file,
//! then execute the plan, each step in order inside a CI group, feeding the
//! next (the upload's ids to the wait, the wait's build to TestFlight and
//! feedback). A pipeline's `audience:` is reconciled just before the
//! testflight step (or last). Each finished step is reported as soon as it
//! finishes, so a cancelled run keeps the outputs it has.

use super::report::{self, Report};
use super::{Invocation, audience};
use crate::api::resources as r;
use crate::app::AppRef;
use crate::audience::Desired;
use crate::config::Settings;
use crate::config::env::Env;
use crate::context::Ctx;
use crate::error::Error;
use crate::plan::{self, BuildRef, FeedbackPlan, Plan, Step, TestFlightPlan, WaitPlan};
use crate::upload::Uploaded;
use crate::{spec, testflight, upload, wait};
use std::path::{Path, PathBuf};

pub(super) fn validate(
    pipeline: &Option<PathBuf>,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let plan = plan_of(pipeline, inv)?;
    if let Some(a) = &plan.audience {
        audience::load(a, inv.settings)?;
    }
    show(report, &plan, "ok: the pipeline is valid");
    Ok(())
}

pub(super) fn plan_of(pipeline: &Option<PathBuf>, inv: &Invocation<'_>) -> Result<Plan, Error> {
    let path = pipeline_path(pipeline, inv.settings);
    load_plan(&path, inv.env, inv.settings)
}

/// The plan on stdout (text) and as the outcome's data (JSON), then `closing`.
fn show(report: &mut Report, plan: &Plan, closing: &str) {
    report.text = Some(format!("{}{closing}\n", plan::render(plan)));
    report.data = serde_json::to_value(plan).ok();
}

pub(super) async fn run(
    pipeline: &Option<PathBuf>,
    dry_run: bool,
    yes: bool,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let mut plan = plan_of(pipeline, inv)?;
    // Every tester file is read and checked before anything is sent.
    let desired = plan
        .audience
        .as_ref()
        .map(|a| audience::load(a, inv.settings))
        .transpose()?;
    if let Some(a) = &mut plan.audience {
        a.confirmed = yes;
    }
    if dry_run {
        inv.settings.credentials()?;
        return match desired {
            None => {
                show(report, &plan, "dry run: nothing was called");
                Ok(())
            }
            Some(d) => dry_run_audience(&plan, &d, yes, inv, report).await,
        };
    }
    let ctx = inv.ctx()?;
    execute(&ctx, &plan, inv.settings, report).await
}

/// A dry run with an audience: its plan needs App Store Connect's side, so
/// read it, never write.
async fn dry_run_audience(
    plan: &Plan,
    desired: &Desired,
    yes: bool,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let ctx = inv.ctx()?;
    let app = AppRef::resolve(plan.app.as_ref(), &ctx.api).await?;
    let mode = audience::mode(&ctx, false, yes);
    let rec = ctx
        .or_cancel(crate::audience::reconcile(&ctx.api, &app, desired, mode))
        .await?;
    report.text = Some(plan::render(plan));
    report::audience_plan(&ctx.ci, report, &rec);
    report.text = report
        .text
        .take()
        .map(|t| t + "dry run: nothing was changed\n");
    Ok(())
}

/// Read and plan a pipeline file.
pub fn load_plan(path: &Path, env: &Env, settings: &Settings) -> Result<Plan, Error> {
    let shown = settings.display_path(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::read("the pipeline file", &shown, &e).with_hint(
            "pass --pipeline FILE or set FLIGHTDECK_PIPELINE; the default is ./flightdeck.yml",
        )
    })?;
    let pipeline = spec::parse(&text, &shown)?;
    let default_app = super::app_ref(&Default::default(), settings);
    let mut plan = plan::from_pipeline(&pipeline, env, &shown, default_app)?;
    // Artifact paths are relative to the working directory, as users expect in CI.
    for s in &mut plan.steps {
        if let Step::Upload(u) = s {
            u.file = PathBuf::from(&u.file);
        }
    }
    Ok(plan)
}

pub(super) fn pipeline_path(flag: &Option<PathBuf>, s: &Settings) -> PathBuf {
    flag.clone()
        .or_else(|| s.pipeline.clone())
        .unwrap_or_else(|| PathBuf::from("flightdeck.yml"))
}

/// What the steps so far produced.
#[derive(Default)]
struct Carry {
    upload: Option<Uploaded>,
    build_id: Option<String>,
}

/// Every step in order; the failed one gets a `failed: ...` row.
pub async fn execute(
    ctx: &Ctx,
    plan: &Plan,
    settings: &Settings,
    report: &mut Report,
) -> Result<(), Error> {
    let mut carry = Carry::default();
    // Tester files are read and checked before the first write.
    let desired = match &plan.audience {
        Some(a) => Some(audience::load(a, settings)?),
        None => None,
    };
    // The audience is reconciled just before the testflight step (or last).
    let audience_at = plan
        .steps
        .iter()
        .position(|s| matches!(s, Step::Testflight(_)))
        .unwrap_or(plan.steps.len());
    for (i, step) in plan.steps.iter().enumerate() {
        if i == audience_at
            && let Some(d) = &desired
        {
            audience_step(ctx, plan, d, &carry, report).await?;
        }
        let title = format!("step {}/{}: {}", i + 1, plan.steps.len(), step.name());
        ctx.ci.group_start(&title);
        let result = match step {
            // The wait handles cancellation itself, so it can delete its
            // temporary webhook on the way out; dropping it here would not.
            Step::Wait(_) => run_step(ctx, step, plan, settings, &mut carry, report).await,
            Step::Upload(_) => ctx
                .or_cancel(run_step(ctx, step, plan, settings, &mut carry, report))
                .await
                .map_err(upload::with_resume_hint),
            _ => {
                ctx.or_cancel(run_step(ctx, step, plan, settings, &mut carry, report))
                    .await
            }
        };
        ctx.ci.group_end();
        if let Err(e) = result {
            report.row(step.name(), format!("failed: {}", e.message));
            return Err(e);
        }
    }
    if audience_at == plan.steps.len()
        && let Some(d) = &desired
    {
        audience_step(ctx, plan, d, &carry, report).await?;
    }
    Ok(())
}

/// Reconcile the audience inside its own CI group; a failure gets a `failed: ...` row.
async fn audience_step(
    ctx: &Ctx,
    plan: &Plan,
    desired: &Desired,
    carry: &Carry,
    report: &mut Report,
) -> Result<(), Error> {
    ctx.ci.group_start("audience");
    let confirmed = plan.audience.as_ref().is_some_and(|a| a.confirmed);
    let result = async {
        let app = app_id(ctx, plan, carry).await?;
        let mode = audience::mode(ctx, true, confirmed);
        let rec = ctx
            .or_cancel(crate::audience::reconcile(&ctx.api, &app, desired, mode))
            .await?;
        for c in &rec.plan.changes {
            tracing::info!("{c}");
        }
        Ok::<_, Error>(rec)
    }
    .await;
    ctx.ci.group_end();
    match result {
        Ok(rec) => {
            report::audience(&ctx.ci, report, &rec);
            Ok(())
        }
        Err(e) => {
            report.row("audience", format!("failed: {}", e.message));
            Err(e)
        }
    }
}

/// The app id for steps that need one: the upload's, else the plan's.
async fn app_id(ctx: &Ctx, plan: &Plan, carry: &Carry) -> Result<String, Error> {
    match &carry.upload {
        Some(u) => Ok(u.app_id.clone()),
        None => AppRef::resolve(plan.app.as_ref(), &ctx.api).await,
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
    report: &mut Report,
) -> Result<(), Error> {
    match step {
        Step::Upload(u) => {
            let done = upload::run(ctx, u).await?;
            report::upload(&ctx.ci, report, &done);
            carry.upload = Some(done);
        }
        Step::Wait(w) => wait_step(ctx, w, plan, settings, carry, report).await?,
        Step::Testflight(t) => testflight_step(ctx, t, carry, report).await?,
        Step::Feedback(f) => feedback_step(ctx, f, plan, settings, carry, report).await?,
    }
    Ok(())
}

async fn wait_step(
    ctx: &Ctx,
    w: &WaitPlan,
    plan: &Plan,
    settings: &Settings,
    carry: &mut Carry,
    report: &mut Report,
) -> Result<(), Error> {
    let previous = carry.upload.as_ref().map(|u| u.build_upload_id.as_str());
    let target = w.target.resolve(previous)?;
    let app = app_id(ctx, plan, carry).await.ok();
    let secret = settings.webhook_secret.as_ref();
    let done = wait::run(ctx, w, target, app.as_deref(), secret).await?;
    report::wait(&ctx.ci, report, &done);
    carry.build_id = done.build_id;
    Ok(())
}

async fn testflight_step(
    ctx: &Ctx,
    t: &TestFlightPlan,
    carry: &mut Carry,
    report: &mut Report,
) -> Result<(), Error> {
    let build = match &t.build {
        BuildRef::Id(id) => id.clone(),
        BuildRef::Previous => previous_build(ctx, carry).await?,
    };
    let enc = carry
        .upload
        .as_ref()
        .and_then(|u| u.artifact.uses_non_exempt_encryption);
    let d = testflight::run(ctx, t, &build, enc).await?;
    report::testflight(&ctx.ci, report, &d);
    Ok(())
}

async fn feedback_step(
    ctx: &Ctx,
    f: &FeedbackPlan,
    plan: &Plan,
    settings: &Settings,
    carry: &mut Carry,
    report: &mut Report,
) -> Result<(), Error> {
    let app = app_id(ctx, plan, carry).await?;
    let build = match &f.build {
        Some(BuildRef::Id(id)) => Some(id.clone()),
        Some(BuildRef::Previous) => Some(previous_build(ctx, carry).await?),
        None => None,
    };
    super::feedback::pull(ctx, &settings.issues, f, &app, build, report).await?;
    Ok(())
}
