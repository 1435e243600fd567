//! `flightdeck next-build-number`: the highest build number App Store Connect
//! knows for the app (and version), plus one.

use super::Invocation;
use super::report::{self, Report};
use crate::cli::NextArgs;
use crate::error::Error;
use crate::{plan, upload};

pub(super) async fn run(
    a: &NextArgs,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let platform = plan::parse_platform(&a.platform).map_err(|e| Error::flag("--platform", e))?;
    let ctx = inv.ctx()?;
    let app = inv.app_id(&ctx, &a.app).await?;
    let next = upload::guard::next(&ctx.api, &app, a.version.as_deref(), &platform).await?;
    report::next_build_number(&ctx.ci, report, &app, &next);
    Ok(())
}
