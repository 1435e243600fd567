//! What happens after a commit: PROCESSING, then the uploaded file is checked
//! for real (checksum, readable .ipa/.pkg, bundle id, version, build number,
//! platform) and the upload ends COMPLETE with a build, or FAILED with
//! Apple-style state errors. Each transition is announced by webhook.

use super::Sim;
use super::ids::uuid;
use super::state::{BuildRec, Feedback};
use super::webhooks;
use std::io::Read;
use std::sync::Arc;

pub fn start(sim: Arc<Sim>, upload_id: String, file_id: String) {
    tokio::spawn(async move { run(sim, upload_id, file_id).await });
}

struct Job {
    spool: std::path::PathBuf,
    checksum: Option<(String, String)>,
    size: u64,
    bundle_id: String,
    version: String,
    build_number: String,
    platform: String,
}

async fn run(sim: Arc<Sim>, upload_id: String, file_id: String) {
    webhooks::upload_state(&sim, &upload_id, "PROCESSING");
    let cfg = sim.cfg();
    tokio::time::sleep(cfg.processing_delay).await;
    let job = {
        let st = sim.lock();
        let (Some(u), Some(f)) = (st.uploads.get(&upload_id), st.files.get(&file_id)) else {
            return;
        };
        Job {
            spool: f.spool.clone(),
            checksum: f.checksum.clone(),
            size: f.size,
            bundle_id: st
                .app(&u.app_id)
                .map(|a| a.bundle_id.clone())
                .unwrap_or_default(),
            version: u.version.clone(),
            build_number: u.build_number.clone(),
            platform: u.platform.clone(),
        }
    };
    let verdict = tokio::task::spawn_blocking(move || verify(&job))
        .await
        .unwrap_or_else(|e| Err(vec![("INTERNAL".into(), e.to_string())]));
    match verdict {
        Ok(encryption) => complete(&sim, &upload_id, &file_id, encryption).await,
        Err(errors) => {
            {
                let mut st = sim.lock();
                if let Some(u) = st.uploads.get_mut(&upload_id) {
                    u.state = "FAILED".into();
                    u.errors = errors;
                }
                if let Some(f) = st.files.get_mut(&file_id) {
                    f.state = "FAILED".into();
                }
            }
            webhooks::upload_state(&sim, &upload_id, "FAILED");
        }
    }
}

fn hash_file(path: &std::path::Path, algorithm: &str) -> std::io::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut sha = sha2::Sha256::new();
    let mut md5 = md5::Md5::new();
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if algorithm == "MD5" {
            md5.update(&buf[..n])
        } else {
            sha.update(&buf[..n])
        }
    }
    Ok(if algorithm == "MD5" {
        hex::encode(md5.finalize())
    } else {
        hex::encode(sha.finalize())
    })
}

/// Ok(ITSAppUsesNonExemptEncryption) or the state errors.
fn verify(job: &Job) -> Result<Option<bool>, Vec<(String, String)>> {
    let err = |c: &str, d: String| vec![(c.to_string(), d)];
    if std::fs::metadata(&job.spool).map(|m| m.len()).unwrap_or(0) != job.size {
        return Err(err(
            "ASSET_SIZE_MISMATCH",
            "The uploaded file does not have the declared size.".into(),
        ));
    }
    if let Some((alg, want)) = &job.checksum {
        let got = hash_file(&job.spool, alg).map_err(|e| err("INTERNAL", e.to_string()))?;
        if !got.eq_ignore_ascii_case(want.trim()) {
            return Err(err(
                "CHECKSUM_MISMATCH",
                format!(
                    "The {alg} checksum of the uploaded file is {got}, but the commit declared {want}. The file was corrupted in transit; upload it again."
                ),
            ));
        }
    }
    let a = crate::archive::read(&job.spool).map_err(|e| {
        err(
            "INVALID_BINARY",
            format!("The uploaded file is not a valid app archive: {e}"),
        )
    })?;
    let mut errors = Vec::new();
    if a.bundle_id != job.bundle_id {
        errors.push((
            "BUNDLE_ID_MISMATCH".into(),
            format!(
                "The bundle identifier '{}' in Info.plist does not match the app's bundle ID '{}'.",
                a.bundle_id, job.bundle_id
            ),
        ));
    }
    if a.version != job.version {
        errors.push(("VERSION_MISMATCH".into(), format!("CFBundleShortVersionString '{}' in Info.plist does not match the declared version '{}'.", a.version, job.version)));
    }
    if a.build_number != job.build_number {
        errors.push((
            "BUILD_NUMBER_MISMATCH".into(),
            format!(
                "CFBundleVersion '{}' in Info.plist does not match the declared build number '{}'.",
                a.build_number, job.build_number
            ),
        ));
    }
    if a.platform.as_str() != job.platform {
        errors.push((
            "PLATFORM_MISMATCH".into(),
            format!(
                "The binary is for {}, but the upload declared {}.",
                a.platform, job.platform
            ),
        ));
    }
    if errors.is_empty() {
        Ok(a.uses_non_exempt_encryption)
    } else {
        Err(errors)
    }
}

async fn complete(sim: &Arc<Sim>, upload_id: &str, file_id: &str, encryption: Option<bool>) {
    let cfg = sim.cfg();
    let build_id = uuid();
    let delayed = !cfg.build_processing_delay.is_zero();
    {
        let mut st = sim.lock();
        let seq = st.next_seq();
        let Some(u) = st.uploads.get(upload_id).cloned() else {
            return;
        };
        let forced = st.forced.get(&u.build_number).cloned();
        if forced.as_deref() == Some("UPLOAD_FAILED") {
            if let Some(u) = st.uploads.get_mut(upload_id) {
                u.state = "FAILED".into();
                u.errors = vec![("ITMS-90000".into(), "Forced failure (simulator).".into())];
            }
            drop(st);
            webhooks::upload_state(sim, upload_id, "FAILED");
            return;
        }
        let b = BuildRec {
            id: build_id.clone(),
            seq,
            app_id: u.app_id.clone(),
            upload_id: u.id.clone(),
            version: u.build_number.clone(),
            short_version: u.version.clone(),
            platform: u.platform.clone(),
            processing_state: "PROCESSING".into(),
            uses_non_exempt_encryption: encryption,
            uploaded: sim.now(),
            groups: Default::default(),
            internal_state: "PROCESSING".into(),
            external_state: "PROCESSING".into(),
            auto_notify: true,
        };
        st.builds.insert(build_id.clone(), b);
        if !delayed {
            finish_build(&mut st, &build_id, forced, cfg.seed_feedback, sim.now());
        }
        if let Some(u) = st.uploads.get_mut(upload_id) {
            u.state = "COMPLETE".into();
            u.build_id = Some(build_id.clone());
        }
        if let Some(f) = st.files.get_mut(file_id) {
            f.state = "COMPLETE".into();
        }
    }
    webhooks::upload_state(sim, upload_id, "COMPLETE");
    if delayed {
        tokio::time::sleep(cfg.build_processing_delay).await;
        let mut st = sim.lock();
        let forced = st
            .builds
            .get(&build_id)
            .and_then(|b| st.forced.get(&b.version).cloned());
        finish_build(&mut st, &build_id, forced, cfg.seed_feedback, sim.now());
    }
}

fn finish_build(
    st: &mut super::state::State,
    build_id: &str,
    forced: Option<String>,
    seed_feedback: bool,
    now: jiff::Timestamp,
) {
    let Some(b) = st.builds.get_mut(build_id) else {
        return;
    };
    b.processing_state = match forced.as_deref() {
        Some("INVALID") => "INVALID".into(),
        Some("FAILED") => "FAILED".into(),
        _ => "VALID".into(),
    };
    let valid = b.processing_state == "VALID";
    if valid {
        b.internal_state = if b.uses_non_exempt_encryption.is_none() {
            "MISSING_EXPORT_COMPLIANCE".into()
        } else {
            "READY_FOR_BETA_TESTING".into()
        };
        b.external_state = if b.uses_non_exempt_encryption.is_none() {
            "MISSING_EXPORT_COMPLIANCE".into()
        } else {
            "READY_FOR_BETA_SUBMISSION".into()
        };
    } else {
        b.internal_state = "PROCESSING_EXCEPTION".into();
        b.external_state = "PROCESSING_EXCEPTION".into();
    }
    let (app_id, bid) = (b.app_id.clone(), b.id.clone());
    if valid && seed_feedback {
        add_feedback(st, &app_id, &bid, true, now);
        add_feedback(st, &app_id, &bid, false, now);
    }
}

/// A crash (with a log) or a screenshot submission for a build.
pub fn add_feedback(
    st: &mut super::state::State,
    app_id: &str,
    build_id: &str,
    crash: bool,
    created: jiff::Timestamp,
) -> String {
    let seq = st.next_seq();
    let id: String = uuid().replace('-', "")[..23].to_string();
    let log = crash.then(|| {
        format!("Incident Identifier: {}\nHardware Model:      iPhone16,1\nOS Version:          iPhone OS 18.1\nException Type:  EXC_CRASH (SIGABRT)\n\nThread 0 Crashed:\n0   libsystem_kernel.dylib  __pthread_kill + 8\n1   Example                 -[CheckoutViewController pay:] + 212\n", uuid())
    });
    let comment = if crash {
        "The app closed when I tapped Pay."
    } else {
        "The total is cut off on this screen."
    };
    st.feedback.push(Feedback {
        id: id.clone(),
        seq,
        app_id: app_id.into(),
        build_id: build_id.into(),
        crash,
        comment: comment.into(),
        created,
        crash_log: log,
        screenshots: if crash { 0 } else { 2 },
        device_model: "iPhone16,1".into(),
        os_version: "18.1".into(),
        platform: "IOS".into(),
        image: None,
        stale_list_urls: false,
    });
    id
}
