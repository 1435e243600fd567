//! The simulator's routes: Apple's `/v1` API (behind the middleware), upload
//! part endpoints, and `/_sim` controls for tests and demos.

mod admin;
mod apps;
mod builds;
mod feedback;
mod hooks;
mod parts;
mod testers;
mod testflight;
mod uploads;

use super::Sim;
use super::jsonapi;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::{delete, get, patch, post, put};
use std::sync::Arc;

pub type S = axum::extract::State<Arc<Sim>>;
pub type Id = axum::extract::Path<String>;
pub type Q = axum::extract::Query<Vec<(String, String)>>;

pub fn router(sim: Arc<Sim>) -> Router {
    let api = Router::new()
        .route("/v1/apps", get(apps::list))
        .route("/v1/apps/{id}", get(apps::get))
        .route("/v1/apps/{id}/buildUploads", get(uploads::list_for_app))
        .route("/v1/buildUploads", post(uploads::create))
        .route(
            "/v1/buildUploads/{id}",
            get(uploads::get).delete(uploads::delete),
        )
        .route(
            "/v1/buildUploads/{id}/buildUploadFiles",
            get(uploads::files),
        )
        .route("/v1/buildUploadFiles", post(uploads::reserve))
        .route(
            "/v1/buildUploadFiles/{id}",
            get(uploads::get_file).patch(uploads::commit),
        )
        .route("/v1/builds", get(builds::list))
        .route("/v1/builds/{id}", get(builds::get).patch(builds::update))
        .route(
            "/v1/builds/{id}/relationships/betaGroups",
            post(testflight::add_groups),
        )
        .route("/v1/apps/{id}/betaGroups", get(testflight::groups))
        .route(
            "/v1/betaBuildLocalizations",
            post(testflight::create_localization),
        )
        .route(
            "/v1/betaBuildLocalizations/{id}",
            patch(testflight::update_localization),
        )
        .route(
            "/v1/builds/{id}/betaBuildLocalizations",
            get(testflight::list_localizations),
        )
        .route(
            "/v1/builds/{id}/buildBetaDetail",
            get(testflight::beta_detail),
        )
        .route(
            "/v1/buildBetaDetails/{id}",
            patch(testflight::update_beta_detail),
        )
        .route("/v1/buildBetaNotifications", post(testflight::notify))
        .route("/v1/webhooks", post(hooks::create))
        .route(
            "/v1/webhooks/{id}",
            get(hooks::get).patch(hooks::update).delete(hooks::delete),
        )
        .route("/v1/apps/{id}/webhooks", get(hooks::list))
        .route("/v1/webhooks/{id}/deliveries", get(hooks::deliveries))
        .route("/v1/webhookDeliveries", post(hooks::redeliver))
        .route("/v1/webhookPings", post(hooks::ping))
        .route(
            "/v1/apps/{id}/betaFeedbackCrashSubmissions",
            get(feedback::list_crashes),
        )
        .route(
            "/v1/apps/{id}/betaFeedbackScreenshotSubmissions",
            get(feedback::list_screenshots),
        )
        .route(
            "/v1/betaFeedbackCrashSubmissions/{id}",
            get(feedback::get_crash),
        )
        .route(
            "/v1/betaFeedbackScreenshotSubmissions/{id}",
            get(feedback::get_screenshot),
        )
        .route(
            "/v1/betaFeedbackCrashSubmissions/{id}/crashLog",
            get(feedback::crash_log),
        )
        .merge(testers_routes())
        .route_layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            super::middleware::api,
        ));
    let raw = Router::new()
        .route("/_upload/{file}/{part}", put(parts::put))
        .route("/_sim/sink", put(parts::sink))
        .route("/_sim/screenshots/{id}/{n}", get(feedback::image))
        .route("/_sim/state", get(admin::state))
        .route("/_sim/faults", post(admin::faults))
        .route("/_sim/feedback", post(admin::seed_feedback))
        .route("/_sim/clock", post(admin::clock))
        .route("/_sim/apps", post(admin::add_app))
        .route("/_sim/force", post(admin::force))
        .layer(DefaultBodyLimit::disable());
    api.merge(raw).fallback(not_found).with_state(sim)
}

/// Beta groups, testers, invitations and review submissions (`testers.rs`).
fn testers_routes() -> Router<Arc<Sim>> {
    Router::new()
        .route("/v1/betaGroups", post(testers::create_group))
        .route(
            "/v1/betaGroups/{id}",
            get(testers::get_group).patch(testers::update_group),
        )
        .route(
            "/v1/betaGroups/{id}/betaTesters",
            get(testers::group_testers),
        )
        .route(
            "/v1/betaGroups/{id}/relationships/betaTesters",
            post(testers::add_group_testers).delete(testers::remove_group_testers),
        )
        .route(
            "/v1/betaTesters",
            get(testers::list_testers).post(testers::create_tester),
        )
        .route("/v1/betaTesters/{id}", delete(testers::delete_tester))
        .route(
            "/v1/apps/{id}/relationships/betaTesters",
            delete(testers::remove_app_testers),
        )
        .route("/v1/betaTesterInvitations", post(testers::invite))
        .route(
            "/v1/betaAppReviewSubmissions",
            get(testers::list_submissions).post(testflight::submit),
        )
}

async fn not_found(uri: axum::http::Uri) -> Response {
    jsonapi::error(
        404,
        "NOT_FOUND",
        "The specified resource does not exist",
        &format!(
            "The path provided does not match a defined resource type: {}",
            uri.path()
        ),
    )
}

/// The request body as JSON (the middleware already checked it against the schema).
pub fn body(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap_or_default()
}

/// `data.relationships.<name>.data.id` of a request document.
pub fn related(doc: &serde_json::Value, name: &str) -> String {
    doc["data"]["relationships"][name]["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// One page of an app's resources of `kind`, or Apple's 404 when there is no such app.
pub fn app_page(
    sim: &Sim,
    app: &str,
    q: &jsonapi::Query,
    kind: &str,
    items: impl FnOnce(&super::state::State) -> Vec<serde_json::Value>,
) -> Response {
    let st = sim.lock();
    if st.app(app).is_none() {
        return jsonapi::not_found("apps", app);
    }
    let items = items(&st);
    jsonapi::page(
        items,
        vec![],
        q,
        &sim.base_url,
        &format!("/v1/apps/{app}/{kind}"),
    )
}
