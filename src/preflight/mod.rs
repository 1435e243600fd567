//! One preflight for a whole pipeline, before its first write to App Store
//! Connect (and the whole of `run --dry-run`, which only reads): the artifact
//! is there and readable, the app resolves, every named beta group exists,
//! export compliance is answered where external testing is asked, and every
//! What to Test text is present and short enough. Every failed check is
//! reported in the same run, each at its pipeline line, and nothing is created.

pub mod checks;

use crate::api::models::BetaGroup;
use crate::api::{ApiErrorKind, resources as r};
use crate::app::AppRef;
use crate::artifact::{self, Artifact};
use crate::context::Ctx;
use crate::error::Error;
use crate::plan::{NotesSource, Plan, Step, TestFlightPlan, UploadPlan};
use serde::Serialize;
use std::collections::BTreeMap;

/// What the preflight found out, for the plan's display and the steps.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Checked {
    /// The artifact of each upload step, by step index.
    pub artifacts: BTreeMap<usize, Artifact>,
    pub app_id: Option<String>,
    /// The groups each testflight step will use (names), by step index.
    pub groups: BTreeMap<usize, Vec<String>>,
    /// The export compliance decision of each testflight step.
    pub compliance: BTreeMap<usize, checks::Compliance>,
    /// The note locales of each testflight step.
    pub notes: BTreeMap<usize, Vec<String>>,
}

/// The step's What to Test texts: the given ones, else the note files' ones.
pub fn notes_of(tf: &TestFlightPlan) -> Result<BTreeMap<String, String>, Error> {
    match &tf.notes {
        NotesSource::Given => Ok(tf.whats_new.clone()),
        NotesSource::Dir { path, explicit } => crate::spec::notes::read_dir(path, *explicit)
            .map_err(|e| match &tf.origin.whats_new {
                Some(l) if *explicit => e.at(l.clone()),
                _ => e,
            }),
    }
}

/// The artifact of an upload step, inspected and checked against the step.
pub fn artifact_of(u: &UploadPlan) -> Result<Artifact, Error> {
    let a = artifact::inspect(&u.file).map_err(|e| {
        let e = Error::from(e);
        match (&u.origin, &e.location) {
            (Some(o), None) => e.at(o.clone()),
            _ => e,
        }
    })?;
    crate::upload::reconcile(u, &a)?;
    Ok(a)
}

/// The app's id; an id is looked up too, so a wrong one fails here.
async fn app_id(ctx: &Ctx, app: &AppRef) -> Result<String, Error> {
    match app {
        AppRef::Id(id) => match r::get_app(&ctx.api, id).await {
            Ok(a) => Ok(a.id),
            Err(e) if e.kind == ApiErrorKind::NotFound => Err(Error::input(format!(
                "there is no app with id {id} for this API key"
            ))
            .with_hint("check `app: { id }` or ASC_APP_ID, or use the bundle id")),
            Err(e) => Err(e.into()),
        },
        b => AppRef::resolve(Some(b), &ctx.api).await,
    }
}

/// Every check of the pipeline, all problems at once.
pub async fn pipeline(ctx: &Ctx, plan: &Plan) -> Result<Checked, Error> {
    let mut out = Checked::default();
    let mut problems = Vec::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if let Step::Upload(u) = s {
            match artifact_of(u) {
                Ok(a) => {
                    out.artifacts.insert(i, a);
                }
                Err(e) => problems.push(e),
            }
        }
    }
    let app = plan.app.clone().or_else(|| {
        out.artifacts
            .values()
            .next()
            .map(|a| AppRef::BundleId(a.bundle_id.clone()))
    });
    if let Some(app) = &app {
        match app_id(ctx, app).await {
            Ok(id) => out.app_id = Some(id),
            Err(e) => problems.push(match (&plan.app_origin, e.kind) {
                (Some(l), crate::error::ExitKind::Input) if plan.app.is_some() => e.at(l.clone()),
                _ => e,
            }),
        }
    }
    let mut groups = match &out.app_id {
        Some(id) if has_groups(plan) => r::list_beta_groups(&ctx.api, id).await?,
        _ => Vec::new(),
    };
    groups.extend(audience_creates(plan, &groups));
    for (i, s) in plan.steps.iter().enumerate() {
        if let Step::Testflight(tf) = s {
            let artifact = out.artifacts.range(..i).next_back().map(|(_, a)| a.clone());
            let pending = match (&out.app_id, &artifact) {
                (Some(app), Some(a)) if tf.submit_for_review => {
                    r::list_builds_in_review(&ctx.api, app, &a.version, &a.platform).await?
                }
                _ => Vec::new(),
            };
            let facts = StepFacts {
                groups: &groups,
                known_groups: out.app_id.is_some(),
                artifact: artifact.as_ref(),
                pending,
            };
            problems.extend(testflight_step(&mut out, i, tf, &facts));
        }
    }
    Error::many(problems).map_or(Ok(out), Err)
}

/// The groups the pipeline's `audience:` will create before the testflight
/// step (named there, missing in App Store Connect), as stand-ins so a step
/// may name them; one created without `external: false` is external.
fn audience_creates(plan: &Plan, existing: &[BetaGroup]) -> Vec<BetaGroup> {
    let Some(a) = &plan.audience else {
        return Vec::new();
    };
    a.groups
        .iter()
        .filter(|g| !existing.iter().any(|e| checks::names_group(e, &g.name)))
        .map(|g| BetaGroup {
            kind: "betaGroups".into(),
            id: format!("audience:{}", g.name),
            attributes: Some(crate::api::models::BetaGroupAttributes {
                name: Some(g.name.clone()),
                is_internal_group: Some(g.external == Some(false)),
                has_access_to_all_builds: None,
            }),
            relationships: None,
        })
        .collect()
}

fn has_groups(plan: &Plan) -> bool {
    plan.steps
        .iter()
        .any(|s| matches!(s, Step::Testflight(t) if !t.groups.is_empty()))
}

/// What a testflight step's checks need to know.
struct StepFacts<'a> {
    groups: &'a [BetaGroup],
    /// False when the app did not resolve (its groups are unknown, not missing).
    known_groups: bool,
    /// The artifact of the upload before the step.
    artifact: Option<&'a Artifact>,
    /// Builds of the artifact's version waiting for Beta App Review.
    pending: Vec<crate::api::models::Build>,
}

fn testflight_step(out: &mut Checked, i: usize, tf: &TestFlightPlan, f: &StepFacts) -> Vec<Error> {
    let mut problems = Vec::new();
    let (chosen, unknown) = checks::groups(f.groups, tf);
    if f.known_groups {
        problems.extend(unknown);
    }
    out.groups
        .insert(i, chosen.iter().filter_map(|g| g.attrs().name).collect());
    let external = tf.submit_for_review || chosen.iter().any(|g| !checks::is_internal(g));
    let plist = f.artifact.and_then(|a| a.uses_non_exempt_encryption);
    match checks::compliance(tf, None, plist, external) {
        Ok(c) => {
            out.compliance.insert(i, c);
        }
        Err(e) => problems.push(e),
    }
    match notes_of(tf) {
        Ok(n) => {
            problems.extend(checks::notes(tf, &n));
            out.notes.insert(i, n.keys().cloned().collect());
        }
        Err(e) => problems.push(e),
    }
    if let Some(a) = f.artifact {
        let own = Some(a.build_number.as_str());
        problems.extend(checks::review_not_pending(tf, &a.version, &f.pending, own));
    }
    problems
}

/// The preflight's findings as lines under the plan (`--dry-run`, `run`).
pub fn render(c: &Checked) -> String {
    let mut s = String::from("preflight: ok\n");
    for a in c.artifacts.values() {
        s.push_str(&format!(
            "  artifact {}: {} version {} build {} ({}), {} bytes\n",
            a.file_name, a.bundle_id, a.version, a.build_number, a.platform, a.size
        ));
    }
    if let Some(id) = &c.app_id {
        s.push_str(&format!("  app id {id}\n"));
    }
    for (i, g) in &c.groups {
        if !g.is_empty() {
            s.push_str(&format!("  step {}: beta groups {}\n", i + 1, g.join(", ")));
        }
    }
    for (i, n) in &c.notes {
        if !n.is_empty() {
            s.push_str(&format!(
                "  step {}: What to Test for {}\n",
                i + 1,
                n.join(", ")
            ));
        }
    }
    for (i, c) in &c.compliance {
        if *c == checks::Compliance::Missing {
            s.push_str(&format!(
                "  step {}: no export compliance answer: external testing will be blocked\n",
                i + 1
            ));
        }
    }
    s
}
