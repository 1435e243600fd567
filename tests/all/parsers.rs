//! The fuzz targets' entry points (`flightdeck::fuzzing`), run on stable with
//! proptest for a bounded number of cases: arbitrary bytes, and valid inputs
//! with random edits and truncations. Each must end without a panic.

use asc_simulator::fixture::{AppSpec, write_ipa, write_pkg};
use flightdeck::fuzzing;
use proptest::prelude::*;
use std::sync::OnceLock;

const CASES: u32 = 256;

/// A seed with byte edits applied and an optional cut.
fn mutated(seeds: &'static [Vec<u8>]) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds.to_vec()),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..16),
        prop::option::of(any::<prop::sample::Index>()),
    )
        .prop_map(|(mut s, edits, cut)| {
            if !s.is_empty() {
                for (i, b) in edits {
                    let at = i.index(s.len());
                    s[at] = b;
                }
            }
            if let Some(c) = cut {
                s.truncate(c.index(s.len() + 1));
            }
            s
        })
}

fn input(seeds: &'static [Vec<u8>]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..2048), mutated(seeds)]
}

fn artifact_seeds() -> &'static [Vec<u8>] {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        for binary in [false, true] {
            let spec = AppSpec {
                payload_bytes: 256,
                binary_plist: binary,
                ..AppSpec::new("com.example.app", "1.0", "1")
            };
            let p = dir.path().join("a.ipa");
            write_ipa(&p, &spec).unwrap();
            let mut b = vec![0u8];
            b.extend(std::fs::read(&p).unwrap());
            out.push(b);
            let p = dir.path().join("a.pkg");
            write_pkg(&p, &spec).unwrap();
            let mut b = vec![1u8];
            b.extend(std::fs::read(&p).unwrap());
            out.push(b);
        }
        out
    })
}

fn pipeline_seeds() -> &'static [Vec<u8>] {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| {
        vec![
            include_bytes!("../../examples/flightdeck.yml").to_vec(),
            b"version: 1\napp: { bundle-id: com.example.app }\nsteps:\n  - upload: { file: \"${SHA}.ipa\" }\n  - wait: { timeout: 30m, poll: { interval: 1m } }\n  - testflight: { groups: [QA], whats-new: \"x\" }\n  - feedback: { out: fb, since: 24h }\n".to_vec(),
            b"a: &x [*x, *x]\nb: &y [*x, *x, *x]\nc: [*y, *y, *y]\n".to_vec(),
        ]
    })
}

fn credential_seeds() -> &'static [Vec<u8>] {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| {
        let (pem, _) = flightdeck::auth::key::generate();
        fuzzing::credential_seeds(pem.expose())
            .into_iter()
            .map(String::into_bytes)
            .collect()
    })
}

fn webhook_seeds() -> &'static [Vec<u8>] {
    static S: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    S.get_or_init(|| {
        let body = include_bytes!("../fixtures/webhook-build-upload-state-updated.json");
        let mut signed = b"hmacsha256=00ff\n".to_vec();
        signed.extend(body);
        vec![
            signed,
            include_bytes!("../fixtures/webhook-ping-created.json").to_vec(),
            include_bytes!("../fixtures/webhook-beta-feedback-screenshot-submission-created.json")
                .to_vec(),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn pipeline_parser_never_panics(data in input(pipeline_seeds())) {
        fuzzing::pipeline(&data);
    }

    #[test]
    fn credentials_parser_never_panics_nor_echoes_the_key(data in input(credential_seeds())) {
        fuzzing::credentials(&data);
    }

    #[test]
    fn artifact_reader_never_panics(data in input(artifact_seeds())) {
        fuzzing::artifact(&data);
    }

    #[test]
    fn webhook_payload_parser_never_panics(data in input(webhook_seeds())) {
        fuzzing::webhook(&data);
    }
}
