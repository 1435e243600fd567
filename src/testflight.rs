//! `flightdeck testflight` and the pipeline's `testflight` step: export
//! compliance, What to Test notes, beta groups, beta review, notification.

use crate::api::models::{BetaGroup, ProcessingState};
use crate::api::{ApiErrorKind, resources as r};
use crate::context::Ctx;
use crate::error::Error;
use crate::plan::TestFlightPlan;
use serde::Serialize;

#[derive(Debug, Clone, Serialize, Default)]
pub struct Distributed {
    pub build_id: String,
    pub groups_added: Vec<String>,
    pub localizations: Vec<String>,
    pub submitted_for_review: bool,
    pub notified: bool,
    /// Older builds expired by `expire-previous`.
    pub expired: Option<crate::audience::expire::Expired>,
}

/// Pick groups by name; unknown names are an input error with suggestions.
pub fn pick_groups<'a>(
    all: &'a [BetaGroup],
    names: &[String],
) -> Result<Vec<&'a BetaGroup>, Error> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let known: Vec<String> = all.iter().filter_map(|g| g.attrs().name).collect();
    for n in names {
        match all
            .iter()
            .find(|g| g.attrs().name.as_deref() == Some(n.as_str()))
        {
            Some(g) => out.push(g),
            None => {
                let near = known
                    .iter()
                    .min_by_key(|k| strsim::levenshtein(&k.to_lowercase(), &n.to_lowercase()));
                let mut e =
                    Error::input(format!("there is no beta group named {n:?} for this app"));
                e = e.with_hint(match near {
                    Some(k) => format!("did you mean {k:?}? groups: {}", known.join(", ")),
                    None => {
                        "the app has no beta groups; create one in App Store Connect > TestFlight"
                            .into()
                    }
                });
                problems.push(e);
            }
        }
    }
    Error::many(problems).map_or(Ok(out), Err)
}

pub async fn run(
    ctx: &Ctx,
    plan: &TestFlightPlan,
    build_id: &str,
    encryption_from_artifact: Option<bool>,
) -> Result<Distributed, Error> {
    let mut out = Distributed {
        build_id: build_id.into(),
        ..Default::default()
    };
    let build = r::get_build(&ctx.api, build_id)
        .await
        .map_err(|e| Error::from(e).context(format!("reading build {build_id}")))?;
    let attrs = build.attrs();
    match attrs.processing_state {
        Some(ProcessingState::Valid) => {}
        Some(ProcessingState::Processing) => {
            return Err(Error::input(format!("build {build_id} is still PROCESSING")).with_hint("wait first: `flightdeck wait --build ID`, or add a `wait` step before `testflight`"));
        }
        Some(s) => {
            return Err(Error::rejected(format!(
                "build {build_id} is {s} and cannot be distributed"
            )));
        }
        None => {}
    }
    if attrs.uses_non_exempt_encryption.is_none() {
        match plan.uses_non_exempt_encryption.or(encryption_from_artifact) {
            Some(v) => {
                r::set_export_compliance(&ctx.api, build_id, v).await?;
                tracing::info!("export compliance: usesNonExemptEncryption = {v}");
            }
            None => ctx.ci.warning(format!(
                "build {build_id} has no export compliance answer, so external testers cannot get it; set ITSAppUsesNonExemptEncryption in Info.plist or `uses-non-exempt-encryption` in the testflight step"
            )),
        }
    }
    if !plan.whats_new.is_empty() {
        let existing = r::list_localizations(&ctx.api, build_id).await?;
        for (locale, text) in &plan.whats_new {
            match existing
                .iter()
                .find(|l| l.attrs().locale.as_deref() == Some(locale.as_str()))
            {
                Some(l) => {
                    r::update_localization(&ctx.api, &l.id, text).await?;
                }
                None => match r::create_localization(&ctx.api, build_id, locale, text).await {
                    Ok(_) => {}
                    Err(e) if e.kind == ApiErrorKind::Conflict => {
                        // Created by a lost earlier attempt: update it instead.
                        let again = r::list_localizations(&ctx.api, build_id).await?;
                        let l = again
                            .iter()
                            .find(|l| l.attrs().locale.as_deref() == Some(locale.as_str()))
                            .ok_or(e)?;
                        r::update_localization(&ctx.api, &l.id, text).await?;
                    }
                    Err(e) => return Err(e.into()),
                },
            }
            out.localizations.push(locale.clone());
        }
        tracing::info!(
            "What to Test notes set for {}",
            out.localizations.join(", ")
        );
    }
    if !plan.groups.is_empty() {
        let app_id = r::get_build_app_id(&ctx.api, build_id)
            .await?
            .ok_or_else(|| Error::transient(format!("build {build_id} names no app")))?;
        let all = r::list_beta_groups(&ctx.api, &app_id).await?;
        let chosen = pick_groups(&all, &plan.groups)?;
        let mut ids = Vec::new();
        for g in chosen {
            let a = g.attrs();
            let name = a.name.clone().unwrap_or_default();
            if a.is_internal_group == Some(true) && a.has_access_to_all_builds == Some(true) {
                ctx.ci
                    .notice(format!("beta group {name:?} already gets every build"));
                continue;
            }
            ids.push(g.id.clone());
            out.groups_added.push(name);
        }
        if !ids.is_empty() {
            r::add_build_to_groups(&ctx.api, build_id, &ids)
                .await
                .map_err(|e| Error::from(e).context("adding the build to beta groups"))?;
            tracing::info!("added to beta groups: {}", out.groups_added.join(", "));
        }
    }
    if plan.submit_for_review {
        match r::submit_for_beta_review(&ctx.api, build_id).await {
            Ok(s) => {
                out.submitted_for_review = true;
                tracing::info!(
                    "submitted for Beta App Review ({})",
                    s.attrs()
                        .beta_review_state
                        .map(|s| s.to_string())
                        .unwrap_or_default()
                );
            }
            Err(e)
                if e.kind == ApiErrorKind::Conflict
                    && e.errors.iter().any(|x| x.detail.contains("already")) =>
            {
                ctx.ci
                    .notice("the build was already submitted for Beta App Review");
                out.submitted_for_review = true;
            }
            Err(e) => return Err(Error::from(e).context("submitting for Beta App Review")),
        }
    }
    if plan.notify {
        r::notify_testers(&ctx.api, build_id)
            .await
            .map_err(|e| Error::from(e).context("notifying testers"))?;
        out.notified = true;
    }
    if plan.expire_previous {
        out.expired = Some(expire_previous(ctx, build_id).await?);
    }
    Ok(out)
}

/// Expire the app's older builds once this one is distributed.
async fn expire_previous(
    ctx: &Ctx,
    build_id: &str,
) -> Result<crate::audience::expire::Expired, Error> {
    let app_id = r::get_build_app_id(&ctx.api, build_id)
        .await?
        .ok_or_else(|| Error::transient(format!("build {build_id} names no app")))?;
    let done = crate::audience::expire::expire_previous(&ctx.api, &app_id, build_id, None)
        .await
        .map_err(|e| e.context("expiring previous builds"))?;
    for id in &done.kept_for_review {
        ctx.ci.notice(format!(
            "build {id} was not expired: a beta review of it is pending"
        ));
    }
    Ok(done)
}
