//! TestFlight feedback: crash and screenshot submissions, crash logs, images.

use super::{Id, Q, S};
use crate::jsonapi::{self, filter, not_found, page, param};
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use serde_json::json;

fn list(sim: &S, app: &str, q: &jsonapi::Query, crash: bool, path: &str) -> Response {
    let st = sim.lock();
    if st.app(app).is_none() {
        return not_found("apps", app);
    }
    let builds = filter(q, "build");
    let matches = |name: &str, value: &String| filter(q, name).is_none_or(|v| v.contains(value));
    let mut items: Vec<_> = st
        .feedback
        .iter()
        .filter(|f| f.crash == crash && f.app_id == app)
        .filter(|f| builds.as_ref().is_none_or(|b| b.contains(&f.build_id)))
        .filter(|f| matches("deviceModel", &f.device_model) && matches("osVersion", &f.os_version))
        .filter(|f| matches("appPlatform", &f.platform) && matches("devicePlatform", &f.platform))
        .collect();
    if param(q, "sort") == Some("createdDate") {
        items.sort_by_key(|f| f.seq);
    } else {
        items.sort_by_key(|f| std::cmp::Reverse(f.seq));
    }
    let now = sim.now();
    let data = items
        .iter()
        .map(|f| st.render_feedback_with(f, &sim.base_url, now, true))
        .collect();
    let included = included_builds(&st, &items, q, &sim.base_url);
    page(data, included, q, &sim.base_url, path)
}

/// `include=build`: the builds the listed submissions belong to, once each.
fn included_builds(
    st: &super::super::state::State,
    items: &[&super::super::state::Feedback],
    q: &jsonapi::Query,
    base: &str,
) -> Vec<serde_json::Value> {
    if !param(q, "include").is_some_and(|i| i.split(',').any(|x| x == "build")) {
        return Vec::new();
    }
    let mut ids: Vec<&String> = items.iter().map(|f| &f.build_id).collect();
    ids.sort();
    ids.dedup();
    ids.iter()
        .filter_map(|id| st.builds.get(*id))
        .map(|b| st.render_build(b, base))
        .collect()
}

pub async fn list_crashes(sim: S, id: Id, q: Q) -> Response {
    let path = format!("/v1/apps/{}/betaFeedbackCrashSubmissions", *id);
    list(&sim, &id, &q, true, &path)
}

pub async fn list_screenshots(sim: S, id: Id, q: Q) -> Response {
    let path = format!("/v1/apps/{}/betaFeedbackScreenshotSubmissions", *id);
    list(&sim, &id, &q, false, &path)
}

fn get_one(sim: &S, id: &str, crash: bool, q: &jsonapi::Query) -> Response {
    let st = sim.lock();
    let kind = if crash {
        "betaFeedbackCrashSubmissions"
    } else {
        "betaFeedbackScreenshotSubmissions"
    };
    match st.feedback.iter().find(|f| f.id == id && f.crash == crash) {
        Some(f) => jsonapi::document(
            200,
            st.render_feedback(f, &sim.base_url, sim.now()),
            included_builds(&st, &[f], q, &sim.base_url),
            &format!("{}/v1/{kind}/{id}", sim.base_url),
        ),
        None => not_found(kind, id),
    }
}

pub async fn get_crash(sim: S, id: Id, q: Q) -> Response {
    get_one(&sim, &id, true, &q)
}

pub async fn get_screenshot(sim: S, id: Id, q: Q) -> Response {
    get_one(&sim, &id, false, &q)
}

pub async fn crash_log(sim: S, id: Id) -> Response {
    let st = sim.lock();
    match st.feedback.iter().find(|f| f.id == *id && f.crash) {
        Some(f) => jsonapi::document(
            200,
            json!({"type": "betaCrashLogs", "id": format!("{}-log", f.id), "attributes": {"logText": f.crash_log.clone().unwrap_or_default()},
                   "links": {"self": format!("{}/v1/betaCrashLogs/{}-log", sim.base_url, f.id)}}),
            vec![],
            &format!(
                "{}/v1/betaFeedbackCrashSubmissions/{}/crashLog",
                sim.base_url, f.id
            ),
        ),
        None => not_found("betaFeedbackCrashSubmissions", &id),
    }
}

/// A 1x1 PNG, the stand-in for a tester's screenshot.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

pub async fn image(
    sim: S,
    Path((id, _n)): Path<(String, String)>,
    q: Q,
    headers: axum::http::HeaderMap,
) -> Response {
    if headers.contains_key("authorization") {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "screenshot URLs are presigned; send no Authorization header",
        )
            .into_response();
    }
    let expires: i64 = param(&q, "expires")
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    if expires <= sim.now().as_second() {
        return (axum::http::StatusCode::FORBIDDEN, "Request has expired").into_response();
    }
    let bytes = match sim.lock().feedback.iter().find(|f| f.id == id) {
        Some(f) => f.image.clone().unwrap_or_else(|| PNG.to_vec()),
        None => return (axum::http::StatusCode::NOT_FOUND, "no such screenshot").into_response(),
    };
    use crate::faults::Kind;
    use axum::http::StatusCode;
    let image = move || ([("content-type", "image/png")], bytes).into_response();
    match sim.faults.targeted("GET", "/_sim/screenshots/{id}/{n}") {
        Some(Kind::ServerError) => (StatusCode::SERVICE_UNAVAILABLE, "injected").into_response(),
        Some(Kind::RateLimited) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "injected",
        )
            .into_response(),
        Some(Kind::RateLimitedBare) => (StatusCode::TOO_MANY_REQUESTS, "injected").into_response(),
        Some(Kind::ExpiredToken) => (StatusCode::FORBIDDEN, "Request has expired").into_response(),
        Some(Kind::DropBefore | Kind::DropAfter) => crate::middleware::drop_connection(image()),
        Some(Kind::Hang) => {
            tokio::time::sleep(sim.faults.hang()).await;
            image()
        }
        None => image(),
    }
}
