//! Wait latency: from the simulator's upload state change (COMPLETE) to the
//! waiter's decision, by webhook (polling set to 10 minutes) and by polling.
//!
//! Run: `cargo bench --bench wait_latency`. Target: webhook under 250 ms.

use asc_simulator::fixture::{AppSpec, write_ipa};
use asc_simulator::{self as simulator, SimConfig, state::DEMO_BUNDLE_ID};
use flightdeck::api::Client;
use flightdeck::api::retry::RetryPolicy;
use flightdeck::auth::{Issuer, SystemClock, TokenSource, key};
use flightdeck::ci::{Paths, Platform, Reporter};
use flightdeck::context::Ctx;
use flightdeck::plan::{Register, UploadPlan, WaitPlan, WaitTarget, WebhookListen};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 8;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    flightdeck::auth::install_crypto_provider();
    let (private, public) = key::generate();
    let mut cfg = SimConfig::new("LAT1234567", Some("lat"), &public);
    cfg.processing_delay = Duration::from_millis(700);
    let sim = simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let k = key::parse(private.expose()).unwrap();
    let tokens = TokenSource::new(
        "LAT1234567",
        Issuer::Team("lat".into()),
        &k,
        Arc::new(SystemClock),
    );
    let api =
        Arc::new(Client::new(&sim.base_url, Arc::new(tokens), RetryPolicy::default()).unwrap());
    let reporter = Arc::new(Reporter::new(
        Platform::Local,
        Paths::default(),
        Box::new(std::io::sink()),
    ));
    let ctx = Ctx::new(api, reporter, tokio_util::sync::CancellationToken::new());
    let dir = tempfile::tempdir().unwrap();
    let mut build = 0;
    let mut results = Vec::new();
    for (label, webhook, poll) in [
        ("webhook (poll 10m)", true, Duration::from_secs(600)),
        ("polling (interval 5s)", false, Duration::from_secs(5)),
    ] {
        let mut lat = Vec::new();
        for _ in 0..ROUNDS {
            build += 1;
            let ipa = dir.path().join(format!("L{build}.ipa"));
            write_ipa(
                &ipa,
                &AppSpec::new(DEMO_BUNDLE_ID, "1.0", &build.to_string()),
            )
            .unwrap();
            let up = UploadPlan::for_file(ipa);
            let done = flightdeck::upload::run(&ctx, &up).await.unwrap();
            let plan = WaitPlan {
                target: WaitTarget::PreviousUpload,
                timeout: Duration::from_secs(60),
                poll_interval: poll,
                webhook: webhook.then(|| WebhookListen {
                    listen: "127.0.0.1:0".into(),
                    secret: None,
                    register: Some(Register::Auto),
                }),
                relay: None,
            };
            let w = flightdeck::wait::run(
                &ctx,
                &plan,
                flightdeck::wait::Target::BuildUpload(done.build_upload_id.clone()),
                Some(simulator::state::DEMO_APP_ID),
                None,
            )
            .await
            .unwrap();
            let decided = Instant::now();
            let changed = sim
                .sim
                .lock()
                .transitions
                .iter()
                .find(|(id, s, _)| *id == done.build_upload_id && s == "COMPLETE")
                .map(|t| t.2)
                .unwrap();
            lat.push(decided.duration_since(changed));
            assert_eq!(w.decided_by, if webhook { "webhook" } else { "poll" });
        }
        lat.sort();
        results.push((label, lat));
    }
    println!(
        "wait latency: state change (upload COMPLETE) -> waiter decision, {ROUNDS} rounds each"
    );
    for (label, lat) in &results {
        let mean = lat.iter().sum::<Duration>() / lat.len() as u32;
        println!(
            "  {label:<22} median {:>7.1} ms  mean {:>7.1} ms  max {:>7.1} ms",
            lat[lat.len() / 2].as_secs_f64() * 1000.0,
            mean.as_secs_f64() * 1000.0,
            lat[lat.len() - 1].as_secs_f64() * 1000.0
        );
    }
    println!("  target: webhook under 250 ms");
    sim.stop().await;
}
