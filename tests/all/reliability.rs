//! Reliability promises that need no fault injection: an unreachable API
//! fails fast and names the URL, and a failed run never leaves a previous
//! run's CI outputs looking current.

use crate::support::*;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// Run the binary, killed after a generous deadline so a regression fails
/// instead of hanging the suite (no timing is asserted).
async fn fd_bounded(vars: &[(String, String)], args: &[&str], cwd: &Path) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .current_dir(cwd)
        .args(args)
        .envs(vars.iter().cloned())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("flightdeck did not end within 60 s")
        .unwrap()
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A loopback URL on which nothing listens.
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn refused_connection_on_first_contact_fails_fast_naming_the_url() {
    let env = start().await;
    let url = closed_port_url();
    let mut vars = env.vars();
    vars.retain(|(k, _)| k != "ASC_API_BASE_URL");
    vars.push(("ASC_API_BASE_URL".into(), url.clone()));
    let ipa = env.ipa("R.ipa", "1.0", "7", 10_000);
    for args in [
        vec!["upload", ipa.to_str().unwrap()],
        vec!["next-build-number", "--app-id", APP_ID, "--version", "1.0"],
    ] {
        let out = fd_bounded(&vars, &args, env.dir.path()).await;
        let err = s(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {err}");
        assert!(err.contains(&format!("cannot reach {url}")), "{err}");
        assert!(err.contains("check ASC_API_BASE_URL"), "{err}");
        // Two quick retries at most, not the six of the normal budget.
        let retries = err.matches("retrying in").count();
        assert!(retries <= 2, "{retries} retries: {err}");
    }
}

#[tokio::test]
async fn a_failed_gitlab_run_replaces_the_previous_runs_dotenv() {
    let env = start().await;
    let ipa = env.ipa("G.ipa", "1.0", "71", 10_000);
    let mut vars = env.vars();
    vars.extend([
        ("GITLAB_CI".to_string(), "true".to_string()),
        ("CI".to_string(), "true".to_string()),
    ]);
    let out = fd_bounded(&vars, &["upload", ipa.to_str().unwrap()], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let first = std::fs::read_to_string(env.path("flightdeck.env")).unwrap();
    assert!(first.contains("FLIGHTDECK_BUILD_UPLOAD_ID="), "{first}");
    // The same job again, failing: a missing artifact, then an unreachable API.
    let out = fd_bounded(&vars, &["upload", "missing.ipa"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(2), "{}", s(&out.stderr));
    let second = std::fs::read_to_string(env.path("flightdeck.env")).unwrap();
    assert!(!second.contains("BUILD_UPLOAD_ID"), "stale: {second}");
    let cq = std::fs::read_to_string(env.path("gl-code-quality-report.json")).unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&cq).is_ok(),
        "{cq}"
    );
    vars.retain(|(k, _)| k != "ASC_API_BASE_URL");
    vars.push(("ASC_API_BASE_URL".into(), closed_port_url()));
    std::fs::write(env.path("flightdeck.env"), &first).unwrap();
    let out = fd_bounded(&vars, &["upload", ipa.to_str().unwrap()], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(5), "{}", s(&out.stderr));
    let third = std::fs::read_to_string(env.path("flightdeck.env")).unwrap();
    assert!(!third.contains("BUILD_UPLOAD_ID"), "stale: {third}");
    // Invalid settings (no key at all) still replace the file.
    std::fs::write(env.path("flightdeck.env"), &first).unwrap();
    vars.retain(|(k, _)| !k.starts_with("ASC_"));
    let out = fd_bounded(&vars, &["upload", ipa.to_str().unwrap()], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(2), "{}", s(&out.stderr));
    let fourth = std::fs::read_to_string(env.path("flightdeck.env")).unwrap();
    assert!(!fourth.contains("BUILD_UPLOAD_ID"), "stale: {fourth}");
}

#[tokio::test]
async fn a_failed_bitrise_run_replaces_the_previous_runs_deploy_files() {
    let env = start().await;
    let deploy = env.path("deploy");
    let ipa = env.ipa("B.ipa", "1.0", "81", 10_000);
    let mut vars = env.vars();
    vars.extend([
        ("BITRISE_IO".to_string(), "true".to_string()),
        (
            "BITRISE_DEPLOY_DIR".to_string(),
            deploy.to_str().unwrap().to_string(),
        ),
    ]);
    let out = fd_bounded(&vars, &["upload", ipa.to_str().unwrap()], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let first = std::fs::read_to_string(deploy.join("flightdeck-outcome.json")).unwrap();
    assert!(first.contains("build-upload-id"), "{first}");
    let out = fd_bounded(&vars, &["upload", "missing.ipa"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(2));
    let outcome = std::fs::read_to_string(deploy.join("flightdeck-outcome.json")).unwrap();
    assert!(!outcome.contains("build-upload-id"), "stale: {outcome}");
    let doc: serde_json::Value = serde_json::from_str(&outcome).unwrap();
    assert_eq!(doc["ok"], false);
    let summary = std::fs::read_to_string(deploy.join("flightdeck-summary.md")).unwrap();
    assert!(!summary.contains("build-upload-id"), "stale: {summary}");
}
