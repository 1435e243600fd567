//! `flightdeck feedback` and the pipeline's `feedback` step: pull the app's
//! TestFlight feedback to files, optionally file it as issues and gate on
//! new crashes. Both build a `plan::FeedbackPlan` and go through `pull`.

use super::Invocation;
use super::report::{self, Report};
use crate::api::resources::FeedbackFilter;
use crate::cli::FeedbackArgs;
use crate::config::IssueEnv;
use crate::context::Ctx;
use crate::error::Error;
use crate::feedback::{self, Pulled, issues::Tracker};
use crate::plan::{self, BuildRef, FeedbackPlan, IssueTarget};

pub(super) async fn run(
    a: &FeedbackArgs,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let f = plan_of(a)?;
    let ctx = inv.ctx()?;
    let app = inv.app_id(&ctx, &a.app).await?;
    let pulled = pull(
        &ctx,
        &inv.settings.issues,
        &f,
        &app,
        a.build.clone(),
        report,
    );
    let result = ctx.or_cancel(pulled).await;
    if let Err(e) = &result {
        report.row("feedback", format!("failed: {}", e.message));
    }
    report.data = serde_json::to_value(&result?).ok();
    Ok(())
}

/// The flags as the same plan a pipeline's `feedback` step makes.
fn plan_of(a: &FeedbackArgs) -> Result<FeedbackPlan, Error> {
    let since = a
        .since
        .as_deref()
        .map(plan::parse_since)
        .transpose()
        .map_err(|e| Error::flag("--since", e))?;
    let platform = a
        .platform
        .as_deref()
        .map(plan::parse_platform)
        .transpose()
        .map_err(|e| Error::flag("--platform", e))?;
    let to_issues = a
        .to_issues
        .as_deref()
        .map(IssueTarget::parse)
        .transpose()
        .map_err(|e| e.context("--to-issues"))?;
    Ok(FeedbackPlan {
        app: None,
        build: a.build.clone().map(BuildRef::Id),
        since,
        out: a.out.clone(),
        platform,
        device_model: a.device_model.clone(),
        os_version: a.os_version.clone(),
        fail_on_crash: a.fail_on_crash,
        to_issues,
        labels: a.labels.clone(),
    })
}

/// Pull, report, file issues, then gate: the command and the pipeline step.
/// The outputs are set as soon as the pull is done; the row once all is.
pub(super) async fn pull(
    ctx: &Ctx,
    issues: &IssueEnv,
    f: &FeedbackPlan,
    app: &str,
    build: Option<String>,
    report: &mut Report,
) -> Result<Pulled, Error> {
    // Check the issue target's token before pulling anything.
    let tracker = f
        .to_issues
        .as_ref()
        .map(|t| Tracker::connect(t, issues))
        .transpose()?;
    let req = feedback::Request {
        app_id: app.to_string(),
        filter: FeedbackFilter {
            build,
            platform: f.platform.as_ref().map(|p| p.as_str().to_string()),
            device_model: f.device_model.clone(),
            os_version: f.os_version.clone(),
        },
        since: f.since.clone(),
        out: f.out.clone(),
    };
    let p = feedback::run(&ctx.api, &req).await?;
    report::feedback_pulled(&ctx.ci, &p);
    let filed = match (&tracker, &f.to_issues) {
        (Some(t), Some(target)) => Some((target, feedback::file_unfiled(t, &f.labels, &p).await?)),
        _ => None,
    };
    if f.fail_on_crash {
        feedback::crash_gate(&ctx.ci, &p)?;
    }
    report::feedback(report, &p, filed.as_ref().map(|(t, f)| (*t, f)));
    Ok(p)
}
