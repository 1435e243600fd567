//! `flightdeck testflight`: flags to the same `TestFlightPlan` a pipeline's
//! `testflight` step uses.

use super::Invocation;
use super::report::{self, Report};
use crate::cli::TestflightArgs;
use crate::error::Error;
use crate::plan::{self, BuildRef, NotesSource, TestFlightPlan};

/// The plan the flags describe; notes come from `--whats-new`, `--whats-new-dir`,
/// or Xcode Cloud's `TestFlight/` directory when neither is given.
fn plan_of(a: &TestflightArgs) -> TestFlightPlan {
    let mut tf = TestFlightPlan::for_build(BuildRef::Id(a.build.clone()));
    tf.groups = a.groups.clone();
    tf.notes = match (&a.whats_new, &a.whats_new_dir) {
        (Some(t), _) => {
            tf.whats_new.insert(a.locale.clone(), t.clone());
            NotesSource::Given
        }
        (None, Some(d)) => NotesSource::Dir {
            path: d.clone(),
            explicit: true,
        },
        (None, None) => plan::xcode_cloud_notes(),
    };
    tf.submit_for_review = a.submit_for_review;
    tf.notify = a.notify;
    tf.uses_non_exempt_encryption = a.uses_non_exempt_encryption;
    tf.expire_previous = a.expire_previous;
    tf
}

pub(super) async fn run(
    a: &TestflightArgs,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let tf = plan_of(a);
    let ctx = inv.ctx()?;
    let known = crate::testflight::Known::default();
    let d = ctx
        .or_cancel(crate::testflight::run(&ctx, &tf, &a.build, &known))
        .await?;
    report::testflight(&ctx.ci, report, &d);
    report.data = serde_json::to_value(&d).ok();
    Ok(())
}
