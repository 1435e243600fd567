//! Waiting through a webhook relay: subscribe to its `GET /events` (Server-
//! Sent Events) over outbound HTTP, so a job on a runner nobody can reach
//! still wakes the moment App Store Connect reports. The event is only a
//! wake-up: the wait confirms with a GET as for a direct webhook. A relay
//! that is down or refuses the token is a warning; polling carries on.

use crate::ci::Reporter;
use crate::plan::RelayWait;
use crate::webhooks::Event;
use crate::webhooks::receiver::Delivery;
use bytes::Bytes;
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What the subscription asks the relay for.
#[derive(Debug, Clone)]
pub enum Interest {
    BuildUpload(String),
    /// Anything (a build's events carry no build upload id to filter on).
    Everything,
}

enum Ended {
    /// The relay refused us: do not try again.
    Refused(String),
    /// Down, or the stream broke: try again later.
    Lost(String),
}

/// Subscribe; events arrive on the returned channel until `stop`.
pub fn subscribe(
    relay: &RelayWait,
    interest: Interest,
    reporter: Arc<Reporter>,
    stop: CancellationToken,
) -> mpsc::UnboundedReceiver<Delivery> {
    let (tx, rx) = mpsc::unbounded_channel();
    let relay = relay.clone();
    tokio::spawn(async move {
        let client = match crate::api::client::transfer_client() {
            Ok(c) => c,
            Err(e) => return reporter.warning(format!("webhook relay: {e}; polling only")),
        };
        let mut warned = false;
        let mut pause = Duration::from_secs(1);
        loop {
            let ended = tokio::select! {
                _ = stop.cancelled() => return,
                e = stream(&client, &relay, &interest, &tx) => e,
            };
            match ended {
                Ended::Refused(why) => {
                    return reporter.warning(format!(
                        "webhook relay {}: {why}; waiting by polling only",
                        relay.url
                    ));
                }
                Ended::Lost(why) if !warned => {
                    warned = true;
                    reporter.warning(format!("webhook relay {}: {why}; polling carries on, reconnecting in the background", relay.url));
                }
                Ended::Lost(why) => tracing::debug!("webhook relay: {why}"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    });
    rx
}

fn events_url(relay: &RelayWait, interest: &Interest) -> String {
    let base = relay.url.trim_end_matches('/');
    let base = base.strip_suffix("/events").unwrap_or(base);
    match interest {
        Interest::BuildUpload(id) => format!(
            "{base}/events?build-upload={}",
            id.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "")
        ),
        Interest::Everything => format!("{base}/events"),
    }
}

/// One connection: read events until it ends.
async fn stream(
    client: &reqwest::Client,
    relay: &RelayWait,
    interest: &Interest,
    tx: &mpsc::UnboundedSender<Delivery>,
) -> Ended {
    let mut req = client
        .get(events_url(relay, interest))
        .header("accept", "text/event-stream");
    if let Some(t) = &relay.token {
        req = req.bearer_auth(t.expose());
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return Ended::Lost(format!(
                "cannot connect: {}",
                crate::api::error::describe_transport(&e)
            ));
        }
    };
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Ended::Refused(format!(
            "refused the token ({status}); set FLIGHTDECK_RELAY_TOKEN to the relay's subscriber token"
        ));
    }
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ended::Refused(
            "has no subscriptions (start it with --subscriber-token-env)".into(),
        );
    }
    if !status.is_success() {
        return Ended::Lost(format!("answered {status}"));
    }
    tracing::info!("subscribed to the webhook relay {}", relay.url);
    let mut body = resp.bytes_stream();
    let mut parser = SseParser::default();
    while let Some(chunk) = body.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                return Ended::Lost(format!(
                    "the stream broke: {}",
                    crate::api::error::describe_transport(&e)
                ));
            }
        };
        for data in parser.feed(&chunk) {
            if let Some(d) = delivery(&data) {
                let _ = tx.send(d);
            }
        }
    }
    Ended::Lost("the relay closed the stream".into())
}

/// The relay's `data:` JSON: `payload` is the original delivery.
fn delivery(data: &str) -> Option<Delivery> {
    let v: serde_json::Value = serde_json::from_str(data).ok()?;
    let body = Bytes::from(serde_json::to_vec(v.get("payload")?).ok()?);
    let event = Event::parse(&body).ok()?;
    Some(Delivery {
        event,
        body,
        signature: String::new(),
    })
}

/// Server-Sent Events framing: `data:` lines up to a blank line are one event.
#[derive(Default)]
struct SseParser {
    line: Vec<u8>,
    data: Vec<String>,
}

impl SseParser {
    fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in chunk {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            let line = String::from_utf8_lossy(&self.line)
                .trim_end_matches('\r')
                .to_string();
            self.line.clear();
            if line.is_empty() {
                if !self.data.is_empty() {
                    out.push(self.data.join("\n"));
                    self.data.clear();
                }
            } else if let Some(d) = line.strip_prefix("data:") {
                self.data.push(d.strip_prefix(' ').unwrap_or(d).to_string());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sse_frames_across_chunks() {
        let mut p = SseParser::default();
        assert!(p.feed(b": keep-alive\n\nid: e1\nevent: x\nda").is_empty());
        let payload = r#"{"data":{"type":"buildUploadStateUpdated","id":"e1","attributes":{"newState":"COMPLETE"},"relationships":{"instance":{"data":{"type":"buildUploads","id":"U1"}}}}}"#;
        let frame = format!("ta: {{\"id\":\"e1\",\"payload\":{payload}}}\r\n\r\n");
        let got = p.feed(frame.as_bytes());
        assert_eq!(got.len(), 1);
        let d = delivery(&got[0]).unwrap();
        assert_eq!(d.event.instance_id.as_deref(), Some("U1"));
        assert!(delivery("{\"id\":\"x\"}").is_none());
    }

    #[test]
    fn builds_the_events_url() {
        let r = RelayWait {
            url: "https://relay.example/".into(),
            token: None,
        };
        assert_eq!(
            events_url(&r, &Interest::BuildUpload("ab-12".into())),
            "https://relay.example/events?build-upload=ab-12"
        );
        let r = RelayWait {
            url: "http://h:1/events".into(),
            token: None,
        };
        assert_eq!(events_url(&r, &Interest::Everything), "http://h:1/events");
    }
}
