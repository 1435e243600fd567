//! The TestFlight audience: beta group create/read/update with public links,
//! beta testers, their group and app relationships, invitations, and the
//! review submission listing build expiry consults. Written from Apple's spec
//! and documentation, never from flightdeck's client.

use super::{Id, Q, S, body, related};
use crate::ids::uuid;
use crate::jsonapi::{self, conflict, filter, not_found, page};
use crate::state::{Group, State, Tester};
use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value, json};

/// Apple's upper bound for a public link's tester limit.
const PUBLIC_LINK_MAX: i64 = 10_000;

fn group_doc(st: &State, g: &Group, base: &str, status: u16) -> Response {
    jsonapi::document(
        status,
        st.render_group(g, base),
        vec![],
        &format!("{base}/v1/betaGroups/{}", g.id),
    )
}

/// Ids of a linkage request (`{data: [{type, id}]}`).
fn linkage_ids(doc: &Value) -> Vec<String> {
    doc["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str().map(str::to_string))
        .collect()
}

pub async fn create_group(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let app_id = related(&doc, "app");
    let a = &doc["data"]["attributes"];
    let name = a["name"].as_str().unwrap_or_default().trim().to_string();
    let mut st = sim.lock();
    if st.app(&app_id).is_none() {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!("There is no app '{app_id}'."),
            Some("/data/relationships/app"),
        );
    }
    if name.is_empty() {
        return conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "A beta group needs a name.",
            Some("/data/attributes/name"),
        );
    }
    if st
        .groups
        .iter()
        .any(|g| g.app_id == app_id && g.name.eq_ignore_ascii_case(&name))
    {
        return conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE",
            &format!("A beta group named '{name}' already exists for this app."),
            Some("/data/attributes/name"),
        );
    }
    let internal = a["isInternalGroup"].as_bool().unwrap_or(false);
    let mut g = Group {
        id: uuid(),
        app_id,
        name,
        internal,
        all_builds: internal && a["hasAccessToAllBuilds"].as_bool().unwrap_or(false),
        ..Default::default()
    };
    if let Some(r) = apply_link(&mut g, a) {
        return r;
    }
    let r = group_doc(&st, &g, &sim.base_url, 201);
    st.groups.push(g);
    r
}

/// Public link attributes of a create or update request, checked as Apple
/// does; the error response when they are refused.
fn apply_link(g: &mut Group, a: &Value) -> Option<Response> {
    let enabled = a["publicLinkEnabled"].as_bool();
    let limit_enabled = a["publicLinkLimitEnabled"].as_bool();
    let limit = a["publicLinkLimit"].as_i64();
    if g.internal && (enabled == Some(true) || limit_enabled == Some(true)) {
        return Some(conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "Public links are only available for external beta groups.",
            Some("/data/attributes/publicLinkEnabled"),
        ));
    }
    if let Some(l) = limit
        && !(1..=PUBLIC_LINK_MAX).contains(&l)
    {
        return Some(conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            &format!("publicLinkLimit must be between 1 and {PUBLIC_LINK_MAX}."),
            Some("/data/attributes/publicLinkLimit"),
        ));
    }
    if let Some(e) = enabled {
        g.link.enabled = e;
        if e && g.link.id.is_none() {
            g.link.id = Some(uuid()[..8].to_string());
        }
    }
    if let Some(e) = limit_enabled {
        g.link.limit_enabled = e;
    }
    if limit.is_some() {
        g.link.limit = limit;
    }
    None
}

pub async fn get_group(sim: S, id: Id) -> Response {
    let st = sim.lock();
    match st.groups.iter().find(|g| g.id == *id) {
        Some(g) => group_doc(&st, g, &sim.base_url, 200),
        None => not_found("betaGroups", &id),
    }
}

pub async fn update_group(sim: S, id: Id, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let a = &doc["data"]["attributes"];
    let mut st = sim.lock();
    let Some(mut g) = st.groups.iter().find(|g| g.id == *id).cloned() else {
        return not_found("betaGroups", &id);
    };
    if let Some(n) = a["name"].as_str() {
        g.name = n.to_string();
    }
    if let Some(r) = apply_link(&mut g, a) {
        return r;
    }
    let r = group_doc(&st, &g, &sim.base_url, 200);
    if let Some(slot) = st.groups.iter_mut().find(|x| x.id == g.id) {
        *slot = g;
    }
    r
}

pub async fn group_testers(sim: S, id: Id, q: Q) -> Response {
    let st = sim.lock();
    if !st.groups.iter().any(|g| g.id == *id) {
        return not_found("betaGroups", &id);
    }
    let mut testers: Vec<&Tester> = st
        .testers
        .values()
        .filter(|t| t.groups.contains(&*id))
        .collect();
    testers.sort_by_key(|t| t.seq);
    let items = testers
        .iter()
        .map(|t| st.render_tester(t, &sim.base_url))
        .collect();
    page(
        items,
        vec![],
        &q,
        &sim.base_url,
        &format!("/v1/betaGroups/{}/betaTesters", *id),
    )
}

pub async fn add_group_testers(sim: S, id: Id, bytes: Bytes) -> Response {
    let ids = linkage_ids(&body(&bytes));
    let mut st = sim.lock();
    let Some(app) = st
        .groups
        .iter()
        .find(|g| g.id == *id)
        .map(|g| g.app_id.clone())
    else {
        return not_found("betaGroups", &id);
    };
    if let Some((i, t)) = ids
        .iter()
        .enumerate()
        .find(|(_, t)| !st.testers.contains_key(*t))
    {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!("There is no beta tester '{t}'."),
            Some(&format!("/data/{i}/id")),
        );
    }
    for t in ids {
        if let Some(t) = st.testers.get_mut(&t) {
            t.groups.insert(id.to_string());
            t.apps.insert(app.clone());
        }
    }
    jsonapi::no_content()
}

pub async fn remove_group_testers(sim: S, id: Id, bytes: Bytes) -> Response {
    let ids = linkage_ids(&body(&bytes));
    let mut st = sim.lock();
    if !st.groups.iter().any(|g| g.id == *id) {
        return not_found("betaGroups", &id);
    }
    for t in ids {
        if let Some(t) = st.testers.get_mut(&t) {
            t.groups.remove(&*id);
        }
    }
    jsonapi::no_content()
}

pub async fn list_testers(sim: S, q: Q) -> Response {
    let st = sim.lock();
    let emails =
        filter(&q, "email").map(|v| v.iter().map(|e| e.to_ascii_lowercase()).collect::<Vec<_>>());
    let apps = filter(&q, "apps");
    let groups = filter(&q, "betaGroups");
    let ids = filter(&q, "id");
    let mut testers: Vec<&Tester> = st
        .testers
        .values()
        .filter(|t| {
            emails
                .as_ref()
                .is_none_or(|v| v.contains(&t.email.to_ascii_lowercase()))
        })
        .filter(|t| {
            apps.as_ref()
                .is_none_or(|v| v.iter().any(|a| t.apps.contains(a)))
        })
        .filter(|t| {
            groups
                .as_ref()
                .is_none_or(|v| v.iter().any(|g| t.groups.contains(g)))
        })
        .filter(|t| ids.as_ref().is_none_or(|v| v.contains(&t.id)))
        .collect();
    testers.sort_by_key(|t| t.seq);
    let items = testers
        .iter()
        .map(|t| st.render_tester(t, &sim.base_url))
        .collect();
    page(items, vec![], &q, &sim.base_url, "/v1/betaTesters")
}

/// Create a tester in groups (or add an existing one to them). Apple answers
/// 409 when the email is already a tester in every group named.
pub async fn create_tester(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let a = &doc["data"]["attributes"];
    let email = a["email"].as_str().unwrap_or_default().trim().to_string();
    let group_ids: Vec<String> = doc["data"]["relationships"]["betaGroups"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d["id"].as_str().map(str::to_string))
        .collect();
    let mut st = sim.lock();
    if !valid_email(&email) {
        return conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            &format!("'{email}' is not a valid email address."),
            Some("/data/attributes/email"),
        );
    }
    if group_ids.is_empty() {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.REQUIRED",
            "A beta tester must be created in a beta group or for a build.",
            Some("/data/relationships"),
        );
    }
    let mut apps = Vec::new();
    for (i, gid) in group_ids.iter().enumerate() {
        match st.groups.iter().find(|g| g.id == *gid) {
            Some(g) => apps.push(g.app_id.clone()),
            None => {
                return conflict(
                    "ENTITY_ERROR.RELATIONSHIP.INVALID",
                    &format!("There is no beta group '{gid}'."),
                    Some(&format!("/data/relationships/betaGroups/data/{i}/id")),
                );
            }
        }
    }
    let existing = st
        .testers
        .values()
        .find(|t| t.email.eq_ignore_ascii_case(&email))
        .map(|t| t.id.clone());
    let id = match existing {
        Some(id) => {
            let t = &st.testers[&id];
            if group_ids.iter().all(|g| t.groups.contains(g)) {
                return conflict(
                    "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE",
                    &format!("'{email}' is already a tester in this beta group."),
                    Some("/data/attributes/email"),
                );
            }
            id
        }
        None => {
            let seq = st.next_seq();
            let t = Tester {
                id: uuid(),
                seq,
                email: email.clone(),
                first_name: a["firstName"].as_str().map(str::to_string),
                last_name: a["lastName"].as_str().map(str::to_string),
                state: "INVITED".into(),
                ..Default::default()
            };
            let id = t.id.clone();
            st.testers.insert(id.clone(), t);
            id
        }
    };
    let Some(t) = st.testers.get_mut(&id) else {
        return not_found("betaTesters", &id);
    };
    t.groups.extend(group_ids);
    t.apps.extend(apps);
    let t = t.clone();
    jsonapi::document(
        201,
        st.render_tester(&t, &sim.base_url),
        vec![],
        &format!("{}/v1/betaTesters/{}", sim.base_url, t.id),
    )
}

/// Roughly what Apple accepts: one `@`, a dotted domain, no spaces.
fn valid_email(e: &str) -> bool {
    match e.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.contains(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    }
}

pub async fn delete_tester(sim: S, id: Id) -> Response {
    match sim.lock().testers.remove(&*id) {
        Some(_) => jsonapi::no_content(),
        None => not_found("betaTesters", &id),
    }
}

/// Remove testers from an app: from the app and each of its groups.
pub async fn remove_app_testers(sim: S, id: Id, bytes: Bytes) -> Response {
    let ids = linkage_ids(&body(&bytes));
    let mut st = sim.lock();
    if st.app(&id).is_none() {
        return not_found("apps", &id);
    }
    let app_groups: Vec<String> = st
        .groups
        .iter()
        .filter(|g| g.app_id == *id)
        .map(|g| g.id.clone())
        .collect();
    for t in ids {
        if let Some(t) = st.testers.get_mut(&t) {
            t.apps.remove(&*id);
            t.groups.retain(|g| !app_groups.contains(g));
        }
    }
    jsonapi::no_content()
}

pub async fn invite(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let app_id = related(&doc, "app");
    let tester_id = related(&doc, "betaTester");
    let mut st = sim.lock();
    let Some(t) = st.testers.get_mut(&tester_id) else {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!("There is no beta tester '{tester_id}'."),
            Some("/data/relationships/betaTester"),
        );
    };
    if !t.apps.contains(&app_id) {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            "The beta tester is not a tester of this app.",
            Some("/data/relationships/app"),
        );
    }
    if t.state == "NOT_INVITED" {
        t.state = "INVITED".into();
    }
    st.invitations.push((tester_id, app_id));
    let id = uuid();
    jsonapi::document(
        201,
        json!({"type": "betaTesterInvitations", "id": id,
               "links": {"self": format!("{}/v1/betaTesterInvitations/{id}", sim.base_url)}}),
        vec![],
        &format!("{}/v1/betaTesterInvitations/{id}", sim.base_url),
    )
}

/// `filter[build]` is required, as in Apple's spec.
pub async fn list_submissions(sim: S, q: Q) -> Response {
    let Some(builds) = filter(&q, "build") else {
        return jsonapi::error_at(
            400,
            "PARAMETER_ERROR.REQUIRED",
            "A required parameter is missing.",
            "The parameter 'filter[build]' is required for this request.",
            Some(json!({"parameter": "filter[build]"})),
        );
    };
    let states = filter(&q, "betaReviewState");
    let st = sim.lock();
    let items = st
        .submissions
        .iter()
        .filter(|s| builds.contains(&s.build_id))
        .filter(|s| states.as_ref().is_none_or(|v| v.contains(&s.state)))
        .map(|s| {
            json!({"type": "betaAppReviewSubmissions", "id": s.id,
                   "attributes": {"betaReviewState": s.state, "submittedDate": crate::state::ts(s.submitted)},
                   "relationships": {"build": {"data": {"type": "builds", "id": s.build_id}}},
                   "links": {"self": format!("{}/v1/betaAppReviewSubmissions/{}", sim.base_url, s.id)}})
        })
        .collect();
    page(
        items,
        vec![],
        &q,
        &sim.base_url,
        "/v1/betaAppReviewSubmissions",
    )
}
