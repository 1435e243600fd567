//! The pipeline file end to end without I/O: YAML (`spec`) into a plan
//! (`plan`), its rendering, and located errors. An integration test because
//! it spans two modules (keeping `spec` free of a dependency on `plan`).

use flightdeck::config::env::Env;
use flightdeck::plan::{self, Step};
use flightdeck::spec::*;

const GOOD: &str = r#"version: 1
app: { bundle-id: com.example.app }
steps:
  - upload:
      file: build/Example.ipa
      version: 1.10
      build-number: 045
  - wait:
      timeout: 45m
      poll: { interval: 30s }
      webhook: { listen: "0.0.0.0:8787", secret: "${ASC_WEBHOOK_SECRET}" }
  - testflight:
      groups: [QA, Beta]
      whats-new: { en-US: "Fixes from ${GITHUB_SHA}" }
      submit-for-review: true
  - feedback: { since: 24h, out: feedback/ }
"#;

fn env() -> Env {
    Env::from_pairs([("ASC_WEBHOOK_SECRET", "whsec"), ("GITHUB_SHA", "abc123")])
}

fn problems(yaml: &str) -> String {
    let err = match parse(yaml, "flightdeck.yml") {
        Err(e) => e,
        Ok(p) => plan::from_pipeline(&p, &env(), "flightdeck.yml", None).unwrap_err(),
    };
    err.to_string()
}

#[test]
fn the_contract_example_plans() {
    let p = parse(GOOD, "flightdeck.yml").unwrap();
    let plan = plan::from_pipeline(&p, &env(), "flightdeck.yml", None).unwrap();
    let Step::Upload(u) = &plan.steps[0] else {
        panic!()
    };
    assert_eq!(
        u.version.as_deref(),
        Some("1.10"),
        "versions keep their text"
    );
    assert_eq!(u.build_number.as_deref(), Some("045"));
    let Step::Wait(w) = &plan.steps[1] else {
        panic!()
    };
    assert_eq!(w.timeout.as_secs(), 2700);
    assert_eq!(
        w.webhook
            .as_ref()
            .unwrap()
            .secret
            .as_ref()
            .unwrap()
            .expose(),
        "whsec"
    );
    let Step::Testflight(t) = &plan.steps[2] else {
        panic!()
    };
    assert_eq!(t.groups, ["QA", "Beta"]);
    assert_eq!(t.whats_new["en-US"], "Fixes from abc123");
    assert!(t.submit_for_review);
    insta::assert_snapshot!(plan::render(&plan), @r"
    plan for flightdeck.yml
      app: bundle id com.example.app
      1. upload build/Example.ipa (version 1.10, build 045, platform from artifact; 4 parts at once, SHA_256 checksum)
      2. wait for processing (timeout 45m, poll every 30s, webhook on 0.0.0.0:8787)
      3. testflight (groups: QA, Beta; notes: en-US; submit for review: true; notify: false)
      4. feedback to feedback/ (last 24h)
    ");
}

#[test]
fn unknown_key_names_line_and_suggests() {
    let yaml = "version: 1\nsteps:\n  - wait:\n      timout: 45m\n";
    insta::assert_snapshot!(problems(yaml), @r"
    flightdeck.yml:4:7: invalid pipeline: unknown field `timout`, expected one of timeout, poll, webhook
      hint: did you mean `timeout`? valid keys here: timeout, poll, webhook
    ");
}

#[test]
fn unknown_step_suggests() {
    let yaml = "version: 1\nsteps:\n  - uplaod: { file: a.ipa }\n";
    insta::assert_snapshot!(problems(yaml), @r"
    flightdeck.yml:3:5: invalid pipeline: unknown variant `uplaod`, expected one of upload, wait, testflight, feedback
      hint: did you mean `upload`? valid keys here: upload, wait, testflight, feedback
    ");
}

#[test]
fn unset_variable_and_bad_values_are_all_reported_with_positions() {
    let yaml = "version: 1\nsteps:\n  - upload:\n      file: ${NOPE}\n      concurrency: 99\n  - wait: { timeout: 10x }\n  - testflight: { submit-for-review: maybe }\n";
    insta::assert_snapshot!(problems(yaml), @r#"
    flightdeck.yml:4:13: environment variable NOPE is not set (write ${NOPE:-default} to allow that)
    flightdeck.yml:5:20: concurrency: expected a whole number from 1 to 32, got "99"
    flightdeck.yml:6:22: timeout: invalid duration "10x": unknown unit "x" (use ms, s, m, h or d)
    flightdeck.yml:7:38: submit-for-review: expected true or false, got "maybe"
    "#);
}

#[test]
fn syntax_and_type_errors_are_located() {
    insta::assert_snapshot!(problems("version: 1\nsteps: [\n"), @"flightdeck.yml:2:8: invalid pipeline: unclosed bracket '['");
    insta::assert_snapshot!(problems("version: 1\nsteps:\n  - upload: { file: [a, b] }\n"), @"flightdeck.yml:3:21: invalid pipeline: expected string scalar");
    insta::assert_snapshot!(problems("version: 2\nsteps:\n  - upload: { file: a.ipa }\n"), @r#"flightdeck.yml:1:10: unsupported pipeline version "2"; this flightdeck reads version 1"#);
}

#[test]
fn wait_without_upload_is_explained() {
    insta::assert_snapshot!(problems("version: 1\nsteps:\n  - wait: {}\n"), @r"
    flightdeck.yml:1:1: step 1 (wait) needs an earlier upload step in the same pipeline
      hint: add an `upload` step before it, or run `flightdeck wait --build-upload ID` / `flightdeck testflight --build ID` directly
    ");
}

#[test]
fn the_example_pipeline_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/flightdeck.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let p = parse(&text, "examples/flightdeck.yml").unwrap();
    let plan = plan::from_pipeline(&p, &Env::default(), "examples/flightdeck.yml", None).unwrap();
    assert_eq!(plan.steps.len(), 4);
    let Step::Testflight(t) = &plan.steps[2] else {
        panic!()
    };
    assert_eq!(t.whats_new["en-US"], "Fixes from a local build");
    assert_eq!(t.whats_new.len(), 2);
}

#[test]
fn a_wait_through_a_relay_plans_with_the_relay_token() {
    let yaml = GOOD.replace(
        r#"webhook: { listen: "0.0.0.0:8787", secret: "${ASC_WEBHOOK_SECRET}" }"#,
        r#"webhook: { relay: "https://relay.example.com" }"#,
    );
    let p = parse(&yaml, "flightdeck.yml").unwrap();
    let env = Env::from_pairs([("GITHUB_SHA", "abc"), ("FLIGHTDECK_RELAY_TOKEN", "tok")]);
    let plan = plan::from_pipeline(&p, &env, "flightdeck.yml", None).unwrap();
    let Step::Wait(w) = &plan.steps[1] else {
        panic!()
    };
    let relay = w.relay.as_ref().unwrap();
    assert_eq!(relay.url, "https://relay.example.com");
    assert_eq!(relay.token.as_ref().map(|t| t.expose()), Some("tok"));
    assert!(w.webhook.is_none());
    assert!(plan::render(&plan).contains("webhook relay https://relay.example.com"));
    let both = GOOD.replace(
        r#"secret: "${ASC_WEBHOOK_SECRET}" }"#,
        r#"relay: "ftp://relay" }"#,
    );
    let e = problems(&both);
    assert!(
        e.contains("not an http(s) URL") && e.contains("not both"),
        "{e}"
    );
    let neither = GOOD.replace(
        r#"webhook: { listen: "0.0.0.0:8787", secret: "${ASC_WEBHOOK_SECRET}" }"#,
        r#"webhook: { secret: "x" }"#,
    );
    assert!(problems(&neither).contains("needs `listen:` or `relay:`"));
}

#[test]
fn feedback_keys_plan_and_bad_ones_are_located() {
    let yaml = "version: 1\napp: { id: \"1\" }\nsteps:\n  - feedback:\n      build: current\n      platform: amiga\n      fail-on-crash: perhaps\n      to-issues: jira:ABC\n";
    let text = problems(yaml);
    assert!(
        text.contains("flightdeck.yml:5:14: build: current needs an earlier upload step"),
        "{text}"
    );
    assert!(
        text.contains("flightdeck.yml:6:17: platform: unknown platform"),
        "{text}"
    );
    assert!(
        text.contains("flightdeck.yml:7:22: fail-on-crash: expected true or false"),
        "{text}"
    );
    assert!(
        text.contains("flightdeck.yml:8:18: to-issues: unknown issue target \"jira:ABC\""),
        "{text}"
    );
    let ok = "version: 1\napp: { id: \"1\" }\nsteps:\n  - feedback: { device-model: \"iPhone16,1\", os-version: \"18.1\", platform: ios, fail-on-crash: true, to-issues: \"github:acme/app\", labels: [beta] }\n";
    let p = parse(ok, "flightdeck.yml").unwrap();
    let plan = plan::from_pipeline(&p, &env(), "flightdeck.yml", None).unwrap();
    let Step::Feedback(f) = &plan.steps[0] else {
        panic!()
    };
    assert!(f.build.is_none(), "the whole app by default");
    assert_eq!(f.device_model.as_deref(), Some("iPhone16,1"));
    assert!(f.fail_on_crash);
    assert_eq!(f.labels, vec!["beta"]);
    assert_eq!(f.to_issues.as_ref().unwrap().to_string(), "github:acme/app");
}
