//! Uploads against the simulator: byte-identical parts, faults, resume,
//! duplicate build numbers, bad artifacts.

use crate::support::*;
use asc_simulator::faults::{Fault, Faults, Scope};
use flightdeck::api::models::Platform;
use flightdeck::api::resources as r;
use flightdeck::plan::{AppRef, ChecksumAlgorithm, UploadPlan};
use flightdeck::upload;
use std::path::Path;

pub fn plan(file: &Path) -> UploadPlan {
    UploadPlan::for_file(file)
}

fn uploads(env: &Env) -> Vec<asc_simulator::state::Upload> {
    env.sim().lock().uploads.values().cloned().collect()
}

/// The spooled bytes the simulator received for the single upload.
fn received(env: &Env) -> Vec<u8> {
    let st = env.sim().lock();
    let f = st.files.values().next().expect("a file was reserved");
    std::fs::read(&f.spool).unwrap()
}

#[tokio::test]
async fn multi_part_upload_lands_byte_identical_with_verified_checksum() {
    let env = start().await;
    let ctx = env.ctx();
    let ipa = env.ipa("App.ipa", "1.2.3", "45", 1_000_000);
    let done = upload::run(&ctx, &plan(&ipa)).await.unwrap();
    assert_eq!(
        (
            done.version.as_str(),
            done.build_number.as_str(),
            &done.platform
        ),
        ("1.2.3", "45", &Platform::Ios)
    );
    assert_eq!(done.app_id, APP_ID);
    assert_eq!(done.bytes_uploaded, std::fs::metadata(&ipa).unwrap().len());
    assert_eq!(received(&env), std::fs::read(&ipa).unwrap());
    let parts = env.count("PUT", "/_upload/");
    assert!(parts >= 16, "{parts} parts for 1 MB at 64 KiB");
    let file = env.sim().lock().files.values().next().unwrap().clone();
    assert_eq!(file.checksum, Some(("SHA_256".into(), sha256_file(&ipa))));
    eventually("COMPLETE", || uploads(&env)[0].state == "COMPLETE").await;
    env.assert_conformant();
}

#[tokio::test]
async fn parts_larger_than_a_read_chunk_arrive_intact() {
    // Parts of 3 MiB + 5 bytes: several pooled 1 MiB chunks per part, a short
    // last chunk in each, and buffers reused across parts.
    let env = start_with(|c| c.part_size = (3 << 20) + 5).await;
    let ipa = env.ipa("Big.ipa", "1.0", "7", 7_500_000);
    let done = upload::run(&env.ctx(), &plan(&ipa)).await.unwrap();
    assert_eq!(env.count("PUT", "/_upload/"), 3);
    assert_eq!(received(&env), std::fs::read(&ipa).unwrap());
    let file = env.sim().lock().files.values().next().unwrap().clone();
    assert_eq!(file.checksum, Some(("SHA_256".into(), sha256_file(&ipa))));
    assert_eq!(done.bytes_uploaded, std::fs::metadata(&ipa).unwrap().len());
}

#[tokio::test]
async fn the_simulator_spools_where_it_is_told() {
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().to_path_buf();
    let env = start_with(move |c| c.spool_dir = Some(dir)).await;
    let ipa = env.ipa("App.ipa", "1.0", "9", 100_000);
    upload::run(&env.ctx(), &plan(&ipa)).await.unwrap();
    let file = env
        .sim()
        .lock()
        .files
        .values()
        .next()
        .unwrap()
        .spool
        .clone();
    assert!(file.starts_with(spool.path()), "{}", file.display());
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&ipa).unwrap());
}

#[tokio::test]
async fn a_slow_uplink_paces_every_part() {
    // 1 MB through a 2 MiB/s link takes about half a second, however many
    // parts share it (less the link's 20 ms of burst).
    let env = start_with(|c| c.link_bytes_per_sec = Some(2 << 20)).await;
    let ipa = env.ipa("App.ipa", "1.0", "8", 1_000_000);
    let started = std::time::Instant::now();
    upload::run(&env.ctx(), &plan(&ipa)).await.unwrap();
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(430), "{took:?}");
    assert_eq!(received(&env), std::fs::read(&ipa).unwrap());
}

#[tokio::test]
async fn md5_checksum_when_asked_and_pkg_uploads() {
    let env = start().await;
    let ctx = env.ctx();
    let pkg = env.path("Mac.pkg");
    let mut spec = asc_simulator::fixture::AppSpec::new(BUNDLE, "4.0", "1");
    spec.platform = asc_simulator::fixture::Platform::MacOs;
    spec.payload_bytes = 300_000;
    asc_simulator::fixture::write_pkg(&pkg, &spec).unwrap();
    let done = upload::run(
        &ctx,
        &UploadPlan {
            checksum: ChecksumAlgorithm::Md5,
            ..plan(&pkg)
        },
    )
    .await
    .unwrap();
    assert_eq!(done.platform, Platform::MacOs);
    use md5::Digest;
    let want = hex::encode(md5::Md5::digest(std::fs::read(&pkg).unwrap()));
    assert_eq!(
        env.sim().lock().files.values().next().unwrap().checksum,
        Some(("MD5".into(), want))
    );
    assert_eq!(
        env.sim().lock().files.values().next().unwrap().uti,
        "com.apple.pkg"
    );
    eventually("COMPLETE", || uploads(&env)[0].state == "COMPLETE").await;
    env.assert_conformant();
}

#[tokio::test]
async fn checksum_none_commits_uploaded_only() {
    let env = start().await;
    let ipa = env.ipa("N.ipa", "1.0", "2", 100_000);
    upload::run(
        &env.ctx(),
        &UploadPlan {
            checksum: ChecksumAlgorithm::None,
            ..plan(&ipa)
        },
    )
    .await
    .unwrap();
    assert_eq!(
        env.sim().lock().files.values().next().unwrap().checksum,
        None
    );
    eventually("COMPLETE", || uploads(&env)[0].state == "COMPLETE").await;
    env.assert_conformant();
}

#[tokio::test]
async fn faults_on_parts_and_api_still_end_in_exactly_one_upload() {
    let env = start_with(|c| {
        c.faults = Faults {
            seed: 11,
            api_5xx: 0.15,
            api_429: 0.15,
            api_drop: 0.15,
            part_5xx: 0.2,
            part_drop: 0.2,
            ..Faults::default()
        };
    })
    .await;
    let ctx = env.ctx();
    let ipa = env.ipa("F.ipa", "1.0", "3", 700_000);
    let done = upload::run(&ctx, &plan(&ipa)).await.unwrap();
    let all = uploads(&env);
    assert_eq!(all.len(), 1, "exactly one build upload: {all:?}");
    assert_eq!(all[0].id, done.build_upload_id);
    assert_eq!(env.sim().lock().files.len(), 1, "exactly one reservation");
    assert_eq!(received(&env), std::fs::read(&ipa).unwrap());
    let statuses: Vec<u16> = env.sim().lock().log.iter().map(|l| l.status).collect();
    assert!(
        statuses.iter().any(|s| *s >= 500) && statuses.contains(&429),
        "faults were injected: {statuses:?}"
    );
    env.sim().faults.set(Faults::default());
    eventually("COMPLETE", || uploads(&env)[0].state == "COMPLETE").await;
    env.assert_conformant();
}

#[tokio::test]
async fn a_lost_create_response_is_adopted_not_duplicated() {
    let env = start().await;
    let ctx = env.ctx();
    let ipa = env.ipa("L.ipa", "1.0", "9", 100_000);
    // The API calls of an upload, in order: find the app, look for an existing
    // upload, then for a build uploaded by other tools, create it (answer
    // lost), look again, reserve the file (answer lost).
    let faults = &env.sim().faults;
    for fault in [
        Fault::Pass,
        Fault::Pass,
        Fault::Pass,
        Fault::Drop,
        Fault::Pass,
        Fault::Drop,
    ] {
        faults.script(Scope::Api, fault, 1);
    }
    let done = upload::run(&ctx, &plan(&ipa)).await.unwrap();
    assert_eq!(faults.pending(), 0, "both drops were used");
    assert_eq!(
        env.count("POST", "/v1/buildUploads"),
        1,
        "the create was not repeated"
    );
    assert_eq!(
        env.count("POST", "/v1/buildUploadFiles"),
        1,
        "the reservation was not repeated"
    );
    assert_eq!(
        env.count("GET", "/v1/apps/1234567890/buildUploads"),
        2,
        "the lost create was looked up"
    );
    assert_eq!(
        env.count(
            "GET",
            &format!("/v1/buildUploads/{}/buildUploadFiles", done.build_upload_id)
        ),
        1,
        "the lost reservation was looked up"
    );
    assert_eq!(uploads(&env).len(), 1);
    assert_eq!(uploads(&env)[0].id, done.build_upload_id);
    assert_eq!(env.sim().lock().files.len(), 1);
    assert_eq!(received(&env), std::fs::read(&ipa).unwrap());
    env.assert_conformant();
}

#[tokio::test]
async fn an_interrupted_upload_resumes_sending_only_missing_parts() {
    let env = start().await;
    let ctx = env.ctx();
    let ipa = env.ipa("R.ipa", "1.0", "5", 600_000);
    let size = std::fs::metadata(&ipa).unwrap().len();
    // An earlier run: created, reserved, sent the first three parts, then died.
    let up = r::create_build_upload(&ctx.api, APP_ID, "1.0", "5", &Platform::Ios)
        .await
        .unwrap();
    let file = r::reserve_file(&ctx.api, &up.id, "R.ipa", size, "com.apple.ipa")
        .await
        .unwrap();
    let bytes = std::fs::read(&ipa).unwrap();
    let ops = file.attrs().upload_operations.unwrap();
    for op in ops.iter().take(3) {
        let (o, l) = (op.offset.unwrap() as usize, op.length.unwrap() as usize);
        ctx.api
            .transfer()
            .put(op.url.as_ref().unwrap())
            .body(bytes[o..o + l].to_vec())
            .send()
            .await
            .unwrap();
    }
    let before = env.count("PUT", "/_upload/");
    let done = upload::run(&ctx, &plan(&ipa)).await.unwrap();
    assert!(done.resumed);
    assert_eq!(done.build_upload_id, up.id);
    assert_eq!(
        env.count("PUT", "/_upload/") - before,
        ops.len() - 3,
        "only the missing parts were sent"
    );
    assert_eq!(uploads(&env).len(), 1);
    assert_eq!(received(&env), bytes);
    env.assert_conformant();
}

#[tokio::test]
async fn expired_part_urls_are_renewed() {
    let env = start_with(|c| {
        c.faults = Faults {
            seed: 3,
            expired_urls: 0.5,
            ..Faults::default()
        }
    })
    .await;
    let ctx = env.ctx();
    let ipa = env.ipa("E.ipa", "1.0", "6", 500_000);
    upload::run(&ctx, &plan(&ipa)).await.unwrap();
    assert!(
        env.count("GET", "/v1/buildUploadFiles/") >= 1,
        "the reservation was re-read for fresh URLs"
    );
    assert_eq!(received(&env), std::fs::read(&ipa).unwrap());
    env.assert_conformant();
}

#[tokio::test]
async fn a_duplicate_build_number_fails_with_the_next_number() {
    let env = start().await;
    let ctx = env.ctx();
    let first = env.ipa("D.ipa", "1.0", "12", 100_000);
    upload::run(&ctx, &plan(&first)).await.unwrap();
    eventually("COMPLETE", || uploads(&env)[0].state == "COMPLETE").await;
    // Another file with the same build number (the same file would be reused).
    let ipa = env.ipa("D2.ipa", "1.0", "12", 120_000);
    let e = upload::run(&ctx, &plan(&ipa)).await.unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(
        e.message
            .contains("build 12 of version 1.0 (IOS) was already uploaded"),
        "{}",
        e.message
    );
    assert!(
        e.hint
            .as_deref()
            .unwrap()
            .contains("the next free build number is 13"),
        "{:?}",
        e.hint
    );
    let skipped = upload::run(
        &ctx,
        &UploadPlan {
            skip_if_exists: true,
            ..plan(&ipa)
        },
    )
    .await
    .unwrap();
    assert!(skipped.skipped);
    assert_eq!(skipped.build_upload_id, uploads(&env)[0].id);
    assert_eq!(uploads(&env).len(), 1);
    assert_eq!(
        flightdeck::upload::guard::next(&ctx.api, APP_ID, Some("1.0"), &Platform::Ios)
            .await
            .unwrap(),
        "13"
    );
    env.assert_conformant();
}

#[tokio::test]
async fn bad_artifacts_exit_2_with_nothing_created() {
    let env = start().await;
    let ctx = env.ctx();
    std::fs::write(env.path("empty.ipa"), b"").unwrap();
    std::fs::write(env.path("junk.ipa"), b"not a zip").unwrap();
    let good = env.ipa("G.ipa", "1.0", "1", 10_000);
    // An app that exists, but is not the artifact's: its check runs alongside
    // the guard's lookups and must still stop the upload.
    env.sim().lock().add_app("555", "com.other.app", "Other");
    let cases = [
        (plan(&env.path("missing.ipa")), "no such file"),
        (plan(&env.path("empty.ipa")), "the file is empty"),
        (plan(&env.path("junk.ipa")), "not a valid .ipa"),
        (
            UploadPlan {
                version: Some("2.0".into()),
                ..plan(&good)
            },
            "version \"2.0\" disagrees with CFBundleShortVersionString \"1.0\"",
        ),
        (
            UploadPlan {
                app: Some(AppRef::BundleId("com.other".into())),
                ..plan(&good)
            },
            "bundle id \"com.other\" disagrees",
        ),
        (
            UploadPlan {
                app: Some(AppRef::Id("999".into())),
                ..plan(&good)
            },
            "looking up app 999",
        ),
        (
            UploadPlan {
                app: Some(AppRef::Id("555".into())),
                ..plan(&good)
            },
            "app 555 has bundle id com.other.app, but the artifact is",
        ),
    ];
    for (p, want) in cases {
        let e = upload::run(&ctx, &p).await.unwrap_err();
        assert_eq!(e.exit_code(), 2, "{want}: {e}");
        assert!(e.to_string().contains(want), "wanted {want:?} in {e}");
    }
    assert!(uploads(&env).is_empty(), "nothing was created");
    let other_app = env.path("Other.ipa");
    asc_simulator::fixture::write_ipa(
        &other_app,
        &asc_simulator::fixture::AppSpec::new("com.unknown.app", "1.0", "1"),
    )
    .unwrap();
    let e = upload::run(&ctx, &plan(&other_app)).await.unwrap_err();
    assert!(
        e.message.contains("no app with bundle id com.unknown.app"),
        "{e}"
    );
    assert!(uploads(&env).is_empty());
    env.assert_conformant();
}

#[tokio::test]
async fn a_straggler_is_sent_again_and_the_first_success_wins() {
    let env = start().await;
    let ctx = env.ctx();
    let ipa = env.ipa("S.ipa", "1.0", "21", 1_000_000);
    // The first part request to arrive is held unread for an hour: only a
    // second copy on another connection can finish the upload.
    env.sim().faults.script(Scope::Part, Fault::Stall, 1);
    let done = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        upload::run(&ctx, &plan(&ipa)),
    )
    .await
    .expect("the stalled part was not sent again")
    .unwrap();
    assert_eq!(env.sim().faults.pending(), 0, "the stall was used");
    let parts = env.sim().lock().files.values().next().unwrap().parts.len();
    assert_eq!(
        env.count("PUT", "/_upload/"),
        parts,
        "every part landed once; the stalled copy never answered"
    );
    assert_eq!(uploads(&env).len(), 1, "exactly one build upload");
    assert_eq!(uploads(&env)[0].id, done.build_upload_id);
    assert_eq!(received(&env), std::fs::read(&ipa).unwrap());
    let file = env.sim().lock().files.values().next().unwrap().clone();
    assert_eq!(file.checksum, Some(("SHA_256".into(), sha256_file(&ipa))));
    assert_eq!(done.bytes_uploaded, std::fs::metadata(&ipa).unwrap().len());
    env.assert_conformant();
}

#[tokio::test]
async fn without_the_end_game_a_straggler_holds_the_upload() {
    // The same stall with the end game switched off: the upload still waits
    // on that part after every other part has landed (what the end game is
    // for; it also shows the test above can fail).
    let env = start().await;
    let ctx = env.ctx();
    let ipa = env.ipa("T.ipa", "1.0", "22", 300_000);
    let size = std::fs::metadata(&ipa).unwrap().len();
    let up = r::create_build_upload(&ctx.api, APP_ID, "1.0", "22", &Platform::Ios)
        .await
        .unwrap();
    let reserved = r::reserve_file(&ctx.api, &up.id, "T.ipa", size, "com.apple.ipa")
        .await
        .unwrap();
    let parts: Vec<_> = reserved
        .attrs()
        .upload_operations
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, op)| upload::parts::Part::from_operation(op, i).unwrap())
        .collect();
    let n = parts.len();
    env.sim().faults.script(Scope::Part, Fault::Stall, 1);
    let sender = upload::parts::Sender {
        wire: upload::wire::Wire::new(ctx.api.transfer().clone(), true),
        file: ipa.clone(),
        concurrency: 4,
        hashing: upload::parts::Hashing::default(),
        renew: std::sync::Arc::new(|| Box::pin(async { Ok(Default::default()) })),
        progress: Default::default(),
        cancel: Default::default(),
    };
    let tuning = upload::schedule::Tuning::with_cap(4).adjusted(Some("no-endgame"));
    let run = tokio::spawn(async move { sender.run_with(parts, tuning).await });
    eventually("every other part landed", || {
        env.count("PUT", "/_upload/") == n - 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !run.is_finished(),
        "the upload finished without the stalled part"
    );
    assert_eq!(env.count("PUT", "/_upload/"), n - 1);
    run.abort();
}
