//! `flightdeck audience plan|apply`, and the audience's part of `run`: load
//! the pipeline's `audience:`, reconcile it, and report the plan and what
//! changed (summary rows, `public-link`, `testers-added`, `testers-removed`).

use super::{Report, build_ctx, load_plan, pipeline_path};
use crate::audience::{self, Audience, Desired, Mode, Reconciled};
use crate::ci::Reporter;
use crate::cli::AudienceCmd;
use crate::config::Settings;
use crate::config::env::Env;
use crate::context::Ctx;
use crate::error::Error;
use crate::outcome::Row;
use crate::plan::AppRef;
use std::io::IsTerminal;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(super) async fn run(
    cmd: &AudienceCmd,
    s: &Settings,
    env: &Env,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
    report: &mut Report,
) -> Result<(), Error> {
    let (args, apply) = match cmd {
        AudienceCmd::Plan(a) => (a, false),
        AudienceCmd::Apply(a) => (a, true),
    };
    let plan = load_plan(&pipeline_path(&args.pipeline, s), env, s)?;
    let a = plan.audience.as_ref().ok_or_else(|| {
        Error::input(format!("{} has no `audience:` section", plan.file))
            .with_hint("add `audience: { groups: [ { name: Beta, testers: testers.csv } ] }`")
    })?;
    let desired = load(a, s)?;
    let ctx = build_ctx(s, reporter, cancel)?;
    let app_id = app_id(&ctx, plan.app.as_ref()).await?;
    let mode = mode(&ctx, apply, args.yes);
    let rec = ctx
        .or_cancel(audience::reconcile(&ctx.api, &app_id, &desired, mode))
        .await?;
    finish(&ctx, &rec, report);
    Ok(())
}

/// Read the audience's files, with paths shown as the CI shows them.
pub fn load(a: &Audience, s: &Settings) -> Result<Desired, Error> {
    audience::load(a, |p| s.display_path(p))
}

pub fn mode(ctx: &Ctx, apply: bool, yes: bool) -> Mode {
    Mode {
        apply,
        interactive: std::io::stdin().is_terminal()
            && ctx.ci.platform() == crate::ci::Platform::Local,
        confirmed: yes,
    }
}

pub async fn app_id(ctx: &Ctx, app: Option<&AppRef>) -> Result<String, Error> {
    match app {
        Some(AppRef::Id(id)) => Ok(id.clone()),
        Some(AppRef::BundleId(b)) => crate::api::resources::find_app_by_bundle_id(&ctx.api, b)
            .await?
            .map(|a| a.id)
            .ok_or_else(|| {
                Error::input(format!("App Store Connect has no app with bundle id {b}"))
            }),
        None => Err(Error::input(
            "the audience needs the app: set `app:` in the pipeline, ASC_APP_ID or ASC_BUNDLE_ID",
        )),
    }
}

/// Text, summary row, outputs and data for a reconcile.
pub fn finish(ctx: &Ctx, rec: &Reconciled, report: &mut Report) {
    let mut text = rec.plan.render();
    if rec.applied.is_none() {
        text.push_str("plan only: nothing was changed\n");
    }
    report.text = Some(report.text.take().unwrap_or_default() + &text);
    report.rows.push(row(ctx, rec));
    report.data = serde_json::to_value(rec).ok();
}

/// Set the audience outputs and describe the result in one summary row.
pub fn row(ctx: &Ctx, rec: &Reconciled) -> Row {
    match rec.public_links.len() {
        0 => {}
        1 => {
            if let Some(u) = rec.public_links.values().next() {
                ctx.ci.set_output("public-link", u);
            }
        }
        _ => ctx.ci.set_output(
            "public-link",
            serde_json::to_string(&rec.public_links).unwrap_or_default(),
        ),
    }
    let result = match &rec.applied {
        None => format!("plan: {}", summary_of_plan(rec)),
        Some(a) => {
            ctx.ci.set_output("testers-added", a.added.len());
            ctx.ci.set_output("testers-removed", a.removed.len());
            let mut parts = Vec::new();
            if !a.groups_created.is_empty() {
                parts.push(format!("groups created: {}", a.groups_created.join(", ")));
            }
            if !a.links_changed.is_empty() {
                parts.push(format!("public links set: {}", a.links_changed.join(", ")));
            }
            parts.push(format!(
                "{} tester(s) added, {} removed",
                a.added.len(),
                a.removed.len()
            ));
            if a.already_there > 0 {
                parts.push(format!("{} already there", a.already_there));
            }
            for (g, u) in &rec.public_links {
                parts.push(format!("{g} public link {u}"));
            }
            parts.join("; ")
        }
    };
    Row {
        step: "audience".into(),
        result,
    }
}

fn summary_of_plan(rec: &Reconciled) -> String {
    if rec.plan.is_empty() {
        return "no changes".into();
    }
    let lines: Vec<String> = rec.plan.changes.iter().map(|c| c.to_string()).collect();
    const SHOWN: usize = 20;
    let mut s = lines
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("<br>");
    if lines.len() > SHOWN {
        s.push_str(&format!("<br>… and {} more", lines.len() - SHOWN));
    }
    for g in &rec.plan.emptied {
        s.push_str(&format!("<br>! {g} would be left with no testers"));
    }
    s
}
