//! The command layer: from parsed flags to an outcome. One module per command
//! (or group of subcommands); each turns its flags into the typed inputs of a
//! domain module, calls it, and hands the typed result to `report`, the one
//! place that sets CI outputs, summary rows and the JSON outcome.
//!
//! A new command: a variant in `cli::Command`, a module here with
//! `pub(super) async fn run(args, &Invocation, &mut Report) -> Result<(), Error>`,
//! a line in `name` and one in `dispatch`. Nothing outside `commands/` (and `main.rs`) may import
//! `cli` or `commands`; `tests/all/layout.rs` fails when something does.

mod audience;
mod demo;
mod doctor;
mod feedback;
mod init;
mod next_build_number;
pub mod report;
mod run;
mod simulator;
mod testers;
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
        Command::Audience(_) => "audience",
        Command::Testers(_) => "testers",
        Command::Simulator(_) => "simulator",
        Command::Demo => "demo",
        Command::Doctor(_) => "doctor",
        Command::Init(_) => "init",
        Command::Schema => "schema",
        Command::Completions { .. } => "completions",
        Command::Man => "man",
    }
}

/// The section (GitLab) or group (GitHub) around a command that opens none
/// itself; `run`, `upload`, `wait` and `doctor` open one per phase, and the
/// long-running servers and the printers (schema, completions) get none.
fn phase_title(c: &Command) -> Option<&'static str> {
    match c {
        Command::Run { dry_run: true, .. } => Some("run: plan"),
        Command::Validate { .. }
        | Command::Testflight(_)
        | Command::Feedback(_)
        | Command::NextBuildNumber(_)
        | Command::Init(_)
        | Command::Audience(_)
        | Command::Testers(_) => Some(name(c)),
        Command::Webhooks(w) if !matches!(w, crate::cli::WebhooksCmd::Listen { .. }) => {
            Some("webhooks")
        }
        _ => None,
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
    let settings = Settings::load_with(&env, cli.ci.platform(), cli.api_key_json.as_deref());
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
    if let Ok(s) = &settings
        && !offline(&cli.command)
    {
        for w in &s.credential_warnings {
            reporter.warning(w.clone());
        }
    }
    let mut report = Report::default();
    let result = match &settings {
        Ok(s) => {
            let inv = Invocation {
                settings: s,
                env: &env,
                reporter: reporter.clone(),
                cancel,
            };
            dispatch_in_phase(&cli, &inv, &mut report).await
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

/// Commands that never call the API: the credential warnings are not theirs
/// (doctor reports them as checks).
fn offline(c: &Command) -> bool {
    matches!(
        c,
        Command::Doctor(_)
            | Command::Init(_)
            | Command::Validate { .. }
            | Command::Schema
            | Command::Completions { .. }
            | Command::Man
    )
}

/// Secrets first, before anything else is printed.
fn mask_secrets(reporter: &Reporter, env: &Env, settings: Option<&Settings>) {
    for name in config::PRIVATE_KEY
        .iter()
        .chain(config::credentials::PRIVATE_KEY_B64)
        .chain(config::WEBHOOK_SECRET)
        .chain(config::ISSUE_TOKENS)
    {
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

/// `dispatch`, inside the command's CI section when it opens none itself.
async fn dispatch_in_phase(
    cli: &Cli,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let phase = phase_title(&cli.command);
    if let Some(t) = phase {
        inv.reporter.group_start(t);
    }
    let r = dispatch(cli, inv, report).await;
    if phase.is_some() {
        inv.reporter.group_end();
    }
    r
}

async fn dispatch(cli: &Cli, inv: &Invocation<'_>, report: &mut Report) -> Result<(), Error> {
    match &cli.command {
        Command::Validate { pipeline } => run::validate(pipeline, inv, report),
        Command::Run {
            pipeline,
            dry_run,
            yes,
        } => run::run(pipeline, *dry_run, *yes, inv, report).await,
        Command::Upload(a) => upload::run(a, inv, report).await,
        Command::Wait(a) => wait::run(a, inv, report).await,
        Command::Testflight(a) => testflight::run(a, inv, report).await,
        Command::Feedback(a) => feedback::run(a, inv, report).await,
        Command::NextBuildNumber(a) => next_build_number::run(a, inv, report).await,
        Command::Webhooks(w) => webhooks::run(w, inv, report).await,
        Command::Audience(a) => audience::run(a, inv, report).await,
        Command::Testers(t) => testers::run(t, inv, report).await,
        Command::Simulator(a) => simulator::run(a, &inv.reporter, inv.cancel.clone()).await,
        Command::Demo => demo::run(inv.env, &inv.reporter, inv.cancel.clone(), report).await,
        Command::Doctor(a) => doctor::run(a, cli.api_key_json.as_deref(), inv, report).await,
        Command::Init(a) => init::run(a, cli.ci.platform(), inv, report),
        Command::Schema => {
            report.text = Some(crate::spec::schema::generate());
            Ok(())
        }
        Command::Completions { shell } => {
            report.text = Some(crate::cli::completions(*shell));
            Ok(())
        }
        Command::Man => {
            report.text = Some(crate::cli::man_page());
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
