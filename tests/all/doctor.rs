//! `flightdeck doctor` against the simulator: a good set-up passes every
//! check; a wrong key id, a key without the TestFlight role, a skewed clock
//! and an issuer with a trailing newline each show up in the check they
//! belong to, with the documented exit code.

use crate::cli::fd;
use crate::support::*;
use flightdeck::auth::key;
use serde_json::Value;

const PIPELINE: &str =
    "version: 1\nsteps:\n  - upload:\n      file: build/App.ipa\n  - wait:\n      timeout: 10m\n";

/// Run doctor with `--output json`: (exit code, checks by name, stdout, stderr).
async fn doctor(env: &Env, vars: &[(String, String)], extra: &[&str]) -> (i32, Value, String) {
    std::fs::write(env.path("flightdeck.yml"), PIPELINE).unwrap();
    let mut args = vec!["--output", "json", "doctor", "--bundle-id", BUNDLE];
    args.extend_from_slice(extra);
    let out = fd(vars, &args, env.dir.path()).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stderr}"));
    let checks: serde_json::Map<String, Value> = doc["data"]["checks"]
        .as_array()
        .expect("data.checks")
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_string(), c.clone()))
        .collect();
    (out.status.code().unwrap(), Value::Object(checks), stderr)
}

fn status(checks: &Value, name: &str) -> String {
    checks[name]["status"]
        .as_str()
        .unwrap_or("missing")
        .to_string()
}

const ALL: [&str; 11] = [
    "credentials",
    "private-key",
    "key-id",
    "issuer-id",
    "clock",
    "api",
    "app",
    "testflight",
    "pipeline",
    "webhook-secret",
    "ci",
];

#[tokio::test]
async fn a_good_set_up_passes_every_check() {
    let env = start().await;
    let (code, checks, stderr) = doctor(&env, &env.vars(), &[]).await;
    for name in ALL {
        assert_eq!(
            status(&checks, name),
            "pass",
            "{name}: {}\n{stderr}",
            checks[name]
        );
    }
    assert_eq!(code, 0, "{stderr}");
    assert!(checks["app"]["detail"].as_str().unwrap().contains(APP_ID));
    assert!(
        checks["credentials"]["detail"]
            .as_str()
            .unwrap()
            .contains("ASC_KEY_ID, ASC_ISSUER_ID, ASC_PRIVATE_KEY")
    );
    // The text form: one line per check, nothing secret.
    std::fs::write(env.path("flightdeck.yml"), PIPELINE).unwrap();
    let out = fd(&env.vars(), &["doctor"], env.dir.path()).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("[ ok ] clock"), "{text}");
    assert!(text.contains("doctor: all checks passed"), "{text}");
    let all = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    for line in env.private_pem.lines().filter(|l| l.len() > 20) {
        assert!(!all.contains(line), "doctor printed a key line");
    }
    env.assert_conformant();
}

#[tokio::test]
async fn a_wrong_key_id_fails_the_api_check_and_names_the_key_id() {
    let env = start().await;
    let mut vars = env.vars();
    vars.retain(|(k, _)| k != "ASC_KEY_ID");
    vars.push(("ASC_KEY_ID".into(), "WRONGKEY99".into()));
    let (code, checks, stderr) = doctor(&env, &vars, &[]).await;
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(status(&checks, "key-id"), "pass", "the shape is fine");
    assert_eq!(status(&checks, "api"), "fail");
    assert_eq!(checks["api"]["class"], "auth");
    let api = checks["api"].to_string();
    assert!(api.contains("401 NOT_AUTHORIZED"), "{api}");
    assert!(api.contains("check the key id first"), "{api}");
    assert_eq!(status(&checks, "testflight"), "skip");
    assert!(stderr.contains("first: api:"), "{stderr}");
}

#[tokio::test]
async fn a_key_without_the_testflight_role_is_told_apart_from_a_wrong_key() {
    let (dev_private, dev_public) = key::generate();
    let env =
        start_with(|c| c.add_key("DEVKEY0001", Some(ISSUER), &dev_public, &["DEVELOPER"])).await;
    let vars = vec![
        ("ASC_API_BASE_URL".to_string(), env.sim.base_url.clone()),
        ("ASC_KEY_ID".into(), "DEVKEY0001".into()),
        ("ASC_ISSUER_ID".into(), ISSUER.into()),
        ("ASC_PRIVATE_KEY".into(), dev_private.expose().to_string()),
    ];
    let (code, checks, stderr) = doctor(&env, &vars, &[]).await;
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(status(&checks, "api"), "pass", "the key itself is accepted");
    assert_eq!(status(&checks, "app"), "pass");
    assert_eq!(status(&checks, "testflight"), "fail");
    let tf = checks["testflight"].to_string();
    assert!(tf.contains("403 FORBIDDEN_ERROR"), "{tf}");
    assert!(tf.contains("App Manager or Admin"), "{tf}");
    env.assert_conformant();
}

#[tokio::test]
async fn a_skewed_clock_is_caught_from_the_date_header() {
    let env = start().await;
    // App Store Connect five minutes behind us: our tokens look issued in the future.
    env.sim().advance_clock(-300);
    let (code, checks, stderr) = doctor(&env, &env.vars(), &[]).await;
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(status(&checks, "clock"), "fail");
    let detail = checks["clock"]["detail"].as_str().unwrap();
    assert!(detail.contains("ahead of App Store Connect"), "{detail}");
    let secs: i64 = detail
        .split("clock is ")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((295..=305).contains(&secs), "{detail}");
    assert!(
        stderr.contains("first: clock:"),
        "the clock is the first failure: {stderr}"
    );
    assert!(
        checks["api"]["detail"]
            .as_str()
            .unwrap()
            .contains("fix the clock first")
    );
    // Ahead by five minutes: tokens still work, the clock check still fails.
    env.sim().advance_clock(600);
    let (code, checks, _) = doctor(&env, &env.vars(), &[]).await;
    assert_eq!((code, status(&checks, "api").as_str()), (3, "pass"));
    assert!(
        checks["clock"]["detail"]
            .as_str()
            .unwrap()
            .contains("behind")
    );
}

#[tokio::test]
async fn an_issuer_with_a_trailing_newline_warns_and_still_works() {
    let env = start().await;
    let mut vars = env.vars();
    vars.retain(|(k, _)| k != "ASC_ISSUER_ID");
    vars.push(("ASC_ISSUER_ID".into(), format!("{ISSUER}\n")));
    vars.push(("GITHUB_ACTIONS".into(), "true".into()));
    vars.push((
        "GITHUB_OUTPUT".into(),
        env.path("out").display().to_string(),
    ));
    vars.push((
        "GITHUB_STEP_SUMMARY".into(),
        env.path("sum").display().to_string(),
    ));
    let (code, checks, stderr) = doctor(&env, &vars, &[]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(status(&checks, "issuer-id"), "warn");
    assert!(
        checks["issuer-id"]["detail"]
            .as_str()
            .unwrap()
            .contains("ASC_ISSUER_ID: removed a trailing newline"),
        "{}",
        checks["issuer-id"]
    );
    assert_eq!(status(&checks, "api"), "pass");
    assert_eq!(status(&checks, "testflight"), "pass");
    assert!(
        stderr.contains("::warning::doctor: issuer-id: ASC_ISSUER_ID: removed a trailing newline"),
        "{stderr}"
    );
    assert!(stderr.contains("::group::doctor: checks"), "{stderr}");
}

#[tokio::test]
async fn missing_credentials_and_a_broken_pipeline_fail_as_bad_input() {
    let env = start().await;
    std::fs::write(env.path("flightdeck.yml"), "version: 1\nstepz: []\n").unwrap();
    let vars = vec![("ASC_API_BASE_URL".to_string(), env.sim.base_url.clone())];
    let out = fd(&vars, &["--output", "json", "doctor"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(2));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = doc["data"]["checks"].as_array().unwrap();
    let by = |n: &str| checks.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(by("credentials")["status"], "fail");
    assert!(
        by("credentials")["detail"]
            .as_str()
            .unwrap()
            .contains("ASC_KEY_ID is not set")
    );
    assert_eq!(by("api")["status"], "skip");
    assert_eq!(by("clock")["status"], "pass", "the clock needs no key");
    assert_eq!(by("pipeline")["status"], "fail");
    assert!(
        by("pipeline")["detail"]
            .as_str()
            .unwrap()
            .contains("flightdeck.yml:2:1")
    );
}

#[tokio::test]
async fn a_webhook_without_a_secret_and_unwritable_ci_files_fail() {
    let env = start().await;
    std::fs::write(
        env.path("hooked.yml"),
        "version: 1\nsteps:\n  - upload:\n      file: build/App.ipa\n  - wait:\n      webhook: { listen: \"127.0.0.1:0\" }\n",
    )
    .unwrap();
    let mut vars = env.vars();
    vars.push(("GITHUB_ACTIONS".into(), "true".into()));
    vars.push(("GITHUB_OUTPUT".into(), "/nonexistent/dir/out".into()));
    let (code, checks, stderr) = doctor(&env, &vars, &["--pipeline", "hooked.yml"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(
        status(&checks, "pipeline"),
        "pass",
        "{}",
        checks["pipeline"]
    );
    assert_eq!(status(&checks, "webhook-secret"), "fail");
    assert!(
        checks["webhook-secret"]["fix"]
            .as_str()
            .unwrap()
            .contains("ASC_WEBHOOK_SECRET")
    );
    let ci = checks["ci"]["detail"].as_str().unwrap();
    assert!(
        ci.contains("GitHub Actions detected, but: /nonexistent/dir/out"),
        "{ci}"
    );
    assert!(ci.contains("GITHUB_STEP_SUMMARY is not set"), "{ci}");
    // With the secret set, only the CI files are left.
    vars.push(("ASC_WEBHOOK_SECRET".into(), "a-long-webhook-secret".into()));
    let (_, checks, _) = doctor(&env, &vars, &["--pipeline", "hooked.yml"]).await;
    assert_eq!(status(&checks, "webhook-secret"), "pass");
    assert_eq!(status(&checks, "ci"), "fail");
}

#[tokio::test]
async fn gitlab_gets_a_collapsed_section_for_each_phase() {
    let env = start().await;
    std::fs::write(env.path("flightdeck.yml"), PIPELINE).unwrap();
    let mut vars = env.vars();
    vars.push(("GITLAB_CI".into(), "true".into()));
    for (args, section) in [
        (
            vec!["doctor"],
            "_doctor_checks[collapsed=true]\r\x1b[0Kdoctor: checks\n",
        ),
        (
            vec!["validate"],
            "_validate[collapsed=true]\r\x1b[0Kvalidate\n",
        ),
        (
            vec!["next-build-number", "--bundle-id", BUNDLE],
            "_next-build-number[collapsed=true]\r\x1b[0Knext-build-number\n",
        ),
    ] {
        let out = fd(&vars, &args, env.dir.path()).await;
        let err = String::from_utf8_lossy(&out.stderr);
        let start = err
            .find("\x1b[0Ksection_start:")
            .unwrap_or_else(|| panic!("{args:?}: {err:?}"));
        let line = &err[start..];
        let name_at = line.find(":flightdeck_1").unwrap();
        let stamp: i64 = line["\x1b[0Ksection_start:".len()..name_at]
            .parse()
            .unwrap();
        assert!((stamp - jiff::Timestamp::now().as_second()).abs() < 120);
        assert!(
            line[name_at..].starts_with(&format!(":flightdeck_1{section}")),
            "{args:?}: {err:?}"
        );
        assert!(
            err.contains(":flightdeck_1") && err.contains("\x1b[0Ksection_end:"),
            "{err:?}"
        );
    }
}
