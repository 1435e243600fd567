//! A release pipeline you can re-run (issue #11): one preflight before the
//! first write, resume after a late failure, idempotent TestFlight, Xcode
//! Cloud note files, and every TestFlight write surviving 5xx, 429 and dropped
//! connections without landing twice.

use crate::cli::fd;
use crate::support::*;
use crate::upload::plan;
use asc_simulator::faults::{Fault, Scope};
use asc_simulator::fixture::{AppSpec, write_ipa};
use flightdeck::plan::{BuildRef, NotesSource, TestFlightPlan};
use flightdeck::testflight::{self, Change, Known, NoteChange};
use flightdeck::upload;
use std::process::Output;
use std::time::Duration;

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", s(&out.stdout), s(&out.stderr)))
}

/// Requests that change something (everything but GET).
fn writes(env: &Env) -> Vec<String> {
    env.sim()
        .lock()
        .log
        .iter()
        .filter(|l| l.method != "GET")
        .map(|l| format!("{} {} {}", l.method, l.path, l.status))
        .collect()
}

/// An uploaded, processed build of the seeded app.
async fn processed_build(env: &Env, build: &str) -> String {
    let ctx = env.ctx();
    let ipa = env.ipa(&format!("B{build}.ipa"), "1.0", build, 50_000);
    let up = upload::run(&ctx, &plan(&ipa)).await.unwrap();
    let sim = env.sim().clone();
    let id = up.build_upload_id.clone();
    eventually("the build", || {
        let st = sim.lock();
        st.uploads[&id]
            .build_id
            .as_ref()
            .is_some_and(|b| st.builds[b].processing_state == "VALID")
    })
    .await;
    env.sim().lock().uploads[&id].build_id.clone().unwrap()
}

fn pipeline(file: &str, testflight: &str) -> String {
    format!(
        "version: 1\napp: {{ bundle-id: {BUNDLE} }}\nsteps:\n  - upload:\n      file: {file}\n  - wait: {{ timeout: 1m, poll: {{ interval: 1s }} }}\n  - testflight:\n{testflight}"
    )
}

#[tokio::test]
async fn a_misspelled_group_fails_before_anything_is_created_with_every_problem_then_the_fixed_pipeline_runs_and_a_rerun_changes_nothing()
 {
    let env = start().await;
    let mut spec = AppSpec::new(BUNDLE, "3.0", "7");
    spec.uses_non_exempt_encryption = None;
    write_ipa(&env.path("App.ipa"), &spec).unwrap();
    let broken = "      groups: [qa, Betta, Beta]\n      whats-new: { en-US: \"\" }\n      submit-for-review: true\n";
    std::fs::write(env.path("flightdeck.yml"), pipeline("App.ipa", broken)).unwrap();
    let gh = [("GITHUB_ACTIONS".to_string(), "true".to_string())];
    let vars: Vec<_> = env.vars().into_iter().chain(gh).collect();
    let out = fd(&vars, &["run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(2), "{}", s(&out.stderr));
    let err = s(&out.stderr);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("::error")).collect();
    assert!(
        errors
            .iter()
            .any(|l| l.contains("line=8") && l.contains("Betta")),
        "the typo at its line: {errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("export compliance") && l.contains("file=flightdeck.yml")),
        "missing export compliance with external testing: {errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("line=9") && l.contains("en-US is empty")),
        "the empty note: {errors:#?}"
    );
    assert!(
        writes(&env).is_empty(),
        "nothing was created: {:?}",
        writes(&env)
    );

    let fixed = "      groups: [qa, Beta]\n      whats-new: { en-US: \"Try the new login\" }\n      submit-for-review: true\n      notify: true\n      uses-non-exempt-encryption: false\n";
    std::fs::write(env.path("flightdeck.yml"), pipeline("App.ipa", fixed)).unwrap();
    let out = fd(&env.vars(), &["--output", "json", "run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["outputs"]["beta-groups"], "QA,Beta");
    assert_eq!(doc["outputs"]["beta-review-state"], "WAITING_FOR_REVIEW");
    let build_id = doc["outputs"]["build-id"].as_str().unwrap().to_string();
    assert_eq!(
        doc["outputs"]["build-url"],
        format!("https://appstoreconnect.apple.com/apps/{APP_ID}/testflight/ios/{build_id}")
    );
    let tf_row = doc["summary"][2]["result"].as_str().unwrap().to_string();
    assert!(
        tf_row.contains("/testflight/ios/"),
        "the summary links the build: {tf_row}"
    );
    let notified = env.sim().lock().notifications.len();
    assert_eq!(notified, 1, "testers were told once");
    let before = writes(&env).len();

    // The same run again: the upload is reused, TestFlight finds everything done.
    let out = fd(&env.vars(), &["--output", "json", "run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let doc = json(&out);
    assert_eq!(
        writes(&env)[before..],
        [] as [String; 0],
        "a second run changes nothing"
    );
    assert_eq!(
        env.sim().lock().notifications.len(),
        1,
        "nobody notified again"
    );
    assert_eq!(env.sim().lock().uploads.len(), 1);
    assert_eq!(doc["outputs"]["beta-review-state"], "WAITING_FOR_REVIEW");
    let rows = doc["summary"].to_string();
    assert!(rows.contains("reusing build upload"), "{rows}");
    assert!(rows.contains("QA (already), Beta (already)"), "{rows}");
    assert!(rows.contains("review already submitted"), "{rows}");
    assert!(rows.contains("testers already notified"), "{rows}");
    env.assert_conformant();
}

#[tokio::test]
async fn a_run_stopped_by_a_wait_timeout_completes_on_the_rerun_with_one_upload() {
    let env = start_with(|c| c.processing_delay = Duration::from_secs(3)).await;
    env.ipa("App.ipa", "1.0", "21", 50_000);
    let tf = "      groups: [QA]\n";
    let slow = pipeline("App.ipa", tf).replace("timeout: 1m", "timeout: 1s");
    std::fs::write(env.path("flightdeck.yml"), slow).unwrap();
    let out = fd(&env.vars(), &["run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(4), "{}", s(&out.stderr));
    std::fs::write(env.path("flightdeck.yml"), pipeline("App.ipa", tf)).unwrap();
    let out = fd(&env.vars(), &["--output", "json", "run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert_eq!(json(&out)["outputs"]["beta-groups"], "QA");
    assert_eq!(
        env.count("POST", "/v1/buildUploads"),
        1,
        "exactly one build upload"
    );
    assert_eq!(env.count("POST", "/v1/buildUploadFiles"), 1);
    assert_eq!(env.count("PATCH", "/v1/buildUploadFiles/"), 1, "one commit");
    env.assert_conformant();
}

#[tokio::test]
async fn a_half_distributed_build_is_completed_by_a_rerun() {
    let env = start().await;
    let build = processed_build(&env, "30").await;
    let qa = env
        .sim()
        .lock()
        .groups
        .iter()
        .find(|g| g.name == "QA")
        .unwrap()
        .id
        .clone();
    env.sim()
        .lock()
        .builds
        .get_mut(&build)
        .unwrap()
        .groups
        .insert(qa.clone());
    let ctx = env.ctx();
    let mut tf = TestFlightPlan::for_build(BuildRef::Id(build.clone()));
    // By id and by name in another case.
    tf.groups = vec![qa.clone(), "beta".into()];
    let d = testflight::run(&ctx, &tf, &build, &Known::default())
        .await
        .unwrap();
    let got: Vec<(String, Change)> = d
        .groups
        .iter()
        .map(|g| (g.name.clone(), g.change))
        .collect();
    assert_eq!(
        got,
        [
            ("QA".to_string(), Change::Already),
            ("Beta".to_string(), Change::Done)
        ]
    );
    assert_eq!(env.sim().lock().builds[&build].groups.len(), 2);
    assert_eq!(
        env.count(
            "POST",
            &format!("/v1/builds/{build}/relationships/betaGroups")
        ),
        1
    );
    env.assert_conformant();
}

#[tokio::test]
async fn xcode_cloud_note_files_become_localizations() {
    let env = start().await;
    let build = processed_build(&env, "40").await;
    let notes = env.path("TestFlight");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("WhatToTest.en-US.txt"), "Try the login\n").unwrap();
    std::fs::write(notes.join("WhatToTest.de-DE.txt"), "Anmeldung testen\n").unwrap();
    let out = fd(
        &env.vars(),
        &["testflight", "--build", &build],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let mut got: Vec<(String, Option<String>)> = env
        .sim()
        .lock()
        .localizations
        .iter()
        .map(|l| (l.locale.clone(), l.whats_new.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("de-DE".to_string(), Some("Anmeldung testen".to_string())),
            ("en-US".to_string(), Some("Try the login".to_string()))
        ]
    );
    // Too long a note is refused before anything is written, with its limit.
    std::fs::create_dir_all(env.path("long")).unwrap();
    std::fs::write(env.path("long/WhatToTest.fr-FR.txt"), "x".repeat(4001)).unwrap();
    let before = writes(&env).len();
    let out = fd(
        &env.vars(),
        &["testflight", "--build", &build, "--whats-new-dir", "long"],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        s(&out.stderr).contains("at most 4000"),
        "{}",
        s(&out.stderr)
    );
    assert_eq!(writes(&env).len(), before);
    env.assert_conformant();
}

#[tokio::test]
async fn a_testflight_typo_or_missing_compliance_writes_nothing() {
    let env = start().await;
    let build = processed_build(&env, "50").await;
    env.sim()
        .lock()
        .builds
        .get_mut(&build)
        .unwrap()
        .uses_non_exempt_encryption = None;
    let before = writes(&env).len();
    let out = fd(
        &env.vars(),
        &[
            "testflight",
            "--build",
            &build,
            "--group",
            "qa",
            "--group",
            "Betta",
            "--whats-new",
            "hello",
        ],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", s(&out.stderr));
    let out = fd(
        &env.vars(),
        &[
            "testflight",
            "--build",
            &build,
            "--group",
            "Beta",
            "--submit-for-review",
        ],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", s(&out.stderr));
    assert!(
        s(&out.stderr).contains("export compliance"),
        "{}",
        s(&out.stderr)
    );
    assert_eq!(
        writes(&env)[before..],
        [] as [String; 0],
        "nothing half applied"
    );
}

#[tokio::test]
async fn skip_if_exists_recognises_a_build_that_exists_only_as_a_build() {
    let env = start().await;
    let build = processed_build(&env, "60").await;
    // As if uploaded from Xcode: the build stays, its build upload is gone.
    {
        let mut st = env.sim().lock();
        let up = st.builds[&build].upload_id.clone();
        st.uploads.remove(&up);
    }
    let ipa = env.ipa("Other.ipa", "1.0", "60", 70_000);
    let e = upload::run(&env.ctx(), &plan(&ipa)).await.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(e.hint.unwrap().contains("next free build number is 61"));
    let p = flightdeck::plan::UploadPlan {
        skip_if_exists: true,
        ..plan(&ipa)
    };
    let done = upload::run(&env.ctx(), &p).await.unwrap();
    assert!(done.skipped);
    assert_eq!(done.build_id.as_deref(), Some(build.as_str()));
    assert_eq!(
        env.count("POST", "/v1/buildUploads"),
        1,
        "only the first upload"
    );
}

/// One TestFlight run against a build whose every step is still to do, with
/// `fault` on its `n`th API request (1-based).
async fn run_with_fault(n: usize, fault: Fault) -> (Env, String) {
    let env = start().await;
    let build = processed_build(&env, "70").await;
    {
        let mut st = env.sim().lock();
        let b = st.builds.get_mut(&build).unwrap();
        b.uses_non_exempt_encryption = None;
        b.auto_notify = false;
        st.log.clear();
    }
    let faults = &env.sim().faults;
    faults.script(Scope::Api, Fault::Pass, n - 1);
    faults.script(Scope::Api, fault, 1);
    let mut tf = TestFlightPlan::for_build(BuildRef::Id(build.clone()));
    tf.groups = vec!["Beta".into()];
    tf.whats_new.insert("en-US".into(), "notes".into());
    tf.notes = NotesSource::Given;
    tf.submit_for_review = true;
    tf.notify = true;
    tf.uses_non_exempt_encryption = Some(false);
    let d = testflight::run(&env.ctx(), &tf, &build, &Known::default())
        .await
        .unwrap_or_else(|e| panic!("fault {fault:?} on request {n}: {e:?}"));
    assert_eq!(faults.pending(), 0, "the fault was used");
    assert_eq!(d.notes[0].change, NoteChange::Created);
    (env, build)
}

#[tokio::test]
async fn every_testflight_write_survives_5xx_429_and_drops_and_lands_once() {
    // Reads: build, groups, notes, review submissions, the build's version,
    // builds of it in review (1 to 6); then the writes: compliance, note,
    // groups, review (7 to 10), invites read (11), notification (12).
    // An idempotent write (PATCH, relationship POST) may be repeated blindly;
    // a create must land exactly once.
    let writes_at = [
        (7, "PATCH", "/v1/builds/", true),
        (8, "POST", "/v1/betaBuildLocalizations", false),
        (9, "POST", "/v1/builds/", true),
        (10, "POST", "/v1/betaAppReviewSubmissions", false),
        (12, "POST", "/v1/buildBetaNotifications", false),
    ];
    for (n, method, path, idempotent) in writes_at {
        for fault in [Fault::ServerError, Fault::RateLimited, Fault::Drop] {
            let (env, build) = run_with_fault(n, fault).await;
            let st = env.sim().lock();
            let hit = &st.log[n - 1];
            assert!(
                hit.method == method && hit.path.starts_with(path),
                "the fault hit {} {}, not {method} {path}",
                hit.method,
                hit.path
            );
            let b = &st.builds[&build];
            assert_eq!(b.uses_non_exempt_encryption, Some(false));
            assert_eq!(b.groups.len(), 1, "{method} {path} {fault:?}");
            assert_eq!(st.localizations.len(), 1, "{method} {path} {fault:?}");
            assert_eq!(st.submissions.len(), 1, "{method} {path} {fault:?}");
            assert_eq!(st.notifications.len(), 1, "{method} {path} {fault:?}");
            let ok = st
                .log
                .iter()
                .filter(|l| l.method == method && l.path.starts_with(path) && l.status < 300)
                .count();
            if idempotent {
                assert!(
                    (1..=2).contains(&ok),
                    "{method} {path} under {fault:?}: {ok}"
                );
            } else {
                assert_eq!(ok, 1, "{method} {path} landed once under {fault:?}");
            }
            drop(st);
            env.assert_conformant();
        }
    }
}

#[tokio::test]
async fn bad_enum_bool_url_and_id_values_exit_2_with_no_request_sent() {
    let env = start().await;
    let mut vars = env.vars();
    vars.push(("ASC_WEBHOOK_SECRET".into(), "a-long-webhook-secret".into()));
    let cases: [&[&str]; 6] = [
        &["webhooks", "deliveries", "W1", "--state", "bogus"],
        &[
            "webhooks",
            "create",
            "--app-id",
            APP_ID,
            "--name",
            "n",
            "--url",
            "not-a-url",
            "--event",
            "BUILD_UPLOAD_STATE_UPDATED",
        ],
        &["webhooks", "update", "W1", "--url", "ftp://example.com/x"],
        &[
            "testflight",
            "--build",
            "B1",
            "--uses-non-exempt-encryption",
            "maybe",
        ],
        &["testflight", "--build", "../apps/1"],
        &["webhooks", "ping", "W1?x=1"],
    ];
    for args in cases {
        let out = fd(&vars, args, env.dir.path()).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", s(&out.stderr));
    }
    let out = fd(&vars, cases[0], env.dir.path()).await;
    assert!(
        s(&out.stderr).contains("SUCCEEDED, FAILED, PENDING"),
        "the allowed values are named: {}",
        s(&out.stderr)
    );
    assert!(env.sim().lock().log.is_empty(), "no request was sent");
}

#[tokio::test]
async fn a_dry_run_preflights_the_artifact_and_shows_it() {
    let env = start().await;
    let yml = pipeline("missing.ipa", "      groups: [QA]\n").replace(BUNDLE, "com.example.nope");
    std::fs::write(env.path("flightdeck.yml"), yml).unwrap();
    let gh = [("GITHUB_ACTIONS".to_string(), "true".to_string())];
    let vars: Vec<_> = env.vars().into_iter().chain(gh).collect();
    let out = fd(&vars, &["run", "--dry-run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(2), "{}", s(&out.stderr));
    assert!(
        s(&out.stderr).contains("file=flightdeck.yml,line=5")
            && s(&out.stderr).contains("missing.ipa"),
        "{}",
        s(&out.stderr)
    );
    env.ipa("there.ipa", "4.2", "9", 10_000);
    let yml = pipeline("there.ipa", "      groups: [QA]\n");
    std::fs::write(env.path("flightdeck.yml"), yml).unwrap();
    let out = fd(&env.vars(), &["run", "--dry-run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let text = s(&out.stdout);
    assert!(
        text.contains(&format!("{BUNDLE} version 4.2 build 9 (IOS)")),
        "{text}"
    );
    assert!(text.contains("beta groups QA"), "{text}");
    assert!(writes(&env).is_empty());
}

#[tokio::test]
async fn a_review_already_pending_for_another_build_of_the_version_is_reported_before_any_write() {
    let env = start().await;
    let first = processed_build(&env, "80").await;
    let second = processed_build(&env, "81").await;
    let mut tf = TestFlightPlan::for_build(BuildRef::Id(first.clone()));
    tf.submit_for_review = true;
    testflight::run(&env.ctx(), &tf, &first, &Known::default())
        .await
        .unwrap();
    // The first build again: its own pending review is a no-op.
    let again = testflight::run(&env.ctx(), &tf, &first, &Known::default())
        .await
        .unwrap();
    assert_eq!(again.review.unwrap().change, Change::Already);
    let before = writes(&env).len();
    let e = testflight::run(&env.ctx(), &tf, &second, &Known::default())
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(
        e.message
            .contains("build 80 of version 1.0 is already waiting"),
        "{}",
        e.message
    );
    assert_eq!(writes(&env).len(), before, "nothing written");
    // The pipeline's preflight finds it before uploading build 82.
    env.ipa("Next.ipa", "1.0", "82", 50_000);
    let tf = "      groups: [QA]\n      submit-for-review: true\n";
    std::fs::write(env.path("flightdeck.yml"), pipeline("Next.ipa", tf)).unwrap();
    let out = fd(&env.vars(), &["run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(2), "{}", s(&out.stderr));
    assert!(
        s(&out.stderr).contains("already waiting for Beta App Review"),
        "{}",
        s(&out.stderr)
    );
    assert_eq!(writes(&env).len(), before, "nothing uploaded");
    env.assert_conformant();
}

#[tokio::test]
async fn a_group_the_audience_creates_passes_the_preflight_and_gets_the_build() {
    let env = start().await;
    write_ipa(&env.path("App.ipa"), &AppSpec::new(BUNDLE, "3.1", "8")).unwrap();
    let yaml = format!(
        "version: 1\napp: {{ bundle-id: {BUNDLE} }}\naudience:\n  groups:\n    - name: Nightly\n      external: false\n      testers: [ {{ email: night@example.com, first-name: N, last-name: O }} ]\nsteps:\n  - upload:\n      file: App.ipa\n  - wait: {{ timeout: 1m, poll: {{ interval: 1s }} }}\n  - testflight:\n      groups: [nightly]\n"
    );
    std::fs::write(env.path("flightdeck.yml"), yaml).unwrap();
    assert!(
        !env.sim().lock().groups.iter().any(|g| g.name == "Nightly"),
        "the group does not exist before the run"
    );
    let out = fd(&env.vars(), &["--output", "json", "run"], env.dir.path()).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let doc = json(&out);
    assert_eq!(doc["outputs"]["beta-groups"], "Nightly");
    let build_id = doc["outputs"]["build-id"].as_str().unwrap().to_string();
    let st = env.sim().lock();
    let group = st
        .groups
        .iter()
        .find(|g| g.name == "Nightly")
        .expect("the audience created the group");
    assert!(group.internal, "external: false makes an internal group");
    assert!(
        st.builds[&build_id].groups.contains(&group.id),
        "the testflight step put the build in the group the audience created"
    );
    drop(st);
    env.assert_conformant();
}
