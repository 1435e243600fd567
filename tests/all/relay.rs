//! The webhook relay (`webhooks listen`) as deployed: the real binary, a real
//! redis-server, stand-ins for the forward targets, and a real `wait`.

use crate::standins::{Mode, Standin, github_routes, gitlab_routes, sink_routes};
use crate::support::*;
use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SECRET: &str = "relay-secret-0123456789";
const SUB_TOKEN: &str = "subscriber-token-abcdef";
const GH_TOKEN: &str = "ghs_relaytesttoken";
const GL_TOKEN: &str = "glptt-relaytesttoken";

fn sign(body: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    m.update(body.as_bytes());
    format!("hmacsha256={}", hex::encode(m.finalize().into_bytes()))
}

fn event(id: &str, upload: &str) -> String {
    format!(
        r#"{{"data":{{"type":"buildUploadStateUpdated","id":"{id}","version":1,"attributes":{{"newState":"COMPLETE"}},"relationships":{{"instance":{{"data":{{"type":"buildUploads","id":"{upload}"}}}}}}}}}}"#
    )
}

/// A relay process; SIGKILLed when dropped.
struct Relay {
    child: tokio::process::Child,
    url: String,
    log: PathBuf,
}

impl Relay {
    async fn start(dir: &Path, name: &str, extra: &[&str], vars: &[(&str, &str)]) -> Relay {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join(format!("{name}.log"));
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("WH_SECRET", SECRET)
            .env("SUB_TOKEN", SUB_TOKEN)
            .current_dir(dir)
            .args([
                "--ci",
                "none",
                "webhooks",
                "listen",
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .args([
                "--secret-env",
                "WH_SECRET",
                "--subscriber-token-env",
                "SUB_TOKEN",
                "--retry-max-delay",
                "1s",
            ])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let r = Relay {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(resp) = http.get(format!("{}/healthz", r.url)).send().await {
                assert_eq!(resp.status(), 200, "healthz of {name}");
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("relay {name} did not come up: {}", r.logs());
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn post(&self, body: &str, sig: Option<&str>) -> StatusCode {
        let mut rq = reqwest::Client::new()
            .post(format!("{}/asc/hook", self.url))
            .body(body.to_string());
        if let Some(s) = sig {
            rq = rq.header("x-apple-signature", s);
        }
        rq.send().await.unwrap().status()
    }

    async fn deliver(&self, body: &str) {
        assert_eq!(
            self.post(body, Some(&sign(body))).await,
            200,
            "{}",
            self.logs()
        );
    }

    /// `/metrics` as series -> value.
    async fn metrics(&self) -> BTreeMap<String, f64> {
        let text = reqwest::get(format!("{}/metrics", self.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(f64::NAN)))
            .collect()
    }

    async fn terminate(mut self) -> Option<i32> {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id().unwrap() as libc::pid_t, libc::SIGTERM) };
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("relay exits on SIGTERM")
            .unwrap();
        status.code()
    }

    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

fn deliveries(m: &BTreeMap<String, f64>, result: &str) -> f64 {
    m[&format!("flightdeck_webhook_deliveries_total{{result=\"{result}\"}}")]
}

/// Wait (bounded) until `f` holds, polling every 50 ms.
async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Event ids the stand-in took (answered 2xx), with how often.
fn taken(s: &Standin, id_of: impl Fn(&crate::standins::Call) -> String) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in s.delivered() {
        *m.entry(id_of(&c)).or_insert(0) += 1;
    }
    m
}

fn url_event_id(c: &crate::standins::Call) -> String {
    c.json()["data"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn relay_refuses_forged_oversized_and_malformed_bodies_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let relay = Relay::start(dir.path(), "relay", &["--request-timeout", "1s"], &[]).await;
    let body = event("ev-1", "U1");
    // A client that never sends its body holds only its own request.
    let mut slow = tokio::net::TcpStream::connect(relay.url.trim_start_matches("http://"))
        .await
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        slow.write_all(b"POST / HTTP/1.1\r\nhost: relay\r\ncontent-length: 100\r\n\r\n{")
            .await
            .unwrap();
    }
    let quick = event("ev-quick", "U1");
    let t = Instant::now();
    relay.deliver(&quick).await;
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "not stalled by the slow client"
    );
    let mut answer = String::new();
    {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(relay.post(&body, None).await, 401, "unsigned");
    assert_eq!(
        relay.post(&body, Some("hmacsha256=00ff")).await,
        401,
        "forged"
    );
    let big = "x".repeat(300 * 1024);
    assert_eq!(relay.post(&big, Some(&sign(&big))).await, 413, "oversized");
    assert_eq!(
        relay.post("{\"data\":", Some(&sign("{\"data\":"))).await,
        400,
        "malformed"
    );
    relay.deliver(&body).await;
    relay.deliver(&body).await;
    let m = relay.metrics().await;
    assert_eq!(
        (
            deliveries(&m, "rejected"),
            deliveries(&m, "verified"),
            deliveries(&m, "duplicate")
        ),
        (5.0, 2.0, 1.0)
    );
    assert_eq!(m["flightdeck_webhook_pending"], 0.0);
    let http = reqwest::Client::new();
    let events = format!("{}/events?build-upload=U1", relay.url);
    assert_eq!(
        http.get(&events).send().await.unwrap().status(),
        401,
        "no token"
    );
    assert_eq!(
        http.get(&events)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let logs = relay.logs();
    assert!(
        !logs.contains(SECRET) && !logs.contains(SUB_TOKEN),
        "no secret in the log"
    );
    assert_eq!(relay.terminate().await, Some(0));
    assert!(
        dir.path().join("flightdeck-relay-spool").is_dir(),
        "the default spool is under the working directory"
    );
}

#[tokio::test]
async fn relay_spool_restart_resumes_pending_forwards_and_each_arrives_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut target = Standin::reserve("");
    let hook = format!("{}/hook", target.base);
    let spool = dir.path().join("spool").display().to_string();
    let args = ["--forward", hook.as_str(), "--spool", spool.as_str()];
    let relay = Relay::start(dir.path(), "first", &args, &[]).await;
    let ids = ["s-1", "s-2", "s-3"];
    for id in ids {
        relay.deliver(&event(id, "U1")).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let m = relay.metrics().await;
    assert_eq!(
        m["flightdeck_webhook_pending"], 3.0,
        "the target is down: all three wait"
    );
    assert!(m["flightdeck_webhook_forwards_total{result=\"retry\"}"] >= 3.0);
    assert_eq!(
        relay.terminate().await,
        Some(0),
        "SIGTERM exits 0 with work pending"
    );

    target.serve(sink_routes()).await;
    let relay = Relay::start(dir.path(), "second", &args, &[]).await;
    until("the resumed forwards", Duration::from_secs(15), || {
        taken(&target, url_event_id).len() == 3
    })
    .await;
    // A redelivery of an event the target took is a duplicate for it.
    relay.deliver(&event("s-2", "U1")).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got = taken(&target, url_event_id);
    assert_eq!(
        got,
        ids.iter().map(|i| (i.to_string(), 1)).collect(),
        "each exactly once"
    );
    let call = &target.delivered()[0];
    assert_eq!(
        call.header("x-apple-signature").map(str::to_string),
        Some(sign(&event(&url_event_id(call), "U1"))),
        "raw body with Apple's signature"
    );
    let m = relay.metrics().await;
    assert_eq!(
        (m["flightdeck_webhook_pending"], deliveries(&m, "duplicate")),
        (0.0, 1.0)
    );
    relay.kill().await;
}

#[tokio::test]
async fn two_relays_on_redis_forward_every_event_once_to_a_target_that_was_down() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut sink = Standin::reserve("");
    let github = Standin::start(github_routes(), GH_TOKEN).await;
    let gitlab = Standin::start(gitlab_routes(), GL_TOKEN).await;
    github.set_mode(Mode::Fail(502));
    let hook = format!("{}/hook", sink.base);
    let gl_api = format!("{}/api/v4", gitlab.base);
    let vars = [
        ("GITHUB_TOKEN", GH_TOKEN),
        ("GITHUB_API_URL", github.base.as_str()),
        ("GITLAB_TOKEN", GL_TOKEN),
        ("CI_API_V4_URL", gl_api.as_str()),
    ];
    let args = [
        "--redis",
        redis.url.as_str(),
        "--forward",
        hook.as_str(),
        "--forward",
        "github:acme/app",
        "--forward",
        "gitlab:42@release",
    ];
    let a = Relay::start(dir.path(), "a", &args, &vars).await;
    let b = Relay::start(dir.path(), "b", &args, &vars).await;
    let ids: Vec<String> = (0..10).map(|i| format!("r-{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let (first, second) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        first.deliver(&event(id, "U9")).await;
        // Apple redelivering to the other relay behind the load balancer.
        second.deliver(&event(id, "U9")).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        a.metrics().await["flightdeck_webhook_pending"] >= 10.0,
        "the sink and GitHub are down"
    );
    sink.serve(sink_routes()).await;
    github.set_mode(Mode::Up);
    let want: BTreeMap<String, usize> = ids.iter().map(|i| (i.clone(), 1)).collect();
    until(
        "every event at every target",
        Duration::from_secs(20),
        || {
            taken(&sink, url_event_id).len() == 10
                && github.delivered().len() >= 10
                && gitlab.delivered().len() >= 10
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(taken(&sink, url_event_id), want, "URL target: each once");
    let gh_id = |c: &crate::standins::Call| {
        c.json()["client_payload"]["data"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(taken(&github, gh_id), want, "GitHub: each once");
    let gl_id = |c: &crate::standins::Call| {
        c.json()["variables"]["ASC_EVENT_ID"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(taken(&gitlab, gl_id), want, "GitLab: each once");
    let gh = &github.delivered()[0];
    assert_eq!(gh.path, "/repos/acme/app/dispatches");
    assert_eq!(gh.json()["event_type"], "buildUploadStateUpdated");
    assert!(
        gh.header("user-agent")
            .is_some_and(|u| u.starts_with("flightdeck"))
    );
    let gl = &gitlab.delivered()[0];
    assert_eq!(
        (gl.path.as_str(), gl.json()["ref"].as_str()),
        ("/api/v4/projects/42/trigger/pipeline", Some("release"))
    );
    assert_eq!(gl.json()["variables"]["ASC_INSTANCE_ID"], "U9");
    let (ma, mb) = (a.metrics().await, b.metrics().await);
    assert_eq!(
        deliveries(&ma, "verified") + deliveries(&mb, "verified"),
        10.0
    );
    assert_eq!(
        deliveries(&ma, "duplicate") + deliveries(&mb, "duplicate"),
        10.0
    );
    assert_eq!(ma["flightdeck_webhook_pending"], 0.0);
    for r in [&a, &b] {
        let logs = r.logs();
        assert!(
            !logs.contains(GH_TOKEN) && !logs.contains(GL_TOKEN) && !logs.contains(SECRET),
            "no token in the log"
        );
    }
    assert_eq!(a.terminate().await, Some(0));
    b.kill().await;
}

#[tokio::test]
async fn a_relay_killed_mid_forward_loses_nothing() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = Standin::start(sink_routes(), "").await;
    sink.set_mode(Mode::Hang);
    let hook = format!("{}/hook", sink.base);
    let args = [
        "--redis",
        redis.url.as_str(),
        "--forward",
        hook.as_str(),
        "--claim-idle",
        "2s",
    ];
    let a = Relay::start(dir.path(), "a", &args, &[]).await;
    let ids: Vec<String> = (0..5).map(|i| format!("k-{i}")).collect();
    for id in &ids {
        a.deliver(&event(id, "U5")).await;
    }
    until(
        "relay a forwarding all five",
        Duration::from_secs(10),
        || sink.calls().len() >= 5,
    )
    .await;
    a.kill().await; // SIGKILL while all five forwards are in flight
    sink.set_mode(Mode::Up);
    let b = Relay::start(dir.path(), "b", &args, &[]).await;
    until("relay b taking over", Duration::from_secs(20), || {
        taken(&sink, url_event_id).len() == 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        taken(&sink, url_event_id),
        ids.iter().map(|i| (i.clone(), 1)).collect()
    );
    assert!(b.logs().contains("took over"), "{}", b.logs());
    assert_eq!(b.metrics().await["flightdeck_webhook_pending"], 0.0);
    drop(redis);
    let health = reqwest::get(format!("{}/healthz", b.url)).await.unwrap();
    assert_eq!(health.status(), 503, "the store is unreachable");
    let refused = b
        .post(&event("k-late", "U5"), Some(&sign(&event("k-late", "U5"))))
        .await;
    assert_eq!(
        refused, 503,
        "not acknowledged without a store to persist it"
    );
    b.kill().await;
}

#[tokio::test]
async fn a_delivery_to_relay_a_wakes_a_wait_subscribed_to_relay_b() {
    let redis = RedisServer::start().await;
    let env = start_with(|c| c.processing_delay = Duration::from_millis(3000)).await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--redis", redis.url.as_str()];
    let a = Relay::start(dir.path(), "a", &args, &[]).await;
    let b = Relay::start(dir.path(), "b", &args, &[]).await;
    let ctx = env.ctx();
    let events = ["BUILD_UPLOAD_STATE_UPDATED".to_string()];
    flightdeck::api::resources::create_webhook(
        &ctx.api,
        APP_ID,
        "relay",
        &format!("{}/asc", a.url),
        SECRET,
        &events,
        true,
    )
    .await
    .unwrap();
    let ipa = env.ipa("R1.ipa", "1.0", "71", 50_000);
    let id = flightdeck::upload::run(&ctx, &crate::upload::plan(&ipa))
        .await
        .unwrap()
        .build_upload_id;

    let mut vars = env.vars();
    vars.push(("FLIGHTDECK_RELAY_TOKEN".into(), SUB_TOKEN.into()));
    let args = [
        "--ci",
        "none",
        "--output",
        "json",
        "wait",
        "--build-upload",
        id.as_str(),
        "--webhook-relay",
        b.url.as_str(),
        "--poll-interval",
        "10m",
        "--timeout",
        "60s",
    ];
    let started = Instant::now();
    let out = crate::cli::fd(&vars, &args, dir.path()).await;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc.to_string().contains("decided by webhook"),
        "{doc}\n{stderr}"
    );
    assert!(
        took < Duration::from_millis(4500),
        "woken within a second of the event (took {took:?})"
    );
    assert!(
        deliveries(&a.metrics().await, "verified") >= 1.0,
        "the simulator delivered to relay a"
    );
    assert_eq!(
        deliveries(&b.metrics().await, "verified"),
        0.0,
        "relay b only relayed it"
    );

    // A late subscriber still gets it (replay window), with the payload.
    let resp = reqwest::Client::new()
        .get(format!(
            "{}/events?build-upload={id}&type=BUILD_UPLOAD_STATE_UPDATED",
            b.url
        ))
        .bearer_auth(SUB_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    while !text.contains("\"newState\":\"COMPLETE\"") {
        let chunk = tokio::time::timeout(
            Duration::from_secs(5),
            futures_util::StreamExt::next(&mut stream),
        )
        .await;
        text.push_str(&String::from_utf8_lossy(
            &chunk.expect("the replay arrives").unwrap().unwrap(),
        ));
    }
    assert!(text.contains(&format!("\"instanceId\":\"{id}\"")), "{text}");
    let order = |s: &str| text.find(&format!("\"newState\":\"{s}\"")).unwrap();
    assert!(
        order("PROCESSING") < order("COMPLETE"),
        "in the order they arrived: {text}"
    );

    // A relay that refuses the token, or is down: a warning, and polling decides.
    for (token, url, warning) in [
        ("wrong", b.url.clone(), "refused the token"),
        (
            SUB_TOKEN,
            "http://127.0.0.1:9".to_string(),
            "cannot connect",
        ),
    ] {
        let ipa = env.ipa(
            &format!("R{warning}.ipa"),
            "1.0",
            &format!("7{}", token.len()),
            50_000,
        );
        let id = flightdeck::upload::run(&ctx, &crate::upload::plan(&ipa))
            .await
            .unwrap()
            .build_upload_id;
        let mut vars = env.vars();
        vars.push(("FLIGHTDECK_RELAY_TOKEN".into(), token.into()));
        let args = [
            "--ci",
            "none",
            "wait",
            "--build-upload",
            id.as_str(),
            "--webhook-relay",
            url.as_str(),
            "--poll-interval",
            "1s",
            "--timeout",
            "60s",
        ];
        let out = crate::cli::fd(&vars, &args, dir.path()).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains(warning) && stderr.contains("decided by poll"),
            "{stderr}"
        );
        assert!(
            !stderr.contains(SUB_TOKEN),
            "the token stays out of the log"
        );
    }
    a.kill().await;
    b.kill().await;
}

/// The GitHub Action's main step with `webhook-relay` and
/// `webhook-relay-token`, as a hosted runner runs it: the token is masked,
/// the generated pipeline waits through the relay (outbound only), and the
/// relay's event decides the wait long before the 10-minute poll would.
#[tokio::test]
async fn the_github_action_waits_through_the_relay_with_a_masked_token() {
    let env = start_with(|c| c.processing_delay = Duration::from_millis(2000)).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    let relay = Relay::start(
        dir.path(),
        "one",
        &["--spool", spool.to_str().unwrap()],
        &[],
    )
    .await;
    flightdeck::api::resources::create_webhook(
        &env.ctx().api,
        APP_ID,
        "relay",
        &format!("{}/asc", relay.url),
        SECRET,
        &["BUILD_UPLOAD_STATE_UPDATED".to_string()],
        true,
    )
    .await
    .unwrap();
    let ipa = env.ipa("Hosted.ipa", "1.0", "81", 50_000);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = dir.path().join("github-output");
    let summary = dir.path().join("summary.md");
    std::fs::write(&output, "").unwrap();
    let mut cmd = tokio::process::Command::new("bash");
    cmd.arg(repo.join("ci/github/run.sh"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("CI", "true")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("RUNNER_TEMP", dir.path())
        .env("ASC_API_BASE_URL", &env.sim.base_url)
        .env("FD_BIN", env!("CARGO_BIN_EXE_flightdeck"))
        .env("FD_APP_PATH", &ipa)
        .env("FD_BUNDLE_ID", BUNDLE)
        .env("FD_IN_API_KEY_ID", KEY_ID)
        .env("FD_IN_API_ISSUER_ID", ISSUER)
        .env("FD_IN_API_PRIVATE_KEY", &env.private_pem)
        .env("FD_WAIT", "true")
        .env("FD_TIMEOUT", "60s")
        .env("FD_POLL_INTERVAL", "10m")
        .env("FD_WEBHOOK_RELAY", &relay.url)
        .env("FD_IN_RELAY_TOKEN", SUB_TOKEN)
        .current_dir(dir.path());
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}\n{}", relay.logs());
    assert!(
        stdout.contains(&format!("::add-mask::{SUB_TOKEN}")),
        "the token is masked before anything runs: {stdout}"
    );
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("processing-state"), "{outputs}");
    assert!(outputs.contains("VALID"), "{outputs}");
    let summary = std::fs::read_to_string(&summary).unwrap_or_default();
    let all = format!("{stdout}{stderr}{summary}");
    assert!(
        all.contains("decided by webhook"),
        "the relay's event ended the wait, not the 10-minute poll:\n{all}"
    );
    assert!(
        !format!("{stderr}{summary}{outputs}").contains(SUB_TOKEN),
        "the token never reaches a log, a summary or an output"
    );
    assert!(deliveries(&relay.metrics().await, "verified") >= 1.0);
}
