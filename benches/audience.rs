//! Audience apply at scale: a 2,000-tester list applied to a fresh group
//! (every tester created), the same list to a second group (existing testers,
//! batched through the relationship endpoint), and the no-op re-run. Prints
//! wall time and requests per phase against the simulator on loopback.
//!
//! Run: `cargo bench --bench audience`.

use asc_simulator::{self as simulator, SimConfig, state::DEMO_APP_ID};
use flightdeck::api::Client;
use flightdeck::api::retry::RetryPolicy;
use flightdeck::audience::{self, Desired, DesiredGroup, Mode, Person};
use flightdeck::auth::{Issuer, SystemClock, TokenSource, key};
use std::sync::Arc;
use std::time::Instant;

const TESTERS: usize = 2000;

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

fn group(name: &str, people: &[Person]) -> Desired {
    Desired {
        prune: true,
        groups: vec![DesiredGroup {
            name: name.into(),
            external: Some(true),
            public_link: None,
            testers: Some(people.to_vec()),
        }],
    }
}

async fn run() {
    flightdeck::auth::install_crypto_provider();
    let (private, public) = key::generate();
    let mut cfg = SimConfig::new("AUD1234567", Some("aud"), &public);
    cfg.rate_limit_per_hour = 100_000;
    let sim = simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let k = key::parse(private.expose()).unwrap();
    let tokens = TokenSource::new(
        "AUD1234567",
        Issuer::Team("aud".into()),
        &k,
        Arc::new(SystemClock),
    );
    let api = Client::new(&sim.base_url, Arc::new(tokens), RetryPolicy::default()).unwrap();
    let people: Vec<Person> = (0..TESTERS)
        .map(|i| Person {
            email: format!("t{i}@example.com"),
            first_name: Some("Tester".into()),
            last_name: Some(i.to_string()),
        })
        .collect();
    let mode = Mode {
        apply: true,
        interactive: false,
        confirmed: false,
    };
    println!("audience apply, {TESTERS} testers, simulator on loopback");
    for (label, name) in [
        ("new testers (one create each)", "Bench A"),
        ("existing testers (batched links)", "Bench B"),
        ("re-run (no change)", "Bench B"),
    ] {
        let before = sim.sim.lock().log.len();
        let t = Instant::now();
        let rec = audience::reconcile(&api, DEMO_APP_ID, &group(name, &people), mode)
            .await
            .unwrap();
        let secs = t.elapsed().as_secs_f64();
        let log = sim.sim.lock().log.clone();
        let new = &log[before..];
        let writes = new.iter().filter(|l| l.method != "GET").count();
        println!(
            "  {label:34} {secs:6.2}s  {:5} requests ({writes} writes), {} added",
            new.len(),
            rec.applied.map(|a| a.added.len()).unwrap_or(0)
        );
    }
}
