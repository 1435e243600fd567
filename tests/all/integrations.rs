//! The CI integrations executed as each platform runs them, against the simulator.

use crate::support::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A fake GitHub release of the test binary for this runner: tarball + .sha256.
fn fake_release(dir: &Path) -> PathBuf {
    let rel = dir.join("release");
    std::fs::create_dir_all(&rel).unwrap();
    let stage = dir.join("stage");
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_flightdeck"), stage.join("flightdeck")).unwrap();
    let archive = rel.join("flightdeck-x86_64-unknown-linux-musl.tar.gz");
    let ok = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(&stage)
        .arg("flightdeck")
        .status()
        .unwrap();
    assert!(ok.success());
    use sha2::Digest;
    let sum = hex::encode(sha2::Sha256::digest(std::fs::read(&archive).unwrap()));
    std::fs::write(
        rel.join("flightdeck-x86_64-unknown-linux-musl.tar.gz.sha256"),
        format!("{sum}  flightdeck-x86_64-unknown-linux-musl.tar.gz\n"),
    )
    .unwrap();
    rel
}

/// Parse a `$GITHUB_OUTPUT` file: `k=v` lines and `k<<DELIM` heredocs.
fn parse_github_output(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((k, delim)) = line.split_once("<<").filter(|(k, _)| !k.contains('=')) {
            let mut v = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                v.push(l);
            }
            out.insert(k.to_string(), v.join("\n"));
        } else if let Some((k, v)) = line.split_once('=') {
            out.insert(k.to_string(), v.to_string());
        }
    }
    out
}

/// Replace `${{ inputs.x }}` and `${{ steps.id.outputs.y }}` as the runner does.
fn expr(
    text: &str,
    inputs: &BTreeMap<String, String>,
    steps: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${{") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find("}}").unwrap() + i;
        let e = rest[i + 3..end].trim();
        let v = if let Some(name) = e.strip_prefix("inputs.") {
            inputs.get(name).cloned().unwrap_or_default()
        } else if let Some(p) = e.strip_prefix("steps.") {
            let (id, name) = p.split_once(".outputs.").unwrap();
            steps
                .get(id)
                .and_then(|o| o.get(name))
                .cloned()
                .unwrap_or_default()
        } else {
            panic!("unsupported expression {e}")
        };
        out.push_str(&v);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_github_action_runs_as_a_runner_runs_it() {
    let env = start_with(|c| c.seed_feedback = true).await;
    let ipa = env.ipa("Action.ipa", "3.0", "7", 150_000);
    let action = yaml(&repo().join("action.yml"));
    assert_eq!(action["runs"]["using"], "composite");
    let mut inputs: BTreeMap<String, String> = action["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v["default"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (k, v) in [
        ("app-path", ipa.to_str().unwrap()),
        ("api-key-id", KEY_ID),
        ("api-issuer-id", ISSUER),
        ("api-private-key", env.private_pem.as_str()),
        ("groups", "QA,\nBeta"),
        ("whats-new", "Built from ${{ a weird | string }} $HOME"),
        ("poll-interval", "200ms"),
        ("version", "v0.0.0-test"),
    ] {
        assert!(inputs.contains_key(k), "input {k} is declared");
        inputs.insert(k.into(), v.into());
    }
    let dir = env.dir.path();
    let release = fake_release(dir);
    let summary = dir.join("summary.md");
    let mut steps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut all_output = String::new();
    for step in action["runs"]["steps"].as_array().unwrap() {
        let id = step["id"].as_str().unwrap().to_string();
        if step.get("uses").is_some() {
            // A `uses:` step is the runner's; only its condition is ours to evaluate.
            assert_eq!(id, "feedback-artifact");
            let cond = step["if"].as_str().unwrap();
            assert!(
                cond.contains("inputs.feedback-artifact == 'true'"),
                "{cond}"
            );
            assert!(
                cond.contains("steps.fd.outputs.feedback-dir != ''"),
                "only when a feedback step ran: {cond}"
            );
            assert!(
                !steps["fd"].contains_key("feedback-dir"),
                "this run has no feedback step, so no artifact"
            );
            continue;
        }
        let out_file = dir.join(format!("output-{id}"));
        std::fs::write(&out_file, "").unwrap();
        let mut cmd = tokio::process::Command::new("bash");
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", dir)
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_ACTION_PATH", repo())
            .env("GITHUB_WORKSPACE", dir)
            .env("GITHUB_OUTPUT", &out_file)
            .env("GITHUB_ENV", dir.join("github-env"))
            .env("GITHUB_STEP_SUMMARY", &summary)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", dir)
            .env("RUNNER_TOOL_CACHE", dir.join("toolcache"))
            .env("ASC_API_BASE_URL", &env.sim.base_url)
            .env(
                "FLIGHTDECK_DOWNLOAD_BASE",
                format!("file://{}", release.display()),
            )
            .env("FLIGHTDECK_NO_SOURCE_FALLBACK", "1")
            .current_dir(dir);
        for (k, v) in step["env"].as_object().into_iter().flatten() {
            cmd.env(k, expr(v.as_str().unwrap(), &inputs, &steps));
        }
        cmd.args([
            "--noprofile",
            "--norc",
            "-eo",
            "pipefail",
            "-c",
            step["run"].as_str().unwrap(),
        ]);
        let out = cmd.output().await.unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "step {id} failed:\n{text}");
        all_output.push_str(&text);
        steps.insert(
            id,
            parse_github_output(&std::fs::read_to_string(&out_file).unwrap()),
        );
    }
    assert!(
        steps["install"]["bin"]
            .contains("toolcache/flightdeck/v0.0.0-test/x86_64-unknown-linux-musl/flightdeck"),
        "{:?}",
        steps["install"]
    );
    let outputs: BTreeMap<String, String> = action["outputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                expr(v["value"].as_str().unwrap(), &inputs, &steps),
            )
        })
        .collect();
    for name in UPLOAD_AND_WAIT_OUTPUTS {
        assert!(
            !outputs[*name].is_empty(),
            "action output {name} is empty: {outputs:?}"
        );
    }
    assert_eq!(
        (
            outputs["version"].as_str(),
            outputs["processing-state"].as_str()
        ),
        ("3.0", "VALID")
    );
    let st = env.sim().lock();
    assert_eq!(
        st.builds[&outputs["build-id"]].groups.len(),
        2,
        "QA and Beta"
    );
    assert_eq!(
        st.localizations[0].whats_new.as_deref(),
        Some("Built from ${{ a weird | string }} $HOME"),
        "text passed through untouched"
    );
    drop(st);
    assert!(
        std::fs::read_to_string(&summary)
            .unwrap()
            .contains("flightdeck run succeeded")
    );
    for line in env.private_pem.lines().filter(|l| l.len() >= 8) {
        assert!(
            all_output.contains(&format!("::add-mask::{line}")),
            "each key line is masked"
        );
        let unmasked = all_output
            .lines()
            .filter(|l| !l.starts_with("::add-mask::"))
            .any(|l| l.contains(line));
        assert!(!unmasked, "key material printed outside add-mask");
    }
    env.assert_conformant();
}

#[tokio::test]
async fn the_installer_verifies_checksums_and_caches() {
    let dir = tempfile::tempdir().unwrap();
    let release = fake_release(dir.path());
    let run = |base: String, cache: PathBuf, version: &str| {
        let mut cmd = std::process::Command::new(repo().join("ci/install.sh"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .env("HOME", dir.path())
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("FLIGHTDECK_CACHE", cache)
            .env("FLIGHTDECK_VERSION", version)
            .env("FLIGHTDECK_DOWNLOAD_BASE", base)
            .env("FLIGHTDECK_NO_SOURCE_FALLBACK", "1");
        cmd.output().unwrap()
    };
    let base = format!("file://{}", release.display());
    let out = run(base.clone(), dir.path().join("c1"), "v1.0.0");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let v = std::process::Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("flightdeck "));
    let again = run(
        "file:///nonexistent".into(),
        dir.path().join("c1"),
        "v1.0.0",
    );
    assert!(
        again.status.success() && String::from_utf8_lossy(&again.stderr).contains("using cached")
    );
    // A tampered archive is refused.
    std::fs::write(
        release.join("flightdeck-x86_64-unknown-linux-musl.tar.gz.sha256"),
        "0000  x\n",
    )
    .unwrap();
    let bad = run(base, dir.path().join("c2"), "v1.0.0");
    assert_eq!(bad.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("checksum mismatch"));
    let none = run(
        "file:///nonexistent".into(),
        dir.path().join("c3"),
        "v1.0.0",
    );
    assert_eq!(none.status.code(), Some(1));
}

#[tokio::test]
async fn the_gitlab_job_writes_dotenv_and_code_quality() {
    let env = start().await;
    let ipa = env.ipa("Lab.ipa", "5.0", "3", 80_000);
    let template = yaml(&repo().join("ci/gitlab/flightdeck.gitlab-ci.yml"));
    let job = &template[".flightdeck"];
    assert_eq!(job["artifacts"]["reports"]["dotenv"], "flightdeck.env");
    assert_eq!(
        job["artifacts"]["reports"]["codequality"],
        "gl-code-quality-report.json"
    );
    let script: Vec<&str> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let project = env.dir.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let run = |pipeline: String| {
        std::fs::write(project.join("flightdeck.yml"), pipeline).unwrap();
        let mut cmd = tokio::process::Command::new("bash");
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap())
            .current_dir(&project);
        for (k, v) in job["variables"].as_object().unwrap() {
            cmd.env(k, v.as_str().unwrap());
        }
        // GitLab's App Store Connect integration: fastlane names, the key base64 and line-wrapped.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&env.private_pem);
        let wrapped: Vec<String> = b64
            .as_bytes()
            .chunks(60)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        cmd.env("GITLAB_CI", "true")
            .env("CI", "true")
            .env("CI_PROJECT_DIR", &project)
            .env(
                "FLIGHTDECK_INSTALL_URL",
                format!("file://{}", repo().join("ci/install.sh").display()),
            )
            .env("FLIGHTDECK_BINARY", env!("CARGO_BIN_EXE_flightdeck"))
            .env("ASC_API_BASE_URL", &env.sim.base_url)
            .env("APP_STORE_CONNECT_API_KEY_KEY_ID", KEY_ID)
            .env("APP_STORE_CONNECT_API_KEY_ISSUER_ID", ISSUER)
            .env("APP_STORE_CONNECT_API_KEY_KEY", wrapped.join("\n") + "\n")
            .env("APP_STORE_CONNECT_API_KEY_IS_KEY_CONTENT_BASE64", "true")
            .args(["-e", "-c", &script.join("\n")]);
        cmd.output()
    };
    let ok = run(format!("version: 1\nsteps:\n  - upload: {{ file: {} }}\n  - wait: {{ poll: {{ interval: 200ms }} }}\n", ipa.display())).await.unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let dotenv = std::fs::read_to_string(project.join("flightdeck.env")).unwrap();
    assert!(
        dotenv.contains("FLIGHTDECK_PROCESSING_STATE=VALID\n")
            && dotenv.contains("FLIGHTDECK_BUILD_ID="),
        "{dotenv}"
    );
    assert!(
        dotenv
            .lines()
            .all(|l| l.starts_with("FLIGHTDECK_") && !l.trim().is_empty())
    );
    assert_eq!(
        std::fs::read_to_string(project.join("gl-code-quality-report.json"))
            .unwrap()
            .trim(),
        "[]"
    );
    let bad = run("version: 1\nsteps:\n  - upload: { file: x.ipa, concurency: 2 }\n".into())
        .await
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let cq: Value = serde_json::from_str(
        &std::fs::read_to_string(project.join("gl-code-quality-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(cq[0]["location"]["lines"]["begin"], 3);
    assert!(
        cq[0]["description"]
            .as_str()
            .unwrap()
            .contains("did you mean `concurrency`"),
        "{cq}"
    );
    env.assert_conformant();
}

#[tokio::test]
async fn the_bitrise_step_exports_through_envman_and_deploys_files() {
    let env = start_with(|c| c.seed_feedback = true).await;
    let step = yaml(&repo().join("ci/bitrise/step.yml"));
    assert!(step["summary"].as_str().unwrap().len() <= 100);
    let keys: Vec<String> = step["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i.as_object()?.keys().find(|k| *k != "opts").cloned())
        .collect();
    for k in [
        "ipa_path",
        "pkg_path",
        "api_key_path",
        "api_private_key",
        "groups",
    ] {
        assert!(keys.contains(&k.to_string()), "input {k}");
    }
    assert_eq!(step["inputs"][0]["ipa_path"], "$BITRISE_IPA_PATH");
    let dir = env.dir.path();
    let ipa = env.ipa("Rise.ipa", "6.0", "9", 80_000);
    let key = dir.join("AuthKey.p8");
    std::fs::write(&key, &env.private_pem).unwrap();
    let (bin, record) = fake_envman(dir);
    let deploy = dir.join("deploy");
    std::fs::create_dir_all(&deploy).unwrap();
    let out = tokio::process::Command::new(repo().join("ci/bitrise/step.sh"))
        .env_clear()
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("HOME", dir)
        .env("BITRISE_IO", "true")
        .env("CI", "true")
        .env("BITRISE_DEPLOY_DIR", &deploy)
        .env("ENVMAN_ENVSTORE_PATH", dir.join("store.yml"))
        .env("BITRISE_IPA_PATH", &ipa)
        .env("FLIGHTDECK_BINARY", env!("CARGO_BIN_EXE_flightdeck"))
        .env("ASC_API_BASE_URL", &env.sim.base_url)
        .env("ipa_path", &ipa)
        .env("api_key_id", KEY_ID)
        .env("api_issuer_id", ISSUER)
        .env("api_key_path", format!("file://{}", key.display()))
        .env("groups", "QA|Beta")
        .env("whats_new", "From Bitrise")
        .env("additional_args", "--log-level warn")
        .current_dir(dir)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(&record).unwrap();
    for name in [
        "FLIGHTDECK_BUILD_ID",
        "FLIGHTDECK_BUILD_UPLOAD_ID",
        "FLIGHTDECK_PROCESSING_STATE",
    ] {
        assert!(
            calls.contains(&format!("add --key {name} --value ")),
            "{name} exported:\n{calls}"
        );
    }
    assert!(calls.lines().all(|l| l.ends_with("--no-expand")), "{calls}");
    assert!(
        deploy.join("flightdeck-summary.md").exists()
            && deploy.join("flightdeck-outcome.json").exists()
    );
    env.assert_conformant();
}

#[tokio::test]
async fn a_failed_install_fails_the_action_step_itself() {
    let action = yaml(&repo().join("action.yml"));
    let install = &action["runs"]["steps"][0];
    assert_eq!(install["id"], "install");
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new("bash")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", dir.path())
        .env("GITHUB_ACTION_PATH", repo())
        .env("GITHUB_OUTPUT", dir.path().join("out"))
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TOOL_CACHE", dir.path())
        .env("FLIGHTDECK_VERSION", "v9.9.9")
        .env("FLIGHTDECK_DOWNLOAD_BASE", "file:///nonexistent")
        .env("FLIGHTDECK_NO_SOURCE_FALLBACK", "1")
        .args([
            "--noprofile",
            "--norc",
            "-eo",
            "pipefail",
            "-c",
            install["run"].as_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        !out.status.success(),
        "the step must fail, not pass an empty path on"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("download of flightdeck-x86_64-unknown-linux-musl.tar.gz failed")
    );
}

#[tokio::test]
async fn the_action_uploads_feedback_when_the_pipeline_has_a_feedback_step() {
    let env = start().await;
    let now = env.sim().now();
    asc_simulator::feedback_seed::catalogue(&mut env.sim().lock(), APP_ID, now, 2, 1);
    let action = yaml(&repo().join("action.yml"));
    let steps_def = action["runs"]["steps"].as_array().unwrap();
    let fd_step = steps_def.iter().find(|s| s["id"] == "fd").unwrap();
    let artifact = steps_def
        .iter()
        .find(|s| s["id"] == "feedback-artifact")
        .unwrap();
    assert!(
        artifact["uses"]
            .as_str()
            .unwrap()
            .starts_with("actions/upload-artifact@")
    );
    let dir = env.dir.path();
    std::fs::write(
        dir.join("flightdeck.yml"),
        format!("version: 1\napp: {{ id: \"{APP_ID}\" }}\nsteps:\n  - feedback: {{ out: fb }}\n"),
    )
    .unwrap();
    let mut inputs: BTreeMap<String, String> = action["inputs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v["default"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(inputs["feedback-artifact"], "true", "on by default");
    inputs.insert("pipeline".into(), "flightdeck.yml".into());
    inputs.insert("api-key-id".into(), KEY_ID.into());
    inputs.insert("api-issuer-id".into(), ISSUER.into());
    inputs.insert("api-private-key".into(), env.private_pem.clone());
    let mut steps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    steps.insert(
        "install".into(),
        [(
            "bin".to_string(),
            env!("CARGO_BIN_EXE_flightdeck").to_string(),
        )]
        .into(),
    );
    let out_file = dir.join("output-fd");
    std::fs::write(&out_file, "").unwrap();
    let mut cmd = tokio::process::Command::new("bash");
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", dir)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_ACTION_PATH", repo())
        .env("GITHUB_WORKSPACE", dir)
        .env("GITHUB_OUTPUT", &out_file)
        .env("GITHUB_STEP_SUMMARY", dir.join("summary.md"))
        .env("ASC_API_BASE_URL", &env.sim.base_url)
        .current_dir(dir);
    for (k, v) in fd_step["env"].as_object().into_iter().flatten() {
        cmd.env(k, expr(v.as_str().unwrap(), &inputs, &steps));
    }
    cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
        .arg(fd_step["run"].as_str().unwrap());
    let out = cmd.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fd_out = parse_github_output(&std::fs::read_to_string(&out_file).unwrap());
    assert_eq!(fd_out["feedback-dir"], "fb");
    assert_eq!(
        (
            fd_out["crash-count"].as_str(),
            fd_out["screenshot-count"].as_str()
        ),
        ("2", "1")
    );
    steps.insert("fd".into(), fd_out);
    // The step's condition holds, and its path is the directory the step filled.
    assert!(
        artifact["if"]
            .as_str()
            .unwrap()
            .contains("steps.fd.outputs.feedback-dir != ''")
    );
    let path = expr(artifact["with"]["path"].as_str().unwrap(), &inputs, &steps);
    assert!(dir.join(&path).join("feedback.md").exists(), "{path}");
    assert_eq!(
        expr(artifact["with"]["name"].as_str().unwrap(), &inputs, &steps),
        "testflight-feedback"
    );
}
