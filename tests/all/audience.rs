//! TestFlight audience as code against the simulator: plans that write
//! nothing, applies that a second run repeats nothing of, prunes, a
//! 2,000-tester CSV in batches, one-off tester commands, build expiry, and
//! bad tester files refused with file:line before any request.

use crate::cli::fd;
use crate::support::*;
use asc_simulator::state::{BuildRec, Submission};
use flightdeck::audience::{self, Desired, DesiredGroup, Mode, Person};
use serde_json::Value;
use std::path::Path;

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Write requests (anything but GET) the simulator answered.
fn writes(env: &Env) -> usize {
    env.sim()
        .lock()
        .log
        .iter()
        .filter(|l| l.method != "GET")
        .count()
}

fn emails_in(env: &Env, group: &str) -> Vec<String> {
    let st = env.sim().lock();
    let gid = st
        .groups
        .iter()
        .find(|g| g.app_id == APP_ID && g.name == group)
        .map(|g| g.id.clone())
        .unwrap_or_default();
    let mut v: Vec<String> = st
        .testers
        .values()
        .filter(|t| t.groups.contains(&gid))
        .map(|t| t.email.clone())
        .collect();
    v.sort();
    v
}

fn csv_lines(n: usize, skip: Option<usize>) -> String {
    let mut out = String::from("First Name,Last Name,Email\n");
    for i in 0..n {
        if Some(i) != skip {
            out.push_str(&format!("Tester,{i},t{i}@example.com\n"));
        }
    }
    out
}

fn pipeline(dir: &Path, prune: bool) {
    let yml = format!(
        "version: 1\napp: {{ id: \"{APP_ID}\" }}\nsteps:\n  - feedback: {{ out: fb }}\naudience:\n  prune: {prune}\n  groups:\n    - name: Beta\n      public-link: {{ enabled: true, limit: 500 }}\n      testers: testers/beta.csv\n    - name: Sprint 12\n      external: true\n      testers: [ {{ email: qa@example.com, first-name: Q, last-name: A }} ]\n"
    );
    std::fs::write(dir.join("flightdeck.yml"), yml).unwrap();
}

fn write_csv(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir.join("testers")).unwrap();
    std::fs::write(dir.join("testers/beta.csv"), text).unwrap();
}

#[tokio::test]
async fn plan_apply_reapply_and_prune() {
    let env = start().await;
    let dir = env.dir.path();
    pipeline(dir, false);
    write_csv(dir, &csv_lines(3, None));
    let vars = env.vars();

    // Plan: every change shown, nothing written.
    let out = fd(&vars, &["audience", "plan"], dir).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let text = s(&out.stdout);
    for line in [
        "~ Beta public link: off -> on, limit none -> 500",
        "+ tester t0@example.com -> Beta",
        "+ tester t2@example.com -> Beta",
        "+ group Sprint 12 (external)",
        "+ tester qa@example.com -> Sprint 12",
        "plan only: nothing was changed",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    assert_eq!(writes(&env), 0, "a plan writes nothing");

    // Apply makes them, with the outputs.
    let out = fd(&vars, &["--output", "json", "audience", "apply"], dir).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outputs"]["testers-added"], "4");
    assert_eq!(doc["outputs"]["testers-removed"], "0");
    let link = doc["outputs"]["public-link"].as_str().unwrap();
    assert!(
        link.starts_with("https://testflight.apple.com/join/"),
        "{link}"
    );
    assert!(
        doc["summary"][0]["result"]
            .as_str()
            .unwrap()
            .contains("groups created: Sprint 12"),
        "{}",
        doc["summary"]
    );
    assert_eq!(
        emails_in(&env, "Beta"),
        vec!["t0@example.com", "t1@example.com", "t2@example.com"]
    );
    assert_eq!(emails_in(&env, "Sprint 12"), vec!["qa@example.com"]);
    {
        let st = env.sim().lock();
        let beta = st.groups.iter().find(|g| g.name == "Beta").unwrap();
        assert!(beta.link.enabled && beta.link.limit_enabled);
        assert_eq!(beta.link.limit, Some(500));
    }

    // A second apply sends no write.
    let before = writes(&env);
    let out = fd(&vars, &["audience", "apply"], dir).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert!(s(&out.stdout).contains("no changes"), "{}", s(&out.stdout));
    assert_eq!(writes(&env), before, "a second apply writes nothing");

    // Removing a line with prune: true removes exactly that tester.
    pipeline(dir, true);
    write_csv(dir, &csv_lines(3, Some(1)));
    let out = fd(&vars, &["run", "--dry-run"], dir).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert!(s(&out.stdout).contains("- tester t1@example.com from Beta"));
    assert_eq!(writes(&env), before, "a dry run writes nothing");
    let out = fd(&vars, &["--output", "json", "run"], dir).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outputs"]["testers-removed"], "1");
    let steps: Vec<&str> = doc["summary"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        vec!["feedback", "audience"],
        "no testflight step: the audience runs last"
    );
    assert_eq!(
        emails_in(&env, "Beta"),
        vec!["t0@example.com", "t2@example.com"]
    );
    assert_eq!(emails_in(&env, "Sprint 12"), vec!["qa@example.com"]);
    assert_eq!(writes(&env), before + 1, "one batched removal");
    env.assert_conformant();
}

#[tokio::test]
async fn two_thousand_testers_apply_in_batches_and_a_rerun_is_a_no_op() {
    let env = start().await;
    std::fs::write(env.path("big.csv"), csv_lines(2000, None)).unwrap();
    let rows = audience::csv::parse(
        &std::fs::read_to_string(env.path("big.csv")).unwrap(),
        "big.csv",
    )
    .unwrap();
    let people: Vec<Person> = rows.into_iter().map(|r| r.person).collect();
    let group = |name: &str| DesiredGroup {
        name: name.into(),
        external: Some(true),
        public_link: None,
        testers: Some(people.clone()),
    };
    // Beta creates them; "Beta 2" gets the same (now existing) testers.
    let desired = Desired {
        prune: true,
        groups: vec![group("Beta"), group("Beta 2")],
    };
    let mode = Mode {
        apply: true,
        interactive: false,
        confirmed: false,
    };
    let ctx = env.ctx();
    let rec = audience::reconcile(&ctx.api, APP_ID, &desired, mode)
        .await
        .unwrap();
    let applied = rec.applied.unwrap();
    assert_eq!(applied.added.len(), 4000);
    assert_eq!(emails_in(&env, "Beta").len(), 2000);
    assert_eq!(emails_in(&env, "Beta 2").len(), 2000);
    let creates = env.count("POST", "/v1/betaTesters");
    let batches = env.count("POST", "/v1/betaGroups/");
    assert_eq!(creates, 2000, "each new tester is created once");
    assert_eq!(batches, 20, "existing testers go in 100 per request");
    let before = writes(&env);
    let again = audience::reconcile(&ctx.api, APP_ID, &desired, mode)
        .await
        .unwrap();
    assert!(again.plan.is_empty());
    assert_eq!(writes(&env), before, "a re-run sends no write");
    env.assert_conformant();
}

#[tokio::test]
async fn the_hourly_budget_stops_a_big_apply_early_and_a_rerun_resumes() {
    let env = start_with(|c| c.rate_limit_per_hour = 60).await;
    let people: Vec<Person> = (0..80)
        .map(|i| Person {
            email: format!("b{i}@example.com"),
            first_name: None,
            last_name: None,
        })
        .collect();
    let desired = Desired {
        prune: false,
        groups: vec![DesiredGroup {
            name: "Beta".into(),
            external: None,
            public_link: None,
            testers: Some(people),
        }],
    };
    let mode = Mode {
        apply: true,
        interactive: false,
        confirmed: false,
    };
    let ctx = env.ctx();
    let e = audience::reconcile(&ctx.api, APP_ID, &desired, mode)
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 5, "{e}");
    assert!(e.message.contains("hourly request budget"), "{e}");
    let landed = emails_in(&env, "Beta").len();
    assert!(landed > 0 && landed < 80, "{landed}");
    let rejected = env
        .sim()
        .lock()
        .log
        .iter()
        .filter(|l| l.status == 429)
        .count();
    assert_eq!(rejected, 0, "it stopped before Apple had to refuse");
    // With budget to spare again, the re-run sends only what is missing.
    env.sim().config.lock().unwrap().rate_limit_per_hour = 1000;
    let rec = audience::reconcile(&ctx.api, APP_ID, &desired, mode)
        .await
        .unwrap();
    assert_eq!(rec.applied.unwrap().added.len(), 80 - landed);
    assert_eq!(emails_in(&env, "Beta").len(), 80);
}

fn one(email: &str) -> Desired {
    Desired {
        prune: false,
        groups: vec![DesiredGroup {
            name: "Beta".into(),
            external: None,
            public_link: None,
            testers: Some(vec![Person {
                email: email.into(),
                first_name: None,
                last_name: None,
            }]),
        }],
    }
}

#[tokio::test]
async fn a_stale_plan_and_a_lost_create_response_never_duplicate_a_tester() {
    use asc_simulator::faults::{Fault, Scope};
    let env = start().await;
    let ctx = env.ctx();
    // The plan is made, then someone else adds the tester before it is applied.
    let desired = one("late@example.com");
    let actual = audience::read_actual(&ctx.api, APP_ID, &["Beta"])
        .await
        .unwrap();
    let plan = audience::plan::plan(&desired, &actual).unwrap();
    let gid = actual.group("Beta").unwrap().id.clone();
    flightdeck::api::beta::create_tester(&ctx.api, "late@example.com", None, None, &gid)
        .await
        .unwrap();
    audience::apply::apply(&ctx.api, APP_ID, &plan, &actual)
        .await
        .unwrap();
    assert_eq!(emails_in(&env, "Beta"), vec!["late@example.com"]);
    assert_eq!(env.count("POST", "/v1/betaTesters"), 1, "no second create");

    // The create lands but its response is lost: read back, do not create again.
    let desired = one("lost@example.com");
    let actual = audience::read_actual(&ctx.api, APP_ID, &["Beta"])
        .await
        .unwrap();
    let plan = audience::plan::plan(&desired, &actual).unwrap();
    env.sim().faults.script(Scope::Api, Fault::Pass, 1); // the email lookup
    env.sim().faults.script(Scope::Api, Fault::Drop, 1); // the create
    let applied = audience::apply::apply(&ctx.api, APP_ID, &plan, &actual)
        .await
        .unwrap();
    assert_eq!(applied.added.len(), 1);
    assert_eq!(
        emails_in(&env, "Beta"),
        vec!["late@example.com", "lost@example.com"]
    );
    assert_eq!(env.sim().faults.pending(), 0);
    assert_eq!(env.count("POST", "/v1/betaTesters"), 2, "one create each");
    assert_eq!(
        env.count("POST", "/v1/betaGroups/"),
        2,
        "each time the tester was found, so it was linked, not created again"
    );
    let n = env
        .sim()
        .lock()
        .testers
        .values()
        .filter(|t| t.email == "lost@example.com")
        .count();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn bad_tester_files_are_refused_with_file_and_line_before_any_request() {
    let env = start().await;
    let dir = env.dir.path();
    pipeline(dir, false);
    write_csv(
        dir,
        "Ada,Lovelace,ada@example.com\nBob,Builder,not-an-email\nonly,two\nAda,Byron,ADA@example.com\n",
    );
    for args in [
        &["audience", "apply"][..],
        &["run"][..],
        &["run", "--dry-run"][..],
    ] {
        let out = fd(&env.vars(), args, dir).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", s(&out.stderr));
        let err = s(&out.stderr);
        for at in [
            "testers/beta.csv:2:1",
            "testers/beta.csv:3:1",
            "testers/beta.csv:4:1",
        ] {
            assert!(err.contains(at), "{args:?}: missing {at} in:\n{err}");
        }
        assert!(err.contains("listed again with other names"), "{err}");
    }
    let out = fd(
        &env.vars(),
        &[
            "testers",
            "import",
            "--group",
            "Beta",
            "testers/beta.csv",
            "--app-id",
            APP_ID,
        ],
        dir,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", s(&out.stderr));
    assert!(s(&out.stderr).contains("testers/beta.csv:2:1"));
    assert_eq!(env.sim().lock().log.len(), 0, "nothing was sent");
}

#[tokio::test]
async fn one_off_tester_commands_and_a_csv_round_trip() {
    let env = start().await;
    let dir = env.dir.path();
    let mut vars = env.vars();
    vars.push(("ASC_APP_ID".into(), APP_ID.into()));
    let run = |args: Vec<&'static str>| {
        let vars = vars.clone();
        async move { fd(&vars, &args, dir).await }
    };
    let out = run(vec![
        "testers",
        "add",
        "--group",
        "Beta",
        "--email",
        "one@example.com",
        "--first-name",
        "One",
        "--last-name",
        "Tester",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    write_csv(
        dir,
        "\"Smith, Jr.\",Two,two@example.com\nThree,,three@example.com\n",
    );
    let out = run(vec![
        "testers",
        "import",
        "--group",
        "Beta",
        "testers/beta.csv",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert_eq!(emails_in(&env, "Beta").len(), 3);

    let out = run(vec![
        "--output", "json", "testers", "list", "--group", "Beta",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut listed: Vec<&str> = doc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["email"].as_str().unwrap())
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec!["one@example.com", "three@example.com", "two@example.com"]
    );

    // Export, then import the export: it round-trips and writes nothing.
    let out = run(vec![
        "testers", "export", "--group", "Beta", "--out", "out.csv",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let exported = std::fs::read_to_string(env.path("out.csv")).unwrap();
    assert!(
        exported.contains("\"Smith, Jr.\",Two,two@example.com,Beta"),
        "{exported}"
    );
    let before = writes(&env);
    let out = run(vec!["testers", "import", "--group", "Beta", "out.csv"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert_eq!(writes(&env), before, "re-importing the export is a no-op");
    // Into another group it brings the same people.
    let out = run(vec!["testers", "import", "--group", "QA", "out.csv"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert_eq!(emails_in(&env, "QA"), emails_in(&env, "Beta"));

    let out = run(vec![
        "testers",
        "remove",
        "--email",
        "two@example.com",
        "--group",
        "Beta",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert_eq!(
        emails_in(&env, "Beta"),
        vec!["one@example.com", "three@example.com"]
    );
    assert_eq!(emails_in(&env, "QA").len(), 3, "only Beta lost the tester");
    let out = run(vec![
        "testers",
        "remove",
        "--email",
        "two@example.com",
        "--app",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert_eq!(emails_in(&env, "QA").len(), 2);
    let out = run(vec![
        "testers",
        "add",
        "--group",
        "Nope",
        "--email",
        "x@example.com",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(s(&out.stderr).contains("no beta group named \"Nope\""));
    env.assert_conformant();
}

fn add_build(env: &Env, id: &str, platform: &str, days_ago: i64) {
    let mut st = env.sim().lock();
    let seq = st.next_seq();
    st.builds.insert(
        id.into(),
        BuildRec {
            id: id.into(),
            seq,
            app_id: APP_ID.into(),
            upload_id: format!("u-{id}"),
            version: id.into(),
            short_version: "1.0".into(),
            platform: platform.into(),
            processing_state: "VALID".into(),
            uses_non_exempt_encryption: Some(false),
            uploaded: jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * days_ago),
            groups: Default::default(),
            internal_state: "IN_BETA_TESTING".into(),
            external_state: "READY_FOR_BETA_SUBMISSION".into(),
            auto_notify: true,
        },
    );
}

#[tokio::test]
async fn expire_previous_expires_exactly_the_older_builds() {
    let env = start().await;
    add_build(&env, "100", "IOS", 5);
    add_build(&env, "101", "IOS", 4); // a pending review needs it
    add_build(&env, "102", "IOS", 3);
    add_build(&env, "103", "IOS", 2); // the new build
    add_build(&env, "104", "IOS", 1); // newer than the new one
    add_build(&env, "900", "MAC_OS", 6); // another platform
    env.sim().lock().submissions.push(Submission {
        id: "s-101".into(),
        build_id: "101".into(),
        state: "WAITING_FOR_REVIEW".into(),
        submitted: jiff::Timestamp::now(),
    });
    let out = fd(
        &env.vars(),
        &[
            "--output",
            "json",
            "testflight",
            "--build",
            "103",
            "--expire-previous",
        ],
        env.dir.path(),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outputs"]["builds-expired"], "2");
    let row = doc["summary"][0]["result"].as_str().unwrap();
    assert!(row.contains("expired 2 older build(s)"), "{row}");
    let mut expired: Vec<String> = env.sim().lock().expired_builds.iter().cloned().collect();
    expired.sort();
    assert_eq!(expired, vec!["100", "102"]);
    // Again: nothing more to expire.
    let out = fd(
        &env.vars(),
        &[
            "--output",
            "json",
            "testflight",
            "--build",
            "103",
            "--expire-previous",
        ],
        env.dir.path(),
    )
    .await;
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outputs"]["builds-expired"], "0");
    assert_eq!(env.count("PATCH", "/v1/builds/"), 2);
    env.assert_conformant();
}

#[tokio::test]
async fn pruning_a_group_to_zero_needs_yes_when_interactive() {
    let env = start().await;
    let ctx = env.ctx();
    let desired = one("keep@example.com");
    let apply = Mode {
        apply: true,
        interactive: true,
        confirmed: false,
    };
    audience::reconcile(&ctx.api, APP_ID, &desired, apply)
        .await
        .unwrap();
    let mut empty = desired.clone();
    empty.prune = true;
    empty.groups[0].testers = Some(vec![]);
    let plan_only = Mode {
        apply: false,
        ..apply
    };
    let rec = audience::reconcile(&ctx.api, APP_ID, &empty, plan_only)
        .await
        .unwrap();
    assert_eq!(rec.plan.emptied, vec!["Beta"]);
    let before = writes(&env);
    let e = audience::reconcile(&ctx.api, APP_ID, &empty, apply)
        .await
        .unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.hint.unwrap().contains("--yes"));
    assert_eq!(writes(&env), before, "refused before any write");
    let yes = Mode {
        confirmed: true,
        ..apply
    };
    audience::reconcile(&ctx.api, APP_ID, &empty, yes)
        .await
        .unwrap();
    assert!(emails_in(&env, "Beta").is_empty());
}

#[tokio::test]
async fn validate_accepts_the_audience_and_expire_previous() {
    let env = start().await;
    let dir = env.dir.path();
    pipeline(dir, true);
    write_csv(dir, &csv_lines(2, None));
    let yml = std::fs::read_to_string(dir.join("flightdeck.yml")).unwrap().replace(
        "  - feedback: { out: fb }\n",
        "  - upload: { file: A.ipa }\n  - wait: {}\n  - testflight: { groups: [Beta], expire-previous: true }\n",
    );
    std::fs::write(dir.join("flightdeck.yml"), &yml).unwrap();
    let out = fd(&env.vars(), &["--output", "json", "validate"], dir).await;
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["data"]["steps"][2]["testflight"]["expire_previous"],
        true
    );
    assert_eq!(doc["data"]["audience"]["groups"][1]["name"], "Sprint 12");
    // validate reads the tester files too.
    write_csv(dir, "a,b,nobody\n");
    let out = fd(&env.vars(), &["validate"], dir).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        s(&out.stderr).contains("testers/beta.csv:1:1"),
        "{}",
        s(&out.stderr)
    );
    // A misspelt key is refused at its line, with the nearest valid key.
    std::fs::write(
        dir.join("flightdeck.yml"),
        yml.replace("public-link", "public-links"),
    )
    .unwrap();
    let out = fd(&env.vars(), &["validate"], dir).await;
    assert_eq!(out.status.code(), Some(2));
    let err = s(&out.stderr);
    assert!(err.contains("flightdeck.yml:11"), "{err}");
    assert!(err.contains("public-link"), "{err}");
}
