//! From parsed flags to an outcome: settings, masking, the client, the
//! command itself, then annotations, summary, outputs and the exit code.

use crate::api::retry::RetryPolicy;
use crate::api::{Client, resources as r};
use crate::auth::{SystemClock, TokenSource};
use crate::ci::{Annotation, Level, Reporter};
use crate::cli::{AppArgs, Cli, Command, Output};
use crate::config::env::Env;
use crate::config::{self, Settings};
use crate::context::Ctx;
use crate::error::Error;
use crate::outcome::{Outcome, Row};
use crate::plan::{self, AppRef};
use crate::secret::Secret;
use crate::{pipeline, spec};
mod oneshot;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a command hands back besides its outputs.
#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub data: Option<serde_json::Value>,
    /// Printed on stdout in text mode (plans, tables, numbers).
    pub text: Option<String>,
}

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
        .unwrap_or_else(|_| crate::ci::detect(cli.ci.platform(), &env));
    let paths = settings
        .as_ref()
        .map(|s| s.ci_paths.clone())
        .unwrap_or_else(|_| config::ci_paths(&env));
    let reporter = Arc::new(Reporter::new(platform, paths, err));
    // Secrets first, before anything else is printed.
    for name in config::PRIVATE_KEY.iter().chain(config::WEBHOOK_SECRET) {
        if let Some(v) = env.get(name) {
            reporter.mask(v);
        }
    }
    if let Ok(s) = &settings {
        if let Ok(c) = s.credentials() {
            reporter.mask(c.key.pem().expose());
        }
        if let Some(w) = &s.webhook_secret {
            reporter.mask(w.expose());
        }
    }
    let mut report = Report::default();
    let result = match settings {
        Ok(s) => dispatch(&cli, &s, &env, reporter.clone(), cancel, &mut report).await,
        Err(e) => Err(e),
    };
    let outcome = Outcome {
        command: name(&cli.command).into(),
        ok: result.is_ok(),
        exit_code: result.as_ref().err().map(Error::exit_code).unwrap_or(0),
        outputs: reporter.outputs(),
        error: result.as_ref().err().cloned(),
        annotations: Vec::new(),
        summary: report.rows,
        data: report.data,
    };
    if let Err(e) = &result {
        annotate_error(&reporter, e);
    }
    let outcome = Outcome {
        annotations: reporter.annotations(),
        ..outcome
    };
    let json = serde_json::to_string_pretty(&outcome).unwrap_or_default();
    let quiet = matches!(cli.command, Command::Schema);
    let md = if quiet {
        String::new()
    } else {
        outcome.markdown()
    };
    reporter.finish(&md, &json);
    if let Err(e) = &result {
        reporter.final_error(&format!("flightdeck {}: {}", outcome.command, e.message));
    }
    match cli.output {
        Output::Json => {
            let _ = writeln!(out, "{}", reporter.redact(&json));
        }
        Output::Text => {
            if let Some(t) = report.text {
                let _ = write!(out, "{}", reporter.redact(&t));
            }
        }
    }
    let _ = out.flush();
    outcome.exit_code
}

/// The error and each related problem as annotations (with file and line when known).
fn annotate_error(reporter: &Reporter, e: &Error) {
    for one in std::iter::once(e).chain(e.related.iter()) {
        let mut text = one.message.clone();
        for d in &one.details {
            text.push_str(&format!("\n{}: {}", d.code, d.message));
        }
        if let Some(h) = &one.hint {
            text.push_str(&format!("\nhint: {h}"));
        }
        reporter.annotate(
            Annotation::new(Level::Error, text)
                .titled("flightdeck")
                .at(one.location.as_deref().cloned()),
        );
    }
}

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
    let api = Client::new(&settings.api_base, Arc::new(tokens), RetryPolicy::default())?;
    Ok(Ctx::new(Arc::new(api), reporter, cancel))
}

fn app_ref(a: &AppArgs, s: &Settings) -> Option<AppRef> {
    a.app_id
        .clone()
        .map(AppRef::Id)
        .or_else(|| a.bundle_id.clone().map(AppRef::BundleId))
        .or_else(|| s.app_id.clone().map(AppRef::Id))
        .or_else(|| s.bundle_id.clone().map(AppRef::BundleId))
}

pub(crate) async fn app_id(ctx: &Ctx, a: &AppArgs, s: &Settings) -> Result<String, Error> {
    match app_ref(a, s) {
        Some(AppRef::Id(id)) => Ok(id),
        Some(AppRef::BundleId(b)) => r::find_app_by_bundle_id(&ctx.api, &b)
            .await?
            .map(|a| a.id)
            .ok_or_else(|| {
                Error::input(format!("App Store Connect has no app with bundle id {b}"))
            }),
        None => Err(Error::input(
            "which app? pass --app-id or --bundle-id, or set ASC_APP_ID / ASC_BUNDLE_ID",
        )),
    }
}

/// Read and plan a pipeline file.
pub fn load_plan(path: &Path, env: &Env, settings: &Settings) -> Result<plan::Plan, Error> {
    let shown = settings.display_path(path);
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::input(format!("cannot read the pipeline file {shown}: {e}")).with_hint(
            "pass --pipeline FILE or set FLIGHTDECK_PIPELINE; the default is ./flightdeck.yml",
        )
    })?;
    let pipeline = spec::parse(&text, &shown)?;
    let default_app = settings
        .app_id
        .clone()
        .map(AppRef::Id)
        .or_else(|| settings.bundle_id.clone().map(AppRef::BundleId));
    let mut plan = plan::from_pipeline(&pipeline, env, &shown, default_app)?;
    // Artifact paths are relative to the working directory, as users expect in CI.
    for s in &mut plan.steps {
        if let plan::Step::Upload(u) = s {
            u.file = PathBuf::from(&u.file);
        }
    }
    Ok(plan)
}

fn pipeline_path(flag: &Option<PathBuf>, s: &Settings) -> PathBuf {
    flag.clone()
        .or_else(|| s.pipeline.clone())
        .unwrap_or_else(|| PathBuf::from("flightdeck.yml"))
}

async fn dispatch(
    cli: &Cli,
    s: &Settings,
    env: &Env,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
    report: &mut Report,
) -> Result<(), Error> {
    match &cli.command {
        Command::Validate { pipeline } => {
            let plan = load_plan(&pipeline_path(pipeline, s), env, s)?;
            report.text = Some(format!(
                "{}ok: the pipeline is valid\n",
                plan::render(&plan)
            ));
            report.data = serde_json::to_value(&plan).ok();
            Ok(())
        }
        Command::Run { pipeline, dry_run } => {
            let plan = load_plan(&pipeline_path(pipeline, s), env, s)?;
            if *dry_run {
                s.credentials()?;
                report.text = Some(format!(
                    "{}dry run: nothing was called\n",
                    plan::render(&plan)
                ));
                report.data = serde_json::to_value(&plan).ok();
                return Ok(());
            }
            let ctx = build_ctx(s, reporter, cancel)?;
            pipeline::execute(&ctx, &plan, s, &mut report.rows)
                .await
                .map(|_| ())
        }
        Command::Upload(a) => oneshot::upload(a, s, env, reporter, cancel, report).await,
        Command::Wait(a) => oneshot::wait(a, s, env, reporter, cancel, report).await,
        Command::Testflight(a) => oneshot::testflight(a, s, reporter, cancel, report).await,
        Command::Feedback(a) => oneshot::feedback(a, s, reporter, cancel, report).await,
        Command::NextBuildNumber(a) => {
            oneshot::next_build_number(a, s, reporter, cancel, report).await
        }
        Command::Webhooks(w) => {
            if let crate::cli::WebhooksCmd::Listen {
                listen,
                secret_env,
                forward,
            } = w
            {
                let secret = env.lookup(&[secret_env.as_str()])?.ok_or_else(|| {
                    Error::input(format!(
                        "{secret_env} is not set: the listener needs the webhook's secret"
                    ))
                })?;
                reporter.mask(&secret.value);
                return crate::webhooks::command::listen(
                    listen,
                    Secret::new(secret.value),
                    forward,
                    &reporter,
                    cancel,
                )
                .await;
            }
            let ctx = build_ctx(s, reporter, cancel)?;
            crate::webhooks::command::run(&ctx, w, s, env, report).await
        }
        Command::Simulator(a) => crate::demo::simulator(a, &reporter, cancel).await,
        Command::Demo => crate::demo::run(env, &reporter, cancel, report).await,
        Command::Schema => {
            report.text = Some(spec::schema::generate());
            Ok(())
        }
    }
}
