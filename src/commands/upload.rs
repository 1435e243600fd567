//! `flightdeck upload`: flags to the same `UploadPlan` a pipeline's `upload`
//! step uses, the artifact checked before any credential or network use, then
//! the upload and (with `--wait`) the wait.

use super::Invocation;
use super::report::{self, Report};
use crate::cli::UploadArgs;
use crate::error::Error;
use crate::plan::{self, UploadPlan, WaitTarget};
use crate::{upload, wait};

fn upload_plan(a: &UploadArgs, inv: &Invocation<'_>) -> Result<UploadPlan, Error> {
    Ok(UploadPlan {
        file: a.file.clone(),
        app: inv.app(&a.app),
        version: a.version.clone(),
        build_number: a.build_number.clone(),
        platform: a
            .platform
            .as_deref()
            .map(plan::parse_platform)
            .transpose()
            .map_err(|e| Error::flag("--platform", e))?,
        skip_if_exists: a.skip_if_exists,
        concurrency: plan::parse_concurrency(&a.concurrency.to_string())
            .map_err(|e| Error::flag("--concurrency", e))?,
        checksum: plan::parse_checksum(&a.checksum).map_err(|e| Error::flag("--checksum", e))?,
        origin: None,
        tuning: inv.settings.upload_tuning,
    })
}

pub(super) async fn run(
    a: &UploadArgs,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let up = upload_plan(a, inv)?;
    let wait = if a.wait {
        Some(super::wait::wait_plan(
            WaitTarget::PreviousUpload,
            &a.waiting,
            inv.env,
        )?)
    } else {
        None
    };
    // Catch artifact problems before any credential or network use.
    let art = crate::artifact::inspect(&up.file)?;
    upload::reconcile(&up, &art)?;
    let ctx = inv.ctx()?;
    ctx.ci.group_start("upload");
    let done = ctx
        .or_cancel(upload::run(&ctx, &up))
        .await
        .map_err(upload::with_resume_hint);
    ctx.ci.group_end();
    let done = done?;
    report::upload(&ctx.ci, report, &done);
    if let Some(w) = wait {
        ctx.ci.group_start("wait");
        let target = w.target.resolve(Some(&done.build_upload_id))?;
        let secret = inv.settings.webhook_secret.as_ref();
        let r = wait::run(&ctx, &w, target, Some(&done.app_id), secret).await;
        ctx.ci.group_end();
        report::wait(&ctx.ci, report, &r?);
    }
    Ok(())
}
