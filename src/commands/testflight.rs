//! `flightdeck testflight`: flags to the same `TestFlightPlan` a pipeline's
//! `testflight` step uses.

use super::Invocation;
use super::report::{self, Report};
use crate::cli::TestflightArgs;
use crate::error::Error;
use crate::plan::{BuildRef, TestFlightPlan};

pub(super) async fn run(
    a: &TestflightArgs,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let mut whats_new = std::collections::BTreeMap::new();
    if let Some(t) = &a.whats_new {
        whats_new.insert(a.locale.clone(), t.clone());
    }
    let tf = TestFlightPlan {
        build: BuildRef::Id(a.build.clone()),
        groups: a.groups.clone(),
        whats_new,
        submit_for_review: a.submit_for_review,
        notify: a.notify,
        uses_non_exempt_encryption: a.uses_non_exempt_encryption,
        expire_previous: a.expire_previous,
    };
    let ctx = inv.ctx()?;
    let d = ctx
        .or_cancel(crate::testflight::run(&ctx, &tf, &a.build, None))
        .await?;
    report::testflight(&ctx.ci, report, &d);
    report.data = serde_json::to_value(&d).ok();
    Ok(())
}
