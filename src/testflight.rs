//! `flightdeck testflight` and the pipeline's `testflight` step: export
//! compliance, What to Test notes, beta groups, beta review, notification.

use crate::api::models::{BetaBuildLocalization, BetaGroup, ProcessingState};
use crate::api::{ApiErrorKind, resources as r};
use crate::context::Ctx;
use crate::error::Error;
use crate::plan::TestFlightPlan;
use serde::Serialize;
use std::collections::BTreeMap;

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

/// The steps in order: check the build is processed, answer export
/// compliance, set What to Test notes, add to groups, submit, notify.
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
    check_processed(build_id, attrs.processing_state.as_ref())?;
    if attrs.uses_non_exempt_encryption.is_none() {
        let answer = plan.uses_non_exempt_encryption.or(encryption_from_artifact);
        export_compliance(ctx, build_id, answer).await?;
    }
    if !plan.whats_new.is_empty() {
        out.localizations = whats_new(ctx, build_id, &plan.whats_new).await?;
    }
    if !plan.groups.is_empty() {
        out.groups_added = add_to_groups(ctx, build_id, &plan.groups).await?;
    }
    if plan.submit_for_review {
        out.submitted_for_review = submit_for_review(ctx, build_id).await?;
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

/// Only a VALID build can be distributed; an unknown state is given the benefit of the doubt.
fn check_processed(build_id: &str, state: Option<&ProcessingState>) -> Result<(), Error> {
    match state {
        Some(ProcessingState::Valid) | None => Ok(()),
        Some(ProcessingState::Processing) => Err(Error::input(format!(
            "build {build_id} is still PROCESSING"
        ))
        .with_hint(
            "wait first: `flightdeck wait --build ID`, or add a `wait` step before `testflight`",
        )),
        Some(s) => Err(Error::rejected(format!(
            "build {build_id} is {s} and cannot be distributed"
        ))),
    }
}

/// Answer export compliance when the build has no answer and we know one; warn otherwise.
async fn export_compliance(ctx: &Ctx, build_id: &str, answer: Option<bool>) -> Result<(), Error> {
    match answer {
        Some(v) => {
            r::set_export_compliance(&ctx.api, build_id, v).await?;
            tracing::info!("export compliance: usesNonExemptEncryption = {v}");
        }
        None => ctx.ci.warning(format!(
            "build {build_id} has no export compliance answer, so external testers cannot get it; set ITSAppUsesNonExemptEncryption in Info.plist or `uses-non-exempt-encryption` in the testflight step"
        )),
    }
    Ok(())
}

/// Set each locale's What to Test text; returns the locales set.
async fn whats_new(
    ctx: &Ctx,
    build_id: &str,
    notes: &BTreeMap<String, String>,
) -> Result<Vec<String>, Error> {
    let existing = r::list_localizations(&ctx.api, build_id).await?;
    let mut set = Vec::new();
    for (locale, text) in notes {
        match find_locale(&existing, locale) {
            Some(l) => {
                r::update_localization(&ctx.api, &l.id, text).await?;
            }
            None => create_localization(ctx, build_id, locale, text).await?,
        }
        set.push(locale.clone());
    }
    tracing::info!("What to Test notes set for {}", set.join(", "));
    Ok(set)
}

fn find_locale<'a>(
    all: &'a [BetaBuildLocalization],
    locale: &str,
) -> Option<&'a BetaBuildLocalization> {
    all.iter()
        .find(|l| l.attrs().locale.as_deref() == Some(locale))
}

/// Create a locale's notes; a 409 means a lost earlier attempt created it, so update that one.
async fn create_localization(
    ctx: &Ctx,
    build_id: &str,
    locale: &str,
    text: &str,
) -> Result<(), Error> {
    match r::create_localization(&ctx.api, build_id, locale, text).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind == ApiErrorKind::Conflict => {
            let again = r::list_localizations(&ctx.api, build_id).await?;
            let l = find_locale(&again, locale).ok_or(e)?;
            r::update_localization(&ctx.api, &l.id, text).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Add the build to the named groups; returns the names it was added to
/// (internal groups that get every build are skipped with a notice).
async fn add_to_groups(ctx: &Ctx, build_id: &str, names: &[String]) -> Result<Vec<String>, Error> {
    let app_id = r::get_build_app_id(&ctx.api, build_id)
        .await?
        .ok_or_else(|| Error::transient(format!("build {build_id} names no app")))?;
    let all = r::list_beta_groups(&ctx.api, &app_id).await?;
    let chosen = pick_groups(&all, names)?;
    let mut ids = Vec::new();
    let mut added = Vec::new();
    for g in chosen {
        let a = g.attrs();
        let name = a.name.clone().unwrap_or_default();
        if a.is_internal_group == Some(true) && a.has_access_to_all_builds == Some(true) {
            ctx.ci
                .notice(format!("beta group {name:?} already gets every build"));
            continue;
        }
        ids.push(g.id.clone());
        added.push(name);
    }
    if !ids.is_empty() {
        r::add_build_to_groups(&ctx.api, build_id, &ids)
            .await
            .map_err(|e| Error::from(e).context("adding the build to beta groups"))?;
        tracing::info!("added to beta groups: {}", added.join(", "));
    }
    Ok(added)
}

/// Submit for Beta App Review; "already submitted" counts as submitted.
async fn submit_for_review(ctx: &Ctx, build_id: &str) -> Result<bool, Error> {
    match r::submit_for_beta_review(&ctx.api, build_id).await {
        Ok(s) => {
            tracing::info!(
                "submitted for Beta App Review ({})",
                s.attrs()
                    .beta_review_state
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            );
            Ok(true)
        }
        Err(e)
            if e.kind == ApiErrorKind::Conflict
                && e.errors.iter().any(|x| x.detail.contains("already")) =>
        {
            ctx.ci
                .notice("the build was already submitted for Beta App Review");
            Ok(true)
        }
        Err(e) => Err(Error::from(e).context("submitting for Beta App Review")),
    }
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
