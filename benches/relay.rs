//! Relay load: verified deliveries per second and their latency through one
//! `flightdeck webhooks listen` process (the release binary) on loopback, with
//! the embedded spool (group-committed fsyncs) and with Redis.
//!
//! Run: `cargo bench --bench relay`. Bounded: RELAY_BENCH_COUNT deliveries
//! (default 60000) or RELAY_BENCH_SECS seconds (default 30), whichever ends
//! first, over RELAY_BENCH_CONNS keep-alive connections (default 64). Every
//! delivery is a distinct, correctly signed event, so each is verified,
//! persisted and acknowledged only once durable. The load generator runs on
//! the same machine (and cores) as the relay. Target: >= 10,000/s with the
//! embedded store on 2 cores.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "bench-secret-0123456789";

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let count = env_num("RELAY_BENCH_COUNT", 60_000) as usize;
    let secs = env_num("RELAY_BENCH_SECS", 30);
    let conns = env_num("RELAY_BENCH_CONNS", 64) as usize;
    println!(
        "relay load: {count} deliveries max, {secs}s max, {conns} connections, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool").display().to_string();
    scenario(
        "embedded spool",
        &["--spool", &spool],
        dir.path(),
        count,
        secs,
        conns,
    )
    .await;
    match Redis::start(dir.path()).await {
        Some(r) => {
            scenario(
                "redis",
                &["--redis", &r.url],
                dir.path(),
                count,
                secs,
                conns,
            )
            .await
        }
        None => println!("redis: skipped (no redis-server on PATH; apt-get install redis-server)"),
    }
}

struct Redis {
    child: std::process::Child,
    url: String,
}

impl Redis {
    async fn start(dir: &std::path::Path) -> Option<Self> {
        let port = free_port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let r = Redis {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        for _ in 0..250 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(r);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn signed(i: usize, tag: &str) -> Vec<u8> {
    use hmac::{KeyInit, Mac};
    let body = format!(
        r#"{{"data":{{"type":"buildUploadStateUpdated","id":"{tag}-{i:08}","version":1,"attributes":{{"newState":"COMPLETE"}},"relationships":{{"instance":{{"data":{{"type":"buildUploads","id":"ad7e6298-2570-4ca6-b3cc-f81788e40bdc"}}}}}}}}}}"#
    );
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(body.as_bytes());
    let sig = hex::encode(m.finalize().into_bytes());
    format!(
        "POST /hook HTTP/1.1\r\nhost: relay\r\ncontent-type: application/json\r\nx-apple-signature: hmacsha256={sig}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn scenario(
    name: &str,
    store: &[&str],
    dir: &std::path::Path,
    count: usize,
    secs: u64,
    conns: usize,
) {
    let port = free_port();
    let mut relay = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"))
        .env_clear()
        .env("WH_SECRET", SECRET)
        .env("FLIGHTDECK_LOG", "warn")
        .current_dir(dir)
        .args([
            "--ci",
            "none",
            "webhooks",
            "listen",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--secret-env",
            "WH_SECRET",
        ])
        .args(store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(up, "{name}: the relay did not come up");
    let tag = name.replace(' ', "-");
    let requests: Vec<Vec<u8>> = (0..count).map(|i| signed(i, &tag)).collect();
    let requests = std::sync::Arc::new(requests);
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (requests, next) = (requests.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            connection(port, &requests, &next, deadline).await
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    let mut failures = 0usize;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        latencies.extend(l);
        failures += f;
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{name:>15}: {} verified deliveries in {:.2}s = {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {failures} not 200",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(relay.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    let _ = tokio::time::timeout(Duration::from_secs(20), relay.wait()).await;
}

/// One keep-alive connection sending requests until none are left or time is up.
async fn connection(
    port: u16,
    requests: &[Vec<u8>],
    next: &std::sync::atomic::AtomicUsize,
    deadline: Instant,
) -> (Vec<Duration>, usize) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.set_nodelay(true).unwrap();
    let mut lat = Vec::new();
    let mut failures = 0;
    let mut buf = vec![0u8; 4096];
    while Instant::now() < deadline {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(req) = requests.get(i) else { break };
        let t = Instant::now();
        s.write_all(req).await.unwrap();
        let status = read_response(&mut s, &mut buf).await;
        if status == 200 {
            lat.push(t.elapsed());
        } else {
            failures += 1;
        }
    }
    (lat, failures)
}

/// Read one response (headers + content-length body); its status code.
async fn read_response(s: &mut tokio::net::TcpStream, buf: &mut [u8]) -> u16 {
    let mut have = 0;
    loop {
        let n = s.read(&mut buf[have..]).await.unwrap();
        assert!(n > 0, "the relay closed the connection");
        have += n;
        let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while have < end + 4 + len {
            let n = s.read(&mut buf[have..]).await.unwrap();
            assert!(n > 0, "the relay closed the connection");
            have += n;
        }
        return head.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    }
}
