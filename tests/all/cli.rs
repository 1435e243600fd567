//! The binary as CI runs it: exit codes, annotations, outputs on each
//! platform, `--output json` purity, and no secret anywhere.

use crate::support::*;
use std::path::Path;
use std::process::Output;

pub async fn fd(vars: &[(String, String)], args: &[&str], cwd: &Path) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .current_dir(cwd)
        .args(args);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().await.unwrap()
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// No line of the key (nor its base64) may appear in `text`.
fn assert_no_secret(env: &Env, text: &str, what: &str) {
    for line in env.private_pem.lines().filter(|l| l.len() > 20) {
        assert!(!text.contains(line), "{what} leaks a key line");
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&env.private_pem);
    assert!(!text.contains(&b64[..40]), "{what} leaks the base64 key");
}

#[tokio::test]
async fn validate_points_at_file_line_column_for_github() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flightdeck.yml"),
        "version: 1\nsteps:\n  - upload:\n      fiel: a.ipa\n",
    )
    .unwrap();
    let out = fd(
        &kv(&[("GITHUB_ACTIONS", "true")]),
        &["validate"],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = s(&out.stderr);
    assert!(
        err.contains("::error title=flightdeck,file=flightdeck.yml,line=4,col=7::invalid pipeline: unknown field `fiel`, expected one of file,"),
        "{err}"
    );
    assert!(err.contains("hint: did you mean `file`?"), "{err}");
    let ok_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        ok_dir.path().join("p.yml"),
        "version: 1\nsteps:\n  - upload: { file: a.ipa }\n",
    )
    .unwrap();
    let out = fd(&[], &["validate", "--pipeline", "p.yml"], ok_dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert!(s(&out.stdout).contains("1. upload a.ipa"));
}

#[tokio::test]
async fn gitlab_gets_a_code_quality_report_for_pipeline_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("flightdeck.yml"),
        "version: 1\nsteps:\n  - wait: { timeout: soon }\n  - upload: { file: a.ipa }\n",
    )
    .unwrap();
    let out = fd(
        &kv(&[("GITLAB_CI", "true"), ("CI", "true")]),
        &["validate"],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("gl-code-quality-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report[0]["location"]["path"], "flightdeck.yml");
    assert_eq!(report[0]["location"]["lines"]["begin"], 3);
    assert!(
        report[0]["description"]
            .as_str()
            .unwrap()
            .contains("invalid duration \"soon\"")
    );
}

#[tokio::test]
async fn output_json_is_pure_and_carries_outputs_even_with_workflow_commands() {
    let env = start().await;
    let ipa = env.ipa("J.ipa", "1.0", "21", 200_000);
    let mut vars = env.vars();
    vars.extend(kv(&[("GITHUB_ACTIONS", "true")]));
    let out = fd(
        &vars,
        &[
            "--output",
            "json",
            "upload",
            ipa.to_str().unwrap(),
            "--wait",
            "--poll-interval",
            "100ms",
        ],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("stdout is exactly one JSON document");
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["outputs"]["version"], "1.0");
    assert_eq!(doc["outputs"]["processing-state"], "VALID");
    assert!(
        s(&out.stderr).contains("::add-mask::"),
        "workflow commands go to stderr"
    );
    // A failure is one JSON document too.
    let out = fd(
        &vars,
        &["--output", "json", "upload", "missing.ipa"],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (doc["ok"].as_bool(), doc["exit_code"].as_u64()),
        (Some(false), Some(2))
    );
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing.ipa: no such file")
    );
    assert_eq!(env.violations(), Vec::<String>::new());
}

#[tokio::test]
async fn github_outputs_summary_and_masks_with_no_secret_leaked() {
    let env = start().await;
    let ipa = env.ipa("G.ipa", "1.0", "31", 150_000);
    let out_file = env.path("github_output");
    let summary = env.path("summary.md");
    let mut vars = env.vars();
    vars.extend(kv(&[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_OUTPUT", out_file.to_str().unwrap()),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
    ]));
    let out = fd(
        &vars,
        &[
            "upload",
            ipa.to_str().unwrap(),
            "--wait",
            "--poll-interval",
            "100ms",
        ],
        env.dir.path(),
    )
    .await;
    let err = s(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.lines().next().unwrap().starts_with("::add-mask::"),
        "masks come first: {err}"
    );
    assert!(err.contains("::group::upload") && err.contains("::endgroup::"));
    let outputs = std::fs::read_to_string(&out_file).unwrap();
    for name in UPLOAD_AND_WAIT_OUTPUTS {
        assert!(
            outputs.contains(&format!("{name}<<ghadelimiter_")),
            "output {name} missing:\n{outputs}"
        );
    }
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.starts_with("### ✅ flightdeck upload succeeded"), "{md}");
    for (what, text) in [
        ("stdout", s(&out.stdout)),
        (
            "stderr",
            err.lines()
                .filter(|l| !l.starts_with("::add-mask::"))
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("outputs", outputs),
        ("summary", md),
    ] {
        assert_no_secret(&env, &text, what);
    }
}

#[tokio::test]
async fn gitlab_dotenv_and_bitrise_envman_get_the_outputs() {
    let env = start().await;
    let ipa = env.ipa("B.ipa", "1.0", "41", 100_000);
    // GitLab
    let mut vars = env.vars();
    vars.extend(kv(&[("GITLAB_CI", "true"), ("CI", "true")]));
    let out = fd(&vars, &["upload", ipa.to_str().unwrap()], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let dotenv = std::fs::read_to_string(env.path("flightdeck.env")).unwrap();
    assert!(
        dotenv
            .lines()
            .all(|l| l.starts_with("FLIGHTDECK_") && l.contains('=')),
        "{dotenv}"
    );
    assert!(
        dotenv.contains("FLIGHTDECK_BUILD_NUMBER=41\n")
            && dotenv.contains("FLIGHTDECK_BUILD_UPLOAD_ID=")
    );
    assert!(s(&out.stderr).contains("\x1b[0Ksection_start:"));
    // Bitrise, with a stand-in envman that records its arguments.
    let (bin, record) = fake_envman(env.dir.path());
    let deploy = env.path("deploy");
    let ipa2 = env.ipa("B2.ipa", "1.0", "42", 100_000);
    let mut vars = env.vars();
    vars.extend(kv(&[
        ("BITRISE_IO", "true"),
        ("BITRISE_DEPLOY_DIR", deploy.to_str().unwrap()),
        ("ENVMAN_ENVSTORE_PATH", env.path("store").to_str().unwrap()),
    ]));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    vars.push(("PATH".into(), path));
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"));
    cmd.env_clear()
        .envs(vars)
        .current_dir(env.dir.path())
        .args(["upload", ipa2.to_str().unwrap()]);
    let out = cmd.output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let calls = std::fs::read_to_string(&record).unwrap();
    assert!(
        calls.contains("add --key FLIGHTDECK_BUILD_NUMBER --value 42 --no-expand"),
        "{calls}"
    );
    assert!(
        calls.contains("add --key FLIGHTDECK_BUILD_UPLOAD_ID --value "),
        "{calls}"
    );
    assert!(
        deploy.join("flightdeck-summary.md").exists()
            && deploy.join("flightdeck-outcome.json").exists()
    );
}

#[tokio::test]
async fn exit_codes_for_auth_input_and_empty_secrets() {
    let env = start().await;
    let ipa = env.ipa("X.ipa", "1.0", "51", 10_000);
    let p = ipa.to_str().unwrap();
    let mut wrong_key = env.vars();
    let (other, _) = flightdeck::auth::key::generate();
    wrong_key.retain(|(k, _)| k != "ASC_PRIVATE_KEY");
    wrong_key.push(("ASC_PRIVATE_KEY".into(), other.expose().into()));
    let out = fd(&wrong_key, &["upload", p], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(3), "{}", s(&out.stderr));
    assert!(s(&out.stderr).contains("NOT_AUTHORIZED"));
    let mut empty = env.vars();
    empty.retain(|(k, _)| k != "ASC_PRIVATE_KEY");
    empty.push(("ASC_PRIVATE_KEY".into(), String::new()));
    let out = fd(&empty, &["upload", p], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        s(&out.stderr)
            .contains("ASC_PRIVATE_KEY is set but empty: the CI secret is probably not configured"),
        "{}",
        s(&out.stderr)
    );
    let out = fd(
        &env.vars(),
        &["upload", p, "--checksum", "CRC32"],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let out = fd(&env.vars(), &["upload", "--bogus"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(2), "usage errors are bad input");
    assert!(env.sim().lock().uploads.is_empty());
}

#[tokio::test]
async fn pipeline_run_dry_run_testflight_feedback_and_webhooks() {
    let env = start_with(|c| c.seed_feedback = true).await;
    let ipa = env.ipa("P.ipa", "2.1", "61", 100_000);
    let yml = format!(
        "version: 1\napp: {{ bundle-id: {BUNDLE} }}\nsteps:\n  - upload: {{ file: {} }}\n  - wait: {{ timeout: 1m, poll: {{ interval: 1m }}, webhook: {{ listen: \"127.0.0.1:0\", register: auto }} }}\n  - testflight: {{ groups: [QA], whats-new: \"Notes for ${{SHA}}\" }}\n  - feedback: {{ out: fb }}\n",
        ipa.display()
    );
    std::fs::write(env.path("flightdeck.yml"), yml).unwrap();
    let mut vars = env.vars();
    vars.push(("SHA".into(), "abc123".into()));
    let out = fd(&vars, &["run", "--dry-run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let stdout = s(&out.stdout);
    assert!(stdout.contains("dry run: only reads were made"), "{stdout}");
    assert!(
        stdout.contains(&format!("{BUNDLE} version 2.1 build 61 (IOS)")),
        "the dry run shows the artifact: {stdout}"
    );
    assert!(
        env.sim().lock().log.iter().all(|l| l.method == "GET"),
        "a dry run only reads"
    );
    let out = fd(&vars, &["--output", "json", "run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outputs"]["feedback-count"], "2");
    assert!(
        doc["summary"][1]["result"]
            .as_str()
            .unwrap()
            .contains("decided by webhook"),
        "{}",
        doc["summary"]
    );
    assert!(env.path("fb/index.json").exists());
    let build_id = doc["outputs"]["build-id"].as_str().unwrap().to_string();
    {
        let st = env.sim().lock();
        assert_eq!(
            st.localizations[0].whats_new.as_deref(),
            Some("Notes for abc123")
        );
        assert_eq!(st.builds[&build_id].groups.len(), 1);
    }
    let crash_dir = std::fs::read_dir(env.path("fb"))
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().join("crash.log").exists());
    assert!(crash_dir.is_some(), "a crash log was written");
    // The same with one-shot commands.
    let out = fd(
        &vars,
        &[
            "testflight",
            "--build",
            &build_id,
            "--group",
            "Beta",
            "--whats-new",
            "again",
            "--submit-for-review",
        ],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let out = fd(
        &vars,
        &["testflight", "--build", &build_id, "--group", "Btea"],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        s(&out.stderr).contains("did you mean \\\"Beta\\\"")
            || s(&out.stderr).contains("did you mean \"Beta\""),
        "{}",
        s(&out.stderr)
    );
    let out = fd(
        &vars,
        &["next-build-number", "--app-id", APP_ID, "--version", "2.1"],
        env.dir.path(),
    )
    .await;
    assert_eq!(s(&out.stdout), "62\n");
    let out = fd(
        &vars,
        &[
            "feedback", "--app-id", APP_ID, "--since", "1h", "--out", "fb2",
        ],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    // Webhooks.
    vars.push(("ASC_WEBHOOK_SECRET".into(), "a-long-webhook-secret".into()));
    let out = fd(
        &vars,
        &[
            "webhooks",
            "create",
            "--app-id",
            APP_ID,
            "--name",
            "ci",
            "--url",
            "http://127.0.0.1:9/x",
            "--event",
            "build_upload_state_updated",
        ],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let hook = s(&out.stdout).trim().to_string();
    let out = fd(
        &vars,
        &["webhooks", "list", "--app-id", APP_ID],
        env.dir.path(),
    )
    .await;
    assert!(
        s(&out.stdout).contains(&hook) && s(&out.stdout).contains("BUILD_UPLOAD_STATE_UPDATED")
    );
    let out = fd(&vars, &["webhooks", "ping", &hook], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0));
    eventually("ping delivered", || {
        env.sim()
            .lock()
            .deliveries
            .iter()
            .any(|d| d.state == "FAILED")
    })
    .await;
    let out = fd(
        &vars,
        &["webhooks", "deliveries", &hook, "--state", "failed"],
        env.dir.path(),
    )
    .await;
    let delivery = s(&out.stdout).split('\t').next().unwrap().to_string();
    let out = fd(&vars, &["webhooks", "redeliver", &delivery], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let out = fd(
        &vars,
        &[
            "webhooks",
            "create",
            "--app-id",
            APP_ID,
            "--name",
            "x",
            "--url",
            "http://h/",
            "--event",
            "BUILD_UPLAOD_STATE_UPDATED",
        ],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(s(&out.stderr).contains("did you mean BUILD_UPLOAD_STATE_UPDATED"));
    let out = fd(&vars, &["webhooks", "delete", &hook], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(!s(&out.stderr).contains("a-long-webhook-secret"));
    env.assert_conformant();
}

/// Start flightdeck with `args`, wait until it has registered its temporary
/// webhook, send SIGTERM, and return what it printed and its exit status.
async fn sigterm_once_webhook_registered(
    env: &Env,
    vars: Vec<(String, String)>,
    args: &[&str],
) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"));
    cmd.env_clear()
        .envs(vars)
        .current_dir(env.dir.path())
        .args(args);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().unwrap() as libc::pid_t;
    eventually("the temporary webhook", || {
        !env.sim().lock().webhooks.is_empty()
    })
    .await;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    child.wait_with_output().await.unwrap()
}

#[tokio::test]
async fn sigterm_exits_130_keeps_outputs_and_deletes_the_temporary_webhook() {
    let env = start_with(|c| c.processing_delay = std::time::Duration::from_secs(60)).await;
    let ipa = env.ipa("S.ipa", "1.0", "71", 50_000);
    let out_file = env.path("gh_out");
    let mut vars = env.vars();
    vars.extend(kv(&[
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_OUTPUT", out_file.to_str().unwrap()),
    ]));
    let ipa_arg = ipa.to_str().unwrap();
    let args = [
        "upload",
        ipa_arg,
        "--wait",
        "--webhook-listen",
        "127.0.0.1:0",
        "--webhook-register",
        "auto",
    ];
    let out = sigterm_once_webhook_registered(&env, vars, &args).await;
    assert_eq!(out.status.code(), Some(130), "{}", s(&out.stderr));
    let outputs = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        outputs.contains("build-upload-id<<"),
        "outputs written before the signal are kept: {outputs}"
    );
    assert!(
        env.sim().lock().webhooks.is_empty(),
        "temporary webhook deleted on cancellation"
    );
}

#[tokio::test]
async fn sigterm_during_a_pipeline_wait_still_deletes_the_temporary_webhook() {
    let env = start_with(|c| c.processing_delay = std::time::Duration::from_secs(60)).await;
    let ipa = env.ipa("P.ipa", "1.0", "72", 50_000);
    let yml = format!(
        "version: 1\nsteps:\n  - upload: {{ file: {} }}\n  - wait: {{ webhook: {{ listen: \"127.0.0.1:0\", register: auto }} }}\n",
        ipa.display()
    );
    std::fs::write(env.path("flightdeck.yml"), yml).unwrap();
    let out = sigterm_once_webhook_registered(&env, env.vars(), &["run"]).await;
    assert_eq!(out.status.code(), Some(130), "{}", s(&out.stderr));
    assert!(
        env.sim().lock().webhooks.is_empty(),
        "temporary webhook deleted on cancellation"
    );
}

#[tokio::test]
async fn webhooks_listen_verifies_and_forwards() {
    use axum::body::Bytes;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Bytes)>();
    let capture =
        axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: Bytes| {
            let tx = tx.clone();
            async move {
                let sig = headers
                    .get("x-apple-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let _ = tx.send((sig, body));
                "ok"
            }
        });
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_url = format!("http://{}/hook", sink.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(sink, capture).await.unwrap() });
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"))
        .env_clear()
        .env("WH_SECRET", "listen-secret-123")
        .current_dir(dir.path())
        .args([
            "webhooks",
            "listen",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--secret-env",
            "WH_SECRET",
            "--forward",
            &sink_url,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let body = include_str!("../fixtures/webhook-ping-created.json");
    let sig = {
        use hmac::{KeyInit, Mac};
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"listen-secret-123").unwrap();
        m.update(body.as_bytes());
        format!("hmacsha256={}", hex::encode(m.finalize().into_bytes()))
    };
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    let mut accepted = false;
    for _ in 0..100 {
        if let Ok(r) = http
            .post(&url)
            .header("x-apple-signature", &sig)
            .body(body)
            .send()
            .await
        {
            assert_eq!(r.status(), 200);
            accepted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(accepted, "the listener came up");
    let forged = http
        .post(&url)
        .header("x-apple-signature", "hmacsha256=00")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let (fsig, fbody) = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (fsig.as_str(), &fbody[..]),
        (sig.as_str(), body.as_bytes()),
        "forwarded verbatim with its signature"
    );
    assert!(
        rx.try_recv().is_err(),
        "the forged delivery was not forwarded"
    );
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(child.wait().await.unwrap().code(), Some(0));

    // A bandwidth it cannot read is an input error, before anything listens.
    let out = fd(
        &[],
        &["--ci", "none", "simulator", "--bandwidth", "5furlongs"],
        dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        s(&out.stderr).contains("--bandwidth: \"5furlongs\": unknown unit \"furlongs\""),
        "{}",
        s(&out.stderr)
    );
}

#[tokio::test]
async fn the_simulator_command_serves_with_a_written_env_file() {
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join("sim.env");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"))
        .env_clear()
        .current_dir(dir.path())
        .args([
            "simulator",
            "--listen",
            "127.0.0.1:0",
            "--write-env",
            env_file.to_str().unwrap(),
            "--processing-delay",
            "100ms",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("the env file", || env_file.exists()).await;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600,
        "it holds a private key"
    );
    let vars: Vec<(String, String)> = std::fs::read_to_string(&env_file)
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    assert_eq!(
        vars.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [
            "ASC_API_BASE_URL",
            "ASC_KEY_ID",
            "ASC_ISSUER_ID",
            "ASC_PRIVATE_KEY"
        ]
    );
    let out = fd(
        &vars,
        &["next-build-number", "--bundle-id", BUNDLE],
        dir.path(),
    )
    .await;
    assert_eq!(
        (out.status.code(), s(&out.stdout).as_str()),
        (Some(0), "1\n"),
        "{}",
        s(&out.stderr)
    );
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(child.wait().await.unwrap().code(), Some(0));
}

#[tokio::test]
async fn untrusted_text_cannot_become_a_workflow_command() {
    let env = start().await;
    // An app name is App Store Connect data: make one that tries to inject commands.
    let ipa = env.path("Evil.ipa");
    asc_simulator::fixture::write_ipa(
        &ipa,
        &asc_simulator::fixture::AppSpec::new(
            "com.evil\n::set-env name=X::1 ##[add-path]/x",
            "1.0",
            "1",
        ),
    )
    .unwrap();
    let mut vars = env.vars();
    vars.extend(kv(&[("GITHUB_ACTIONS", "true")]));
    let out = fd(&vars, &["upload", ipa.to_str().unwrap()], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(2));
    let err = s(&out.stderr);
    assert!(
        err.lines()
            .all(|l| !l.trim_start().starts_with("::set-env")),
        "{err}"
    );
    assert!(!err.contains("##[add-path]"), "{err}");
    assert!(err.contains("com.evil"), "the text is still shown: {err}");
}

/// Every flag and argument of every command, with the path that names it.
fn all_args(cmd: &clap::Command, path: &str, out: &mut Vec<(String, bool)>) {
    for a in cmd.get_arguments() {
        if a.is_hide_set() || ["help", "version"].contains(&a.get_id().as_str()) {
            continue;
        }
        let has_help = a
            .get_help()
            .is_some_and(|h| !h.to_string().trim().is_empty());
        out.push((format!("{path} {}", a.get_id()), has_help));
    }
    for sub in cmd.get_subcommands() {
        all_args(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

#[test]
fn every_flag_has_help_text() {
    use clap::CommandFactory;
    let mut args = Vec::new();
    all_args(&flightdeck::cli::Cli::command(), "flightdeck", &mut args);
    assert!(args.len() > 40, "the walk found the flags: {}", args.len());
    let missing: Vec<&String> = args.iter().filter(|(_, h)| !h).map(|(n, _)| n).collect();
    assert!(missing.is_empty(), "flags without help text: {missing:#?}");
}
