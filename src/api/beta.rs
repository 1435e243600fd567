//! The TestFlight audience endpoints: beta groups (create, update, public
//! links), beta testers and their group and app relationships, invitations,
//! build expiry and the review submissions that keep a build alive.
//!
//! Relationship writes take many ids per request (`BATCH` at most), which is
//! how thousands of testers fit in a few requests.

use crate::api::client::{Client, Idempotency, with_query};
use crate::api::error::ApiError;
use crate::api::models::*;
use serde::Deserialize;
use serde_json::{Map, Value, json};

type R<T> = Result<T, ApiError>;

/// Ids per relationship request, and emails per `filter[email]` lookup.
pub const BATCH: usize = 100;
pub const EMAIL_LOOKUP_BATCH: usize = 50;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BetaTesterAttributes {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub state: Option<String>,
}
pub type BetaTester = Resource<BetaTesterAttributes>;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupAttributes {
    pub name: Option<String>,
    pub is_internal_group: Option<bool>,
    pub has_access_to_all_builds: Option<bool>,
    pub public_link_enabled: Option<bool>,
    pub public_link_limit_enabled: Option<bool>,
    pub public_link_limit: Option<i64>,
    pub public_link: Option<String>,
}
pub type Group = Resource<GroupAttributes>;

/// Public link settings to send; `None` leaves one as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkChange {
    pub enabled: Option<bool>,
    pub limit_enabled: Option<bool>,
    pub limit: Option<i64>,
}

impl LinkChange {
    fn write(&self, attrs: &mut Map<String, Value>) {
        if let Some(v) = self.enabled {
            attrs.insert("publicLinkEnabled".into(), json!(v));
        }
        if let Some(v) = self.limit_enabled {
            attrs.insert("publicLinkLimitEnabled".into(), json!(v));
        }
        if let Some(v) = self.limit {
            attrs.insert("publicLinkLimit".into(), json!(v));
        }
    }
}

pub async fn list_groups(c: &Client, app_id: &str) -> R<Vec<Group>> {
    Ok(
        c.get_all::<Group>(&format!("/v1/apps/{app_id}/betaGroups?limit=200"))
            .await?
            .data,
    )
}

pub async fn create_group(
    c: &Client,
    app_id: &str,
    name: &str,
    internal: bool,
    link: &LinkChange,
) -> R<Group> {
    let mut attrs = Map::new();
    attrs.insert("name".into(), json!(name));
    attrs.insert("isInternalGroup".into(), json!(internal));
    link.write(&mut attrs);
    let body = json!({"data": {"type": "betaGroups", "attributes": attrs,
        "relationships": {"app": {"data": {"type": "apps", "id": app_id}}}}});
    Ok(
        c.post::<Document<Group>>("/v1/betaGroups", &body, Idempotency::Unsafe)
            .await?
            .data,
    )
}

pub async fn update_group_link(c: &Client, group_id: &str, link: &LinkChange) -> R<Group> {
    let mut attrs = Map::new();
    link.write(&mut attrs);
    let body = json!({"data": {"type": "betaGroups", "id": group_id, "attributes": attrs}});
    Ok(
        c.patch::<Document<Group>>(&format!("/v1/betaGroups/{group_id}"), &body)
            .await?
            .data,
    )
}

pub async fn group_testers(c: &Client, group_id: &str) -> R<Vec<BetaTester>> {
    Ok(
        c.get_all::<BetaTester>(&format!("/v1/betaGroups/{group_id}/betaTesters?limit=200"))
            .await?
            .data,
    )
}

/// Testers of the team with these emails (at most `EMAIL_LOOKUP_BATCH` per call).
pub async fn find_testers_by_email(c: &Client, emails: &[String]) -> R<Vec<BetaTester>> {
    let joined = emails.join(",");
    let path = with_query(
        "/v1/betaTesters",
        &[
            ("filter[email]", joined.as_str()),
            ("fields[betaTesters]", "firstName,lastName,email,state"),
            ("limit", "200"),
        ],
    );
    Ok(c.get_all::<BetaTester>(&path).await?.data)
}

/// The app's testers (any group, or none).
pub async fn app_testers(c: &Client, app_id: &str) -> R<Vec<BetaTester>> {
    let path = with_query(
        "/v1/betaTesters",
        &[("filter[apps]", app_id), ("limit", "200")],
    );
    Ok(c.get_all::<BetaTester>(&path).await?.data)
}

/// Create a tester in a group (Apple invites them). Not idempotent: callers
/// read back on an ambiguous failure, and treat 409 as "already there".
pub async fn create_tester(
    c: &Client,
    email: &str,
    first: Option<&str>,
    last: Option<&str>,
    group_id: &str,
) -> R<BetaTester> {
    let mut attrs = Map::new();
    attrs.insert("email".into(), json!(email));
    if let Some(f) = first {
        attrs.insert("firstName".into(), json!(f));
    }
    if let Some(l) = last {
        attrs.insert("lastName".into(), json!(l));
    }
    let body = json!({"data": {"type": "betaTesters", "attributes": attrs,
        "relationships": {"betaGroups": {"data": [{"type": "betaGroups", "id": group_id}]}}}});
    Ok(
        c.post::<Document<BetaTester>>("/v1/betaTesters", &body, Idempotency::Unsafe)
            .await?
            .data,
    )
}

fn linkages(ids: &[String]) -> Value {
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"type": "betaTesters", "id": id}))
        .collect();
    json!({ "data": data })
}

/// Add existing testers to a group (one request; at most `BATCH` ids).
pub async fn add_testers_to_group(c: &Client, group_id: &str, ids: &[String]) -> R<()> {
    c.post_no_content(
        &format!("/v1/betaGroups/{group_id}/relationships/betaTesters"),
        &linkages(ids),
    )
    .await
}

/// Remove testers from a group (one request; at most `BATCH` ids).
pub async fn remove_testers_from_group(c: &Client, group_id: &str, ids: &[String]) -> R<()> {
    c.send(
        reqwest::Method::DELETE,
        &format!("/v1/betaGroups/{group_id}/relationships/betaTesters"),
        Some(&linkages(ids)),
        Idempotency::Safe,
    )
    .await
    .map(|_| ())
}

/// Remove testers from the app altogether (every group of it).
pub async fn remove_testers_from_app(c: &Client, app_id: &str, ids: &[String]) -> R<()> {
    c.send(
        reqwest::Method::DELETE,
        &format!("/v1/apps/{app_id}/relationships/betaTesters"),
        Some(&linkages(ids)),
        Idempotency::Safe,
    )
    .await
    .map(|_| ())
}

/// Send (or resend) a tester's invitation to the app.
pub async fn invite(c: &Client, app_id: &str, tester_id: &str) -> R<()> {
    let body = json!({"data": {"type": "betaTesterInvitations", "relationships": {
        "app": {"data": {"type": "apps", "id": app_id}},
        "betaTester": {"data": {"type": "betaTesters", "id": tester_id}}}}});
    c.post::<Value>("/v1/betaTesterInvitations", &body, Idempotency::Unsafe)
        .await
        .map(|_| ())
}

/// Review submissions of these builds that are still pending.
pub async fn pending_reviews(c: &Client, build_ids: &[String]) -> R<Vec<String>> {
    let joined = build_ids.join(",");
    let path = with_query(
        "/v1/betaAppReviewSubmissions",
        &[
            ("filter[build]", joined.as_str()),
            ("filter[betaReviewState]", "WAITING_FOR_REVIEW,IN_REVIEW"),
            ("limit", "200"),
        ],
    );
    let subs = c.get_all::<BetaAppReviewSubmission>(&path).await?.data;
    Ok(subs.iter().filter_map(|s| s.related_id("build")).collect())
}

pub async fn expire_build(c: &Client, build_id: &str) -> R<Build> {
    let body = json!({"data": {"type": "builds", "id": build_id, "attributes": {"expired": true}}});
    Ok(
        c.patch::<Document<Build>>(&format!("/v1/builds/{build_id}"), &body)
            .await?
            .data,
    )
}
