//! `flightdeck run` and `flightdeck validate`: read and plan a pipeline file,
//! then execute the plan, each step in order inside a CI group, feeding the
//! next (the upload's ids to the wait, the wait's build to TestFlight and
//! feedback). Each finished step is reported as soon as it finishes, so a
//! cancelled run keeps the outputs it has. Before the first step, one
//! preflight checks the whole pipeline (`preflight::pipeline`); `--dry-run`
//! stops after it.

use super::Invocation;
use super::report::{self, Report};
use crate::api::resources as r;
use crate::app::AppRef;
use crate::config::Settings;
use crate::config::env::Env;
use crate::context::Ctx;
use crate::error::Error;
use crate::plan::{self, BuildRef, FeedbackPlan, Plan, Step, TestFlightPlan, WaitPlan};
use crate::upload::Uploaded;
use crate::{feedback, preflight, spec, testflight, upload, wait};
use std::path::{Path, PathBuf};

pub(super) fn validate(
    pipeline: &Option<PathBuf>,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let plan = plan_of(pipeline, inv)?;
    show(report, &plan, "ok: the pipeline is valid");
    Ok(())
}

fn plan_of(pipeline: &Option<PathBuf>, inv: &Invocation<'_>) -> Result<Plan, Error> {
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
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let plan = plan_of(pipeline, inv)?;
    let ctx = inv.ctx()?;
    let checked = ctx.or_cancel(preflight::pipeline(&ctx, &plan)).await?;
    if dry_run {
        show(report, &plan, "");
        let text = report.text.take().unwrap_or_default();
        report.text = Some(format!(
            "{text}{}dry run: only reads were made\n",
            preflight::render(&checked)
        ));
        report.data =
            serde_json::to_value(serde_json::json!({"plan": plan, "preflight": checked})).ok();
        return Ok(());
    }
    execute(&ctx, &plan, inv.settings, report).await
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

fn pipeline_path(flag: &Option<PathBuf>, s: &Settings) -> PathBuf {
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
    for (i, step) in plan.steps.iter().enumerate() {
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
    Ok(())
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
    if let Some(b) = &u.build_id {
        return Ok(b.clone());
    }
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
        Step::Feedback(f) => feedback_step(ctx, f, plan, carry, report).await?,
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
    let target = match (
        &w.target,
        carry.upload.as_ref().and_then(|u| u.build_id.clone()),
    ) {
        // A build that exists only as a build (skip-if-exists): wait for it directly.
        (plan::WaitTarget::PreviousUpload, Some(b)) if previous == Some("") => {
            plan::WaitTarget::Build(b)
        }
        (t, _) => t.resolve(previous)?,
    };
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
    let known = testflight::Known {
        info_plist_encryption: carry
            .upload
            .as_ref()
            .and_then(|u| u.artifact.uses_non_exempt_encryption),
        platform: carry.upload.as_ref().map(|u| u.platform.clone()),
    };
    let d = testflight::run(ctx, t, &build, &known).await?;
    report::testflight(&ctx.ci, report, &d);
    Ok(())
}

async fn feedback_step(
    ctx: &Ctx,
    f: &FeedbackPlan,
    plan: &Plan,
    carry: &mut Carry,
    report: &mut Report,
) -> Result<(), Error> {
    let app = app_id(ctx, plan, carry).await?;
    let build = match &f.build {
        Some(BuildRef::Id(id)) => Some(id.clone()),
        Some(BuildRef::Previous) => previous_build(ctx, carry).await.ok(),
        None => None,
    };
    let p = feedback::run(ctx, &app, build.as_deref(), &f.since, &f.out).await?;
    report::feedback(&ctx.ci, report, &p);
    Ok(())
}
