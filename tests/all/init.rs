//! `flightdeck init` for each CI: the starter pipeline comes from the artifact
//! found, `flightdeck validate` accepts it, the CI file has the shape its CI
//! reads (checked with check-jsonschema too when FLIGHTDECK_CHECK_JSONSCHEMA
//! names it, as `.ci/run` does), and nothing is overwritten without --force.

use crate::cli::fd;
use crate::support::{BUNDLE, start};
use serde_json::Value;
use std::path::Path;

fn yaml(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", p.display()))
}

/// check-jsonschema, when the environment names it (skipped otherwise).
fn check_jsonschema(args: &[&str]) {
    let Ok(bin) = std::env::var("FLIGHTDECK_CHECK_JSONSCHEMA") else {
        eprintln!("FLIGHTDECK_CHECK_JSONSCHEMA is not set: schema checks run in .ci/run only");
        return;
    };
    let out = std::process::Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "check-jsonschema {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn init_in(dir: &Path, ci: &str) -> (i32, String) {
    let out = fd(&[], &["--ci", ci, "init"], dir).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap(), text)
}

/// A repository with a build's .ipa in build/ (the support fixture, for the seeded app).
async fn with_artifact() -> tempfile::TempDir {
    let env = start().await;
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("build")).unwrap();
    std::fs::rename(
        env.ipa("Acme.ipa", "1.2.0", "7", 1000),
        d.path().join("build/Acme.ipa"),
    )
    .unwrap();
    d
}

#[tokio::test]
async fn init_for_each_ci_writes_files_that_validate() {
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/flightdeck.schema.json");
    for (ci, file, builtin) in [
        (
            "github",
            ".github/workflows/testflight.yml",
            Some("vendor.github-workflows"),
        ),
        ("gitlab", ".gitlab-ci.yml", Some("vendor.gitlab-ci")),
        // check-jsonschema has no Bitrise schema; the step's inputs are checked below.
        ("bitrise", "bitrise.yml", None),
    ] {
        let d = with_artifact().await;
        let (code, text) = init_in(d.path(), ci).await;
        assert_eq!(code, 0, "{ci}: {text}");
        assert!(text.contains(&format!("wrote {file}")), "{text}");
        assert!(
            text.contains("the pipeline uploads build/Acme.ipa"),
            "{text}"
        );
        let pipeline = std::fs::read_to_string(d.path().join("flightdeck.yml")).unwrap();
        assert!(
            pipeline.contains(&format!("bundle-id: \"{BUNDLE}\"")),
            "{pipeline}"
        );
        assert!(pipeline.contains("file: \"build/Acme.ipa\""), "{pipeline}");
        let out = fd(&[], &["validate"], d.path()).await;
        assert_eq!(
            out.status.code(),
            Some(0),
            "{ci}: validate: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let ci_file = d.path().join(file);
        let doc = yaml(&ci_file);
        check_jsonschema(&[
            "--schemafile",
            schema,
            d.path().join("flightdeck.yml").to_str().unwrap(),
        ]);
        if let Some(builtin) = builtin {
            check_jsonschema(&["--builtin-schema", builtin, ci_file.to_str().unwrap()]);
        }
        match ci {
            "github" => {
                let steps = doc["jobs"]["testflight"]["steps"].as_array().unwrap();
                let fd_step = steps
                    .iter()
                    .find(|s| {
                        s["uses"]
                            .as_str()
                            .is_some_and(|u| u.starts_with("flightdeck-dev/flightdeck@"))
                    })
                    .expect("a step using the action");
                let action =
                    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/action.yml"))
                        .unwrap();
                for (input, _) in fd_step["with"].as_object().unwrap() {
                    assert!(
                        action.contains(&format!("\n  {input}:\n")),
                        "the action has no input {input}"
                    );
                }
                assert_eq!(fd_step["with"]["pipeline"], "flightdeck.yml");
            }
            "gitlab" => {
                assert!(
                    doc["include"][0]["remote"]
                        .as_str()
                        .unwrap()
                        .ends_with("/flightdeck.gitlab-ci.yml")
                );
                assert_eq!(doc["testflight"]["extends"], ".flightdeck");
            }
            _ => {
                let step = &doc["workflows"]["testflight"]["steps"][0];
                let (id, body) = step.as_object().unwrap().iter().next().unwrap();
                assert!(
                    id.starts_with("git::https://github.com/flightdeck-dev/flightdeck.git@"),
                    "{id}"
                );
                let step_yml = std::fs::read_to_string(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/ci/bitrise/step.yml"
                ))
                .unwrap();
                for input in body["inputs"].as_array().unwrap() {
                    let key = input.as_object().unwrap().keys().next().unwrap();
                    assert!(
                        step_yml.contains(&format!("  - {key}:")),
                        "the step has no input {key}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn init_never_overwrites_without_force_and_works_with_no_artifact() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join(".gitlab-ci.yml"), "stages: [build]\n").unwrap();
    // --ci auto (none given) picks GitLab from the repository's file.
    let out = fd(&[], &["init"], d.path()).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(".gitlab-ci.yml already exists; nothing was written"),
        "{err}"
    );
    assert!(!d.path().join("flightdeck.yml").exists());
    assert_eq!(
        std::fs::read_to_string(d.path().join(".gitlab-ci.yml")).unwrap(),
        "stages: [build]\n"
    );
    let out = fd(
        &[],
        &["init", "--force", "--bundle-id", "com.example.x"],
        d.path(),
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("no .ipa or .pkg found"));
    assert!(
        std::fs::read_to_string(d.path().join(".gitlab-ci.yml"))
            .unwrap()
            .contains("extends: .flightdeck")
    );
    let out = fd(&[], &["validate"], d.path()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = fd(&[], &["--ci", "none", "init", "--force"], d.path()).await;
    assert_eq!(out.status.code(), Some(2));
}
