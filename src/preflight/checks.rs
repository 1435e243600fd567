//! The checks themselves, as data: each takes what is known (the plan, the
//! artifact, what App Store Connect answered) and returns problems, located in
//! the pipeline file where the pipeline is their source. No I/O here, so the
//! pipeline's preflight and `flightdeck testflight` share every rule.

use crate::api::models::BetaGroup;
use crate::error::{Error, Location};
use crate::plan::TestFlightPlan;
use crate::spec::notes::MAX_WHATS_NEW_CHARS;
use std::collections::BTreeMap;

fn at(e: Error, loc: Option<&Location>) -> Error {
    match loc {
        Some(l) => e.at(l.clone()),
        None => e,
    }
}

/// Whether `wanted` names `g`: its id, or its name in any case.
pub fn names_group(g: &BetaGroup, wanted: &str) -> bool {
    g.id == wanted
        || g.attrs()
            .name
            .is_some_and(|n| n.to_lowercase() == wanted.trim().to_lowercase())
}

/// The groups the plan names, in order and without repeats; an unknown name is a
/// problem with the nearest existing names.
pub fn groups<'a>(all: &'a [BetaGroup], tf: &TestFlightPlan) -> (Vec<&'a BetaGroup>, Vec<Error>) {
    let mut out: Vec<&BetaGroup> = Vec::new();
    let mut problems = Vec::new();
    let known: Vec<String> = all.iter().filter_map(|g| g.attrs().name).collect();
    for (i, wanted) in tf.groups.iter().enumerate() {
        match all.iter().find(|g| names_group(g, wanted)) {
            Some(g) if out.iter().any(|o| o.id == g.id) => {}
            Some(g) => out.push(g),
            None => problems.push(at(unknown_group(wanted, &known), tf.origin.group(i))),
        }
    }
    (out, problems)
}

fn unknown_group(wanted: &str, known: &[String]) -> Error {
    let e = Error::input(format!(
        "there is no beta group named {wanted:?} (or with that id) for this app"
    ));
    let near = known
        .iter()
        .min_by_key(|k| strsim::levenshtein(&k.to_lowercase(), &wanted.to_lowercase()));
    e.with_hint(match near {
        Some(k) => format!("did you mean {k:?}? groups: {}", known.join(", ")),
        None => "the app has no beta groups; create one in App Store Connect > TestFlight".into(),
    })
}

/// Whether a group is internal (App Store Connect users only: no review, no export compliance).
pub fn is_internal(g: &BetaGroup) -> bool {
    g.attrs().is_internal_group == Some(true)
}

/// Where the export compliance answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compliance {
    /// The build already has one: nothing to send.
    OnBuild(bool),
    /// The pipeline or a flag answers it.
    Given(bool),
    /// The artifact's Info.plist (`ITSAppUsesNonExemptEncryption`) answers it.
    InfoPlist(bool),
    /// Nobody does: internal testing works, external testing stays blocked.
    Missing,
}

impl Compliance {
    /// The answer to send, if one must be sent.
    pub fn to_send(self) -> Option<bool> {
        match self {
            Compliance::Given(v) | Compliance::InfoPlist(v) => Some(v),
            _ => None,
        }
    }
}

/// Decide export compliance; missing is an error when external groups or review are asked.
pub fn compliance(
    tf: &TestFlightPlan,
    on_build: Option<bool>,
    info_plist: Option<bool>,
    external: bool,
) -> Result<Compliance, Error> {
    let c = match (on_build, tf.uses_non_exempt_encryption, info_plist) {
        (Some(v), _, _) => Compliance::OnBuild(v),
        (None, Some(v), _) => Compliance::Given(v),
        (None, None, Some(v)) => Compliance::InfoPlist(v),
        (None, None, None) => Compliance::Missing,
    };
    if c == Compliance::Missing && external {
        let e = Error::input(
            "the build has no export compliance answer, so external groups and Beta App Review would be refused",
        )
        .with_hint("set ITSAppUsesNonExemptEncryption in Info.plist, `uses-non-exempt-encryption: false` in the testflight step, or pass --uses-non-exempt-encryption false");
        return Err(at(e, tf.origin.step.as_ref()));
    }
    Ok(c)
}

/// Apple reviews one build per version at a time: another build of the
/// version already waiting for (or in) review blocks a submission.
/// `own_build_number` is this build's, which a re-run may find pending (that is fine).
pub fn review_not_pending(
    tf: &TestFlightPlan,
    version: &str,
    pending: &[crate::api::models::Build],
    own_build_number: Option<&str>,
) -> Option<Error> {
    if !tf.submit_for_review {
        return None;
    }
    let other = pending
        .iter()
        .find(|b| b.attrs().version.as_deref() != own_build_number)?;
    let number = other.attrs().version.unwrap_or_else(|| other.id.clone());
    let e = Error::input(format!(
        "build {number} of version {version} is already waiting for Beta App Review; Apple reviews one build per version at a time"
    ))
    .with_hint("wait until it is reviewed (later builds of an approved version usually need no review), or drop `submit-for-review`");
    Some(at(e, tf.origin.step.as_ref()))
}

/// Every locale's text is present and within Apple's limit.
pub fn notes(tf: &TestFlightPlan, notes: &BTreeMap<String, String>) -> Vec<Error> {
    let mut problems = Vec::new();
    for (locale, text) in notes {
        let n = text.chars().count();
        let e = if text.trim().is_empty() {
            Error::input(format!("the What to Test text for {locale} is empty"))
                .with_hint("write the notes, or drop the locale")
        } else if n > MAX_WHATS_NEW_CHARS {
            Error::input(format!(
                "the What to Test text for {locale} has {n} characters; App Store Connect takes at most {MAX_WHATS_NEW_CHARS}"
            ))
            .with_hint("shorten it")
        } else {
            continue;
        };
        problems.push(at(e, tf.origin.whats_new.as_ref()));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::BuildRef;

    fn group(id: &str, name: &str, internal: bool) -> BetaGroup {
        serde_json::from_value(serde_json::json!({"type": "betaGroups", "id": id,
            "attributes": {"name": name, "isInternalGroup": internal}}))
        .unwrap()
    }

    #[test]
    fn groups_match_by_name_in_any_case_or_by_id_and_unknown_ones_are_all_reported() {
        let all = [group("g1", "QA", true), group("g2", "Beta", false)];
        let mut tf = TestFlightPlan::for_build(BuildRef::Previous);
        tf.groups = vec!["qa".into(), "g2".into(), "Betta".into(), "Nope".into()];
        let (found, problems) = groups(&all, &tf);
        assert_eq!(
            found.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
            ["g1", "g2"]
        );
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0].hint.as_deref().unwrap().contains("\"Beta\""),
            "{:?}",
            problems[0]
        );
    }

    #[test]
    fn missing_compliance_blocks_only_external_testing() {
        let tf = TestFlightPlan::for_build(BuildRef::Previous);
        assert_eq!(
            compliance(&tf, None, None, false).unwrap(),
            Compliance::Missing
        );
        assert_eq!(
            compliance(&tf, None, None, true).unwrap_err().exit_code(),
            2
        );
        assert_eq!(
            compliance(&tf, None, Some(false), true).unwrap(),
            Compliance::InfoPlist(false)
        );
        assert_eq!(
            compliance(&tf, Some(true), Some(false), true).unwrap(),
            Compliance::OnBuild(true)
        );
    }

    #[test]
    fn notes_are_present_and_short_enough() {
        let tf = TestFlightPlan::for_build(BuildRef::Previous);
        let mut n = BTreeMap::new();
        n.insert("en-US".to_string(), "ok".to_string());
        n.insert("de-DE".to_string(), " ".to_string());
        n.insert("fr-FR".to_string(), "x".repeat(4001));
        assert_eq!(notes(&tf, &n).len(), 2);
    }
}
