//! Subscribers: `GET /events` is a Server-Sent Events stream of verified
//! events, filtered by build upload, app or event type. The hub keeps the
//! events of the replay window, so a job that subscribes after its event
//! arrived still gets it.

use crate::webhooks::Event;
use bytes::Bytes;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// Events kept for replay at most (whatever the window).
const KEEP_AT_MOST: usize = 20_000;

/// A verified event as subscribers see it.
#[derive(Debug, Clone)]
pub struct Published {
    pub id: String,
    pub received_ms: u64,
    pub event: Event,
    pub body: Bytes,
}

impl Published {
    pub fn new(id: String, received_ms: u64, body: Bytes) -> Option<Self> {
        let event = Event::parse(&body).ok()?;
        Some(Self {
            id,
            received_ms,
            event,
            body,
        })
    }

    /// The SSE `data:` line: the summary and the original payload.
    pub fn data(&self) -> String {
        let payload: Value = serde_json::from_slice(&self.body).unwrap_or(Value::Null);
        serde_json::json!({
            "id": self.id,
            "type": self.event.kind,
            "instanceType": self.event.instance_type,
            "instanceId": self.event.instance_id,
            "newState": self.event.new_state,
            "receivedAt": jiff::Timestamp::from_millisecond(self.received_ms as i64).map(|t| t.to_string()).ok(),
            "payload": payload,
        })
        .to_string()
    }
}

/// What a subscriber asked for (all given conditions must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub build_upload: Option<String>,
    pub app: Option<String>,
    pub kind: Option<String>,
}

/// `BUILD_UPLOAD_STATE_UPDATED` and `buildUploadStateUpdated` are one type.
fn normalize(kind: &str) -> String {
    kind.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

impl Filter {
    pub fn matches(&self, p: &Published) -> bool {
        let e = &p.event;
        if let Some(id) = &self.build_upload
            && (e.instance_id.as_deref() != Some(id)
                || e.instance_type
                    .as_deref()
                    .is_some_and(|t| t != "buildUploads"))
        {
            return false;
        }
        if let Some(k) = &self.kind
            && normalize(k) != normalize(&e.kind)
        {
            return false;
        }
        if let Some(app) = &self.app
            && !mentions_app(&p.body, app)
        {
            return false;
        }
        true
    }
}

/// True when the payload names app `app` (`attributes.appId` or an `apps`
/// relationship).
fn mentions_app(body: &[u8], app: &str) -> bool {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let data = &v["data"];
    if data["attributes"]["appId"].as_str() == Some(app) {
        return true;
    }
    data["relationships"].as_object().is_some_and(|rels| {
        rels.values().any(|r| {
            let d = r.get("data").unwrap_or(r);
            d["type"].as_str() == Some("apps") && d["id"].as_str() == Some(app)
        })
    })
}

pub struct Hub {
    window: Duration,
    recent: Mutex<VecDeque<Arc<Published>>>,
    tx: broadcast::Sender<Arc<Published>>,
}

impl Hub {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            recent: Mutex::new(VecDeque::new()),
            tx: broadcast::channel(4096).0,
        }
    }

    pub fn publish(&self, p: Published) {
        let p = Arc::new(p);
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = super::now_ms().saturating_sub(self.window.as_millis() as u64);
        while recent.front().is_some_and(|f| f.received_ms < oldest) || recent.len() >= KEEP_AT_MOST
        {
            recent.pop_front();
        }
        recent.push_back(p.clone());
        // Sent under the lock so a new subscriber sees each event once:
        // either in its replay or live.
        let _ = self.tx.send(p);
    }

    /// The events of the window matching `f`, and the live feed after them.
    pub fn subscribe(
        &self,
        f: &Filter,
    ) -> (Vec<Arc<Published>>, broadcast::Receiver<Arc<Published>>) {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = super::now_ms().saturating_sub(self.window.as_millis() as u64);
        let replay = recent
            .iter()
            .filter(|p| p.received_ms >= oldest && f.matches(p))
            .cloned()
            .collect();
        (replay, self.tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(id: &str, event: &str) -> Published {
        let body = format!(
            r#"{{"data":{{"type":"buildUploadStateUpdated","id":"{event}","attributes":{{"newState":"COMPLETE"}},"relationships":{{"instance":{{"data":{{"type":"buildUploads","id":"{id}"}}}}}}}}}}"#
        );
        Published::new(event.into(), super::super::now_ms(), Bytes::from(body)).unwrap()
    }

    #[test]
    fn filters_by_upload_type_and_app() {
        let p = upload("U1", "e1");
        let f = |b: Option<&str>, k: Option<&str>, a: Option<&str>| Filter {
            build_upload: b.map(Into::into),
            kind: k.map(Into::into),
            app: a.map(Into::into),
        };
        assert!(f(Some("U1"), None, None).matches(&p));
        assert!(!f(Some("U2"), None, None).matches(&p));
        assert!(f(None, Some("BUILD_UPLOAD_STATE_UPDATED"), None).matches(&p));
        assert!(!f(None, Some("webhookPingCreated"), None).matches(&p));
        assert!(!f(None, None, Some("A1")).matches(&p));
        let alt = Published::new(
            "e2".into(),
            0,
            Bytes::from_static(br#"{"data":{"type":"alternativeDistributionPackageVersionCreated","id":"e2","attributes":{"appId":"A1"}}}"#),
        )
        .unwrap();
        assert!(f(None, None, Some("A1")).matches(&alt));
    }

    #[test]
    fn replays_the_window_then_goes_live() {
        let hub = Hub::new(Duration::from_secs(60));
        hub.publish(upload("U1", "e1"));
        hub.publish(upload("U2", "e2"));
        let filter = Filter {
            build_upload: Some("U1".into()),
            ..Filter::default()
        };
        let (replay, mut live) = hub.subscribe(&filter);
        assert_eq!(
            replay.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
            ["e1"]
        );
        hub.publish(upload("U1", "e3"));
        assert_eq!(live.try_recv().unwrap().id, "e3");
        let old = Hub::new(Duration::ZERO);
        let mut p = upload("U1", "e4");
        p.received_ms -= 10_000;
        old.publish(p);
        assert!(old.subscribe(&Filter::default()).0.is_empty());
    }
}
