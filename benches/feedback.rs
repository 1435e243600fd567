//! Feedback pull: a first pull of a seeded catalogue (crash logs and
//! screenshots over several pages) into an empty directory, then a re-run of
//! the same directory, which should fetch only the listing.
//!
//! Run: `cargo bench --bench feedback`. Prints wall time, requests and bytes
//! for each, over the embedded simulator on loopback.

use asc_simulator::{self as simulator, SimConfig, state::DEMO_APP_ID};
use flightdeck::api::Client;
use flightdeck::api::retry::RetryPolicy;
use flightdeck::auth::{Issuer, SystemClock, TokenSource, key};
use flightdeck::feedback::{self, Request};
use std::sync::Arc;
use std::time::Instant;

const CRASHES: usize = 400;
const SCREENSHOTS: usize = 200;

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
    let cfg = SimConfig::new("FB12345678", Some("fb"), &public);
    let sim = simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let now = sim.sim.now();
    simulator::feedback_seed::catalogue(
        &mut sim.sim.lock(),
        DEMO_APP_ID,
        now,
        CRASHES,
        SCREENSHOTS,
    );
    let k = key::parse(private.expose()).unwrap();
    let tokens = TokenSource::new(
        "FB12345678",
        Issuer::Team("fb".into()),
        &k,
        Arc::new(SystemClock),
    );
    let api = Client::new(&sim.base_url, Arc::new(tokens), RetryPolicy::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let req = Request {
        app_id: DEMO_APP_ID.into(),
        filter: Default::default(),
        since: None,
        out: dir.path().join("fb"),
    };
    println!("feedback pull of {CRASHES} crashes + {SCREENSHOTS} screenshot submissions");
    for label in ["first pull", "re-run"] {
        let requests = sim.sim.lock().log.len();
        let t = Instant::now();
        let p = feedback::run(&api, &req).await.unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "  {label:<10} {secs:>7.3}s  {:>5} API requests  {:>4} new  {:>5} files written  {:>9} bytes downloaded",
            sim.sim.lock().log.len() - requests,
            p.new_ids.len(),
            p.files_written,
            p.bytes_downloaded
        );
    }
}
