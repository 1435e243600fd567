//! Builds: list with Apple's filters, read with included relationships, and the
//! export compliance answer (`PATCH usesNonExemptEncryption`).

use super::{Id, Q, S, body};
use crate::jsonapi::{self, conflict, filter, not_found, page, param};
use crate::state::BuildRec;
use axum::body::Bytes;
use axum::response::Response;
use serde_json::Value;

fn version_key(v: &str) -> Vec<u64> {
    v.split('.').map(|p| p.parse().unwrap_or(0)).collect()
}

fn included(
    sim: &crate::Sim,
    st: &crate::state::State,
    b: &BuildRec,
    q: &jsonapi::Query,
) -> Vec<Value> {
    let inc: Vec<&str> = param(q, "include")
        .map(|v| v.split(',').collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    if inc.contains(&"app")
        && let Some(a) = st.app(&b.app_id)
    {
        out.push(jsonapi::sparse(
            st.render_app(a, &sim.base_url),
            jsonapi::fields(q, "apps").as_ref(),
        ));
    }
    if inc.contains(&"buildUpload")
        && let Some(u) = st.uploads.get(&b.upload_id)
    {
        out.push(st.render_upload(u, &sim.base_url));
    }
    if inc.contains(&"buildBetaDetail") {
        out.push(st.render_beta_detail(b, &sim.base_url));
    }
    if inc.contains(&"betaGroups") {
        for g in st.groups.iter().filter(|g| b.groups.contains(&g.id)) {
            out.push(st.render_group(g, &sim.base_url));
        }
    }
    if inc.contains(&"preReleaseVersion") {
        out.push(
            serde_json::json!({"type": "preReleaseVersions", "id": pre_release_id(b),
            "attributes": {"version": b.short_version, "platform": b.platform}}),
        );
    }
    out
}

/// The simulator has no pre-release version records: one id per app, version and platform.
fn pre_release_id(b: &BuildRec) -> String {
    format!("{}-{}-{}", b.app_id, b.short_version, b.platform)
}

/// The state of the build's latest Beta App Review submission.
fn review_state<'a>(st: &'a crate::state::State, b: &BuildRec) -> Option<&'a str> {
    st.submissions
        .iter()
        .filter(|s| s.build_id == b.id)
        .max_by_key(|s| s.submitted)
        .map(|s| s.state.as_str())
}

/// The build as rendered, with `relationships.betaGroups.data` when the groups are included.
fn rendered(sim: &crate::Sim, st: &crate::state::State, b: &BuildRec, q: &jsonapi::Query) -> Value {
    let mut r = st.render_build(b, &sim.base_url);
    let wants_groups = param(q, "include").is_some_and(|v| v.split(',').any(|i| i == "betaGroups"));
    if wants_groups {
        let data: Vec<Value> = b
            .groups
            .iter()
            .map(|id| serde_json::json!({"type": "betaGroups", "id": id}))
            .collect();
        r["relationships"]["betaGroups"] = serde_json::json!({ "data": data });
    }
    if param(q, "include").is_some_and(|v| v.split(',').any(|i| i == "preReleaseVersion")) {
        r["relationships"]["preReleaseVersion"] =
            serde_json::json!({"data": {"type": "preReleaseVersions", "id": pre_release_id(b)}});
    }
    r
}

pub async fn list(sim: S, q: Q) -> Response {
    let st = sim.lock();
    let apps = filter(&q, "app");
    let versions = filter(&q, "version");
    let short = filter(&q, "preReleaseVersion.version");
    let platforms = filter(&q, "preReleaseVersion.platform");
    let states = filter(&q, "processingState");
    let ids = filter(&q, "id");
    let groups = filter(&q, "betaGroups");
    let reviews = filter(&q, "betaAppReviewSubmission.betaReviewState");
    let mut builds: Vec<&BuildRec> = st
        .builds
        .values()
        .filter(|b| apps.as_ref().is_none_or(|v| v.contains(&b.app_id)))
        .filter(|b| versions.as_ref().is_none_or(|v| v.contains(&b.version)))
        .filter(|b| short.as_ref().is_none_or(|v| v.contains(&b.short_version)))
        .filter(|b| platforms.as_ref().is_none_or(|v| v.contains(&b.platform)))
        .filter(|b| {
            states
                .as_ref()
                .is_none_or(|v| v.contains(&b.processing_state))
        })
        .filter(|b| ids.as_ref().is_none_or(|v| v.contains(&b.id)))
        .filter(|b| {
            groups
                .as_ref()
                .is_none_or(|v| v.iter().any(|g| b.groups.contains(g)))
        })
        .filter(|b| {
            reviews
                .as_ref()
                .is_none_or(|v| review_state(&st, b).is_some_and(|s| v.iter().any(|x| x == s)))
        })
        .collect();
    match param(&q, "sort") {
        Some("version") => builds.sort_by_key(|b| version_key(&b.version)),
        Some("-version") => builds.sort_by_key(|b| std::cmp::Reverse(version_key(&b.version))),
        Some("uploadedDate") => builds.sort_by_key(|b| b.seq),
        _ => builds.sort_by_key(|b| std::cmp::Reverse(b.seq)),
    }
    let mut inc = Vec::new();
    let items = builds
        .iter()
        .map(|b| {
            for i in included(&sim, &st, b, &q) {
                if !inc.contains(&i) {
                    inc.push(i);
                }
            }
            rendered(&sim, &st, b, &q)
        })
        .collect();
    page(items, inc, &q, &sim.base_url, "/v1/builds")
}

pub async fn get(sim: S, id: Id, q: Q) -> Response {
    let st = sim.lock();
    match st.builds.get(&*id) {
        Some(b) => jsonapi::document(
            200,
            rendered(&sim, &st, b, &q),
            included(&sim, &st, b, &q),
            &format!("{}/v1/builds/{}", sim.base_url, b.id),
        ),
        None => not_found("builds", &id),
    }
}

pub async fn update(sim: S, id: Id, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let mut st = sim.lock();
    let Some(b) = st.builds.get_mut(&*id) else {
        return not_found("builds", &id);
    };
    if let Some(v) = doc["data"]["attributes"]["usesNonExemptEncryption"].as_bool() {
        if b.uses_non_exempt_encryption.is_some() && b.uses_non_exempt_encryption != Some(v) {
            return conflict(
                "ENTITY_ERROR.ATTRIBUTE.INVALID",
                "Export compliance was already answered for this build.",
                Some("/data/attributes/usesNonExemptEncryption"),
            );
        }
        b.uses_non_exempt_encryption = Some(v);
        if b.processing_state == "VALID" && b.internal_state == "MISSING_EXPORT_COMPLIANCE" {
            b.internal_state = "READY_FOR_BETA_TESTING".into();
            b.external_state = "READY_FOR_BETA_SUBMISSION".into();
        }
    }
    let b = b.clone();
    if let Some(e) = doc["data"]["attributes"]["expired"].as_bool() {
        let was = st.expired_builds.contains(&b.id);
        if was && !e {
            return conflict(
                "ENTITY_ERROR.ATTRIBUTE.INVALID",
                "An expired build cannot be made available again.",
                Some("/data/attributes/expired"),
            );
        }
        if e {
            st.expired_builds.insert(b.id.clone());
        }
    }
    jsonapi::document(
        200,
        st.render_build(&b, &sim.base_url),
        vec![],
        &format!("{}/v1/builds/{}", sim.base_url, b.id),
    )
}
