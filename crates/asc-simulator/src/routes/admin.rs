//! `/_sim` controls: inspect state, set faults, seed feedback, move the clock,
//! add apps, force processing results. Not part of Apple's API.

use super::S;
use crate::faults::Faults;
use crate::jsonapi::json_response;
use axum::Json;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

pub async fn state(sim: S) -> Response {
    let st = sim.lock();
    let uploads: Vec<_> = st.uploads.values().map(|u| json!({"id": u.id, "state": u.state, "version": u.version, "buildNumber": u.build_number, "buildId": u.build_id})).collect();
    let builds: Vec<_> = st.builds.values().map(|b| json!({"id": b.id, "version": b.version, "processingState": b.processing_state, "groups": b.groups})).collect();
    json_response(
        200,
        &json!({
            "uploads": uploads, "builds": builds, "webhooks": st.webhooks.len(), "deliveries": st.deliveries.len(),
            "violations": st.violations, "requests": st.log.len(),
        }),
    )
}

pub async fn faults(sim: S, Json(f): Json<Faults>) -> Response {
    sim.faults.set(f.clone());
    json_response(200, &serde_json::to_value(f).unwrap_or_default())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedFeedback {
    build_id: String,
    #[serde(default)]
    crashes: usize,
    #[serde(default)]
    screenshots: usize,
}

pub async fn seed_feedback(sim: S, Json(s): Json<SeedFeedback>) -> Response {
    let now = sim.now();
    let mut st = sim.lock();
    let Some(app) = st.builds.get(&s.build_id).map(|b| b.app_id.clone()) else {
        return json_response(404, &json!({"error": "no such build"}));
    };
    let mut ids = Vec::new();
    for _ in 0..s.crashes {
        ids.push(crate::processing::add_feedback(
            &mut st,
            &app,
            &s.build_id,
            true,
            now,
        ));
    }
    for _ in 0..s.screenshots {
        ids.push(crate::processing::add_feedback(
            &mut st,
            &app,
            &s.build_id,
            false,
            now,
        ));
    }
    json_response(201, &json!({ "ids": ids }))
}

#[derive(Deserialize)]
pub struct Clock {
    advance_secs: i64,
}

pub async fn clock(sim: S, Json(c): Json<Clock>) -> Response {
    sim.advance_clock(c.advance_secs);
    json_response(200, &json!({"now": sim.now().to_string()}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApp {
    id: String,
    bundle_id: String,
    name: String,
}

pub async fn add_app(sim: S, Json(a): Json<NewApp>) -> Response {
    sim.lock().add_app(&a.id, &a.bundle_id, &a.name);
    json_response(201, &json!({"id": a.id}))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Force {
    build_number: String,
    result: String,
}

/// Make processing of a build number end as `result` (INVALID, FAILED, UPLOAD_FAILED).
pub async fn force(sim: S, Json(f): Json<Force>) -> Response {
    sim.lock().forced.insert(f.build_number, f.result);
    json_response(200, &json!({}))
}
