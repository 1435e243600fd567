//! Every peer tool's credential format from the migration table
//! (`config::credentials::PEER_NAMES`) authenticates against the simulator;
//! the README shows exactly that table; the action declares the peers' inputs.

use crate::cli::fd;
use crate::support::*;
use base64::Engine;
use flightdeck::api::Client;
use flightdeck::auth::{SystemClock, TokenSource};
use flightdeck::config::credentials::{self, Field, PEER_NAMES, PeerName, Via};
use flightdeck::config::env::Env as Vars;
use std::path::PathBuf;
use std::sync::Arc;

/// Base64 as GitLab's integration stores it: Ruby's encode64, a line feed every 60 characters.
fn wrapped_base64(pem: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
    b64.as_bytes()
        .chunks(60)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect()
}

struct Case {
    vars: Vec<(String, String)>,
    json: Option<PathBuf>,
}

/// Our names for every field, with `row`'s own name standing in for its field.
fn case_for(env: &Env, row: &PeerName, n: usize) -> Case {
    let pem = env.private_pem.clone();
    let p8 = env.path(&format!("AuthKey_{KEY_ID}.p8"));
    std::fs::write(&p8, &pem).unwrap();
    let mut vars: Vec<(String, String)> = vec![
        ("ASC_KEY_ID".into(), KEY_ID.into()),
        ("ASC_ISSUER_ID".into(), ISSUER.into()),
        ("ASC_PRIVATE_KEY".into(), pem.clone()),
    ];
    let name = match row.via {
        Via::ActionInput => format!("INPUT_{}", row.name.to_ascii_uppercase()),
        _ => row.name.to_string(),
    };
    let replace = |vars: &mut Vec<(String, String)>, ours: &str, value: String| {
        vars.retain(|(k, _)| k != ours);
        vars.push((name.clone(), value));
    };
    let mut json = None;
    match (row.via, row.field) {
        (Via::JsonField | Via::Option, _) | (Via::Env, Field::ApiKeyJson) => {
            let file = env.path(&format!("api_key_{n}.json"));
            std::fs::write(&file, fastlane_json(row.name, &pem, &p8)).unwrap();
            vars.clear();
            if row.via == Via::Env {
                vars.push((name.clone(), file.display().to_string()));
            } else {
                json = Some(file);
            }
        }
        (_, Field::KeyId) => replace(&mut vars, "ASC_KEY_ID", KEY_ID.into()),
        (_, Field::IssuerId) => replace(&mut vars, "ASC_ISSUER_ID", ISSUER.into()),
        (_, Field::Key) => replace(&mut vars, "ASC_PRIVATE_KEY", pem.clone()),
        (_, Field::KeyBase64) => replace(&mut vars, "ASC_PRIVATE_KEY", wrapped_base64(&pem)),
        (_, Field::KeyPath) => replace(&mut vars, "ASC_PRIVATE_KEY", p8.display().to_string()),
        (_, Field::KeyIsBase64) => {
            vars.retain(|(k, _)| k != "ASC_PRIVATE_KEY");
            vars.push(("APP_STORE_CONNECT_API_KEY_KEY".into(), wrapped_base64(&pem)));
            vars.push((name.clone(), "true".into()));
        }
        (_, Field::InHouse | Field::Duration | Field::ApiKeyJson) => {
            unreachable!("in JSON files only")
        }
    }
    Case { vars, json }
}

/// A fastlane API key JSON exercising `field` (the other fields as fastlane's docs show them).
fn fastlane_json(field: &str, pem: &str, p8: &std::path::Path) -> String {
    let escaped = serde_json::to_string(pem).unwrap();
    let mut doc = format!(
        "{{\n  \"key_id\": \"{KEY_ID}\",\n  \"issuer_id\": \"{ISSUER}\",\n  \"key\": {escaped},\n  \"duration\": 1200,\n  \"in_house\": false\n}}\n"
    );
    match field {
        // A PEM pasted with its raw line breaks, which strict JSON forbids.
        "key" => doc = doc.replace(&escaped, &format!("\"{pem}\"")),
        "key_filepath" => {
            doc = doc.replace(
                &format!("\"key\": {escaped}"),
                &format!("\"key_filepath\": \"AuthKey_{KEY_ID}.p8\""),
            );
            let _ = p8;
        }
        "is_key_content_base64" => {
            let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
            doc = doc.replace(
                &escaped,
                &format!("\"{b64}\",\n  \"is_key_content_base64\": true"),
            );
        }
        _ => {}
    }
    doc
}

async fn authenticates(env: &Env, case: &Case, what: &str) {
    let vars = Vars::from_pairs(case.vars.clone());
    let loaded =
        credentials::load(&vars, case.json.as_deref()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let c = loaded.credentials;
    let tokens = TokenSource::new(&c.key_id, c.issuer, &c.key, Arc::new(SystemClock));
    let api = Client::new(&env.sim.base_url, Arc::new(tokens), fast_retry()).unwrap();
    api.get::<serde_json::Value>("/v1/apps?limit=1")
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

#[tokio::test]
async fn every_peer_name_in_the_table_authenticates() {
    let env = start().await;
    for (n, row) in PEER_NAMES.iter().enumerate() {
        let case = case_for(&env, row, n);
        authenticates(
            &env,
            &case,
            &format!("{} {} ({:?})", row.peer, row.name, row.via),
        )
        .await;
    }
    env.assert_conformant();
}

#[tokio::test]
async fn each_peer_alone_authenticates_with_only_its_own_names() {
    let env = start().await;
    let pem = env.private_pem.clone();
    let sets: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "fastlane",
            vec![
                ("APP_STORE_CONNECT_API_KEY_KEY_ID", KEY_ID.into()),
                ("APP_STORE_CONNECT_API_KEY_ISSUER_ID", ISSUER.into()),
                ("APP_STORE_CONNECT_API_KEY_KEY", pem.replace('\n', "\\n")),
            ],
        ),
        (
            "GitLab",
            vec![
                ("APP_STORE_CONNECT_API_KEY_KEY_ID", KEY_ID.into()),
                ("APP_STORE_CONNECT_API_KEY_ISSUER_ID", ISSUER.into()),
                ("APP_STORE_CONNECT_API_KEY_KEY", wrapped_base64(&pem)),
                (
                    "APP_STORE_CONNECT_API_KEY_IS_KEY_CONTENT_BASE64",
                    "true".into(),
                ),
            ],
        ),
        (
            "Codemagic",
            vec![
                ("APP_STORE_CONNECT_KEY_IDENTIFIER", KEY_ID.into()),
                ("APP_STORE_CONNECT_ISSUER_ID", ISSUER.into()),
                ("APP_STORE_CONNECT_PRIVATE_KEY", pem.clone()),
            ],
        ),
        (
            "Apple-Actions",
            vec![
                ("INPUT_API-KEY-ID", KEY_ID.into()),
                ("INPUT_ISSUER-ID", ISSUER.into()),
                ("INPUT_API-PRIVATE-KEY", pem.clone()),
            ],
        ),
        (
            "asc",
            vec![
                ("ASC_KEY_ID", KEY_ID.into()),
                ("ASC_ISSUER_ID", ISSUER.into()),
                (
                    "ASC_PRIVATE_KEY_B64",
                    base64::engine::general_purpose::STANDARD.encode(&pem),
                ),
            ],
        ),
    ];
    for (peer, vars) in sets {
        let case = Case {
            vars: vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            json: None,
        };
        authenticates(&env, &case, peer).await;
    }
}

#[test]
fn the_readme_shows_the_table_and_the_action_takes_the_peers_inputs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    assert!(
        readme.contains(&credentials::markdown_table()),
        "README.md's credential table differs from PEER_NAMES; paste:\n{}",
        credentials::markdown_table()
    );
    let action = std::fs::read_to_string(format!("{root}/action.yml")).unwrap();
    for row in PEER_NAMES.iter().filter(|r| r.via == Via::ActionInput) {
        assert!(
            action.contains(&format!("\n  {}:\n", row.name))
                && action.contains(&format!("inputs.{} }}", row.name)),
            "action.yml does not declare and pass the input {}",
            row.name
        );
    }
}

#[tokio::test]
async fn the_binary_reads_api_key_json_and_warns_about_a_quoted_issuer() {
    let env = start().await;
    let file = env.path("fastlane.json");
    let json = format!(
        "{{\"key_id\": \"{KEY_ID}\", \"issuer_id\": \"\\\"{ISSUER}\\\"\", \"key\": {}}}",
        serde_json::to_string(&env.private_pem).unwrap()
    );
    std::fs::write(&file, json).unwrap();
    let vars = vec![("ASC_API_BASE_URL".to_string(), env.sim.base_url.clone())];
    let out = fd(
        &vars,
        &[
            "--api-key-json",
            file.to_str().unwrap(),
            "next-build-number",
            "--bundle-id",
            BUNDLE,
        ],
        env.dir.path(),
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("issuer_id in"), "{stderr}");
    assert!(stderr.contains("removed quotes"), "{stderr}");
    let out = fd(
        &[
            vars.clone(),
            vec![(
                "APP_STORE_CONNECT_API_KEY_PATH".into(),
                file.display().to_string(),
            )],
        ]
        .concat(),
        &["--output", "json", "doctor"],
        env.dir.path(),
    )
    .await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let source = &doc["data"]["checks"][0];
    assert_eq!(source["name"], "credentials");
    assert!(
        source["detail"]
            .as_str()
            .unwrap()
            .contains("fastlane API key JSON"),
        "{source}"
    );
    assert!(
        source["detail"]
            .as_str()
            .unwrap()
            .contains("(from APP_STORE_CONNECT_API_KEY_PATH)")
    );
}

#[tokio::test]
async fn asc_private_key_b64_is_masked_on_github_before_anything_else() {
    let env = start().await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&env.private_pem);
    let vars: Vec<(String, String)> = vec![
        ("ASC_API_BASE_URL".into(), env.sim.base_url.clone()),
        ("ASC_KEY_ID".into(), KEY_ID.into()),
        ("ASC_ISSUER_ID".into(), ISSUER.into()),
        ("ASC_PRIVATE_KEY_B64".into(), b64.clone()),
        ("GITHUB_ACTIONS".into(), "true".into()),
    ];
    let out = fd(
        &vars,
        &["next-build-number", "--bundle-id", BUNDLE],
        env.dir.path(),
    )
    .await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.starts_with(&format!("::add-mask::{b64}\n")),
        "the base64 key is masked first: {err}"
    );
}
