//! `flightdeck testflight` and the pipeline's `testflight` step: export
//! compliance, What to Test notes, beta groups, beta review, notification.
//!
//! Idempotent by construction: everything is read first (`Facts`), every
//! problem is found before the first write (`decide`, using the preflight's
//! checks), and only what is missing is written (`apply`). Each write goes
//! through `api::write::exactly_once`, so a lost answer or a 409 is settled by
//! reading back, never by a second notification or a duplicate.

use crate::api::models::{
    BetaAppReviewSubmission, BetaBuildLocalization, BetaGroup, BetaReviewState, Build, Platform,
    ProcessingState,
};
use crate::api::write::{Landed, exactly_once};
use crate::api::{ApiError, resources as r};
use crate::context::Ctx;
use crate::error::Error;
use crate::plan::TestFlightPlan;
use crate::preflight::checks::{self, Compliance};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the caller knows about the build besides its id.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// `ITSAppUsesNonExemptEncryption` of the uploaded artifact.
    pub info_plist_encryption: Option<bool>,
    pub platform: Option<Platform>,
}

/// Whether a step changed App Store Connect or found it already so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Done,
    Already,
}

impl<T> From<&Landed<T>> for Change {
    fn from(l: &Landed<T>) -> Self {
        match l {
            Landed::Written(_) => Change::Done,
            Landed::Found(_) => Change::Already,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct GroupOutcome {
    pub name: String,
    pub id: String,
    pub change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoteChange {
    Created,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoteOutcome {
    pub locale: String,
    pub change: NoteChange,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReviewOutcome {
    pub state: String,
    pub change: Change,
}

#[derive(Debug, Clone, Serialize)]
pub struct Distributed {
    pub build_id: String,
    pub app_id: String,
    /// The build in App Store Connect's TestFlight pages.
    pub build_url: String,
    pub export_compliance: Compliance,
    pub groups: Vec<GroupOutcome>,
    pub notes: Vec<NoteOutcome>,
    pub review: Option<ReviewOutcome>,
    pub notified: Option<Change>,
    /// Older builds expired by `expire-previous`.
    pub expired: Option<crate::audience::expire::Expired>,
}

/// App Store Connect's web page for a build.
pub fn build_url(app_id: &str, build_id: &str, platform: Option<&Platform>) -> String {
    let p = match platform {
        Some(Platform::MacOs) => "macos",
        Some(Platform::TvOs) => "tvos",
        Some(Platform::VisionOs) => "visionos",
        _ => "ios",
    };
    format!("https://appstoreconnect.apple.com/apps/{app_id}/testflight/{p}/{build_id}")
}

/// What App Store Connect has for the build, read before any write.
struct Facts {
    build: Build,
    app_id: String,
    /// Ids of the beta groups holding the build.
    holding: Vec<String>,
    groups: Vec<BetaGroup>,
    notes: Vec<BetaBuildLocalization>,
    review: Option<BetaAppReviewSubmission>,
    /// (version, other builds of it waiting for review), read when a review is to be submitted.
    pending: Option<(String, Vec<Build>)>,
}

async fn read(ctx: &Ctx, plan: &TestFlightPlan, build_id: &str) -> Result<Facts, Error> {
    let api = &ctx.api;
    let (build, holding) = r::get_build_with_groups(api, build_id)
        .await
        .map_err(|e| Error::from(e).context(format!("reading build {build_id}")))?;
    let app_id = build
        .related_id("app")
        .ok_or_else(|| Error::transient(format!("build {build_id} names no app")))?;
    let groups = r::list_beta_groups(api, &app_id).await?;
    let notes = r::list_localizations(api, build_id).await?;
    let review = match plan.submit_for_review {
        true => latest(r::list_beta_review_submissions(api, build_id).await?),
        false => None,
    };
    let pending = match (plan.submit_for_review, &review) {
        (true, None) => pending_reviews(ctx, &app_id, build_id).await?,
        _ => None,
    };
    Ok(Facts {
        build,
        app_id,
        holding,
        groups,
        notes,
        review,
        pending,
    })
}

/// The build's version and the builds of it already waiting for review.
async fn pending_reviews(
    ctx: &Ctx,
    app_id: &str,
    build_id: &str,
) -> Result<Option<(String, Vec<Build>)>, Error> {
    let Some((version, platform)) = r::get_build_version(&ctx.api, build_id).await? else {
        return Ok(None);
    };
    let mut pending = r::list_builds_in_review(&ctx.api, app_id, &version, &platform).await?;
    pending.retain(|b| b.id != build_id);
    Ok(Some((version, pending)))
}

fn latest(mut subs: Vec<BetaAppReviewSubmission>) -> Option<BetaAppReviewSubmission> {
    subs.sort_by_key(|s| s.attrs().submitted_date);
    subs.pop()
}

/// What is to be written, decided from the facts with every problem found first.
struct Todo<'a> {
    compliance: Compliance,
    groups: Vec<&'a BetaGroup>,
    notes: BTreeMap<String, String>,
}

fn decide<'a>(
    plan: &TestFlightPlan,
    f: &'a Facts,
    notes: BTreeMap<String, String>,
    known: &Known,
) -> Result<Todo<'a>, Error> {
    let build_id = &f.build.id;
    check_processed(build_id, f.build.attrs().processing_state.as_ref())?;
    let (groups, mut problems) = checks::groups(&f.groups, plan);
    let external = plan.submit_for_review || groups.iter().any(|g| !checks::is_internal(g));
    problems.extend(checks::notes(plan, &notes));
    let on_build = f.build.attrs().uses_non_exempt_encryption;
    let compliance = match checks::compliance(plan, on_build, known.info_plist_encryption, external)
    {
        Ok(c) => c,
        Err(e) => {
            problems.push(e);
            Compliance::Missing
        }
    };
    if let Some(s) = &f.review
        && s.attrs().beta_review_state == Some(BetaReviewState::Rejected)
    {
        problems.push(
            Error::rejected(format!("Beta App Review rejected build {build_id}"))
                .with_hint("a rejected build cannot be submitted again: upload a new build"),
        );
    }
    if let Some((version, pending)) = &f.pending {
        problems.extend(checks::review_not_pending(plan, version, pending, None));
    }
    if let Some(e) = Error::many(problems) {
        return Err(e);
    }
    Ok(Todo {
        compliance,
        groups,
        notes,
    })
}

/// The steps in order: read, decide (all problems before any write), then
/// answer export compliance, set notes, add to groups, submit, notify, and
/// (with `expire-previous`) expire the app's older builds.
pub async fn run(
    ctx: &Ctx,
    plan: &TestFlightPlan,
    build_id: &str,
    known: &Known,
) -> Result<Distributed, Error> {
    let notes = crate::preflight::notes_of(plan)?;
    let f = read(ctx, plan, build_id).await?;
    let todo = decide(plan, &f, notes, known)?;
    let mut out = Distributed {
        build_id: build_id.into(),
        app_id: f.app_id.clone(),
        build_url: build_url(&f.app_id, build_id, known.platform.as_ref()),
        export_compliance: todo.compliance,
        groups: Vec::new(),
        notes: Vec::new(),
        review: None,
        notified: None,
        expired: None,
    };
    match todo.compliance {
        Compliance::Missing => ctx.ci.warning(format!(
            "build {build_id} has no export compliance answer, so external testers cannot get it; set ITSAppUsesNonExemptEncryption in Info.plist or `uses-non-exempt-encryption` in the testflight step"
        )),
        c => {
            if let Some(v) = c.to_send() {
                export_compliance(ctx, build_id, v).await?;
            }
        }
    }
    for (locale, text) in &todo.notes {
        let change = set_note(ctx, build_id, &f.notes, locale, text).await?;
        out.notes.push(NoteOutcome {
            locale: locale.clone(),
            change,
        });
    }
    out.groups = add_to_groups(ctx, build_id, &todo.groups, &f.holding).await?;
    if plan.submit_for_review {
        out.review = Some(submit_for_review(ctx, build_id, f.review.as_ref()).await?);
    }
    if plan.notify {
        out.notified = Some(notify(ctx, build_id).await?);
    }
    if plan.expire_previous {
        out.expired = Some(expire_previous(ctx, &f.app_id, build_id).await?);
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

fn policy(ctx: &Ctx) -> crate::api::retry::RetryPolicy {
    ctx.api.retry_policy()
}

async fn export_compliance(ctx: &Ctx, build_id: &str, v: bool) -> Result<(), Error> {
    exactly_once(
        &policy(ctx),
        "answering export compliance",
        || async {
            r::set_export_compliance(&ctx.api, build_id, v)
                .await
                .map(|_| ())
        },
        || async {
            let b = r::get_build(&ctx.api, build_id).await?;
            Ok((b.attrs().uses_non_exempt_encryption == Some(v)).then_some(()))
        },
    )
    .await
    .map_err(|e| Error::from(e).context("answering export compliance"))?;
    tracing::info!("export compliance: usesNonExemptEncryption = {v}");
    Ok(())
}

fn find_locale<'a>(
    all: &'a [BetaBuildLocalization],
    locale: &str,
) -> Option<&'a BetaBuildLocalization> {
    all.iter()
        .find(|l| l.attrs().locale.as_deref() == Some(locale))
}

/// The localization for `locale` read back, when its text is `text`.
async fn note_is(
    ctx: &Ctx,
    build_id: &str,
    locale: &str,
    text: &str,
) -> Result<Option<()>, ApiError> {
    let all = r::list_localizations(&ctx.api, build_id).await?;
    Ok(find_locale(&all, locale)
        .filter(|l| l.attrs().whats_new.as_deref() == Some(text))
        .map(|_| ()))
}

/// One locale's notes: unchanged when equal, else updated or created.
async fn set_note(
    ctx: &Ctx,
    build_id: &str,
    existing: &[BetaBuildLocalization],
    locale: &str,
    text: &str,
) -> Result<NoteChange, Error> {
    let what = format!("setting the {locale} What to Test notes");
    let change = match find_locale(existing, locale) {
        Some(l) if l.attrs().whats_new.as_deref() == Some(text) => {
            return Ok(NoteChange::Unchanged);
        }
        Some(l) => {
            exactly_once(
                &policy(ctx),
                &what,
                || async {
                    r::update_localization(&ctx.api, &l.id, text)
                        .await
                        .map(|_| ())
                },
                || note_is(ctx, build_id, locale, text),
            )
            .await
            .map_err(|e| Error::from(e).context(what.clone()))?;
            NoteChange::Updated
        }
        None => create_note(ctx, build_id, locale, text, &what).await?,
    };
    tracing::info!("What to Test notes for {locale}: {change:?}");
    Ok(change)
}

/// Create a locale's notes; a lost attempt found on read-back counts as created,
/// another text found there (a concurrent writer) is replaced.
async fn create_note(
    ctx: &Ctx,
    build_id: &str,
    locale: &str,
    text: &str,
    what: &str,
) -> Result<NoteChange, Error> {
    let landed = exactly_once(
        &policy(ctx),
        what,
        || async {
            r::create_localization(&ctx.api, build_id, locale, text)
                .await
                .map(|_| None)
        },
        || async {
            let all = r::list_localizations(&ctx.api, build_id).await?;
            Ok(find_locale(&all, locale).map(|l| Some(l.clone())))
        },
    )
    .await
    .map_err(|e| Error::from(e).context(what.to_string()))?;
    if let Some(l) = landed.into_inner()
        && l.attrs().whats_new.as_deref() != Some(text)
    {
        r::update_localization(&ctx.api, &l.id, text)
            .await
            .map_err(|e| Error::from(e).context(what.to_string()))?;
    }
    Ok(NoteChange::Created)
}

/// Add the build to the groups not holding it yet (one request for all of them).
async fn add_to_groups(
    ctx: &Ctx,
    build_id: &str,
    chosen: &[&BetaGroup],
    holding: &[String],
) -> Result<Vec<GroupOutcome>, Error> {
    let outcome = |g: &BetaGroup, change| GroupOutcome {
        name: g.attrs().name.unwrap_or_default(),
        id: g.id.clone(),
        change,
    };
    let has_all = |g: &BetaGroup| {
        let a = g.attrs();
        a.is_internal_group == Some(true) && a.has_access_to_all_builds == Some(true)
    };
    let (done, missing): (Vec<&BetaGroup>, Vec<&BetaGroup>) = chosen
        .iter()
        .copied()
        .partition(|g| has_all(g) || holding.contains(&g.id));
    let mut out: Vec<GroupOutcome> = done.iter().map(|g| outcome(g, Change::Already)).collect();
    if missing.is_empty() {
        return Ok(out);
    }
    let ids: Vec<String> = missing.iter().map(|g| g.id.clone()).collect();
    let landed = exactly_once(
        &policy(ctx),
        "adding the build to beta groups",
        || r::add_build_to_groups(&ctx.api, build_id, &ids),
        || async {
            let (_, now) = r::get_build_with_groups(&ctx.api, build_id).await?;
            Ok(ids.iter().all(|id| now.contains(id)).then_some(()))
        },
    )
    .await
    .map_err(|e| Error::from(e).context("adding the build to beta groups"))?;
    let change = Change::from(&landed);
    out.extend(missing.iter().map(|g| outcome(g, change)));
    tracing::info!(
        "added to beta groups: {}",
        missing
            .iter()
            .filter_map(|g| g.attrs().name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(out)
}

/// Submit for Beta App Review unless a submission exists (pending or approved).
async fn submit_for_review(
    ctx: &Ctx,
    build_id: &str,
    existing: Option<&BetaAppReviewSubmission>,
) -> Result<ReviewOutcome, Error> {
    let state_of = |s: &BetaAppReviewSubmission| {
        s.attrs()
            .beta_review_state
            .map(|s| s.to_string())
            .unwrap_or_else(|| "SUBMITTED".into())
    };
    if let Some(s) = existing {
        return Ok(ReviewOutcome {
            state: state_of(s),
            change: Change::Already,
        });
    }
    let landed = exactly_once(
        &policy(ctx),
        "submitting for Beta App Review",
        || r::submit_for_beta_review(&ctx.api, build_id),
        || async {
            Ok(latest(
                r::list_beta_review_submissions(&ctx.api, build_id).await?,
            ))
        },
    )
    .await
    .map_err(|e| Error::from(e).context("submitting for Beta App Review"))?;
    let change = Change::from(&landed);
    let state = state_of(&landed.into_inner());
    tracing::info!("Beta App Review: {state}");
    Ok(ReviewOutcome { state, change })
}

/// Notify testers unless they already were (manually, or by auto-notify when
/// the build was just added to groups: so this is read now, not up front).
async fn notify(ctx: &Ctx, build_id: &str) -> Result<Change, Error> {
    let invites = r::beta_invite_count(&ctx.api, build_id)
        .await
        .map_err(|e| Error::from(e).context("reading whether testers were notified"))?;
    if invites > 0 {
        return Ok(Change::Already);
    }
    let landed = exactly_once(
        &policy(ctx),
        "notifying testers",
        || r::notify_testers(&ctx.api, build_id),
        || async { Ok((r::beta_invite_count(&ctx.api, build_id).await? > 0).then_some(())) },
    )
    .await
    .map_err(|e| Error::from(e).context("notifying testers"))?;
    Ok(Change::from(&landed))
}

/// Expire the app's older builds once this one is distributed.
async fn expire_previous(
    ctx: &Ctx,
    app_id: &str,
    build_id: &str,
) -> Result<crate::audience::expire::Expired, Error> {
    let done = crate::audience::expire::expire_previous(&ctx.api, app_id, build_id, None)
        .await
        .map_err(|e| e.context("expiring previous builds"))?;
    for id in &done.kept_for_review {
        ctx.ci.notice(format!(
            "build {id} was not expired: a beta review of it is pending"
        ));
    }
    Ok(done)
}
