//! `flightdeck simulator`: the embedded App Store Connect simulator as a
//! standalone server, with a generated key written to an env file, for
//! rehearsing pipelines locally.

use super::demo::{DEMO_ISSUER, DEMO_KEY_ID, write_private};
use crate::auth::key;
use crate::ci::Reporter;
use crate::cli::SimulatorArgs;
use crate::error::Error;
use asc_simulator::{self as simulator, SimConfig, faults::Faults};
use base64::Engine;
use tokio_util::sync::CancellationToken;

/// `flightdeck simulator`: serve until cancelled, with a generated key written to an env file.
pub(super) async fn run(
    a: &SimulatorArgs,
    reporter: &Reporter,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let (private, public) = key::generate();
    let mut cfg = SimConfig::new(DEMO_KEY_ID, Some(DEMO_ISSUER), &public);
    cfg.part_size = a.part_size.max(1024);
    cfg.processing_delay = crate::config::duration::parse(&a.processing_delay)
        .map_err(|e| Error::flag("--processing-delay", e))?;
    cfg.seed_feedback = a.seed_feedback;
    cfg.link_bytes_per_sec = a
        .bandwidth
        .as_deref()
        .map(simulator::link::parse_rate)
        .transpose()
        .map_err(|e| Error::flag("--bandwidth", e))?;
    if let Some(f) = &a.faults {
        cfg.faults = serde_json::from_str::<Faults>(f).map_err(|e| Error::flag("--faults", e))?;
    }
    let addr = a.listen.parse().map_err(|_| {
        Error::flag(
            "--listen",
            format_args!("{:?} is not an address like 127.0.0.1:4010", a.listen),
        )
    })?;
    let sim = simulator::spawn(cfg, addr)
        .await
        .map_err(|e| Error::bind("listen on", &a.listen, &e))?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(private.expose());
    let env = format!(
        "ASC_API_BASE_URL={}\nASC_KEY_ID={DEMO_KEY_ID}\nASC_ISSUER_ID={DEMO_ISSUER}\nASC_PRIVATE_KEY={b64}\n",
        sim.base_url
    );
    write_private(&a.write_env, &env).map_err(|e| Error::io("write", a.write_env.display(), e))?;
    reporter.line(&format!(
        "App Store Connect simulator on {} (app {} = {}); credentials in {}: `set -a; . {}; set +a`",
        sim.base_url,
        simulator::state::DEMO_APP_ID,
        simulator::state::DEMO_BUNDLE_ID,
        a.write_env.display(),
        a.write_env.display()
    ));
    cancel.cancelled().await;
    sim.stop().await;
    Ok(())
}
