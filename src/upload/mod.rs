//! `flightdeck upload` and the pipeline's `upload` step.
//!
//! 1. Inspect the artifact; flags must agree with it (nothing is created otherwise).
//! 2. Resolve the app from its bundle id.
//! 3. Guard the build number: the same file already uploaded (same size and
//!    checksum) -> reuse it, so a re-run goes on; another file -> refuse (next
//!    number in the message) or skip; an interrupted earlier upload -> resume
//!    it; a build that exists only as a build (Xcode, Transporter) -> refuse or skip.
//! 4. Create the build upload and reserve the file, reconciling ambiguous
//!    failures by reading back instead of creating twice.
//! 5. Send the parts (`parts`), hashing in the same pass.
//! 6. Commit with `uploaded: true` and the checksum; an ambiguous commit is
//!    reconciled by reading the file's state.

pub mod guard;
pub mod parts;
pub mod progress;
pub mod schedule;
mod source;
pub mod wire;

use crate::api::models::{
    AssetDeliveryState, BuildUpload, BuildUploadFile, BuildUploadState, Platform,
};
use crate::api::write::exactly_once;
use crate::api::{ApiErrorKind, resources as r};
use crate::artifact::{self, Artifact};
use crate::context::Ctx;
use crate::error::{Detail, Error};
use crate::plan::{AppRef, UploadPlan};
use parts::{Part, Progress, Sender};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, Serialize)]
pub struct Uploaded {
    pub build_upload_id: String,
    pub app_id: String,
    pub version: String,
    pub build_number: String,
    pub platform: Platform,
    pub bytes_uploaded: u64,
    pub upload_seconds: f64,
    /// Already uploaded before and `skip-if-exists` was set.
    pub skipped: bool,
    pub resumed: bool,
    /// The same file was uploaded by an earlier run: nothing was sent again.
    pub reused: bool,
    /// The build, when it is already known (reused or skipped uploads; builds
    /// uploaded by other tools have no build upload: `build_upload_id` is empty).
    pub build_id: Option<String>,
    pub artifact: Artifact,
}

/// Check flags against the artifact: any disagreement is an input error.
pub fn reconcile(plan: &UploadPlan, a: &Artifact) -> Result<(), Error> {
    let mut problems = Vec::new();
    let mut check = |what: &str, given: Option<&str>, found: &str, key: &str| {
        if let Some(g) = given
            && g != found
        {
            let mut e = Error::input(format!("{what} {g:?} disagrees with {key} {found:?} in {}", a.file_name))
                .with_hint("fix the value, or rebuild the artifact with the intended version; App Store Connect would reject the build during processing");
            if let Some(o) = &plan.origin {
                e = e.at(o.clone());
            }
            problems.push(e);
        }
    };
    check(
        "version",
        plan.version.as_deref(),
        &a.version,
        "CFBundleShortVersionString",
    );
    check(
        "build number",
        plan.build_number.as_deref(),
        &a.build_number,
        "CFBundleVersion",
    );
    check(
        "platform",
        plan.platform.as_ref().map(|p| p.as_str()),
        a.platform.as_str(),
        "the platform",
    );
    if let Some(AppRef::BundleId(b)) = &plan.app {
        check("bundle id", Some(b), &a.bundle_id, "CFBundleIdentifier");
    }
    Error::many(problems).map_or(Ok(()), Err)
}

/// The app's id, checking its bundle id matches the artifact.
pub async fn resolve_app(
    ctx: &Ctx,
    app: Option<&AppRef>,
    bundle_id: &str,
) -> Result<String, Error> {
    if let Some(AppRef::Id(id)) = app {
        let found = r::get_app(&ctx.api, id)
            .await
            .map_err(|e| Error::from(e).context(format!("looking up app {id}")))?;
        if let Some(b) = found.attrs().bundle_id
            && b != bundle_id
        {
            return Err(Error::input(format!(
                "app {id} has bundle id {b}, but the artifact is {bundle_id}"
            ))
            .with_hint("pass the app id of the artifact's app, or --bundle-id"));
        }
        return Ok(id.clone());
    }
    AppRef::resolve(Some(&AppRef::BundleId(bundle_id.into())), &ctx.api).await
}

pub async fn run(ctx: &Ctx, plan: &UploadPlan) -> Result<Uploaded, Error> {
    let a = artifact::inspect(&plan.file)?;
    reconcile(plan, &a)?;
    tracing::info!(
        "{}: {} {} ({}) for {}, {} bytes",
        a.file_name,
        a.version,
        a.build_number,
        a.platform,
        a.bundle_id,
        a.size
    );
    // With an app id, checking that app goes out with the guard's lookups
    // (in `earlier`); a bundle id must be resolved first.
    let app_id = match &plan.app {
        Some(AppRef::Id(id)) => id.clone(),
        app => resolve_app(ctx, app.as_ref(), &a.bundle_id).await?,
    };
    let start = Instant::now();
    let done = |id: &str, bytes: u64, how: Earlier| Uploaded {
        build_upload_id: id.to_string(),
        app_id: app_id.clone(),
        version: a.version.clone(),
        build_number: a.build_number.clone(),
        platform: a.platform.clone(),
        bytes_uploaded: bytes,
        upload_seconds: start.elapsed().as_secs_f64(),
        skipped: how == Earlier::Skipped,
        resumed: how == Earlier::Resumed,
        reused: how == Earlier::Reused,
        build_id: None,
        artifact: a.clone(),
    };
    let (upload, resumed) = match earlier(ctx, plan, &app_id, &a).await? {
        Found::Done(id, how, build_id) => {
            return Ok(Uploaded {
                build_id,
                ..done(&id, 0, how)
            });
        }
        Found::Resume(u) => (*u, true),
        Found::Nothing => (create_upload(ctx, &app_id, &a).await?, false),
    };
    let file = reserve_or_resume(ctx, &upload, &a, resumed).await?;
    let state = file.attrs().asset_delivery_state.and_then(|s| s.state);
    let bytes = if matches!(
        state,
        Some(AssetDeliveryState::UploadComplete | AssetDeliveryState::Complete)
    ) {
        tracing::info!("the file was already committed by an earlier run");
        0
    } else {
        send_and_commit(ctx, plan, &a, &file)
            .await
            .map_err(|e| resumable(e, &upload.id))?
    };
    let how = if resumed {
        Earlier::Resumed
    } else {
        Earlier::New
    };
    let result = done(&upload.id, bytes, how);
    warn_from_state(ctx, &upload.id).await;
    Ok(result)
}

/// How this run relates to what earlier runs (or other tools) left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Earlier {
    New,
    Resumed,
    Reused,
    Skipped,
}

/// What the guard decided: finished already, resume, or start.
enum Found {
    /// (build upload id, how, build id when known)
    Done(String, Earlier, Option<String>),
    Resume(Box<BuildUpload>),
    Nothing,
}

/// Look at what App Store Connect has for this version and build number.
async fn earlier(ctx: &Ctx, plan: &UploadPlan, app_id: &str, a: &Artifact) -> Result<Found, Error> {
    let skip = |id: &str, build: Option<String>, what: &str| {
        ctx.ci.notice(format!(
            "build {} of {} ({}) is already uploaded ({what}); skipping",
            a.build_number, a.version, a.platform
        ));
        Found::Done(id.to_string(), Earlier::Skipped, build)
    };
    // The lookups go out together: on a long round trip each one saved is
    // time before the first part (the builds list is used only when no build
    // upload has this number). All are reads; the app check decides first,
    // so a wrong app id fails before anything is said about its builds.
    let app_check = async {
        match &plan.app {
            Some(AppRef::Id(_)) => resolve_app(ctx, plan.app.as_ref(), &a.bundle_id)
                .await
                .map(drop),
            _ => Ok(()),
        }
    };
    let (app, existing, builds) = tokio::join!(
        app_check,
        guard::existing(&ctx.api, app_id, &a.version, &a.build_number, &a.platform),
        build_only(ctx, app_id, a)
    );
    app?;
    match existing? {
        guard::Existing::Taken(u) if same_file(ctx, &u, a).await? => {
            ctx.ci.notice(format!(
                "{} was already uploaded as build upload {} by an earlier run; reusing it",
                a.file_name, u.id
            ));
            Ok(Found::Done(u.id.clone(), Earlier::Reused, None))
        }
        guard::Existing::Taken(u) if plan.skip_if_exists => {
            Ok(skip(&u.id, None, &format!("build upload {}", u.id)))
        }
        guard::Existing::Taken(u) => Err(already_uploaded(ctx, app_id, a, Some(&u)).await),
        guard::Existing::Resumable(u) => {
            tracing::info!(
                "resuming build upload {} left AWAITING_UPLOAD by an earlier run",
                u.id
            );
            Ok(Found::Resume(Box::new(u)))
        }
        guard::Existing::None => match builds? {
            Some(b) if plan.skip_if_exists => Ok(skip("", Some(b.clone()), &format!("build {b}"))),
            Some(_) => Err(already_uploaded(ctx, app_id, a, None).await),
            None => Ok(Found::Nothing),
        },
    }
}

/// A build with this version and build number that has no build upload of ours
/// (uploaded from Xcode or Transporter).
async fn build_only(ctx: &Ctx, app_id: &str, a: &Artifact) -> Result<Option<String>, Error> {
    let builds = r::list_builds(&ctx.api, app_id, Some(&a.version), &a.platform).await?;
    Ok(builds
        .into_iter()
        .find(|b| b.attrs().version.as_deref() == Some(a.build_number.as_str()))
        .map(|b| b.id))
}

/// Whether the upload's file is this artifact: same size, and the same
/// checksum when one was committed (a commit without one matches on size and name).
async fn same_file(ctx: &Ctx, u: &BuildUpload, a: &Artifact) -> Result<bool, Error> {
    let files = r::list_build_upload_files(&ctx.api, &u.id).await?;
    let Some(f) = files.iter().find(|f| {
        let at = f.attrs();
        at.asset_type.as_deref() == Some("ASSET") && at.file_size == Some(a.size)
    }) else {
        return Ok(false);
    };
    let at = f.attrs();
    match at.file_checksum() {
        Some((alg, hash)) => Ok(local_checksum(&a.path, &alg)?.is_some_and(|h| h == hash)),
        None => Ok(at.file_name.as_deref() == Some(a.file_name.as_str())),
    }
}

/// The file's checksum in hex for Apple's algorithm name (None for an unknown one).
fn local_checksum(path: &std::path::Path, algorithm: &str) -> Result<Option<String>, Error> {
    use sha2::Digest;
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).map_err(|e| Error::read("the artifact", path.display(), &e))?;
    let mut sha = sha2::Sha256::new();
    let mut md5 = md5::Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::read("the artifact", path.display(), &e))?;
        if n == 0 {
            break;
        }
        match algorithm {
            "SHA_256" => sha.update(&buf[..n]),
            "MD5" => md5.update(&buf[..n]),
            _ => return Ok(None),
        }
    }
    Ok(Some(match algorithm {
        "MD5" => hex::encode(md5.finalize()),
        _ => hex::encode(sha.finalize()),
    }))
}

/// A cancelled upload's error, telling the user the upload can be resumed.
pub fn with_resume_hint(e: Error) -> Error {
    match e.kind {
        crate::error::ExitKind::Cancelled if e.hint.is_none() => {
            e.with_hint("an interrupted upload stays AWAITING_UPLOAD on App Store Connect; run the same command again to resume it")
        }
        _ => e,
    }
}

fn resumable(e: Error, upload_id: &str) -> Error {
    if matches!(
        e.kind,
        crate::error::ExitKind::Transient | crate::error::ExitKind::Cancelled
    ) && e.hint.is_none()
    {
        e.with_hint(format!("build upload {upload_id} stays AWAITING_UPLOAD; run the same command again to resume it"))
    } else {
        e
    }
}

async fn already_uploaded(ctx: &Ctx, app_id: &str, a: &Artifact, u: Option<&BuildUpload>) -> Error {
    let next = guard::next(&ctx.api, app_id, Some(&a.version), &a.platform)
        .await
        .unwrap_or_else(|_| guard::increment(&a.build_number));
    let which = u
        .map(|u| {
            format!(
                " (build upload {}, {})",
                u.id,
                u.state().map(|s| s.to_string()).unwrap_or_default()
            )
        })
        .unwrap_or_default();
    Error::rejected(format!("build {} of version {} ({}) was already uploaded{which}", a.build_number, a.version, a.platform))
        .with_hint(format!("the next free build number is {next}: set CFBundleVersion to {next} (or `flightdeck next-build-number`), or pass --skip-if-exists to treat this as done"))
}

/// Create the build upload; if the answer was lost (or a retry meets a 409),
/// read back and adopt the one we made (`api::write::exactly_once`).
async fn create_upload(ctx: &Ctx, app_id: &str, a: &Artifact) -> Result<BuildUpload, Error> {
    let ours = || async {
        let ups = r::list_build_uploads(
            &ctx.api,
            app_id,
            &a.version,
            Some(&a.build_number),
            &a.platform,
        )
        .await?;
        Ok(ups.into_iter().find(|u| {
            let at = u.attrs();
            u.state() == Some(BuildUploadState::AwaitingUpload)
                && at.cf_bundle_version.as_deref() == Some(a.build_number.as_str())
                && at.cf_bundle_short_version_string.as_deref() == Some(a.version.as_str())
        }))
    };
    let created = exactly_once(
        &ctx.api.retry_policy(),
        "creating the build upload",
        || r::create_build_upload(&ctx.api, app_id, &a.version, &a.build_number, &a.platform),
        ours,
    )
    .await;
    match created {
        Ok(l) => Ok(l.into_inner()),
        // Not ours: a genuine duplicate (another run, Xcode) or something else.
        Err(e) if e.kind == ApiErrorKind::Conflict => {
            match guard::existing(&ctx.api, app_id, &a.version, &a.build_number, &a.platform)
                .await?
            {
                guard::Existing::Taken(u) => Err(already_uploaded(ctx, app_id, a, Some(&u)).await),
                _ if e.has_code("ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE") => {
                    Err(already_uploaded(ctx, app_id, a, None).await)
                }
                _ => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The ASSET file of the upload: an earlier run's reservation, or a new one.
async fn reserve_or_resume(
    ctx: &Ctx,
    upload: &BuildUpload,
    a: &Artifact,
    resumed: bool,
) -> Result<BuildUploadFile, Error> {
    let mine = |f: &BuildUploadFile| {
        let at = f.attrs();
        at.asset_type.as_deref() == Some("ASSET")
            && at.file_name.as_deref() == Some(a.file_name.as_str())
            && at.file_size == Some(a.size)
    };
    if resumed
        && let Some(f) = r::list_build_upload_files(&ctx.api, &upload.id)
            .await?
            .into_iter()
            .find(|f| mine(f))
    {
        return Ok(r::get_file(&ctx.api, &f.id).await?);
    }
    let reserved = exactly_once(
        &ctx.api.retry_policy(),
        "reserving the file",
        || r::reserve_file(&ctx.api, &upload.id, &a.file_name, a.size, a.kind.uti()),
        || async {
            let files = r::list_build_upload_files(&ctx.api, &upload.id).await?;
            Ok(files.into_iter().find(|f| mine(f)))
        },
    )
    .await?;
    Ok(reserved.into_inner())
}

async fn send_and_commit(
    ctx: &Ctx,
    plan: &UploadPlan,
    a: &Artifact,
    file: &BuildUploadFile,
) -> Result<u64, Error> {
    let ops = file.attrs().upload_operations.unwrap_or_default();
    if ops.is_empty() {
        return Err(Error::transient(format!(
            "App Store Connect returned no upload operations for file {}",
            file.id
        )));
    }
    let parts: Vec<Part> = ops
        .iter()
        .enumerate()
        .map(|(i, op)| Part::from_operation(op, i))
        .collect::<Result<_, _>>()?;
    let pending: u64 = parts.iter().filter(|p| !p.done).map(|p| p.length).sum();
    tracing::info!(
        "sending {} of {} parts ({} bytes), {} at once",
        parts.iter().filter(|p| !p.done).count(),
        parts.len(),
        pending,
        plan.concurrency
    );
    let api = ctx.api.clone();
    let file_id = file.id.clone();
    let renew: parts::Renew = Arc::new(move || {
        let (api, file_id) = (api.clone(), file_id.clone());
        Box::pin(async move {
            let f = r::get_file(&api, &file_id).await?;
            let ops = f.attrs().upload_operations.unwrap_or_default();
            let mut map = HashMap::new();
            for (i, op) in ops.iter().enumerate() {
                let p = Part::from_operation(op, i)?;
                map.insert(p.number, p);
            }
            Ok(map)
        })
    });
    let progress = Arc::new(Progress::default());
    let ticker = progress::spawn(
        progress.clone(),
        ctx.ci.platform() == crate::ci::Platform::Local,
    );
    let sender = Sender {
        wire: wire::Wire::new(ctx.api.transfer().clone(), plan.tuning.bbr),
        file: a.path.clone(),
        concurrency: plan.concurrency,
        hashing: parts::Hashing {
            sha256: plan.checksum == crate::plan::ChecksumAlgorithm::Sha256,
            md5: plan.checksum == crate::plan::ChecksumAlgorithm::Md5,
        },
        renew,
        progress: progress.clone(),
        cancel: ctx.cancel.clone(),
    };
    let tuning = schedule::Tuning::with_cap(plan.concurrency).switched(plan.tuning);
    let digests = sender.run_with(parts, tuning).await;
    ticker.abort();
    let digests = digests?;
    let checksum = match plan.checksum {
        crate::plan::ChecksumAlgorithm::Md5 => digests.md5.map(|h| (h, "MD5")),
        crate::plan::ChecksumAlgorithm::Sha256 => digests.sha256.map(|h| (h, "SHA_256")),
        crate::plan::ChecksumAlgorithm::None => None,
    };
    match &checksum {
        Some((hash, alg)) => tracing::info!("all parts sent; committing with {alg} {hash}"),
        None => tracing::info!("all parts sent; committing without a checksum"),
    }
    let checksum = checksum.as_ref().map(|(h, a)| (h.as_str(), *a));
    commit(ctx, &file.id, checksum).await?;
    Ok(pending)
}

/// Commit; when the answer is lost, read the file's state instead of guessing.
async fn commit(ctx: &Ctx, file_id: &str, checksum: Option<(&str, &str)>) -> Result<(), Error> {
    match r::commit_file(&ctx.api, file_id, checksum).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_transient() || e.kind == ApiErrorKind::Decode => {
            tracing::warn!("commit answer lost ({e}); reading the file's state");
            let f = r::get_file(&ctx.api, file_id).await?;
            match f.attrs().asset_delivery_state.and_then(|s| s.state) {
                Some(AssetDeliveryState::UploadComplete | AssetDeliveryState::Complete) => Ok(()),
                _ => Ok(r::commit_file(&ctx.api, file_id, checksum)
                    .await
                    .map(|_| ())?),
            }
        }
        Err(e) => {
            let details: Vec<Detail> = e
                .errors
                .iter()
                .map(|x| Detail {
                    code: x.code.clone(),
                    message: x.detail.clone(),
                })
                .collect();
            Err(Error::from(e)
                .context("committing the uploaded file")
                .with_details(details))
        }
    }
}

/// Annotate the warnings Apple attached to the upload.
async fn warn_from_state(ctx: &Ctx, upload_id: &str) {
    if let Ok((u, _)) = r::get_build_upload(&ctx.api, upload_id).await {
        for w in u.attrs().state.and_then(|s| s.warnings).unwrap_or_default() {
            ctx.ci.warning(format!(
                "App Store Connect: {}: {}",
                w.code.unwrap_or_default(),
                w.description.unwrap_or_default()
            ));
        }
    }
}
