//! Waiting for processing: polling, webhooks, failures, timeouts, tokens.

use crate::support::*;
use crate::upload::plan;
use asc_simulator::faults::Faults;
use flightdeck::api::models::Platform;
use flightdeck::api::resources as r;
use flightdeck::plan::{Register, WaitPlan, WaitTarget, WebhookListen};
use flightdeck::secret::Secret;
use flightdeck::wait::{self, Target};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn wait_plan(timeout_ms: u64, poll_ms: u64) -> WaitPlan {
    WaitPlan {
        target: WaitTarget::PreviousUpload,
        timeout: Duration::from_millis(timeout_ms),
        poll_interval: Duration::from_millis(poll_ms),
        webhook: None,
        relay: None,
    }
}

fn with_webhook(mut p: WaitPlan) -> WaitPlan {
    p.webhook = Some(WebhookListen {
        listen: "127.0.0.1:0".into(),
        secret: None,
        register: Some(Register::Auto),
    });
    p
}

async fn uploaded(env: &Env, build: &str) -> String {
    let ipa = env.ipa(&format!("W{build}.ipa"), "1.0", build, 50_000);
    flightdeck::upload::run(&env.ctx(), &plan(&ipa))
        .await
        .unwrap()
        .build_upload_id
}

#[tokio::test]
async fn polling_success_reports_build_and_states() {
    let env = start().await;
    let id = uploaded(&env, "1").await;
    let ctx = env.ctx();
    let w = wait::run(
        &ctx,
        &wait_plan(10_000, 50),
        Target::BuildUpload(id.clone()),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        (w.upload_state.as_deref(), w.processing_state.as_deref()),
        (Some("COMPLETE"), Some("VALID"))
    );
    assert_eq!(w.build_id, env.sim().lock().uploads[&id].build_id);
    assert_eq!(w.decided_by, "poll");
    assert!(
        w.timeline.iter().any(|(s, _)| s == "upload PROCESSING"),
        "{:?}",
        w.timeline
    );
    // Waiting on the build itself works too.
    let b = wait::run(
        &ctx,
        &wait_plan(5_000, 50),
        Target::Build(w.build_id.clone().unwrap()),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(b.processing_state.as_deref(), Some("VALID"));
    env.assert_conformant();
}

#[tokio::test]
async fn finds_the_build_when_the_upload_does_not_link_it() {
    let env = start_with(|c| c.omit_build_links = true).await;
    let id = uploaded(&env, "11").await;
    let w = wait::run(
        &env.ctx(),
        &wait_plan(10_000, 50),
        Target::BuildUpload(id.clone()),
        Some(APP_ID),
        None,
    )
    .await
    .unwrap();
    assert_eq!(w.build_id, env.sim().lock().uploads[&id].build_id);
    assert_eq!(w.processing_state.as_deref(), Some("VALID"));
    env.assert_conformant();
}

#[tokio::test]
async fn failed_upload_reports_every_apple_reason() {
    let env = start().await;
    let ctx = env.ctx();
    // Declare a version that the binary does not carry: processing must fail it.
    let ipa = env.ipa("M.ipa", "1.0", "3", 50_000);
    let size = std::fs::metadata(&ipa).unwrap().len();
    let up = r::create_build_upload(&ctx.api, APP_ID, "9.9", "4", &Platform::Ios)
        .await
        .unwrap();
    let file = r::reserve_file(&ctx.api, &up.id, "M.ipa", size, "com.apple.ipa")
        .await
        .unwrap();
    let bytes = std::fs::read(&ipa).unwrap();
    for op in file.attrs().upload_operations.unwrap() {
        let (o, l) = (op.offset.unwrap() as usize, op.length.unwrap() as usize);
        ctx.api
            .transfer()
            .put(op.url.unwrap())
            .body(bytes[o..o + l].to_vec())
            .send()
            .await
            .unwrap();
    }
    r::commit_file(&ctx.api, &file.id, Some((&sha256_file(&ipa), "SHA_256")))
        .await
        .unwrap();
    let e = wait::run(
        &ctx,
        &wait_plan(10_000, 50),
        Target::BuildUpload(up.id.clone()),
        None,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    let codes: Vec<&str> = e.details.iter().map(|d| d.code.as_str()).collect();
    assert_eq!(codes, ["VERSION_MISMATCH", "BUILD_NUMBER_MISMATCH"]);
    let log = env.log.text();
    assert!(
        log.contains(
            "error: App Store Connect: VERSION_MISMATCH: CFBundleShortVersionString '1.0'"
        ),
        "{log}"
    );
    env.assert_conformant();
}

#[tokio::test]
async fn invalid_build_exits_1_and_the_temporary_webhook_is_deleted() {
    let env = start().await;
    env.sim().lock().forced.insert("7".into(), "INVALID".into());
    let id = uploaded(&env, "7").await;
    let e = wait::run(
        &env.ctx(),
        &with_webhook(wait_plan(10_000, 50)),
        Target::BuildUpload(id),
        Some(APP_ID),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(e.message.contains("INVALID"), "{e}");
    assert!(
        env.sim().lock().webhooks.is_empty(),
        "temporary webhook deleted after failure"
    );
    assert_eq!(env.count("POST", "/v1/webhooks"), 1);
    env.assert_conformant();
}

#[tokio::test]
async fn timeout_exits_4_and_names_the_setting() {
    let env = start_with(|c| c.processing_delay = Duration::from_secs(30)).await;
    let id = uploaded(&env, "2").await;
    let e = wait::run(
        &env.ctx(),
        &wait_plan(300, 50),
        Target::BuildUpload(id.clone()),
        None,
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.exit_code(), 4);
    assert!(e.message.contains("still upload PROCESSING"), "{e}");
    let hint = e.hint.unwrap();
    assert!(
        hint.contains("--timeout")
            && hint.contains(&format!("flightdeck wait --build-upload {id}")),
        "{hint}"
    );
}

#[tokio::test]
async fn cancellation_exits_130_and_still_deletes_the_webhook() {
    let env = start_with(|c| c.processing_delay = Duration::from_secs(30)).await;
    let id = uploaded(&env, "8").await;
    let ctx = env.ctx();
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let e = wait::run(
        &ctx,
        &with_webhook(wait_plan(60_000, 50)),
        Target::BuildUpload(id),
        Some(APP_ID),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(e.exit_code(), 130);
    assert!(env.sim().lock().webhooks.is_empty());
}

#[tokio::test]
async fn webhook_ends_the_wait_within_a_second_while_polling_is_set_to_minutes() {
    let env = start_with(|c| c.processing_delay = Duration::from_millis(400)).await;
    let id = uploaded(&env, "3").await;
    let start = Instant::now();
    let w = wait::run(
        &env.ctx(),
        &with_webhook(wait_plan(120_000, 600_000)),
        Target::BuildUpload(id),
        Some(APP_ID),
        None,
    )
    .await
    .unwrap();
    let took = start.elapsed();
    assert_eq!(w.decided_by, "webhook");
    assert!(took < Duration::from_millis(1400), "took {took:?}");
    assert_eq!(w.processing_state.as_deref(), Some("VALID"));
    let st = env.sim().lock();
    assert!(st.webhooks.is_empty(), "temporary webhook deleted");
    assert!(
        st.deliveries.iter().any(|d| d.state == "SUCCEEDED"),
        "delivered and accepted"
    );
    drop(st);
    env.assert_conformant();
}

#[tokio::test]
async fn tokens_are_re_signed_across_hours_of_waiting() {
    let env = start_with(|c| c.processing_delay = Duration::from_millis(1500)).await;
    let id = uploaded(&env, "4").await;
    let clock = Arc::new(flightdeck::auth::ManualClock::starting_now());
    let ctx = env.ctx_with_clock(clock.clone());
    let sim = env.sim().clone();
    let c2 = clock.clone();
    let ticker = tokio::spawn(async move {
        // Five simulated minutes every 25 ms: well over two hours during the wait.
        loop {
            tokio::time::sleep(Duration::from_millis(25)).await;
            c2.advance(300);
            sim.advance_clock(300);
        }
    });
    let w = wait::run(
        &ctx,
        &wait_plan(20_000, 20),
        Target::BuildUpload(id),
        None,
        None,
    )
    .await;
    ticker.abort();
    assert_eq!(w.unwrap().processing_state.as_deref(), Some("VALID"));
    let hours = (clock.0.load(std::sync::atomic::Ordering::SeqCst)
        - jiff::Timestamp::now().as_second())
        / 3600;
    assert!(hours >= 2, "only {hours}h of simulated time passed");
    assert_eq!(
        env.sim()
            .lock()
            .log
            .iter()
            .filter(|l| l.status == 401)
            .count(),
        0,
        "no request was sent with an expired token"
    );
}

#[tokio::test]
async fn a_429_storm_is_ridden_out() {
    let env = start().await;
    let id = uploaded(&env, "5").await;
    env.sim().faults.set(Faults {
        seed: 5,
        api_429: 0.6,
        ..Faults::default()
    });
    let w = wait::run(
        &env.ctx(),
        &wait_plan(20_000, 30),
        Target::BuildUpload(id),
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(w.processing_state.as_deref(), Some("VALID"));
    assert!(
        env.sim()
            .lock()
            .log
            .iter()
            .filter(|l| l.status == 429)
            .count()
            >= 3
    );
}

mod receiver {
    use super::*;
    use flightdeck::webhooks::receiver::{Receiver, serve};

    const SECRET: &str = "whsec-test-secret-123";

    fn sign(secret: &str, body: &str) -> String {
        use hmac::{KeyInit, Mac};
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(body.as_bytes());
        format!("hmacsha256={}", hex::encode(m.finalize().into_bytes()))
    }

    #[tokio::test]
    async fn verifies_dedupes_and_refuses_bad_deliveries() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/any/path/at/all", listener.local_addr().unwrap());
        let (recv, mut rx) = Receiver::new(Secret::new(SECRET));
        let stop = tokio_util::sync::CancellationToken::new();
        serve(listener, recv, stop.clone());
        let http = reqwest::Client::new();
        let sample = include_str!("../fixtures/webhook-build-upload-state-updated.json");
        let post = |body: String, sig: Option<String>| {
            let mut rq = http.post(&url).body(body);
            if let Some(s) = sig {
                rq = rq.header("X-Apple-SIGNATURE", s);
            }
            rq.send()
        };
        let ok = post(sample.into(), Some(sign(SECRET, sample)))
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        let d = rx.recv().await.unwrap();
        assert_eq!(
            d.event.instance_id.as_deref(),
            Some("ad7e6298-2570-4ca6-b3cc-f81788e40bdc")
        );
        assert_eq!(d.event.new_state.as_deref(), Some("COMPLETE"));
        let dup = post(sample.into(), Some(sign(SECRET, sample)))
            .await
            .unwrap();
        assert_eq!(
            (
                dup.status().as_u16(),
                dup.text().await.unwrap().contains("duplicate")
            ),
            (200, true)
        );
        let cases = [
            (sample.to_string(), None, 401, "unsigned"),
            (
                sample.to_string(),
                Some(sign("an-old-secret", sample)),
                401,
                "stale secret",
            ),
            (
                sample.replace("COMPLETE", "FAILED"),
                Some(sign(SECRET, sample)),
                401,
                "forged body",
            ),
            (
                sample.to_string(),
                Some("sha256=00".into()),
                401,
                "wrong scheme",
            ),
            (
                "{not json".to_string(),
                Some(sign(SECRET, "{not json")),
                400,
                "malformed",
            ),
            ("x".repeat(300_000), None, 413, "oversized"),
        ];
        for (body, sig, want, what) in cases {
            let resp = post(body, sig).await.unwrap();
            assert_eq!(resp.status().as_u16(), want, "{what}");
        }
        let get = http.get(&url).send().await.unwrap();
        assert_eq!(get.status(), 405);
        assert!(rx.try_recv().is_err(), "nothing else got through");
        stop.cancel();
    }
}
