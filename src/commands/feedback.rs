//! `flightdeck feedback`: pull the app's TestFlight feedback to files.

use super::Invocation;
use super::report::{self, Report};
use crate::cli::FeedbackArgs;
use crate::error::Error;
use crate::plan;

pub(super) async fn run(
    a: &FeedbackArgs,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let since = a
        .since
        .as_deref()
        .map(plan::parse_since)
        .transpose()
        .map_err(|e| Error::flag("--since", e))?;
    let ctx = inv.ctx()?;
    let app = inv.app_id(&ctx, &a.app).await?;
    let pulled = crate::feedback::run(&ctx, &app, a.build.as_deref(), &since, &a.out);
    let p = ctx.or_cancel(pulled).await?;
    report::feedback(&ctx.ci, report, &p);
    report.data = serde_json::to_value(&p).ok();
    Ok(())
}
