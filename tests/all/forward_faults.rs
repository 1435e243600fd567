//! The fault matrix's relay row: a signed delivery reaches a relay
//! (`relay::serve`, in process, on its embedded spool), which forwards it to
//! a target that answers the first attempt with one fault. The target is a
//! raw HTTP/1.1 server, so "dropped before" and "dropped after acting" are a
//! connection closed with no answer at all, before and after the target took
//! the event. A cell survives when the target took the event (by its id),
//! once, or twice only where the first answer was lost after the target had
//! acted (the same event id both times: receivers dedupe on it), and the
//! relay's metrics say one forward landed after at least one retry, with
//! nothing pending.

use super::fault_matrix::Outcome;
use asc_simulator::faults::Kind;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "forward-fault-secret-0123456789";
const EVENT_ID: &str = "0b1c2d3e-forward-fault";
/// The target's hang, past the relay's forward timeout below.
const HANG: Duration = Duration::from_millis(2500);

/// A forward target that answers its first request with `fault`.
struct FaultyTarget {
    url: String,
    /// Event ids of the requests the target acted on.
    taken: Arc<Mutex<Vec<String>>>,
    /// When each request arrived, from the cell's start.
    arrivals: Arc<Mutex<Vec<Duration>>>,
}

impl FaultyTarget {
    async fn start(fault: Kind) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let taken = Arc::new(Mutex::new(Vec::new()));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let (t, a) = (taken.clone(), arrivals.clone());
        let started = tokio::time::Instant::now();
        tokio::spawn(async move {
            let mut first = Some(fault);
            while let Ok((sock, _)) = listener.accept().await {
                a.lock().unwrap().push(started.elapsed());
                tokio::spawn(answer(sock, first.take(), t.clone()));
            }
        });
        FaultyTarget {
            url,
            taken,
            arrivals,
        }
    }
}

/// Read one request (head and `content-length` body); then act on it or not,
/// and answer per `fault`. One request per connection (`connection: close`).
async fn answer(
    mut sock: tokio::net::TcpStream,
    fault: Option<Kind>,
    taken: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let (head_end, length) = loop {
        let Ok(n) = sock.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    if fault == Some(Kind::DropBefore) {
        return; // closed before the target read the event
    }
    while buf.len() < head_end + length {
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body: serde_json::Value =
        serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or_default();
    let id = body["data"]["id"].as_str().unwrap_or("?").to_string();
    // Which answers come after the target took the event.
    if matches!(fault, None | Some(Kind::DropAfter | Kind::Hang)) {
        taken.lock().unwrap().push(id);
    }
    let (status, extra) = match fault {
        None => ("200 OK", ""),
        Some(Kind::DropAfter) => return, // acted, then the connection broke
        Some(Kind::Hang) => {
            tokio::time::sleep(HANG).await;
            ("200 OK", "")
        }
        Some(Kind::ServerError) => ("503 Service Unavailable", ""),
        Some(Kind::RateLimited) => ("429 Too Many Requests", "retry-after: 2\r\n"),
        Some(Kind::RateLimitedBare) => ("429 Too Many Requests", ""),
        Some(Kind::ExpiredToken) => ("401 Unauthorized", ""),
        Some(Kind::DropBefore) => return,
    };
    let reply =
        format!("HTTP/1.1 {status}\r\n{extra}content-length: 0\r\nconnection: close\r\n\r\n");
    let _ = sock.write_all(reply.as_bytes()).await;
    let _ = sock.shutdown().await;
}

fn sign(body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(body.as_bytes());
    format!("hmacsha256={}", hex::encode(m.finalize().into_bytes()))
}

/// `flightdeck_webhook_forwards_total{result="RESULT"}` and friends.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// One cell of the relay row; `deadline` bounds it.
pub async fn cell(fault: Kind, deadline: Duration) -> Outcome {
    match tokio::time::timeout(deadline, run(fault)).await {
        Ok(o) => o,
        Err(_) => Outcome::Bad(format!("still running after {deadline:?}")),
    }
}

async fn run(fault: Kind) -> Outcome {
    use flightdeck::relay::{Config, StoreConfig, Tuning, forward::Target, serve};
    let spool = tempfile::tempdir().unwrap();
    let target = FaultyTarget::start(fault).await;
    let config = Config {
        listen: "127.0.0.1:0".into(),
        secret: flightdeck::secret::Secret::new(SECRET.to_string()),
        targets: vec![Target::Url(target.url.clone())],
        store: StoreConfig::Spool(spool.path().to_path_buf()),
        subscriber_token: None,
        tuning: Tuning {
            retry_max_delay: Duration::from_millis(500),
            forward_timeout: Duration::from_secs(1),
            ..Tuning::default()
        },
        node: "matrix".into(),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let relay = tokio::spawn(serve(config, cancel.clone(), move |a| {
        let _ = tx.send(a);
    }));
    let Ok(addr) = rx.await else {
        return Outcome::Bad(format!("the relay did not start: {:?}", relay.await));
    };
    let body = format!(
        r#"{{"data":{{"type":"buildUploadStateUpdated","id":"{EVENT_ID}","version":1,"attributes":{{"newState":"COMPLETE"}},"relationships":{{"instance":{{"data":{{"type":"buildUploads","id":"upload-1"}}}}}}}}}}"#
    );
    let http = reqwest::Client::new();
    let base = format!("http://{addr}");
    let accepted = http
        .post(format!("{base}/asc"))
        .header("x-apple-signature", sign(&body))
        .body(body.clone())
        .send()
        .await
        .map(|r| r.status().as_u16());
    if !matches!(accepted, Ok(200)) {
        return Outcome::Bad(format!("the delivery was answered {accepted:?}"));
    }
    let metrics = loop {
        let text = match http.get(format!("{base}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let landed = metric(&text, "flightdeck_webhook_forwards_total{result=\"ok\"}") >= 1.0;
        if landed && metric(&text, "flightdeck_webhook_pending") == 0.0 {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    cancel.cancel();
    match relay.await {
        Ok(Ok(())) => {}
        other => return Outcome::Bad(format!("the relay ended with {other:?}")),
    }
    judge(fault, &target, &metrics)
}

fn judge(fault: Kind, target: &FaultyTarget, metrics: &str) -> Outcome {
    let taken = target.taken.lock().unwrap().clone();
    let lost_answer = matches!(fault, Kind::DropAfter | Kind::Hang);
    let expected = if lost_answer { 2 } else { 1 };
    if taken.len() != expected || taken.iter().any(|id| id != EVENT_ID) {
        return Outcome::Bad(format!("the target took {taken:?}"));
    }
    let retries = metric(
        metrics,
        "flightdeck_webhook_forwards_total{result=\"retry\"}",
    );
    if retries < 1.0 {
        return Outcome::Bad("the fault was never met: no retry counted".into());
    }
    if fault == Kind::RateLimited {
        let a = target.arrivals.lock().unwrap().clone();
        if a.len() < 2 || a[1] - a[0] < Duration::from_millis(1900) {
            return Outcome::Bad(format!("Retry-After: 2 not obeyed: arrivals {a:?}"));
        }
    }
    Outcome::Ok
}
