//! Beta groups, What to Test notes, beta review, beta details, notifications.

use super::{Id, Q, S, body, related};
use crate::ids::uuid;
use crate::jsonapi::{self, conflict, not_found, page};
use crate::state::{Localization, Submission};
use crate::webhooks;
use axum::body::Bytes;
use axum::response::Response;
use serde_json::json;

pub async fn groups(sim: S, id: Id, q: Q) -> Response {
    super::app_page(&sim, &id, &q, "betaGroups", |st| {
        st.groups
            .iter()
            .filter(|g| g.app_id == *id)
            .map(|g| st.render_group(g, &sim.base_url))
            .collect()
    })
}

pub async fn add_groups(sim: S, id: Id, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let mut st = sim.lock();
    let Some(b) = st.builds.get(&*id).cloned() else {
        return not_found("builds", &id);
    };
    if b.processing_state != "VALID" {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!(
                "The build is {} and cannot be added to beta groups.",
                b.processing_state
            ),
            Some("/data"),
        );
    }
    let mut add = Vec::new();
    for (i, item) in doc["data"].as_array().into_iter().flatten().enumerate() {
        let gid = item["id"].as_str().unwrap_or_default();
        let Some(g) = st
            .groups
            .iter()
            .find(|g| g.id == gid && g.app_id == b.app_id)
        else {
            return conflict(
                "ENTITY_ERROR.RELATIONSHIP.INVALID",
                &format!("There is no beta group '{gid}' for this app."),
                Some(&format!("/data/{i}/id")),
            );
        };
        if !g.internal && b.uses_non_exempt_encryption.is_none() {
            return conflict(
                "ENTITY_ERROR.RELATIONSHIP.INVALID",
                "The build is missing export compliance information and cannot be given to external testers.",
                Some(&format!("/data/{i}")),
            );
        }
        add.push(gid.to_string());
    }
    let auto = b.auto_notify && add.iter().any(|g| !b.groups.contains(g));
    if let Some(b) = st.builds.get_mut(&*id) {
        b.groups.extend(add);
    }
    // With autoNotifyEnabled, Apple tells the group's testers itself.
    if auto {
        st.notifications.push(id.to_string());
    }
    jsonapi::no_content()
}

pub async fn list_localizations(sim: S, id: Id, q: Q) -> Response {
    let st = sim.lock();
    if !st.builds.contains_key(&*id) {
        return not_found("builds", &id);
    }
    let items = st
        .localizations
        .iter()
        .filter(|l| l.build_id == *id)
        .map(|l| st.render_localization(l, &sim.base_url))
        .collect();
    page(
        items,
        vec![],
        &q,
        &sim.base_url,
        &format!("/v1/builds/{}/betaBuildLocalizations", *id),
    )
}

pub async fn create_localization(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let build_id = related(&doc, "build");
    let locale = doc["data"]["attributes"]["locale"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let whats_new = doc["data"]["attributes"]["whatsNew"]
        .as_str()
        .map(str::to_string);
    let mut st = sim.lock();
    if !st.builds.contains_key(&build_id) {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!("There is no build '{build_id}'."),
            Some("/data/relationships/build"),
        );
    }
    if st
        .localizations
        .iter()
        .any(|l| l.build_id == build_id && l.locale == locale)
    {
        return conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE",
            &format!("A localization for {locale} already exists for this build."),
            Some("/data/attributes/locale"),
        );
    }
    if whats_new.as_ref().is_some_and(|w| w.chars().count() > 4000) {
        return conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID.TOO_LONG",
            "whatsNew is limited to 4000 characters.",
            Some("/data/attributes/whatsNew"),
        );
    }
    let l = Localization {
        id: uuid(),
        build_id,
        locale,
        whats_new,
    };
    let r = st.render_localization(&l, &sim.base_url);
    let link = format!("{}/v1/betaBuildLocalizations/{}", sim.base_url, l.id);
    st.localizations.push(l);
    jsonapi::document(201, r, vec![], &link)
}

pub async fn update_localization(sim: S, id: Id, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let mut st = sim.lock();
    let Some(l) = st.localizations.iter_mut().find(|l| l.id == *id) else {
        return not_found("betaBuildLocalizations", &id);
    };
    if let Some(w) = doc["data"]["attributes"]["whatsNew"].as_str() {
        l.whats_new = Some(w.to_string());
    }
    let l = l.clone();
    jsonapi::document(
        200,
        st.render_localization(&l, &sim.base_url),
        vec![],
        &format!("{}/v1/betaBuildLocalizations/{}", sim.base_url, l.id),
    )
}

pub async fn submit(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let build_id = related(&doc, "build");
    let now = sim.now();
    let approve = sim.cfg().auto_approve_review;
    let (rendered, sub_id, app_id) = {
        let mut st = sim.lock();
        let Some(b) = st.builds.get(&build_id).cloned() else {
            return conflict(
                "ENTITY_ERROR.RELATIONSHIP.INVALID",
                &format!("There is no build '{build_id}'."),
                Some("/data/relationships/build"),
            );
        };
        if st.submissions.iter().any(|s| s.build_id == build_id) {
            return conflict(
                "ENTITY_ERROR.RELATIONSHIP.INVALID",
                "This build has already been submitted for beta review.",
                Some("/data/relationships/build"),
            );
        }
        if b.processing_state != "VALID" || b.uses_non_exempt_encryption.is_none() {
            return conflict(
                "ENTITY_ERROR.RELATIONSHIP.INVALID",
                "The build is not ready for beta review (it must be VALID and have export compliance).",
                Some("/data/relationships/build"),
            );
        }
        let s = Submission {
            id: uuid(),
            build_id: build_id.clone(),
            state: "WAITING_FOR_REVIEW".into(),
            submitted: now,
        };
        if let Some(b) = st.builds.get_mut(&build_id) {
            b.external_state = "WAITING_FOR_BETA_REVIEW".into();
        }
        let r = render_submission(&s, &sim.base_url);
        let id = s.id.clone();
        st.submissions.push(s);
        (r, id, b.app_id)
    };
    if let Some(delay) = approve {
        let sim2 = sim.0.clone();
        let (bid, sid) = (build_id.clone(), sub_id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            {
                let mut st = sim2.lock();
                if let Some(s) = st.submissions.iter_mut().find(|s| s.id == sid) {
                    s.state = "APPROVED".into();
                }
                if let Some(b) = st.builds.get_mut(&bid) {
                    b.external_state = "BETA_APPROVED".into();
                }
            }
            webhooks::emit(
                &sim2,
                &app_id,
                "BUILD_BETA_DETAIL_EXTERNAL_BUILD_STATE_UPDATED",
                json!({"newExternalBuildState": "BETA_APPROVED", "oldExternalBuildState": "WAITING_FOR_BETA_REVIEW", "timestamp": crate::state::ts(sim2.now())}),
                Some(("buildBetaDetails", &bid)),
            );
        });
    }
    jsonapi::document(
        201,
        rendered,
        vec![],
        &format!("{}/v1/betaAppReviewSubmissions/{sub_id}", sim.base_url),
    )
}

pub async fn beta_detail(sim: S, id: Id) -> Response {
    let st = sim.lock();
    match st.builds.get(&*id) {
        Some(b) => jsonapi::document(
            200,
            st.render_beta_detail(b, &sim.base_url),
            vec![],
            &format!("{}/v1/builds/{}/buildBetaDetail", sim.base_url, b.id),
        ),
        None => not_found("builds", &id),
    }
}

pub async fn update_beta_detail(sim: S, id: Id, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let mut st = sim.lock();
    let Some(b) = st.builds.get_mut(&*id) else {
        return not_found("buildBetaDetails", &id);
    };
    if let Some(v) = doc["data"]["attributes"]["autoNotifyEnabled"].as_bool() {
        b.auto_notify = v;
    }
    let b = b.clone();
    jsonapi::document(
        200,
        st.render_beta_detail(&b, &sim.base_url),
        vec![],
        &format!("{}/v1/buildBetaDetails/{}", sim.base_url, b.id),
    )
}

pub async fn notify(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let build_id = related(&doc, "build");
    let mut st = sim.lock();
    let Some(b) = st.builds.get(&build_id) else {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!("There is no build '{build_id}'."),
            Some("/data/relationships/build"),
        );
    };
    if b.groups.is_empty() {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            "The build is in no beta group, so there is no tester to notify.",
            Some("/data/relationships/build"),
        );
    }
    let id = uuid();
    st.notifications.push(build_id);
    jsonapi::document(
        201,
        json!({"type": "buildBetaNotifications", "id": id, "links": {"self": format!("{}/v1/buildBetaNotifications/{id}", sim.base_url)}}),
        vec![],
        &format!("{}/v1/buildBetaNotifications/{id}", sim.base_url),
    )
}

/// A submission as a JSON:API resource (for `POST` and the list in `testers`).
pub(crate) fn render_submission(s: &Submission, base: &str) -> serde_json::Value {
    json!({"type": "betaAppReviewSubmissions", "id": s.id,
        "attributes": {"betaReviewState": s.state, "submittedDate": crate::state::ts(s.submitted)},
        "relationships": {"build": {"data": {"type": "builds", "id": s.build_id}}},
        "links": {"self": format!("{base}/v1/betaAppReviewSubmissions/{}", s.id)}})
}

/// `GET /v1/builds/{id}/metrics/betaBuildUsages`: one data point whose
/// `inviteCount` counts the notifications sent for the build.
pub async fn usages(sim: S, id: Id) -> Response {
    let st = sim.lock();
    let Some(b) = st.builds.get(&*id) else {
        return not_found("builds", &id);
    };
    let invites = st.notifications.iter().filter(|n| **n == b.id).count();
    let now = crate::state::ts(sim.now());
    let start = crate::state::ts(b.uploaded);
    jsonapi::json_response(
        200,
        &json!({"data": [{"dataPoints": [{"start": start, "end": now,
                   "values": {"crashCount": 0, "installCount": 0, "sessionCount": 0, "feedbackCount": 0, "inviteCount": invites}}]}],
                "links": {"self": format!("{}/v1/builds/{}/metrics/betaBuildUsages", sim.base_url, b.id)}}),
    )
}
