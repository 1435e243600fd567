//! Webhook management: CRUD, deliveries, redelivery, ping.

use super::{Id, Q, S, body, related};
use crate::ids::uuid;
use crate::jsonapi::{self, conflict, filter, not_found, page, param};
use crate::state::{EventRec, Hook};
use crate::webhooks;
use axum::body::Bytes;
use axum::response::Response;
use serde_json::json;

fn valid_url(u: &str) -> bool {
    (u.starts_with("https://") || u.starts_with("http://")) && u.len() > 8
}

pub async fn create(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let a = &doc["data"]["attributes"];
    let app_id = related(&doc, "app");
    let url = a["url"].as_str().unwrap_or_default().to_string();
    if !valid_url(&url) {
        return conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            &format!("'{url}' is not a valid URL."),
            Some("/data/attributes/url"),
        );
    }
    let mut st = sim.lock();
    if st.app(&app_id).is_none() {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!("There is no app with id '{app_id}'"),
            Some("/data/relationships/app"),
        );
    }
    let h = Hook {
        id: uuid(),
        app_id,
        name: a["name"].as_str().unwrap_or_default().into(),
        url,
        secret: a["secret"].as_str().unwrap_or_default().into(),
        enabled: a["enabled"].as_bool().unwrap_or(true),
        event_types: a["eventTypes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect(),
    };
    let r = st.render_hook(&h, &sim.base_url);
    let link = format!("{}/v1/webhooks/{}", sim.base_url, h.id);
    st.webhooks.insert(h.id.clone(), h);
    jsonapi::document(201, r, vec![], &link)
}

pub async fn get(sim: S, id: Id) -> Response {
    let st = sim.lock();
    match st.webhooks.get(&*id) {
        Some(h) => jsonapi::document(
            200,
            st.render_hook(h, &sim.base_url),
            vec![],
            &format!("{}/v1/webhooks/{}", sim.base_url, h.id),
        ),
        None => not_found("webhooks", &id),
    }
}

pub async fn update(sim: S, id: Id, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let a = &doc["data"]["attributes"];
    let mut st = sim.lock();
    let Some(h) = st.webhooks.get_mut(&*id) else {
        return not_found("webhooks", &id);
    };
    if let Some(u) = a["url"].as_str() {
        if !valid_url(u) {
            return conflict(
                "ENTITY_ERROR.ATTRIBUTE.INVALID",
                &format!("'{u}' is not a valid URL."),
                Some("/data/attributes/url"),
            );
        }
        h.url = u.into();
    }
    if let Some(v) = a["name"].as_str() {
        h.name = v.into();
    }
    if let Some(v) = a["secret"].as_str() {
        h.secret = v.into();
    }
    if let Some(v) = a["enabled"].as_bool() {
        h.enabled = v;
    }
    if let Some(v) = a["eventTypes"].as_array() {
        h.event_types = v
            .iter()
            .filter_map(|e| e.as_str().map(str::to_string))
            .collect();
    }
    let h = h.clone();
    jsonapi::document(
        200,
        st.render_hook(&h, &sim.base_url),
        vec![],
        &format!("{}/v1/webhooks/{}", sim.base_url, h.id),
    )
}

pub async fn delete(sim: S, id: Id) -> Response {
    match sim.lock().webhooks.remove(&*id) {
        Some(_) => jsonapi::no_content(),
        None => not_found("webhooks", &id),
    }
}

pub async fn list(sim: S, id: Id, q: Q) -> Response {
    super::app_page(&sim, &id, &q, "webhooks", |st| {
        st.webhooks
            .values()
            .filter(|h| h.app_id == *id)
            .map(|h| st.render_hook(h, &sim.base_url))
            .collect()
    })
}

pub async fn deliveries(sim: S, id: Id, q: Q) -> Response {
    let st = sim.lock();
    if !st.webhooks.contains_key(&*id) {
        return not_found("webhooks", &id);
    }
    let states = filter(&q, "deliveryState");
    let mut ds: Vec<_> = st
        .deliveries
        .iter()
        .filter(|d| d.webhook_id == *id)
        .filter(|d| states.as_ref().is_none_or(|s| s.contains(&d.state)))
        .collect();
    ds.sort_by_key(|d| std::cmp::Reverse(d.seq));
    let include_events = param(&q, "include").is_some_and(|i| i.split(',').any(|x| x == "event"));
    let mut included = Vec::new();
    let items = ds
        .iter()
        .map(|d| {
            if include_events && let Some(e) = st.events.get(&d.event_id) {
                let r = st.render_event(e);
                if !included.contains(&r) {
                    included.push(r);
                }
            }
            st.render_delivery(d, &sim.base_url)
        })
        .collect();
    page(
        items,
        included,
        &q,
        &sim.base_url,
        &format!("/v1/webhooks/{}/deliveries", *id),
    )
}

pub async fn redeliver(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let template = related(&doc, "template");
    let found = sim
        .lock()
        .deliveries
        .iter()
        .find(|d| d.id == template)
        .map(|d| (d.webhook_id.clone(), d.event_id.clone()));
    let Some((hook, event)) = found else {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!("There is no delivery '{template}'."),
            Some("/data/relationships/template"),
        );
    };
    let id = webhooks::queue(&sim, &hook, &event, true);
    let st = sim.lock();
    let d = st.deliveries.iter().find(|d| d.id == id).cloned();
    match d {
        Some(d) => jsonapi::document(
            201,
            st.render_delivery(&d, &sim.base_url),
            vec![],
            &format!("{}/v1/webhookDeliveries/{}", sim.base_url, d.id),
        ),
        None => jsonapi::error(
            500,
            "INTERNAL_ERROR",
            "Delivery vanished.",
            "The redelivery could not be recorded.",
        ),
    }
}

pub async fn ping(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let hook = related(&doc, "webhook");
    if !sim.lock().webhooks.contains_key(&hook) {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!("There is no webhook '{hook}'."),
            Some("/data/relationships/webhook"),
        );
    }
    let event_id = uuid();
    let now = sim.now();
    let payload = json!({"data": {"type": "webhookPingCreated", "id": event_id, "version": 1,
                                  "attributes": {"timestamp": crate::state::ts(now)}}})
    .to_string();
    sim.lock().events.insert(
        event_id.clone(),
        EventRec {
            id: event_id.clone(),
            event_type: String::new(),
            payload,
            ping: true,
            created: now,
        },
    );
    webhooks::queue(&sim, &hook, &event_id, false);
    let id = uuid();
    jsonapi::document(
        201,
        json!({"type": "webhookPings", "id": id, "links": {"self": format!("{}/v1/webhookPings/{id}", sim.base_url)}}),
        vec![],
        &format!("{}/v1/webhookPings/{id}", sim.base_url),
    )
}
