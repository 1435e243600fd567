//! The command layer: from parsed flags to an outcome. One module per command
//! (or group of subcommands); each turns its flags into the typed inputs of a
//! domain module, calls it, and hands the typed result to `report`, the one
//! place that sets CI outputs, summary rows and the JSON outcome.
//!
//! A new command: a variant in `cli::Command`, a module here with
//! `pub(super) async fn run(args, &Invocation, &mut Report) -> Result<(), Error>`,
//! a line in `name` and one in `dispatch`. Nothing outside `commands/` (and `main.rs`) may import
//! `cli` or `commands`; `tests/all/layout.rs` fails when something does.

mod demo;
mod feedback;
mod next_build_number;
pub mod report;
mod run;
mod simulator;
mod testflight;
mod upload;
mod wait;
mod webhooks;

pub use report::Report;
pub use run::load_plan;

use crate::api::Client;
use crate::api::retry::RetryPolicy;
use crate::app::AppRef;
use crate::auth::{SystemClock, TokenSource};
use crate::ci::Reporter;
use crate::cli::{AppArgs, Cli, Command};
use crate::config::env::Env;
use crate::config::{self, Settings};
use crate::context::Ctx;
use crate::error::Error;
use crate::secret::Secret;
use std::io::Write;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub fn name(c: &Command) -> &'static str {
    match c {
        Command::Run { .. } => "run",
        Command::Validate { .. } => "validate",
        Command::Upload(_) => "upload",
        Command::Wait(_) => "wait",
        Command::Testflight(_) => "testflight",
        Command::Feedback(_) => "feedback",
        Command::Webhooks(_) => "webhooks",
        Command::NextBuildNumber(_) => "next-build-number",
        Command::Simulator(_) => "simulator",
        Command::Demo => "demo",
        Command::Schema => "schema",
    }
}

/// Run the command; returns the exit code. Everything for humans goes to `err`.
pub async fn main(
    cli: Cli,
    env: Env,
    out: &mut (dyn Write + Send),
    err: Box<dyn Write + Send>,
    cancel: CancellationToken,
) -> u8 {
    let settings = Settings::load(&env, cli.ci.platform());
    let platform = settings
        .as_ref()
        .map(|s| s.platform)
        .unwrap_or_else(|_| config::detect_platform(cli.ci.platform(), &env));
    let paths = settings
        .as_ref()
        .map(|s| s.ci_paths.clone())
        .unwrap_or_else(|_| config::ci_paths(&env));
    let reporter = Arc::new(Reporter::new(platform, paths, err).on_mask(crate::secret::register));
    mask_secrets(&reporter, &env, settings.as_ref().ok());
    let mut report = Report::default();
    let result = match &settings {
        Ok(s) => {
            let inv = Invocation {
                settings: s,
                env: &env,
                reporter: reporter.clone(),
                cancel,
            };
            dispatch(&cli, &inv, &mut report).await
        }
        Err(e) => Err(e.clone()),
    };
    report::finish(
        name(&cli.command),
        result,
        report,
        &reporter,
        cli.output,
        out,
    )
}

/// Secrets first, before anything else is printed.
fn mask_secrets(reporter: &Reporter, env: &Env, settings: Option<&Settings>) {
    for name in config::PRIVATE_KEY.iter().chain(config::WEBHOOK_SECRET) {
        if let Some(v) = env.get(name) {
            reporter.mask(v);
        }
    }
    if let Some(s) = settings {
        if let Ok(c) = s.credentials() {
            reporter.mask(c.key.pem().expose());
        }
        if let Some(w) = &s.webhook_secret {
            reporter.mask(w.expose());
        }
    }
}

/// What every command gets: the validated settings, the environment, the CI
/// reporter and cancellation.
struct Invocation<'a> {
    settings: &'a Settings,
    env: &'a Env,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
}

impl Invocation<'_> {
    /// The API client and the rest of a command's context.
    fn ctx(&self) -> Result<Ctx, Error> {
        build_ctx(self.settings, self.reporter.clone(), self.cancel.clone())
    }
    /// The app the flags name, else the settings' (ASC_APP_ID / ASC_BUNDLE_ID).
    fn app(&self, a: &AppArgs) -> Option<AppRef> {
        app_ref(a, self.settings)
    }
    async fn app_id(&self, ctx: &Ctx, a: &AppArgs) -> Result<String, Error> {
        AppRef::resolve(self.app(a).as_ref(), &ctx.api).await
    }
}

async fn dispatch(cli: &Cli, inv: &Invocation<'_>, report: &mut Report) -> Result<(), Error> {
    match &cli.command {
        Command::Validate { pipeline } => run::validate(pipeline, inv, report),
        Command::Run { pipeline, dry_run } => run::run(pipeline, *dry_run, inv, report).await,
        Command::Upload(a) => upload::run(a, inv, report).await,
        Command::Wait(a) => wait::run(a, inv, report).await,
        Command::Testflight(a) => testflight::run(a, inv, report).await,
        Command::Feedback(a) => feedback::run(a, inv, report).await,
        Command::NextBuildNumber(a) => next_build_number::run(a, inv, report).await,
        Command::Webhooks(w) => webhooks::run(w, inv, report).await,
        Command::Simulator(a) => simulator::run(a, &inv.reporter, inv.cancel.clone()).await,
        Command::Demo => demo::run(inv.env, &inv.reporter, inv.cancel.clone(), report).await,
        Command::Schema => {
            report.text = Some(crate::spec::schema::generate());
            Ok(())
        }
    }
}

/// The API client and what every capability gets with it.
pub fn build_ctx(
    settings: &Settings,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
) -> Result<Ctx, Error> {
    let creds = settings.credentials()?;
    let masker = reporter.clone();
    let tokens = TokenSource::new(
        &creds.key_id,
        creds.issuer.clone(),
        &creds.key,
        Arc::new(SystemClock),
    )
    .on_new_token(Arc::new(move |t: &Secret| masker.mask(t.expose())));
    let mut retry = RetryPolicy::default();
    if let Some(d) = settings.net.retry_delay {
        retry.min_delay = d;
        retry.max_delay = retry.max_delay.min(d * 20);
        retry.retry_after_cap = retry.retry_after_cap.min(d * 20);
    }
    let mut api = Client::new(&settings.api_base, Arc::new(tokens), retry)?;
    if let Some(t) = settings.net.http_timeout {
        api = api.with_timeout(t)?;
    }
    Ok(Ctx::new(Arc::new(api), reporter, cancel))
}

/// The app the flags name, else the environment's (ASC_APP_ID / ASC_BUNDLE_ID).
fn app_ref(a: &AppArgs, s: &Settings) -> Option<AppRef> {
    a.app_id
        .clone()
        .map(AppRef::Id)
        .or_else(|| a.bundle_id.clone().map(AppRef::BundleId))
        .or_else(|| s.app_id.clone().map(AppRef::Id))
        .or_else(|| s.bundle_id.clone().map(AppRef::BundleId))
}
