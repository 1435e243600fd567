//! `feedback` against a seeded simulator (several pages of crashes and
//! screenshots over builds, devices and OS versions) and the GitHub/GitLab
//! issue stand-ins: incremental pulls, filters, the crash gate, the report,
//! tracked issues, and the relay path.

use crate::cli::fd;
use crate::issue_standins::{self, Flavor, StandIn};
use crate::support::*;
use asc_simulator::feedback_seed::{self, Catalogue};
use flightdeck::feedback::{self, Request};
use serde_json::Value;
use std::path::Path;

const TOKEN: &str = "ghp_standin_token_0123456789";

fn seed(env: &Env, crashes: usize, screenshots: usize) -> Catalogue {
    let now = env.sim().now();
    feedback_seed::catalogue(&mut env.sim().lock(), APP_ID, now, crashes, screenshots)
}

fn request(env: &Env, out: &str) -> Request {
    Request {
        app_id: APP_ID.into(),
        filter: Default::default(),
        since: None,
        out: env.path(out),
    }
}

/// Every file under `dir` with its modification time.
fn mtimes(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut out = Vec::new();
    for e in walk(dir) {
        out.push((
            e.display().to_string(),
            std::fs::metadata(&e).unwrap().modified().unwrap(),
        ));
    }
    out.sort();
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn expected_log(env: &Env, id: &str) -> String {
    let st = env.sim().lock();
    st.feedback
        .iter()
        .find(|f| f.id == id)
        .unwrap()
        .crash_log
        .clone()
        .unwrap()
}

fn expected_image(env: &Env, id: &str) -> Vec<u8> {
    let st = env.sim().lock();
    st.feedback
        .iter()
        .find(|f| f.id == id)
        .unwrap()
        .image
        .clone()
        .unwrap()
}

#[tokio::test]
async fn pulls_every_page_byte_exact_and_a_rerun_downloads_nothing() {
    let env = start().await;
    let cat = seed(&env, 230, 12);
    let ctx = env.ctx();
    let req = request(&env, "fb");
    let p = feedback::run(&ctx.api, &req).await.unwrap();
    assert_eq!((p.count, p.crashes, p.screenshots), (242, 230, 12));
    assert_eq!(p.new_ids.len(), 242);
    assert!(
        env.count(
            "GET",
            &format!("/v1/apps/{APP_ID}/betaFeedbackCrashSubmissions")
        ) >= 2,
        "230 crashes take two pages of 200"
    );
    for id in &cat.crashes {
        let saved = std::fs::read_to_string(req.out.join(id).join("crash.log")).unwrap();
        assert_eq!(saved, expected_log(&env, id), "crash log {id} byte-exact");
    }
    let mut images = 0;
    for id in &cat.screenshots {
        let n = env
            .sim()
            .lock()
            .feedback
            .iter()
            .find(|f| &f.id == id)
            .unwrap()
            .screenshots;
        for k in 1..=n {
            let saved =
                std::fs::read(req.out.join(id).join(format!("screenshot-{k}.png"))).unwrap();
            assert_eq!(saved, expected_image(&env, id), "image {id}/{k} byte-exact");
            images += 1;
        }
    }
    let image_bytes: u64 = cat
        .screenshots
        .iter()
        .map(|id| {
            let n = env
                .sim()
                .lock()
                .feedback
                .iter()
                .find(|f| &f.id == id)
                .unwrap()
                .screenshots;
            n as u64 * expected_image(&env, id).len() as u64
        })
        .sum();
    let log_bytes: u64 = cat
        .crashes
        .iter()
        .map(|id| expected_log(&env, id).len() as u64)
        .sum();
    assert_eq!(
        p.bytes_downloaded,
        image_bytes + log_bytes,
        "{images} images and the logs, once"
    );
    assert!(req.out.join("feedback.md").exists() && req.out.join("feedback.json").exists());
    let doc: Value =
        serde_json::from_slice(&std::fs::read(req.out.join("feedback.json")).unwrap()).unwrap();
    assert_eq!(doc["count"], 242);
    assert_eq!(doc["submissions"].as_array().unwrap().len(), 242);
    let newest = doc["submissions"][0]["created"]
        .as_str()
        .unwrap()
        .to_string();
    let oldest = doc["submissions"][241]["created"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(newest > oldest, "newest first");

    // A re-run: nothing downloaded, nothing rewritten but the index.
    let before = mtimes(&req.out);
    let logs = env.count("GET", "/v1/betaFeedbackCrashSubmissions/");
    std::thread::sleep(std::time::Duration::from_millis(20));
    let again = feedback::run(&ctx.api, &req).await.unwrap();
    assert_eq!(again.new_ids.len(), 0);
    assert_eq!((again.files_written, again.bytes_downloaded), (0, 0));
    assert_eq!(env.count("GET", "/v1/betaFeedbackCrashSubmissions/"), logs);
    let after: Vec<_> = mtimes(&req.out)
        .into_iter()
        .filter(|(p, _)| !p.ends_with("index.json"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _)| !p.ends_with("index.json"))
        .collect();
    assert_eq!(before, after, "no file rewritten");
    env.assert_conformant();
}

#[tokio::test]
async fn a_truncated_or_missing_file_is_fetched_again_and_only_it() {
    let env = start().await;
    let cat = seed(&env, 4, 3);
    let ctx = env.ctx();
    let req = request(&env, "fb");
    feedback::run(&ctx.api, &req).await.unwrap();
    let shot = req.out.join(&cat.screenshots[1]).join("screenshot-1.png");
    let full = std::fs::read(&shot).unwrap();
    std::fs::write(&shot, &full[..full.len() / 2]).unwrap();
    let log = req.out.join(&cat.crashes[2]).join("crash.log");
    std::fs::remove_file(&log).unwrap();
    let logs = env.count("GET", "/v1/betaFeedbackCrashSubmissions/");
    let p = feedback::run(&ctx.api, &req).await.unwrap();
    assert_eq!(
        std::fs::read(&shot).unwrap(),
        full,
        "the truncated image is whole again"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        expected_log(&env, &cat.crashes[2])
    );
    assert_eq!(
        p.bytes_downloaded,
        (full.len() + expected_log(&env, &cat.crashes[2]).len()) as u64,
        "that image and that log, nothing else"
    );
    assert_eq!(
        env.count("GET", "/v1/betaFeedbackCrashSubmissions/") - logs,
        1,
        "one crash log"
    );
    assert_eq!(p.files_written, 2);
    env.assert_conformant();
}

#[tokio::test]
async fn an_expired_screenshot_url_is_refetched_once_through_the_api() {
    let env = start().await;
    let cat = seed(&env, 0, 2);
    let stale = cat.screenshots[0].clone();
    env.sim()
        .lock()
        .feedback
        .iter_mut()
        .find(|f| f.id == stale)
        .unwrap()
        .stale_list_urls = true;
    let ctx = env.ctx();
    let req = request(&env, "fb");
    let p = feedback::run(&ctx.api, &req).await.unwrap();
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    assert_eq!(
        std::fs::read(req.out.join(&stale).join("screenshot-1.png")).unwrap(),
        expected_image(&env, &stale)
    );
    assert_eq!(
        env.count(
            "GET",
            &format!("/v1/betaFeedbackScreenshotSubmissions/{stale}")
        ),
        1,
        "one fresh copy of the submission, for both of its screenshots"
    );
    assert_eq!(
        env.count(
            "GET",
            &format!(
                "/v1/betaFeedbackScreenshotSubmissions/{}",
                cat.screenshots[1]
            )
        ),
        0
    );
    env.assert_conformant();
}

#[tokio::test]
async fn since_build_platform_device_and_os_narrow_the_scope() {
    let env = start().await;
    let cat = seed(&env, 24, 24);
    let ctx = env.ctx();
    let all: Vec<feedback::index::Entry> = {
        let p = feedback::run(&ctx.api, &request(&env, "all"))
            .await
            .unwrap();
        p.items
    };
    // since: submissions are 7 minutes apart, the newest 7 minutes old.
    let mut req = request(&env, "recent");
    req.since = Some(flightdeck::plan::parse_since("30m").unwrap());
    let p = feedback::run(&ctx.api, &req).await.unwrap();
    assert_eq!(
        (p.crashes, p.screenshots),
        (4, 4),
        "7, 14, 21, 28 minutes old"
    );
    // build
    let mut req = request(&env, "build");
    req.filter.build = Some(cat.builds[1].clone());
    let p = feedback::run(&ctx.api, &req).await.unwrap();
    assert_eq!(p.count, 16);
    assert!(
        p.items
            .iter()
            .all(|e| e.build_id.as_deref() == Some(&cat.builds[1]))
    );
    assert!(
        p.items.iter().all(|e| e.build.as_deref() == Some("2")),
        "build number included"
    );
    // device model, OS version, platform
    for (filter, expect) in [
        (
            "device",
            all.iter()
                .filter(|e| e.device_model.as_deref() == Some("iPad14,1"))
                .count(),
        ),
        (
            "os",
            all.iter()
                .filter(|e| e.os_version.as_deref() == Some("17.6"))
                .count(),
        ),
        (
            "platform",
            all.iter()
                .filter(|e| e.platform.as_deref() == Some("MAC_OS"))
                .count(),
        ),
    ] {
        let mut req = request(&env, filter);
        match filter {
            "device" => req.filter.device_model = Some("iPad14,1".into()),
            "os" => req.filter.os_version = Some("17.6".into()),
            _ => req.filter.platform = Some("MAC_OS".into()),
        }
        let p = feedback::run(&ctx.api, &req).await.unwrap();
        assert_eq!(p.count, expect, "{filter}");
        assert!(expect > 0 && expect < all.len());
    }
    env.assert_conformant();
}

#[tokio::test]
async fn a_later_run_defaults_to_feedback_since_the_last_run() {
    let env = start().await;
    // Three crashes from three hours ago, beyond the re-run overlap.
    env.sim().advance_clock(-3 * 3600);
    seed(&env, 3, 0);
    env.sim().advance_clock(3 * 3600);
    let ctx = env.ctx();
    let req = request(&env, "fb");
    assert_eq!(feedback::run(&ctx.api, &req).await.unwrap().crashes, 3);
    // Later, one new crash.
    let build = env.sim().lock().feedback[0].build_id.clone();
    let now = env.sim().now();
    let new = feedback_seed::add_submission(&mut env.sim().lock(), APP_ID, &build, 1, true, now);
    let p = feedback::run(&ctx.api, &req).await.unwrap();
    assert_eq!(p.new_ids, vec![new]);
    assert_eq!(
        p.crashes, 1,
        "the scope starts at the last run: {:?}",
        p.cutoff
    );
}

fn fb_vars(env: &Env, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = env.vars();
    v.push(("ASC_APP_ID".into(), APP_ID.into()));
    for (k, val) in extra {
        v.push((k.to_string(), val.to_string()));
    }
    v
}

fn json_out(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn the_crash_gate_fails_on_crashes_not_yet_in_the_index() {
    let env = start().await;
    seed(&env, 3, 2);
    let vars = fb_vars(&env, &[]);
    let args = [
        "--output",
        "json",
        "feedback",
        "--out",
        "fb",
        "--fail-on-crash",
    ];
    let out = fd(&vars, &args, env.dir.path()).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_out(&out);
    let crashes: Vec<&Value> = doc["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["title"] == "TestFlight crash")
        .collect();
    assert_eq!(
        crashes.len(),
        3,
        "one annotation per crash: {}",
        doc["annotations"]
    );
    assert_eq!(doc["outputs"]["crash-count"], "3");
    assert_eq!(doc["outputs"]["screenshot-count"], "2");
    assert_eq!(doc["outputs"]["feedback-count"], "5");
    assert!(
        doc["outputs"]["feedback-dir"]
            .as_str()
            .unwrap()
            .ends_with("fb")
    );
    // Recorded now: the gate passes.
    let out = fd(&vars, &args, env.dir.path()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One more crash: it fails again, for that one.
    let build = env.sim().lock().feedback[0].build_id.clone();
    let now = env.sim().now();
    feedback_seed::add_submission(&mut env.sim().lock(), APP_ID, &build, 7, true, now);
    let out = fd(&vars, &args, env.dir.path()).await;
    assert_eq!(out.status.code(), Some(1));
    let doc = json_out(&out);
    assert_eq!(
        doc["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["title"] == "TestFlight crash")
            .count(),
        1
    );
    env.assert_conformant();
}

#[tokio::test]
async fn the_step_summary_has_a_table_newest_first_with_links() {
    let env = start().await;
    seed(&env, 2, 2);
    let summary = env.path("summary.md");
    let out_file = env.path("gh-output");
    std::fs::write(&out_file, "").unwrap();
    let vars = fb_vars(
        &env,
        &[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", out_file.to_str().unwrap()),
        ],
    );
    let out = fd(&vars, &["feedback", "--out", "fb"], env.dir.path()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(
        md.contains("| when | kind | build | device | OS | comment | files |"),
        "{md}"
    );
    assert!(
        md.contains("It crashed again (0) when I tapped Pay \\| twice"),
        "pipes escaped: {md}"
    );
    assert!(
        md.contains("/crash.log)") && md.contains("/screenshot-1.png)"),
        "{md}"
    );
    let when: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| 20"))
        .map(|l| l.split(" | ").next().unwrap())
        .collect();
    assert_eq!(when.len(), 4);
    let mut sorted = when.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(when, sorted, "newest first");
    let outputs = std::fs::read_to_string(&out_file).unwrap();
    for name in [
        "feedback-count",
        "crash-count",
        "screenshot-count",
        "feedback-dir",
    ] {
        assert!(outputs.contains(name), "{name} in {outputs}");
    }
}

async fn github() -> StandIn {
    issue_standins::start(Flavor::GitHub, "acme/app", TOKEN).await
}

fn gh_vars(env: &Env, gh: &StandIn) -> Vec<(String, String)> {
    fb_vars(
        env,
        &[("GITHUB_API_URL", &gh.base), ("GITHUB_TOKEN", TOKEN)],
    )
}

#[tokio::test]
async fn crashes_with_one_signature_make_one_issue_and_reruns_add_nothing() {
    let env = start().await;
    // 6 crashes over 3 stacks (two devices each), 2 screenshots.
    let cat = seed(&env, 6, 2);
    let gh = github().await;
    gh.state.lock().unwrap().max_per_page = 2;
    let vars = gh_vars(&env, &gh);
    let args = [
        "--output",
        "json",
        "feedback",
        "--out",
        "fb",
        "--to-issues",
        "github:acme/app",
    ];
    let out = fd(&vars, &args, env.dir.path()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issues = gh.issues();
    let crash_issues: Vec<_> = issues
        .iter()
        .filter(|i| i.title.starts_with("TestFlight crash"))
        .collect();
    assert_eq!(crash_issues.len(), 3, "{:#?}", issues);
    for i in &crash_issues {
        assert_eq!(
            i.comments.len(),
            1,
            "two occurrences: the body and one comment"
        );
        assert!(i.body.contains("<!-- flightdeck:crash:"));
        assert_eq!(i.labels, vec!["testflight"]);
        let devices: Vec<&str> = ["iPhone16,1", "iPhone15,2", "iPad14,1", "Mac14,2"]
            .into_iter()
            .filter(|d| i.body.contains(d) || i.comments[0].contains(d))
            .collect();
        assert_eq!(devices.len(), 2, "two devices: {devices:?}");
    }
    let pay = crash_issues
        .iter()
        .find(|i| i.title.contains("CheckoutViewController.pay"))
        .expect("titled by the app's own frame");
    assert!(pay.body.contains("EXC_CRASH (SIGABRT)") || pay.title.contains("SIGABRT"));
    assert_eq!(
        issues
            .iter()
            .filter(|i| i.title.starts_with("TestFlight feedback"))
            .count(),
        2,
        "one issue per screenshot submission"
    );
    for id in &cat.screenshots {
        assert!(
            issues
                .iter()
                .any(|i| i.body.contains(&format!("flightdeck:screenshot:{id}")))
        );
    }
    assert!(
        gh.calls().iter().all(|c| c.status < 400),
        "{:?}",
        gh.calls()
    );
    // A re-run, same directory and a fresh one (a new CI job): no issue, no comment.
    for dir in ["fb", "fresh"] {
        let args = ["feedback", "--out", dir, "--to-issues", "github:acme/app"];
        let out = fd(&vars, &args, env.dir.path()).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(gh.issues().len(), 5, "no duplicate issue ({dir})");
        assert_eq!(
            gh.issues().iter().map(|i| i.comments.len()).sum::<usize>(),
            3,
            "no duplicate comment ({dir})"
        );
    }
    assert_eq!(
        gh.count("GET", "/issues?"),
        1 + 3,
        "issues listed page by page (2 per page): none yet; then nothing to file in fb \
         (its index records the filing); then 5 for the fresh directory"
    );
    assert_eq!(gh.count("GET", "search"), 0, "never the search API");
}

#[tokio::test]
async fn a_create_whose_reply_was_lost_is_found_not_repeated() {
    let env = start().await;
    seed(&env, 1, 0);
    let gh = github().await;
    gh.state.lock().unwrap().lost_create_replies = 1;
    let vars = gh_vars(&env, &gh);
    let out = fd(
        &vars,
        &["feedback", "--out", "fb", "--to-issues", "github:acme/app"],
        env.dir.path(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(gh.issues().len(), 1, "read back, not created twice");
    assert_eq!(gh.count("POST", "/issues"), 1);
}

#[tokio::test]
async fn gitlab_issues_with_a_job_token_and_notes() {
    let env = start().await;
    let cat = seed(&env, 4, 1);
    let gl = issue_standins::start(Flavor::GitLab, "4242", TOKEN).await;
    gl.state.lock().unwrap().max_per_page = 1;
    let vars = fb_vars(
        &env,
        &[("CI_API_V4_URL", &gl.base), ("CI_JOB_TOKEN", TOKEN)],
    );
    let args = [
        "feedback",
        "--out",
        "fb",
        "--to-issues",
        "gitlab:4242",
        "--label",
        "beta",
        "--label",
        "crash",
    ];
    for _ in 0..2 {
        let out = fd(&vars, &args, env.dir.path()).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let issues = gl.issues();
        // 4 crashes over 3 stacks: stack 0 twice.
        assert_eq!(issues.len(), 3 + 1, "{issues:#?}");
        assert_eq!(issues.iter().map(|i| i.comments.len()).sum::<usize>(), 1);
        assert!(issues.iter().all(|i| i.labels == vec!["beta", "crash"]));
    }
    assert!(gl.count("GET", "/notes") >= 1);
    // The screenshot issue shows its image, uploaded once (not again on the re-run).
    let shot = gl
        .issues()
        .into_iter()
        .find(|i| i.title.starts_with("TestFlight feedback"))
        .unwrap();
    assert!(
        shot.body.contains("![screenshot-1.png](/uploads/"),
        "{}",
        shot.body
    );
    let uploads = gl.state.lock().unwrap().uploads.clone();
    assert_eq!(uploads.len(), 1, "one screenshot, uploaded once");
    let image = expected_image(&env, &cat.screenshots[0]);
    assert!(
        uploads[0]
            .windows(image.len())
            .any(|w| w == image.as_slice()),
        "the image's bytes"
    );
}

#[tokio::test]
async fn bad_issue_targets_and_tokens_exit_2_or_3_naming_what() {
    let env = start().await;
    seed(&env, 1, 0);
    let gh = github().await;
    type Case<'a> = (Vec<(String, String)>, &'a str, i32, &'a str);
    let cases: Vec<Case> = vec![
        (gh_vars(&env, &gh), "jira:ACME", 2, "unknown issue target"),
        (
            fb_vars(&env, &[("GITHUB_API_URL", &gh.base)]),
            "github:acme/app",
            2,
            "GITHUB_TOKEN",
        ),
        (
            fb_vars(
                &env,
                &[
                    ("GITHUB_API_URL", &gh.base),
                    ("GITHUB_TOKEN", "ghp_wrong_token_987654321"),
                ],
            ),
            "github:acme/app",
            3,
            "acme/app",
        ),
        (gh_vars(&env, &gh), "github:acme/nope", 2, "acme/nope"),
        (
            fb_vars(&env, &[("CI_API_V4_URL", "http://127.0.0.1:9/api/v4")]),
            "gitlab:7",
            2,
            "CI_JOB_TOKEN",
        ),
    ];
    for (vars, target, code, names) in cases {
        let out = fd(
            &vars,
            &["feedback", "--out", "fb", "--to-issues", target],
            env.dir.path(),
        )
        .await;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "{target}: {text}");
        assert!(text.contains(names), "{target}: names {names}: {text}");
        assert!(
            !text.contains(TOKEN) && !text.contains("ghp_wrong_token"),
            "no token in output"
        );
    }
    assert!(gh.issues().is_empty());
}

#[tokio::test]
async fn the_relay_files_an_issue_from_a_delivered_event() {
    let env = start().await;
    let cat = seed(&env, 1, 1);
    let gh = github().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"));
    cmd.env_clear().current_dir(env.dir.path());
    for (k, v) in gh_vars(&env, &gh) {
        cmd.env(k, v);
    }
    let mut child = cmd
        .env("WH_SECRET", "relay-secret-456")
        .args([
            "webhooks",
            "listen",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--secret-env",
            "WH_SECRET",
            "--feedback-to-issues",
            "github:acme/app",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    for (n, (kind, id)) in [
        ("betaFeedbackCrashSubmissionCreated", &cat.crashes[0]),
        (
            "betaFeedbackScreenshotSubmissionCreated",
            &cat.screenshots[0],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let resource = if n == 0 {
            "betaFeedbackCrashSubmissions"
        } else {
            "betaFeedbackScreenshotSubmissions"
        };
        let body =
            serde_json::json!({"data": {"type": kind, "id": format!("evt-{n}"), "version": 1,
            "attributes": {"timestamp": "2026-12-01T10:00:00.16Z"},
            "relationships": {"instance": {"data": {"type": resource, "id": id}}}}})
            .to_string();
        let sig = {
            use hmac::{KeyInit, Mac};
            let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"relay-secret-456").unwrap();
            m.update(body.as_bytes());
            format!("hmacsha256={}", hex::encode(m.finalize().into_bytes()))
        };
        let mut accepted = false;
        for _ in 0..100 {
            if let Ok(r) = http
                .post(&url)
                .header("x-apple-signature", &sig)
                .body(body.clone())
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
    }
    eventually("two issues from two events", || gh.issues().len() == 2).await;
    let issues = gh.issues();
    assert!(
        issues
            .iter()
            .any(|i| i.title.contains("CheckoutViewController.pay"))
    );
    assert!(issues.iter().any(|i| {
        i.body
            .contains(&format!("flightdeck:screenshot:{}", cat.screenshots[0]))
    }));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(child.wait().await.unwrap().code(), Some(0));
}

#[tokio::test]
async fn a_pipeline_feedback_step_after_upload_sees_the_whole_app_or_the_current_build() {
    let env = start().await;
    seed(&env, 3, 2);
    let vars = fb_vars(&env, &[]);
    for (n, (step, expect)) in [("{ out: fb1 }", "5"), ("{ out: fb2, build: current }", "0")]
        .into_iter()
        .enumerate()
    {
        let ipa = env.ipa(&format!("P{n}.ipa"), "2.0", &format!("9{n}"), 50_000);
        let yml = format!(
            "version: 1\nsteps:\n  - upload: {{ file: {} }}\n  - wait: {{ timeout: 1m, poll: {{ interval: 100ms }} }}\n  - feedback: {step}\n",
            ipa.display()
        );
        std::fs::write(env.path("flightdeck.yml"), yml).unwrap();
        let out = fd(&vars, &["--output", "json", "run"], env.dir.path()).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc = json_out(&out);
        assert_eq!(
            doc["outputs"]["feedback-count"], expect,
            "{step}: {}",
            doc["summary"]
        );
    }
}

#[tokio::test]
async fn a_submission_deleted_since_it_was_saved_is_a_warning_not_a_failure() {
    let env = start().await;
    let cat = seed(&env, 2, 1);
    let ctx = env.ctx();
    let req = request(&env, "fb");
    feedback::run(&ctx.api, &req).await.unwrap();
    let gone = cat.screenshots[0].clone();
    std::fs::write(req.out.join(&gone).join("screenshot-1.png"), b"short").unwrap();
    env.sim().lock().feedback.retain(|f| f.id != gone);
    let p = feedback::run(&ctx.api, &req).await.unwrap();
    assert_eq!(p.warnings.len(), 1, "{:?}", p.warnings);
    assert!(p.warnings[0].contains(&gone));
    assert_eq!(p.count, 2);
}

#[tokio::test]
async fn submissions_a_failed_filing_left_are_filed_by_the_next_run() {
    let env = start().await;
    // Older than the re-run overlap, so only the index remembers them.
    env.sim().advance_clock(-3 * 3600);
    seed(&env, 2, 1);
    env.sim().advance_clock(3 * 3600);
    let gh = github().await;
    let args = ["feedback", "--out", "fb", "--to-issues", "github:acme/app"];
    let wrong = fb_vars(
        &env,
        &[
            ("GITHUB_API_URL", &gh.base),
            ("GITHUB_TOKEN", "ghp_expired_0000000000"),
        ],
    );
    let out = fd(&wrong, &args, env.dir.path()).await;
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(gh.issues().is_empty());
    let out = fd(&gh_vars(&env, &gh), &args, env.dir.path()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(gh.issues().len(), 3, "2 crash signatures and 1 screenshot");
}
