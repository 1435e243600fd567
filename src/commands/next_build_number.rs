//! `flightdeck next-build-number`: the highest build number App Store Connect
//! knows for the app (and version), plus one.

use super::report::{self, Report};
use crate::ci::Reporter;
use crate::cli::NextArgs;
use crate::config::Settings;
use crate::error::Error;
use crate::{plan, upload};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub(super) async fn run(
    a: &NextArgs,
    s: &Settings,
    reporter: Arc<Reporter>,
    cancel: CancellationToken,
    report: &mut Report,
) -> Result<(), Error> {
    let platform = plan::parse_platform(&a.platform).map_err(|e| Error::flag("--platform", e))?;
    let ctx = super::build_ctx(s, reporter, cancel)?;
    let app = super::app_id(&ctx, &a.app, s).await?;
    let next = upload::guard::next(&ctx.api, &app, a.version.as_deref(), &platform).await?;
    report::next_build_number(&ctx.ci, report, &app, &next);
    Ok(())
}
