//! `flightdeck feedback`: pull the app's TestFlight feedback to files.

use super::report::{self, Report};
use crate::ci::Reporter;
use crate::cli::FeedbackArgs;
use crate::config::Settings;
use crate::error::Error;
use crate::plan;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(super) async fn run(
    a: &FeedbackArgs,
    s: &Settings,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
    report: &mut Report,
) -> Result<(), Error> {
    let since = a
        .since
        .as_deref()
        .map(plan::parse_since)
        .transpose()
        .map_err(|e| Error::flag("--since", e))?;
    let ctx = super::build_ctx(s, reporter, cancel)?;
    let app = super::app_id(&ctx, &a.app, s).await?;
    let pulled = crate::feedback::run(&ctx, &app, a.build.as_deref(), &since, &a.out);
    let p = ctx.or_cancel(pulled).await?;
    report::feedback(&ctx.ci, report, &p);
    report.data = serde_json::to_value(&p).ok();
    Ok(())
}
