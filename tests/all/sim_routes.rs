//! Every simulator route, driven through flightdeck's own client, with every
//! request and response checked against Apple's schemas by the simulator.

use crate::support::*;
use asc_simulator::openapi::Spec;
use flightdeck::api::models::*;
use flightdeck::api::resources as r;
use flightdeck::api::{ApiErrorKind, Idempotency};
use serde_json::json;

#[tokio::test]
async fn every_route_answers_per_the_spec() {
    let env = start_with(|c| c.seed_feedback = true).await;
    let ctx = env.ctx();
    let api = &ctx.api;

    let app = r::find_app_by_bundle_id(api, BUNDLE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.id, APP_ID);
    assert_eq!(
        r::get_app(api, APP_ID)
            .await
            .unwrap()
            .attrs()
            .bundle_id
            .as_deref(),
        Some(BUNDLE)
    );
    assert!(
        r::find_app_by_bundle_id(api, "com.nope")
            .await
            .unwrap()
            .is_none()
    );

    // Upload lifecycle.
    let ipa = env.ipa("A.ipa", "2.0", "7", 200_000);
    let size = std::fs::metadata(&ipa).unwrap().len();
    let up = r::create_build_upload(api, APP_ID, "2.0", "7", &Platform::Ios)
        .await
        .unwrap();
    assert_eq!(up.state(), Some(BuildUploadState::AwaitingUpload));
    let file = r::reserve_file(api, &up.id, "A.ipa", size, "com.apple.ipa")
        .await
        .unwrap();
    let ops = file.attrs().upload_operations.unwrap();
    assert_eq!(ops.len() as u64, size.div_ceil(64 * 1024));
    assert_eq!(
        ops[0].request_headers.as_ref().unwrap()[0].name.as_deref(),
        Some("Content-Type")
    );
    let bytes = std::fs::read(&ipa).unwrap();
    let http = ctx.api.transfer();
    for op in &ops {
        let (o, l) = (op.offset.unwrap() as usize, op.length.unwrap() as usize);
        let resp = http
            .put(op.url.as_ref().unwrap())
            .body(bytes[o..o + l].to_vec())
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        assert!(resp.headers().contains_key("etag"));
    }
    assert_eq!(
        r::list_build_upload_files(api, &up.id).await.unwrap().len(),
        1
    );
    let again = r::get_file(api, &file.id).await.unwrap();
    assert!(
        again
            .attrs()
            .upload_operations
            .unwrap()
            .iter()
            .all(|o| o.entity_tag.is_some()),
        "etags recorded"
    );
    let committed = r::commit_file(api, &file.id, Some((&sha256_file(&ipa), "SHA_256")))
        .await
        .unwrap();
    assert_eq!(
        committed.attrs().asset_delivery_state.unwrap().state,
        Some(AssetDeliveryState::UploadComplete)
    );
    eventually("processing", || {
        env.sim().lock().uploads[&up.id].state == "COMPLETE"
    })
    .await;
    let (u, build) = r::get_build_upload(api, &up.id).await.unwrap();
    assert_eq!(u.state(), Some(BuildUploadState::Complete));
    let build = build.expect("include=build");
    assert_eq!(build.attrs().processing_state, Some(ProcessingState::Valid));
    assert_eq!(
        r::list_build_uploads(api, APP_ID, "2.0", Some("7"), &Platform::Ios)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        r::list_builds(api, APP_ID, Some("2.0"), &Platform::Ios)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        r::get_build_app_id(api, &build.id)
            .await
            .unwrap()
            .as_deref(),
        Some(APP_ID)
    );

    // TestFlight.
    let groups = r::list_beta_groups(api, APP_ID).await.unwrap();
    assert_eq!(groups.len(), 3);
    let qa = groups
        .iter()
        .find(|g| g.attrs().name.as_deref() == Some("QA"))
        .unwrap();
    r::add_build_to_groups(api, &build.id, std::slice::from_ref(&qa.id))
        .await
        .unwrap();
    let loc = r::create_localization(api, &build.id, "en-US", "first")
        .await
        .unwrap();
    r::update_localization(api, &loc.id, "second")
        .await
        .unwrap();
    let locs = r::list_localizations(api, &build.id).await.unwrap();
    assert_eq!(locs[0].attrs().whats_new.as_deref(), Some("second"));
    let sub = r::submit_for_beta_review(api, &build.id).await.unwrap();
    assert_eq!(
        sub.attrs().beta_review_state,
        Some(BetaReviewState::WaitingForReview)
    );
    let dup = r::submit_for_beta_review(api, &build.id).await.unwrap_err();
    assert_eq!(dup.kind, ApiErrorKind::Conflict);
    r::notify_testers(api, &build.id).await.unwrap();
    let detail: serde_json::Value = api
        .get(&format!("/v1/builds/{}/buildBetaDetail", build.id))
        .await
        .unwrap();
    assert_eq!(
        detail["data"]["attributes"]["externalBuildState"],
        "WAITING_FOR_BETA_REVIEW"
    );
    let patched: serde_json::Value = api
        .patch(&format!("/v1/buildBetaDetails/{}", build.id), &json!({"data": {"type": "buildBetaDetails", "id": build.id, "attributes": {"autoNotifyEnabled": false}}}))
        .await
        .unwrap();
    assert_eq!(patched["data"]["attributes"]["autoNotifyEnabled"], false);
    r::set_export_compliance(api, &build.id, false)
        .await
        .unwrap();

    // Webhooks.
    let hook = r::create_webhook(
        api,
        APP_ID,
        "ci",
        "https://example.com/hook",
        "s3cret-s3cret",
        &["BUILD_UPLOAD_STATE_UPDATED".into()],
        true,
    )
    .await
    .unwrap();
    let changes = r::WebhookChanges {
        enabled: Some(false),
        ..Default::default()
    };
    assert_eq!(
        r::update_webhook(api, &hook.id, &changes)
            .await
            .unwrap()
            .attrs()
            .enabled,
        Some(false)
    );
    assert_eq!(r::list_webhooks(api, APP_ID).await.unwrap().len(), 1);
    let _: serde_json::Value = api.get(&format!("/v1/webhooks/{}", hook.id)).await.unwrap();
    r::ping_webhook(api, &hook.id).await.unwrap();
    eventually("ping delivery", || {
        env.sim()
            .lock()
            .deliveries
            .iter()
            .any(|d| d.state != "PENDING")
    })
    .await;
    let deliveries = r::list_deliveries(api, &hook.id, None).await.unwrap();
    assert_eq!(deliveries.data.len(), 1);
    assert_eq!(deliveries.included.len(), 1, "include=event");
    assert_eq!(
        deliveries.data[0].attrs().delivery_state.as_deref(),
        Some("FAILED"),
        "example.com is unreachable here"
    );
    r::redeliver(api, &deliveries.data[0].id).await.unwrap();
    r::delete_webhook(api, &hook.id).await.unwrap();
    assert_eq!(
        r::delete_webhook(api, &hook.id).await.unwrap_err().kind,
        ApiErrorKind::NotFound
    );

    // Feedback (seeded when the build became VALID).
    let crashes = r::list_feedback(api, APP_ID, "betaFeedbackCrashSubmissions", Some(&build.id))
        .await
        .unwrap();
    let shots = r::list_feedback(api, APP_ID, "betaFeedbackScreenshotSubmissions", None)
        .await
        .unwrap();
    assert_eq!((crashes.len(), shots.len()), (1, 1));
    assert!(
        r::crash_log(api, &crashes[0].id)
            .await
            .unwrap()
            .unwrap()
            .contains("EXC_CRASH")
    );
    let _: serde_json::Value = api
        .get(&format!(
            "/v1/betaFeedbackCrashSubmissions/{}",
            crashes[0].id
        ))
        .await
        .unwrap();
    let one: serde_json::Value = api
        .get(&format!(
            "/v1/betaFeedbackScreenshotSubmissions/{}",
            shots[0].id
        ))
        .await
        .unwrap();
    let url = one["data"]["attributes"]["screenshots"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let img = http.get(&url).send().await.unwrap();
    assert_eq!(img.headers()["content-type"], "image/png");

    // The TestFlight audience: groups, public links, testers, invitations, review listing.
    {
        use flightdeck::api::beta;
        let link = beta::LinkChange {
            enabled: Some(true),
            limit_enabled: Some(true),
            limit: Some(100),
        };
        let g = beta::create_group(api, APP_ID, "Route Group", false, &link)
            .await
            .unwrap();
        assert!(g.attrs().public_link.unwrap().starts_with("https://"));
        let wider = beta::LinkChange {
            limit: Some(500),
            ..Default::default()
        };
        let g2 = beta::update_group_link(api, &g.id, &wider).await.unwrap();
        assert_eq!(g2.attrs().public_link_limit, Some(500));
        let _: serde_json::Value = api.get(&format!("/v1/betaGroups/{}", g.id)).await.unwrap();
        let t = beta::create_tester(api, "route@example.com", Some("R"), None, &g.id)
            .await
            .unwrap();
        let dup = beta::create_tester(api, "route@example.com", None, None, &g.id)
            .await
            .unwrap_err();
        assert_eq!(dup.kind, ApiErrorKind::Conflict);
        let ids = vec![t.id.clone()];
        beta::remove_testers_from_group(api, &g.id, &ids)
            .await
            .unwrap();
        assert!(beta::group_testers(api, &g.id).await.unwrap().is_empty());
        beta::add_testers_to_group(api, &g.id, &ids).await.unwrap();
        assert_eq!(beta::group_testers(api, &g.id).await.unwrap().len(), 1);
        let found = beta::find_testers_by_email(api, &["ROUTE@example.com".into()])
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        beta::invite(api, APP_ID, &t.id).await.unwrap();
        assert!(
            beta::pending_reviews(api, std::slice::from_ref(&build.id))
                .await
                .is_ok()
        );
        beta::remove_testers_from_app(api, APP_ID, &ids)
            .await
            .unwrap();
        assert!(beta::app_testers(api, APP_ID).await.unwrap().is_empty());
        api.delete(&format!("/v1/betaTesters/{}", t.id))
            .await
            .unwrap();
    }

    // Deleting an upload.
    let other = r::create_build_upload(api, APP_ID, "2.0", "8", &Platform::Ios)
        .await
        .unwrap();
    r::delete_build_upload(api, &other.id).await.unwrap();

    // Every operation of the vendored spec slice was exercised.
    let log = env.sim().lock().log.clone();
    let templ = |p: &str| {
        p.split('/')
            .map(|s| {
                if s != "v1" && s.chars().any(|c| c.is_ascii_digit()) {
                    "{id}"
                } else {
                    s
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    };
    let seen: std::collections::BTreeSet<(String, String)> = log
        .iter()
        .map(|l| (l.method.clone(), templ(&l.path)))
        .collect();
    for (m, p) in Spec::embedded().operations() {
        assert!(
            seen.contains(&(m.clone(), p.clone())),
            "{m} {p} was never called"
        );
    }
    env.assert_conformant();
}

#[tokio::test]
async fn bad_tokens_get_apples_401() {
    let env = start().await;
    let (other_private, _) = flightdeck::auth::key::generate();
    let k = flightdeck::auth::key::parse(other_private.expose()).unwrap();
    let tokens = flightdeck::auth::TokenSource::new(
        KEY_ID,
        flightdeck::auth::Issuer::Team(ISSUER.into()),
        &k,
        std::sync::Arc::new(flightdeck::auth::SystemClock),
    );
    let api =
        flightdeck::api::Client::new(&env.sim.base_url, std::sync::Arc::new(tokens), fast_retry())
            .unwrap();
    let e = r::get_app(&api, APP_ID).await.unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::Unauthorized);
    assert_eq!(e.errors[0].code, "NOT_AUTHORIZED");
    assert_eq!(flightdeck::error::Error::from(e).exit_code(), 3);
    // An individual-key token (sub: user) is refused by a team key's simulator.
    let k = flightdeck::auth::key::parse(&env.private_pem).unwrap();
    let tokens = flightdeck::auth::TokenSource::new(
        KEY_ID,
        flightdeck::auth::Issuer::Individual,
        &k,
        std::sync::Arc::new(flightdeck::auth::SystemClock),
    );
    let api =
        flightdeck::api::Client::new(&env.sim.base_url, std::sync::Arc::new(tokens), fast_retry())
            .unwrap();
    let e = r::get_app(&api, APP_ID).await.unwrap_err();
    assert!(
        e.errors[0].detail.contains("iss does not match"),
        "{}",
        e.errors[0].detail
    );
    env.assert_conformant();
}

#[tokio::test]
async fn strict_request_validation_like_apple() {
    let env = start().await;
    let ctx = env.ctx();
    // A misspelt attribute and a wrong enum are refused with a pointer.
    let body = json!({"data": {"type": "buildUploads", "attributes": {"cfBundleShortVersionString": "1", "cfBundleVersion": "1", "platform": "IPHONE"},
        "relationships": {"app": {"data": {"type": "apps", "id": APP_ID}}}}});
    let e = ctx
        .api
        .post::<serde_json::Value>("/v1/buildUploads", &body, Idempotency::Unsafe)
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.errors[0].code.as_str()),
        (Some(409), "ENTITY_ERROR.ATTRIBUTE.INVALID")
    );
    assert_eq!(
        e.errors[0].source_text().as_deref(),
        Some("/data/attributes/platform")
    );
    let body = json!({"data": {"type": "buildUploadFiles", "id": "x", "attributes": {"uploaded": true, "sourceFileChecksum": "abc"}}});
    let e = ctx
        .api
        .patch::<serde_json::Value>("/v1/buildUploadFiles/x", &body)
        .await
        .unwrap_err();
    assert_eq!(e.errors[0].code, "ENTITY_ERROR.ATTRIBUTE.UNKNOWN");
    // An undeclared query parameter.
    let e = ctx
        .api
        .get::<serde_json::Value>("/v1/apps?filter[bundleID]=x")
        .await
        .unwrap_err();
    assert_eq!(
        (e.status, e.errors[0].code.as_str()),
        (Some(400), "PARAMETER_ERROR.ILLEGAL")
    );
    // Unknown paths.
    let e = ctx
        .api
        .get::<serde_json::Value>("/v1/nothing")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ApiErrorKind::NotFound);
    env.assert_conformant();
}

#[tokio::test]
async fn paging_follows_links_next() {
    let env = start().await;
    let ctx = env.ctx();
    for n in 1..=5 {
        r::create_build_upload(&ctx.api, APP_ID, "3.0", &n.to_string(), &Platform::Ios)
            .await
            .unwrap();
    }
    let path = "/v1/apps/1234567890/buildUploads?filter[cfBundleShortVersionString]=3.0&limit=2";
    let all = ctx.api.get_all::<BuildUpload>(path).await.unwrap();
    assert_eq!(all.data.len(), 5);
    assert_eq!(
        env.count("GET", "/v1/apps/1234567890/buildUploads"),
        3,
        "three pages of two"
    );
    env.assert_conformant();
}

#[tokio::test]
async fn rate_limit_header_and_budget() {
    let env = start_with(|c| c.rate_limit_per_hour = 5).await;
    let clock = std::sync::Arc::new(flightdeck::auth::ManualClock::starting_now());
    let ctx = env.ctx_with_clock(clock.clone());
    for _ in 0..5 {
        r::get_app(&ctx.api, APP_ID).await.unwrap();
    }
    let rl = ctx.api.rate_limit().unwrap();
    assert_eq!((rl.limit, rl.remaining), (5, 0));
    let no_retry = flightdeck::api::Client::new(
        &env.sim.base_url,
        std::sync::Arc::new(flightdeck::auth::TokenSource::new(
            KEY_ID,
            flightdeck::auth::Issuer::Team(ISSUER.into()),
            &flightdeck::auth::key::parse(&env.private_pem).unwrap(),
            std::sync::Arc::new(flightdeck::auth::SystemClock),
        )),
        flightdeck::api::retry::RetryPolicy::none(),
    )
    .unwrap();
    let e = r::get_app(&no_retry, APP_ID).await.unwrap_err();
    assert_eq!(
        (e.kind, e.errors[0].code.as_str()),
        (ApiErrorKind::RateLimited, "RATE_LIMIT_EXCEEDED")
    );
    // An hour later the budget is back (the client's clock moves too, so its token is fresh).
    env.sim().advance_clock(3601);
    clock.advance(3601);
    r::get_app(&ctx.api, APP_ID).await.unwrap();
    env.assert_conformant();
}
