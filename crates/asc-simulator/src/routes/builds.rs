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
    out
}

pub async fn list(sim: S, q: Q) -> Response {
    let st = sim.lock();
    let apps = filter(&q, "app");
    let versions = filter(&q, "version");
    let short = filter(&q, "preReleaseVersion.version");
    let platforms = filter(&q, "preReleaseVersion.platform");
    let states = filter(&q, "processingState");
    let ids = filter(&q, "id");
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
            st.render_build(b, &sim.base_url)
        })
        .collect();
    page(items, inc, &q, &sim.base_url, "/v1/builds")
}

pub async fn get(sim: S, id: Id, q: Q) -> Response {
    let st = sim.lock();
    match st.builds.get(&*id) {
        Some(b) => jsonapi::document(
            200,
            st.render_build(b, &sim.base_url),
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
