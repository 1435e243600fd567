//! `flightdeck doctor`: gather the inputs, run the checklist, print it
//! (text on stdout, or every check in `--output json`), warn and fail.

use super::run::{load_plan, pipeline_path};
use super::{Invocation, Report};
use crate::cli::DoctorArgs;
use crate::doctor::{self, Inputs, PipelineInput, Status};
use crate::error::Error;
use crate::secret::Secret;
use std::path::Path;
use std::sync::Arc;

/// `api_key_json`: the global `--api-key-json` flag.
pub(super) async fn run(
    a: &DoctorArgs,
    api_key_json: Option<&Path>,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let (s, env, reporter) = (inv.settings, inv.env, &inv.reporter);
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
        api_key_json,
        app: inv.app(&a.app),
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
