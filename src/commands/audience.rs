//! `flightdeck audience plan|apply`, and the audience's part of `run`: load
//! the pipeline's `audience:`, reconcile it, and hand the result to
//! `report::audience_plan` (summary row, `public-link`, `testers-added`,
//! `testers-removed`).

use super::Invocation;
use super::report::{self, Report};
use crate::app::AppRef;
use crate::audience::{self, Audience, Desired, Mode};
use crate::cli::AudienceCmd;
use crate::config::Settings;
use crate::context::Ctx;
use crate::error::Error;
use std::io::IsTerminal;

pub(super) async fn run(
    cmd: &AudienceCmd,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let (args, apply) = match cmd {
        AudienceCmd::Plan(a) => (a, false),
        AudienceCmd::Apply(a) => (a, true),
    };
    let plan = super::run::plan_of(&args.pipeline, inv)?;
    let a = plan.audience.as_ref().ok_or_else(|| {
        Error::input(format!("{} has no `audience:` section", plan.file))
            .with_hint("add `audience: { groups: [ { name: Beta, testers: testers.csv } ] }`")
    })?;
    let desired = load(a, inv.settings)?;
    let ctx = inv.ctx()?;
    let app_id = AppRef::resolve(plan.app.as_ref(), &ctx.api).await?;
    let mode = mode(&ctx, apply, args.yes);
    let rec = ctx
        .or_cancel(audience::reconcile(&ctx.api, &app_id, &desired, mode))
        .await?;
    report::audience_plan(&ctx.ci, report, &rec);
    Ok(())
}

/// Read the audience's files, with paths shown as the CI shows them.
pub(super) fn load(a: &Audience, s: &Settings) -> Result<Desired, Error> {
    audience::load(a, |p| s.display_path(p))
}

/// Interactive only on a local terminal: CI never waits for a confirmation.
pub(super) fn mode(ctx: &Ctx, apply: bool, yes: bool) -> Mode {
    Mode {
        apply,
        interactive: std::io::stdin().is_terminal()
            && ctx.ci.platform() == crate::ci::Platform::Local,
        confirmed: yes,
    }
}
