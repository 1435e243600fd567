//! No secret reaches any output. Every command (successes and failures: a
//! wrong key, an unparseable key, 5xx until the retries are spent) runs
//! against the simulator under each CI mode with `--log-level trace`; then
//! stdout, stderr and every file the run left (GitHub output and summary,
//! flightdeck.env, the code quality report, Bitrise deploy files and envman
//! calls, feedback files) are scanned for each secret in its plain, base64
//! (standard and URL-safe, padded or not), URL-encoded and per-PEM-line
//! forms. The JWT is the Authorization value a recording proxy in front of
//! the simulator saw; the proxy's 5xx answers echo it back, as a careless
//! gateway might.

use crate::support::*;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use base64::Engine;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WEBHOOK_SECRET: &str = "whsec-5f1c0e7a9b2d4c6e8f0a1b3c5d7e9f";
const RELAY_TOKEN: &str = "relay-tok-8d3b1f6a0c9e2d7b4a5f";
const CI_TOKEN: &str = "ghs_Zx81Qm4Lr7Tp2Wv9Ks6Hd3Jb0Nc5Gf";

/// Forwards everything to the simulator, recording Authorization values;
/// in `failing` mode answers 503 with an error document echoing the token.
struct Proxy {
    target: String,
    http: reqwest::Client,
    seen: Mutex<BTreeSet<String>>,
    failing: AtomicBool,
}

async fn forward(State(p): State<Arc<Proxy>>, req: Request) -> Response {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(a) = &auth {
        p.seen.lock().unwrap().insert(a.clone());
    }
    if p.failing.load(Ordering::SeqCst) {
        let body = serde_json::json!({"errors": [{"status": "503", "code": "UNAVAILABLE",
            "title": "Service unavailable", "detail": format!("rejected {}", auth.unwrap_or_default())}]});
        return Response::builder()
            .status(503)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut out = p
        .http
        .request(parts.method.clone(), format!("{}{path}", p.target));
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let resp = out.body(body).send().await.unwrap();
    let mut back = Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        if k != "transfer-encoding" && k != "content-length" && k != "connection" {
            back = back.header(k, v);
        }
    }
    back.body(Body::from(resp.bytes().await.unwrap())).unwrap()
}

async fn proxy(target: &str) -> (Arc<Proxy>, String) {
    let p = Arc::new(Proxy {
        target: target.to_string(),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        seen: Mutex::new(BTreeSet::new()),
        failing: AtomicBool::new(false),
    });
    let app = axum::Router::new().fallback(forward).with_state(p.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (p, url)
}

/// Every form of `secret` worth looking for, with a label for the report.
fn forms(label: &str, secret: &str) -> Vec<(String, String)> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = vec![(label.to_string(), secret.to_string())];
    for (name, e) in [
        ("base64", &STANDARD),
        ("base64 unpadded", &STANDARD_NO_PAD),
        ("base64url", &URL_SAFE),
        ("base64url unpadded", &URL_SAFE_NO_PAD),
    ] {
        out.push((format!("{label} as {name}"), e.encode(secret)));
    }
    out.push((
        format!("{label} URL-encoded"),
        flightdeck::api::client::encode(secret),
    ));
    for (i, line) in secret.lines().map(str::trim).enumerate() {
        if line.len() >= 16 && !line.starts_with("-----") && line != secret {
            out.push((format!("{label} line {}", i + 1), line.to_string()));
        }
    }
    // A JWT's signature alone is as good as the token for nobody, but its
    // presence means the token was printed.
    if let Some(sig) = secret.strip_prefix("Bearer ") {
        out.push((format!("{label} without the scheme"), sig.to_string()));
        if let Some(s) = sig.rsplit('.').next() {
            out.push((format!("{label} signature"), s.to_string()));
        }
    }
    out.retain(|(_, n)| n.len() >= 12);
    out
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    GitHub,
    GitLab,
    Bitrise,
    None,
}

struct Run {
    env: Env,
    mode: Mode,
    dir: PathBuf,
    vars: Vec<(String, String)>,
    proxy: Arc<Proxy>,
    /// (what ran, stream or file, text)
    seen: Vec<(String, String, String)>,
    /// Extra secrets a run used (a wrong key, the bad key text).
    extra: Vec<(String, String)>,
}

impl Run {
    async fn new(mode: Mode) -> Self {
        let env = start_with(|c| c.seed_feedback = true).await;
        let (proxy, url) = proxy(&env.sim.base_url).await;
        let dir = env.path(&format!("{mode:?}").to_lowercase());
        std::fs::create_dir_all(&dir).unwrap();
        let mut vars = env.vars();
        vars.retain(|(k, _)| k != "ASC_API_BASE_URL");
        let d = |n: &str| dir.join(n).to_string_lossy().into_owned();
        for (k, v) in [
            ("ASC_API_BASE_URL", url.as_str()),
            ("ASC_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("FLIGHTDECK_RELAY_TOKEN", RELAY_TOKEN),
            ("NO_COLOR", "1"),
        ] {
            vars.push((k.into(), v.into()));
        }
        let path = std::env::var("PATH").unwrap_or_default();
        let mode_vars: Vec<(String, String)> = match mode {
            Mode::GitHub => vec![
                ("GITHUB_ACTIONS".into(), "true".into()),
                ("GITHUB_TOKEN".into(), CI_TOKEN.into()),
                ("GITHUB_OUTPUT".into(), d("github_output")),
                ("GITHUB_STEP_SUMMARY".into(), d("github_summary.md")),
                ("PATH".into(), path),
            ],
            Mode::GitLab => vec![
                ("GITLAB_CI".into(), "true".into()),
                ("CI".into(), "true".into()),
                ("CI_JOB_TOKEN".into(), CI_TOKEN.into()),
                ("PATH".into(), path),
            ],
            Mode::Bitrise => {
                let (bin, _record) = fake_envman(&dir);
                vec![
                    ("BITRISE_IO".into(), "true".into()),
                    ("BITRISEIO_GIT_TOKEN".into(), CI_TOKEN.into()),
                    ("BITRISE_DEPLOY_DIR".into(), d("deploy")),
                    ("ENVMAN_ENVSTORE_PATH".into(), d("envstore")),
                    ("PATH".into(), format!("{}:{path}", bin.display())),
                ]
            }
            Mode::None => vec![("PATH".into(), path)],
        };
        vars.extend(mode_vars);
        Run {
            env,
            mode,
            dir,
            vars,
            proxy,
            seen: Vec::new(),
            extra: Vec::new(),
        }
    }

    fn ci_flag(&self) -> &'static str {
        match self.mode {
            Mode::GitHub => "github",
            Mode::GitLab => "gitlab",
            Mode::Bitrise => "bitrise",
            Mode::None => "none",
        }
    }

    /// Run one command, record what it printed and every file now in the dir.
    async fn fd(&mut self, vars: &[(String, String)], args: &[&str]) -> (i32, String) {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"));
        cmd.env_clear()
            .envs(vars.iter().cloned())
            .current_dir(&self.dir)
            .args(["--log-level", "trace", "--ci", self.ci_flag()])
            .args(args)
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .expect("command ended")
            .unwrap();
        let what = format!("{:?} {}", self.mode, args.join(" "));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        self.seen
            .push((what.clone(), "stdout".into(), stdout.clone()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The runner consumes `::add-mask::` commands (GitHub's way of
        // masking): they are never shown, everything else is scanned.
        let shown: Vec<&str> = stderr
            .lines()
            .filter(|l| !(matches!(self.mode, Mode::GitHub) && l.starts_with("::add-mask::")))
            .collect();
        self.seen
            .push((what.clone(), "stderr".into(), shown.join("\n")));
        let mut files = Vec::new();
        files_under(&self.dir, &mut files);
        for f in files {
            let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
            self.seen
                .push((what.clone(), f.display().to_string(), text));
        }
        (out.status.code().unwrap_or(-1), stdout)
    }

    async fn ok(&mut self, args: &[&str]) -> String {
        let vars = self.vars.clone();
        let (code, stdout) = self.fd(&vars, args).await;
        assert_eq!(code, 0, "{args:?}: {}", self.stderr_of_last(args));
        stdout
    }

    fn stderr_of_last(&self, args: &[&str]) -> String {
        let what = format!("{:?} {}", self.mode, args.join(" "));
        self.seen
            .iter()
            .rev()
            .find(|(w, s, _)| *w == what && s == "stderr")
            .map(|(_, _, t)| t.clone())
            .unwrap_or_default()
    }

    fn ipa(&self, name: &str, build: &str) -> String {
        let p = self.dir.join(name);
        let mut spec = asc_simulator::fixture::AppSpec::new(BUNDLE, "3.0", build);
        spec.payload_bytes = 20_000;
        asc_simulator::fixture::write_ipa(&p, &spec).unwrap();
        p.to_string_lossy().into_owned()
    }

    /// Every command, successes and failures.
    async fn every_command(&mut self) {
        let base: u32 = match self.mode {
            Mode::GitHub => 100,
            Mode::GitLab => 200,
            Mode::Bitrise => 300,
            Mode::None => 400,
        };
        let b = |n: u32| (base + n).to_string();
        let pipeline = format!(
            "version: 1\napp: {{ bundle-id: {BUNDLE} }}\nsteps:\n  - upload: {{ file: {} }}\n  - wait: {{ timeout: 1m, poll: {{ interval: 1s }}, webhook: {{ listen: \"127.0.0.1:0\", register: auto }} }}\n  - testflight: {{ groups: [QA], whats-new: \"notes\" }}\n  - feedback: {{ out: fb }}\n",
            self.ipa("P.ipa", &b(1))
        );
        std::fs::write(self.dir.join("flightdeck.yml"), pipeline).unwrap();
        self.ok(&["validate"]).await;
        self.ok(&["run", "--dry-run"]).await;
        self.ok(&["run"]).await;
        let u = self.ipa("U.ipa", &b(2));
        let out = self.ok(&["--output", "json", "upload", &u]).await;
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let upload_id = doc["outputs"]["build-upload-id"]
            .as_str()
            .unwrap()
            .to_string();
        let out = self
            .ok(&[
                "--output",
                "json",
                "wait",
                "--build-upload",
                &upload_id,
                "--timeout",
                "1m",
                "--poll-interval",
                "1s",
            ])
            .await;
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let build = doc["outputs"]["build-id"].as_str().unwrap().to_string();
        let w = self.ipa("W.ipa", &b(3));
        self.ok(&[
            "upload",
            &w,
            "--wait",
            "--timeout",
            "1m",
            "--poll-interval",
            "1s",
        ])
        .await;
        self.ok(&[
            "testflight",
            "--build",
            &build,
            "--group",
            "QA",
            "--whats-new",
            "hi",
        ])
        .await;
        self.ok(&[
            "feedback", "--app-id", APP_ID, "--since", "1h", "--out", "fb2",
        ])
        .await;
        self.ok(&["next-build-number", "--app-id", APP_ID, "--version", "3.0"])
            .await;
        let hook = self
            .ok(&[
                "webhooks",
                "create",
                "--app-id",
                APP_ID,
                "--name",
                "ci",
                "--url",
                "http://127.0.0.1:9/x",
                "--event",
                "BUILD_UPLOAD_STATE_UPDATED",
            ])
            .await
            .trim()
            .to_string();
        self.ok(&["webhooks", "list", "--app-id", APP_ID]).await;
        self.ok(&[
            "webhooks",
            "update",
            &hook,
            "--secret-env",
            "ASC_WEBHOOK_SECRET",
        ])
        .await;
        self.ok(&["webhooks", "ping", &hook]).await;
        self.ok(&["webhooks", "deliveries", &hook]).await;
        self.ok(&["webhooks", "delete", &hook]).await;
        self.failures(&u).await;
    }

    async fn failures(&mut self, ipa: &str) {
        // A key App Store Connect does not know: 401, exit 3.
        let (wrong, _) = flightdeck::auth::key::generate();
        let mut vars = self.vars.clone();
        vars.retain(|(k, _)| k != "ASC_PRIVATE_KEY");
        vars.push(("ASC_PRIVATE_KEY".into(), wrong.expose().into()));
        self.extra.push(("wrong key".into(), wrong.expose().into()));
        let (code, _) = self.fd(&vars, &["upload", ipa]).await;
        assert_eq!(code, 3);
        // Key text that does not parse: exit 2, and the text is not echoed.
        let bad = self
            .env
            .private_pem
            .replace("MIG", "MIX")
            .replace('\n', "\n ");
        vars.retain(|(k, _)| k != "ASC_PRIVATE_KEY");
        vars.push(("ASC_PRIVATE_KEY".into(), bad.clone()));
        self.extra.push(("unparseable key".into(), bad));
        let (code, _) = self.fd(&vars, &["upload", ipa]).await;
        assert_eq!(code, 2);
        // 5xx until the retries are spent: exit 5.
        self.proxy.failing.store(true, Ordering::SeqCst);
        let vars = self.vars.clone();
        let (code, _) = self
            .fd(
                &vars,
                &["next-build-number", "--app-id", APP_ID, "--version", "3.0"],
            )
            .await;
        self.proxy.failing.store(false, Ordering::SeqCst);
        assert_eq!(code, 5);
    }

    /// Every (secret form, where, command) found.
    fn leaks(&self) -> Vec<String> {
        let mut secrets = vec![
            ("private key".to_string(), self.env.private_pem.clone()),
            ("webhook secret".into(), WEBHOOK_SECRET.into()),
            ("relay token".into(), RELAY_TOKEN.into()),
            ("CI token".into(), CI_TOKEN.into()),
        ];
        secrets.extend(self.extra.iter().cloned());
        for (i, a) in self.proxy.seen.lock().unwrap().iter().enumerate() {
            secrets.push((format!("JWT #{i}"), a.clone()));
        }
        for h in self.env.sim().lock().webhooks.values() {
            secrets.push((format!("webhook {} secret", h.id), h.secret.clone()));
        }
        let mut found = BTreeSet::new();
        for (label, secret) in &secrets {
            for (form, needle) in forms(label, secret) {
                for (what, where_, text) in &self.seen {
                    if let Some(at) = text.find(&needle) {
                        let from = (0..=at.saturating_sub(80))
                            .rev()
                            .find(|i| text.is_char_boundary(*i))
                            .unwrap_or(0);
                        let context = &text[from..at];
                        found.insert(format!(
                            "{form} in {where_} after `{what}`, following {context:?}"
                        ));
                    }
                }
            }
        }
        found.into_iter().collect()
    }
}

#[tokio::test]
async fn no_secret_reaches_any_output_in_any_ci_mode() {
    let runs = [Mode::GitHub, Mode::GitLab, Mode::Bitrise, Mode::None].map(|m| async move {
        let mut r = Run::new(m).await;
        r.every_command().await;
        let jwts = r.proxy.seen.lock().unwrap().len();
        assert!(jwts > 0, "{m:?}: the proxy saw no token");
        (r.seen.len(), r.leaks())
    });
    let results = futures_util::future::join_all(runs).await;
    let scanned: usize = results.iter().map(|(n, _)| n).sum();
    let leaks: Vec<&String> = results.iter().flat_map(|(_, l)| l).collect();
    assert!(scanned > 200, "only {scanned} outputs scanned");
    eprintln!(
        "secrets: scanned {scanned} outputs (streams and files after each command), 4 CI modes"
    );
    assert!(leaks.is_empty(), "{} leaks: {leaks:#?}", leaks.len());
}
