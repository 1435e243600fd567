//! `flightdeck demo`: the whole pipeline (upload, wait by webhook, TestFlight,
//! feedback) against the embedded simulator, with the progress, summary and
//! outputs a user sees in CI.

use super::report::Report;
use super::{build_ctx, load_plan};
use crate::auth::{Issuer, key};
use crate::ci::Reporter;
use crate::config::env::Env;
use crate::config::{Credentials, Settings};
use crate::error::Error;
use asc_simulator::{self as simulator, SimConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const DEMO_KEY_ID: &str = "DEMO2X9R4H";
pub const DEMO_ISSUER: &str = "69a6de7f-2f5a-47e3-e053-5b8c7c11a4d1";

/// A fresh key pair: credentials for the client, the public key for the simulator.
pub fn demo_credentials() -> (Credentials, String) {
    let (private, public) = key::generate();
    let key = key::parse(private.expose()).expect("a generated key parses");
    (
        Credentials {
            key_id: DEMO_KEY_ID.into(),
            issuer: Issuer::Team(DEMO_ISSUER.into()),
            key,
        },
        public,
    )
}

fn pipeline_yaml(dir: &Path) -> String {
    format!(
        r#"# The example pipeline `flightdeck demo` runs against the embedded simulator.
version: 1
app: {{ bundle-id: com.example.app }}
steps:
  - upload:
      file: {dir}/Example.ipa
  - wait:
      timeout: 2m
      poll: {{ interval: 1m }}          # the webhook ends the wait long before the next poll
      webhook: {{ listen: "127.0.0.1:0", register: auto }}
  - testflight:
      groups: [QA, Beta]
      whats-new: {{ en-US: "Demo build for ${{USER:-you}}" }}
      submit-for-review: true
  - feedback: {{ since: 1h, out: {dir}/feedback }}
"#,
        dir = dir.display()
    )
}

pub async fn run(
    env: &Env,
    reporter: &Arc<Reporter>,
    cancel: CancellationToken,
    report: &mut Report,
) -> Result<(), Error> {
    let (creds, public) = demo_credentials();
    let mut cfg = SimConfig::new(DEMO_KEY_ID, Some(DEMO_ISSUER), &public);
    cfg.part_size = 512 * 1024;
    cfg.processing_delay = Duration::from_millis(1500);
    cfg.seed_feedback = true;
    let sim = simulator::spawn(cfg, "127.0.0.1:0".parse().expect("an address"))
        .await
        .map_err(|e| Error::io("start", "the simulator", e))?;
    reporter.line(&format!(
        "flightdeck demo: App Store Connect simulator on {}",
        sim.base_url
    ));
    let dir = std::path::absolute("flightdeck-demo")
        .map_err(|e| Error::io("resolve", "flightdeck-demo", e))?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", dir.display(), e))?;
    let mut app =
        asc_simulator::fixture::AppSpec::new(simulator::state::DEMO_BUNDLE_ID, "1.0.0", "1");
    app.payload_bytes = 3 * 1024 * 1024;
    asc_simulator::fixture::write_ipa(&dir.join("Example.ipa"), &app)
        .map_err(|e| Error::io("write", "Example.ipa", e))?;
    let pipeline = dir.join("flightdeck.yml");
    std::fs::write(&pipeline, pipeline_yaml(&dir))
        .map_err(|e| Error::io("write", pipeline.display(), e))?;
    reporter.line(&format!(
        "wrote {} and {}",
        dir.join("Example.ipa").display(),
        pipeline.display()
    ));

    let settings = Settings::with_credentials(&sim.base_url, creds);
    let plan = load_plan(&pipeline, env, &settings)?;
    let ctx = build_ctx(&settings, reporter.clone(), cancel)?;
    let result = super::run::execute(&ctx, &plan, &settings, report).await;
    let violations = sim.sim.violations();
    sim.stop().await;
    result?;
    if !violations.is_empty() {
        return Err(Error::transient(format!(
            "the simulator saw {} schema violation(s): {}",
            violations.len(),
            violations.join("; ")
        )));
    }
    reporter.line(&format!(
        "demo complete: see {} for the artifact, pipeline and pulled feedback",
        dir.display()
    ));
    Ok(())
}

/// Write a file only its owner can read (it holds a private key); it appears
/// complete or not at all.
pub(super) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(&tmp)?.write_all(text.as_bytes())?;
    std::fs::rename(&tmp, path)
}
