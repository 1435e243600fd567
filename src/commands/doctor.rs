//! `flightdeck doctor`: gather the inputs, run the checklist, print it
//! (text on stdout, or every check in `--output json`), warn and fail.

use super::{Report, load_plan, pipeline_path};
use crate::ci::Reporter;
use crate::cli::{Cli, DoctorArgs};
use crate::config::Settings;
use crate::config::env::Env;
use crate::doctor::{self, Inputs, PipelineInput, Status};
use crate::error::Error;
use crate::secret::Secret;
use std::sync::Arc;

pub async fn run(
    cli: &Cli,
    a: &DoctorArgs,
    s: &Settings,
    env: &Env,
    reporter: Arc<Reporter>,
    report: &mut Report,
) -> Result<(), Error> {
    let path = pipeline_path(&a.pipeline, s);
    let asked = a.pipeline.is_some() || s.pipeline.is_some();
    let pipeline = if !asked && !path.exists() {
        PipelineInput::Absent(path)
    } else {
        PipelineInput::Loaded(load_plan(&path, env, s))
    };
    let masker = reporter.clone();
    reporter.group_start("doctor: checks");
    let list = doctor::run(Inputs {
        env,
        settings: s,
        api_key_json: cli.api_key_json.as_deref(),
        app: super::app_ref(&a.app, s),
        pipeline,
        on_token: Some(Arc::new(move |t: &Secret| masker.mask(t.expose()))),
    })
    .await;
    reporter.group_end();
    for c in list.checks.iter().filter(|c| c.status == Status::Warn) {
        reporter.warning(format!("doctor: {}: {}", c.name, c.detail));
    }
    report.text = Some(list.render());
    report.data = serde_json::to_value(&list).ok();
    let first = list.checks.iter().find_map(|c| match c.status {
        Status::Fail(kind) => Some((kind, c)),
        _ => None,
    });
    let Some((kind, c)) = first else {
        return Ok(());
    };
    let failed = list.checks.iter().filter(|c| c.failed()).count();
    let mut e = Error::new(
        kind,
        format!(
            "{} failed; first: {}: {}",
            doctor::plural(failed, "check"),
            c.name,
            c.detail
        ),
    );
    if let Some(fix) = &c.fix {
        e = e.with_hint(fix.clone());
    }
    Err(e)
}
