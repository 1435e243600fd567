//! Webhook events and their signed delivery (`x-apple-signature:
//! hmacsha256=<hex>` over the raw body, Apple's envelope).

use super::Sim;
use super::ids::uuid;
use super::state::{Delivery, EventRec};
use serde_json::{Value, json};
use std::sync::Arc;

/// `BUILD_UPLOAD_STATE_UPDATED` -> `buildUploadStateUpdated`.
pub fn camel(event_type: &str) -> String {
    let mut out = String::new();
    for (i, word) in event_type.split('_').enumerate() {
        let w = word.to_ascii_lowercase();
        if i == 0 {
            out.push_str(&w);
        } else {
            let mut c = w.chars();
            if let Some(f) = c.next() {
                out.push(f.to_ascii_uppercase());
                out.extend(c);
            }
        }
    }
    out
}

pub fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("hmacsha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Announce a build upload's new state, as Apple's sample shows it.
pub fn upload_state(sim: &Arc<Sim>, upload_id: &str, new_state: &str) {
    let app_id = {
        let mut st = sim.lock();
        let Some(app) = st.uploads.get(upload_id).map(|u| u.app_id.clone()) else {
            return;
        };
        st.transitions.push((
            upload_id.to_string(),
            new_state.to_string(),
            std::time::Instant::now(),
        ));
        app
    };
    emit(
        sim,
        &app_id,
        "BUILD_UPLOAD_STATE_UPDATED",
        json!({"newState": new_state}),
        Some(("buildUploads", upload_id)),
    );
}

/// Record an event and deliver it to every enabled webhook of the app subscribed to it.
pub fn emit(
    sim: &Arc<Sim>,
    app_id: &str,
    event_type: &str,
    attributes: Value,
    instance: Option<(&str, &str)>,
) {
    let id = uuid();
    let mut data =
        json!({"type": camel(event_type), "id": id, "version": 1, "attributes": attributes});
    if let Some((kind, iid)) = instance {
        data["relationships"] = json!({"instance": {"data": {"type": kind, "id": iid}}});
    }
    let payload = json!({ "data": data }).to_string();
    let now = sim.now();
    let targets: Vec<String> = {
        let mut st = sim.lock();
        st.events.insert(
            id.clone(),
            EventRec {
                id: id.clone(),
                event_type: event_type.into(),
                payload,
                ping: false,
                created: now,
            },
        );
        st.webhooks
            .values()
            .filter(|h| {
                h.app_id == app_id && h.enabled && h.event_types.iter().any(|e| e == event_type)
            })
            .map(|h| h.id.clone())
            .collect()
    };
    for hook in targets {
        queue(sim, &hook, &id, false);
    }
}

/// Create a delivery of `event_id` to `webhook_id` and send it in the background.
pub fn queue(sim: &Arc<Sim>, webhook_id: &str, event_id: &str, redelivery: bool) -> String {
    let id = uuid();
    {
        let mut st = sim.lock();
        let seq = st.next_seq();
        st.deliveries.push(Delivery {
            id: id.clone(),
            seq,
            webhook_id: webhook_id.into(),
            event_id: event_id.into(),
            created: sim.now(),
            sent: None,
            state: "PENDING".into(),
            redelivery,
            status: None,
            response_body: None,
            error: None,
        });
    }
    let (sim2, did) = (sim.clone(), id.clone());
    tokio::spawn(async move { send(sim2, did).await });
    id
}

async fn send(sim: Arc<Sim>, delivery_id: String) {
    let (url, secret, payload) = {
        let st = sim.lock();
        let Some(d) = st.deliveries.iter().find(|d| d.id == delivery_id) else {
            return;
        };
        let (Some(h), Some(e)) = (st.webhooks.get(&d.webhook_id), st.events.get(&d.event_id))
        else {
            return;
        };
        (h.url.clone(), h.secret.clone(), e.payload.clone())
    };
    let aimed = sim.faults.targeted("POST", DELIVERY_ROUTE);
    if aimed == Some(crate::faults::Kind::Hang) {
        tokio::time::sleep(sim.faults.hang()).await;
    }
    let lost = aimed.is_some_and(|k| {
        !matches!(
            k,
            crate::faults::Kind::Hang | crate::faults::Kind::DropAfter
        )
    });
    let result = if lost {
        record(
            &sim,
            &delivery_id,
            (None, None, Some("delivery failed: injected fault".into())),
        );
        return;
    } else {
        sim.http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-apple-signature", sign(&secret, payload.as_bytes()))
            .body(payload)
            .send()
            .await
    };
    let outcome = match result {
        Ok(r) => {
            let status = r.status().as_u16();
            let body: String = r
                .text()
                .await
                .unwrap_or_default()
                .chars()
                .take(1000)
                .collect();
            (Some(status), Some(body), None)
        }
        Err(e) => (None, None, Some(format!("delivery failed: {e}"))),
    };
    record(&sim, &delivery_id, outcome);
}

/// The route name targeted faults use for the simulator's own deliveries.
pub const DELIVERY_ROUTE: &str = "webhook-delivery";

type Outcome = (Option<u16>, Option<String>, Option<String>);

fn record(sim: &Sim, delivery_id: &str, outcome: Outcome) {
    let now = sim.now();
    let mut st = sim.lock();
    if let Some(d) = st.deliveries.iter_mut().find(|d| d.id == delivery_id) {
        d.sent = Some(now);
        d.state = if outcome.0.is_some_and(|s| (200..300).contains(&s)) {
            "SUCCEEDED".into()
        } else {
            "FAILED".into()
        };
        d.status = outcome.0;
        d.response_body = outcome.1;
        d.error = outcome.2.or_else(|| {
            (d.state == "FAILED")
                .then(|| format!("the endpoint answered {}", d.status.unwrap_or(0)))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apple_signature_vector() {
        assert_eq!(
            sign("This is my secret", b"Hello, World!"),
            "hmacsha256=7f062172b01cb00b53ca068614674a3d982a34062a0f5d37687d5e3377e54657"
        );
    }

    #[test]
    fn event_names_are_camel_case() {
        assert_eq!(
            camel("BUILD_UPLOAD_STATE_UPDATED"),
            "buildUploadStateUpdated"
        );
        assert_eq!(
            camel("BETA_FEEDBACK_SCREENSHOT_SUBMISSION_CREATED"),
            "betaFeedbackScreenshotSubmissionCreated"
        );
    }
}
