//! One function per App Store Connect operation flightdeck uses. Request
//! documents follow Apple's schemas exactly (the simulator validates them
//! against the vendored spec in every end-to-end test).

use crate::api::client::{Client, Idempotency, Paged, with_query};
use crate::api::error::ApiError;
use crate::api::models::*;
use serde_json::{Value, json};

type R<T> = Result<T, ApiError>;

// ---- apps -------------------------------------------------------------------

pub async fn find_app_by_bundle_id(c: &Client, bundle_id: &str) -> R<Option<App>> {
    let path = with_query(
        "/v1/apps",
        &[
            ("filter[bundleId]", bundle_id),
            ("fields[apps]", "bundleId,name,sku"),
        ],
    );
    let list: ListDocument<App> = c.get(&path).await?;
    // filter[bundleId] matches prefixes on some accounts; insist on equality.
    Ok(list
        .data
        .into_iter()
        .find(|a| a.attrs().bundle_id.as_deref() == Some(bundle_id)))
}

pub async fn get_app(c: &Client, id: &str) -> R<App> {
    let path = with_query(
        &format!("/v1/apps/{id}"),
        &[("fields[apps]", "bundleId,name,sku")],
    );
    Ok(c.get::<Document<App>>(&path).await?.data)
}

// ---- build uploads ------------------------------------------------------------

pub async fn list_build_uploads(
    c: &Client,
    app_id: &str,
    version: &str,
    build: Option<&str>,
    platform: &Platform,
) -> R<Vec<BuildUpload>> {
    let mut params = vec![
        ("filter[cfBundleShortVersionString]", version),
        ("filter[platform]", platform.as_str()),
        ("limit", "200"),
    ];
    if let Some(b) = build {
        params.push(("filter[cfBundleVersion]", b));
    }
    let path = with_query(&format!("/v1/apps/{app_id}/buildUploads"), &params);
    Ok(c.get_all::<BuildUpload>(&path).await?.data)
}

pub async fn create_build_upload(
    c: &Client,
    app_id: &str,
    version: &str,
    build: &str,
    platform: &Platform,
) -> R<BuildUpload> {
    let body = json!({"data": {
        "type": "buildUploads",
        "attributes": {"cfBundleShortVersionString": version, "cfBundleVersion": build, "platform": platform},
        "relationships": {"app": {"data": {"type": "apps", "id": app_id}}}
    }});
    Ok(
        c.post::<Document<BuildUpload>>("/v1/buildUploads", &body, Idempotency::Unsafe)
            .await?
            .data,
    )
}

/// The upload, with its build included when there is one.
pub async fn get_build_upload(c: &Client, id: &str) -> R<(BuildUpload, Option<Build>)> {
    let doc: Document<BuildUpload> = c
        .get(&with_query(
            &format!("/v1/buildUploads/{id}"),
            &[("include", "build")],
        ))
        .await?;
    let build = doc
        .data
        .related_id("build")
        .and_then(|bid| find_included::<BuildAttributes>(&doc.included, "builds", &bid));
    Ok((doc.data, build))
}

pub async fn delete_build_upload(c: &Client, id: &str) -> R<()> {
    c.delete(&format!("/v1/buildUploads/{id}")).await
}

pub async fn list_build_upload_files(c: &Client, upload_id: &str) -> R<Vec<BuildUploadFile>> {
    Ok(c.get_all::<BuildUploadFile>(&format!(
        "/v1/buildUploads/{upload_id}/buildUploadFiles?limit=200"
    ))
    .await?
    .data)
}

pub async fn reserve_file(
    c: &Client,
    upload_id: &str,
    file_name: &str,
    size: u64,
    uti: &str,
) -> R<BuildUploadFile> {
    let body = json!({"data": {
        "type": "buildUploadFiles",
        "attributes": {"assetType": "ASSET", "fileName": file_name, "fileSize": size, "uti": uti},
        "relationships": {"buildUpload": {"data": {"type": "buildUploads", "id": upload_id}}}
    }});
    Ok(
        c.post::<Document<BuildUploadFile>>("/v1/buildUploadFiles", &body, Idempotency::Unsafe)
            .await?
            .data,
    )
}

pub async fn get_file(c: &Client, id: &str) -> R<BuildUploadFile> {
    Ok(
        c.get::<Document<BuildUploadFile>>(&format!("/v1/buildUploadFiles/{id}"))
            .await?
            .data,
    )
}

/// Commit: `uploaded: true` with the whole-file checksum (hex, algorithm), if any.
pub async fn commit_file(
    c: &Client,
    id: &str,
    checksum: Option<(&str, &str)>,
) -> R<BuildUploadFile> {
    let mut attrs = json!({"uploaded": true});
    if let Some((hash_hex, algorithm)) = checksum {
        attrs["sourceFileChecksums"] = json!({"file": {"hash": hash_hex, "algorithm": algorithm}});
    }
    let body = json!({"data": {"type": "buildUploadFiles", "id": id, "attributes": attrs}});
    Ok(
        c.patch::<Document<BuildUploadFile>>(&format!("/v1/buildUploadFiles/{id}"), &body)
            .await?
            .data,
    )
}

// ---- builds -------------------------------------------------------------------

pub async fn get_build(c: &Client, id: &str) -> R<Build> {
    Ok(c.get::<Document<Build>>(&format!("/v1/builds/{id}"))
        .await?
        .data)
}

/// The build's app id.
pub async fn get_build_app_id(c: &Client, id: &str) -> R<Option<String>> {
    let doc: Document<Build> = c
        .get(&with_query(
            &format!("/v1/builds/{id}"),
            &[("include", "app"), ("fields[apps]", "bundleId")],
        ))
        .await?;
    Ok(doc.data.related_id("app"))
}

/// Builds of an app for one marketing version and platform.
pub async fn list_builds(
    c: &Client,
    app_id: &str,
    version: Option<&str>,
    platform: &Platform,
) -> R<Vec<Build>> {
    let mut params = vec![
        ("filter[app]", app_id),
        ("filter[preReleaseVersion.platform]", platform.as_str()),
        ("limit", "200"),
    ];
    if let Some(v) = version {
        params.push(("filter[preReleaseVersion.version]", v));
    }
    Ok(c.get_all::<Build>(&with_query("/v1/builds", &params))
        .await?
        .data)
}

pub async fn set_export_compliance(c: &Client, build_id: &str, uses_non_exempt: bool) -> R<Build> {
    let body = json!({"data": {"type": "builds", "id": build_id, "attributes": {"usesNonExemptEncryption": uses_non_exempt}}});
    Ok(
        c.patch::<Document<Build>>(&format!("/v1/builds/{build_id}"), &body)
            .await?
            .data,
    )
}

// ---- TestFlight -----------------------------------------------------------------

pub async fn list_beta_groups(c: &Client, app_id: &str) -> R<Vec<BetaGroup>> {
    Ok(
        c.get_all::<BetaGroup>(&format!("/v1/apps/{app_id}/betaGroups?limit=200"))
            .await?
            .data,
    )
}

pub async fn add_build_to_groups(c: &Client, build_id: &str, group_ids: &[String]) -> R<()> {
    let data: Vec<Value> = group_ids
        .iter()
        .map(|id| json!({"type": "betaGroups", "id": id}))
        .collect();
    c.post_no_content(
        &format!("/v1/builds/{build_id}/relationships/betaGroups"),
        &json!({ "data": data }),
    )
    .await
}

pub async fn list_localizations(c: &Client, build_id: &str) -> R<Vec<BetaBuildLocalization>> {
    Ok(c.get_all::<BetaBuildLocalization>(&format!(
        "/v1/builds/{build_id}/betaBuildLocalizations?limit=200"
    ))
    .await?
    .data)
}

pub async fn create_localization(
    c: &Client,
    build_id: &str,
    locale: &str,
    whats_new: &str,
) -> R<BetaBuildLocalization> {
    let body = json!({"data": {
        "type": "betaBuildLocalizations",
        "attributes": {"locale": locale, "whatsNew": whats_new},
        "relationships": {"build": {"data": {"type": "builds", "id": build_id}}}
    }});
    Ok(c.post::<Document<BetaBuildLocalization>>(
        "/v1/betaBuildLocalizations",
        &body,
        Idempotency::Unsafe,
    )
    .await?
    .data)
}

pub async fn update_localization(
    c: &Client,
    id: &str,
    whats_new: &str,
) -> R<BetaBuildLocalization> {
    let body = json!({"data": {"type": "betaBuildLocalizations", "id": id, "attributes": {"whatsNew": whats_new}}});
    Ok(c.patch::<Document<BetaBuildLocalization>>(
        &format!("/v1/betaBuildLocalizations/{id}"),
        &body,
    )
    .await?
    .data)
}

pub async fn submit_for_beta_review(c: &Client, build_id: &str) -> R<BetaAppReviewSubmission> {
    let body = json!({"data": {"type": "betaAppReviewSubmissions",
        "relationships": {"build": {"data": {"type": "builds", "id": build_id}}}}});
    Ok(c.post::<Document<BetaAppReviewSubmission>>(
        "/v1/betaAppReviewSubmissions",
        &body,
        Idempotency::Unsafe,
    )
    .await?
    .data)
}

pub async fn notify_testers(c: &Client, build_id: &str) -> R<()> {
    let body = json!({"data": {"type": "buildBetaNotifications",
        "relationships": {"build": {"data": {"type": "builds", "id": build_id}}}}});
    c.post::<Value>("/v1/buildBetaNotifications", &body, Idempotency::Unsafe)
        .await
        .map(|_| ())
}

// ---- webhooks -------------------------------------------------------------------

pub async fn list_webhooks(c: &Client, app_id: &str) -> R<Vec<Webhook>> {
    Ok(
        c.get_all::<Webhook>(&format!("/v1/apps/{app_id}/webhooks?limit=200"))
            .await?
            .data,
    )
}

pub async fn create_webhook(
    c: &Client,
    app_id: &str,
    name: &str,
    url: &str,
    secret: &str,
    events: &[String],
    enabled: bool,
) -> R<Webhook> {
    let body = json!({"data": {
        "type": "webhooks",
        "attributes": {"enabled": enabled, "eventTypes": events, "name": name, "secret": secret, "url": url},
        "relationships": {"app": {"data": {"type": "apps", "id": app_id}}}
    }});
    Ok(
        c.post::<Document<Webhook>>("/v1/webhooks", &body, Idempotency::Unsafe)
            .await?
            .data,
    )
}

/// Attributes to change; `None` leaves an attribute as it is.
#[derive(Debug, Default, Clone)]
pub struct WebhookChanges {
    pub enabled: Option<bool>,
    pub event_types: Option<Vec<String>>,
    pub name: Option<String>,
    pub secret: Option<String>,
    pub url: Option<String>,
}

pub async fn update_webhook(c: &Client, id: &str, ch: &WebhookChanges) -> R<Webhook> {
    let mut attrs = serde_json::Map::new();
    if let Some(v) = ch.enabled {
        attrs.insert("enabled".into(), json!(v));
    }
    if let Some(v) = &ch.event_types {
        attrs.insert("eventTypes".into(), json!(v));
    }
    for (k, v) in [("name", &ch.name), ("secret", &ch.secret), ("url", &ch.url)] {
        if let Some(v) = v {
            attrs.insert(k.into(), json!(v));
        }
    }
    let body = json!({"data": {"type": "webhooks", "id": id, "attributes": attrs}});
    Ok(
        c.patch::<Document<Webhook>>(&format!("/v1/webhooks/{id}"), &body)
            .await?
            .data,
    )
}

pub async fn delete_webhook(c: &Client, id: &str) -> R<()> {
    c.delete(&format!("/v1/webhooks/{id}")).await
}

pub async fn list_deliveries(
    c: &Client,
    webhook_id: &str,
    state: Option<&str>,
) -> R<Paged<WebhookDelivery>> {
    let mut params = vec![("include", "event"), ("limit", "200")];
    if let Some(s) = state {
        params.push(("filter[deliveryState]", s));
    }
    c.get_all::<WebhookDelivery>(&with_query(
        &format!("/v1/webhooks/{webhook_id}/deliveries"),
        &params,
    ))
    .await
}

pub async fn redeliver(c: &Client, delivery_id: &str) -> R<WebhookDelivery> {
    let body = json!({"data": {"type": "webhookDeliveries",
        "relationships": {"template": {"data": {"type": "webhookDeliveries", "id": delivery_id}}}}});
    Ok(
        c.post::<Document<WebhookDelivery>>("/v1/webhookDeliveries", &body, Idempotency::Unsafe)
            .await?
            .data,
    )
}

pub async fn ping_webhook(c: &Client, webhook_id: &str) -> R<String> {
    let body = json!({"data": {"type": "webhookPings",
        "relationships": {"webhook": {"data": {"type": "webhooks", "id": webhook_id}}}}});
    let doc: Document<Resource<Value>> = c
        .post("/v1/webhookPings", &body, Idempotency::Unsafe)
        .await?;
    Ok(doc.data.id)
}

// ---- feedback -------------------------------------------------------------------

/// `kind` is `betaFeedbackCrashSubmissions` or `betaFeedbackScreenshotSubmissions`.
pub async fn list_feedback(
    c: &Client,
    app_id: &str,
    kind: &str,
    build_id: Option<&str>,
) -> R<Vec<Resource<Value>>> {
    let mut params = vec![("sort", "-createdDate"), ("limit", "200")];
    if let Some(b) = build_id {
        params.push(("filter[build]", b));
    }
    Ok(
        c.get_all::<Resource<Value>>(&with_query(&format!("/v1/apps/{app_id}/{kind}"), &params))
            .await?
            .data,
    )
}

pub async fn crash_log(c: &Client, submission_id: &str) -> R<Option<String>> {
    let doc: Document<Resource<Value>> = c
        .get(&format!(
            "/v1/betaFeedbackCrashSubmissions/{submission_id}/crashLog"
        ))
        .await?;
    Ok(doc.data.attributes.and_then(|a| {
        a.get("logText")
            .and_then(|t| t.as_str())
            .map(str::to_string)
    }))
}

/// The list filters of both feedback list endpoints (`filter[...]`).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FeedbackFilter {
    pub build: Option<String>,
    /// `filter[appPlatform]`: IOS, MAC_OS, TV_OS or VISION_OS.
    pub platform: Option<String>,
    pub device_model: Option<String>,
    pub os_version: Option<String>,
}

impl FeedbackFilter {
    /// True when a submission's attributes satisfy every filter but `build`
    /// (which the list always applies).
    pub fn matches(&self, attrs: &Value) -> bool {
        let eq = |want: &Option<String>, key: &str| {
            want.as_deref()
                .is_none_or(|w| attrs.get(key).and_then(Value::as_str) == Some(w))
        };
        eq(&self.platform, "appPlatform")
            && eq(&self.device_model, "deviceModel")
            && eq(&self.os_version, "osVersion")
    }
}

/// The first page's path: newest first, with the build included for its number.
pub fn feedback_list_path(app_id: &str, kind: &str, f: &FeedbackFilter) -> String {
    let mut params = vec![
        ("sort", "-createdDate"),
        ("limit", "200"),
        ("include", "build"),
        ("fields[builds]", "version"),
    ];
    for (name, v) in [
        ("filter[build]", &f.build),
        ("filter[appPlatform]", &f.platform),
        ("filter[deviceModel]", &f.device_model),
        ("filter[osVersion]", &f.os_version),
    ] {
        // Filters are comma-separated lists, so a value with a comma (every
        // device model: iPhone16,1) cannot be sent; `FeedbackFilter::matches`
        // applies it to what comes back instead.
        if let Some(v) = v.as_deref().filter(|v| !v.contains(',')) {
            params.push((name, v));
        }
    }
    with_query(&format!("/v1/apps/{app_id}/{kind}"), &params)
}

/// One page of a feedback list (`path` is the first page's or a `links.next`).
pub async fn feedback_page(c: &Client, path: &str) -> R<ListDocument<Resource<Value>>> {
    c.get(path).await
}

/// One submission, with its build included (fresh screenshot URLs, for the relay).
pub async fn get_feedback(c: &Client, kind: &str, id: &str) -> R<Document<Resource<Value>>> {
    c.get(&with_query(
        &format!("/v1/{kind}/{id}"),
        &[("include", "build"), ("fields[builds]", "version")],
    ))
    .await
}
