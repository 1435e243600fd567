//! Fetching: list submissions newest first with the scope's filters (stopping
//! at the first page that reaches past the cutoff), turn each into an index
//! entry, and save what DIR lacks: the crash log, each screenshot (checked
//! against its Content-Length, fetched again once when short, and through a
//! fresh URL from the API once when the listed one has expired).

use super::index::{Entry, FileRec};
use super::{Kind, Scope, signature};
use crate::api::Client;
use crate::api::error::{ApiError, ApiErrorKind};
use crate::api::models::Resource;
use crate::api::resources as r;
use crate::error::Error;
use serde_json::Value;
use sha2::Digest;
use std::path::Path;

/// A listed submission as an entry (nothing saved yet).
pub fn entry(kind: Kind, s: &Resource<Value>, included: &[Value]) -> Entry {
    let attrs = s.attributes.clone().unwrap_or(Value::Null);
    let text = |k: &str| attrs.get(k).and_then(Value::as_str).map(str::to_string);
    let build_id = s
        .relationships
        .as_ref()
        .and_then(|r| r.get("build")?.get("data")?.get("id")?.as_str())
        .map(str::to_string);
    let build = build_id.as_ref().and_then(|b| {
        included
            .iter()
            .find(|i| i["type"] == "builds" && i["id"].as_str() == Some(b))
            .and_then(|i| i["attributes"]["version"].as_str())
            .map(str::to_string)
    });
    let image_urls: Vec<String> = screenshot_urls(&attrs);
    Entry {
        id: s.id.clone(),
        kind,
        created: text("createdDate"),
        build_id,
        build,
        device_model: text("deviceModel"),
        os_version: text("osVersion"),
        platform: text("appPlatform"),
        comment: text("comment"),
        dir: safe(&s.id),
        files: Vec::new(),
        expected_screenshots: image_urls.len(),
        image_urls,
        ..Entry::default()
    }
}

fn screenshot_urls(attrs: &Value) -> Vec<String> {
    attrs
        .get("screenshots")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("url").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// A path component from an id Apple chose (never trusted as a path).
pub fn safe(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A listed submission: its entry and the resource as App Store Connect sent it.
#[derive(Debug, Clone)]
pub struct Listed {
    pub entry: Entry,
    pub raw: Resource<Value>,
}

/// Every submission of both kinds in scope, newest first per kind.
pub async fn list(api: &Client, scope: &Scope) -> Result<Vec<Listed>, Error> {
    let mut out = Vec::new();
    for kind in [Kind::Crash, Kind::Screenshot] {
        let mut next = Some(r::feedback_list_path(
            &scope.app_id,
            kind.resource(),
            &scope.filter,
        ));
        while let Some(path) = next.take() {
            let page = r::feedback_page(api, &path).await?;
            let mut reached_cutoff = false;
            for s in &page.data {
                if !scope
                    .filter
                    .matches(s.attributes.as_ref().unwrap_or(&Value::Null))
                {
                    continue;
                }
                let e = entry(kind, s, &page.included);
                if scope.before_cutoff(&e) {
                    reached_cutoff = true;
                    continue;
                }
                out.push(Listed {
                    entry: e,
                    raw: s.clone(),
                });
            }
            if !reached_cutoff {
                next = page.links.and_then(|l| l.next).filter(|n| !n.is_empty());
            }
        }
    }
    Ok(out)
}

/// Write `bytes` unless the file already holds exactly them; true when written.
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> std::io::Result<bool> {
    if let Ok(m) = std::fs::metadata(path)
        && m.len() == bytes.len() as u64
        && std::fs::read(path).is_ok_and(|old| old == bytes)
    {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("part");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(true)
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::io("write", path.display(), e).with_hint("check the `out` directory is writable")
}

/// What saving one submission did.
#[derive(Debug, Default)]
pub struct Saved {
    pub files_written: usize,
    pub bytes_downloaded: u64,
    pub warnings: Vec<String>,
}

/// Save what `out/<entry.dir>` lacks, recording each file in `e`.
pub async fn save(
    api: &Client,
    e: &mut Entry,
    out: &Path,
    full: Option<&Resource<Value>>,
) -> Result<Saved, Error> {
    let dir = out.join(&e.dir);
    let mut saved = Saved::default();
    if let Some(s) = full {
        if e.image_urls.is_empty() {
            e.image_urls = screenshot_urls(s.attributes.as_ref().unwrap_or(&Value::Null));
        }
        let doc = serde_json::json!({"id": s.id, "type": s.kind,
            "attributes": without_urls(s.attributes.clone().unwrap_or(Value::Null)),
            "relationships": s.relationships});
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        keep(e, &dir, "submission.json", text.as_bytes(), &mut saved)?;
    }
    let damaged = e.damaged(out);
    match e.kind {
        Kind::Crash => {
            let have = e.files.iter().any(|f| f.name == "crash.log");
            let wanted = !have || damaged.iter().any(|d| d == "crash.log");
            let log = if wanted {
                match r::crash_log(api, &e.id).await {
                    Ok(log) => log,
                    // Deleted since it was listed: keep what there is, say so.
                    Err(err) if err.kind == ApiErrorKind::NotFound => {
                        saved
                            .warnings
                            .push(format!("crash log of feedback {}: no longer exists", e.id));
                        None
                    }
                    Err(err) => return Err(err.into()),
                }
            } else {
                None
            };
            if let Some(text) = log {
                saved.bytes_downloaded += text.len() as u64;
                keep(e, &dir, "crash.log", text.as_bytes(), &mut saved)?;
                if let Some(sig) = signature::of(&text) {
                    e.signature_title = Some(sig.title());
                    e.signature = Some(sig.key);
                    e.frames = sig.frames;
                }
            }
        }
        Kind::Screenshot => save_screenshots(api, e, &dir, &damaged, &mut saved).await?,
    }
    Ok(saved)
}

/// Keep a file: write when changed, record name, size and hash.
fn keep(e: &mut Entry, dir: &Path, name: &str, bytes: &[u8], s: &mut Saved) -> Result<(), Error> {
    let p = dir.join(name);
    if write_if_changed(&p, bytes).map_err(|err| io_err(&p, err))? {
        s.files_written += 1;
    }
    e.record(FileRec {
        name: name.into(),
        size: bytes.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
    });
    Ok(())
}

/// The attributes without the presigned URLs (they change on every listing).
fn without_urls(mut attrs: Value) -> Value {
    if let Some(shots) = attrs.get_mut("screenshots").and_then(Value::as_array_mut) {
        for s in shots {
            if let Some(o) = s.as_object_mut() {
                o.remove("url");
                o.remove("expirationDate");
            }
        }
    }
    attrs
}

async fn save_screenshots(
    api: &Client,
    e: &mut Entry,
    dir: &Path,
    damaged: &[String],
    saved: &mut Saved,
) -> Result<(), Error> {
    let mut urls = e.image_urls.clone();
    let mut refreshed = false;
    for n in 0..e.expected_screenshots {
        let prefix = format!("screenshot-{}.", n + 1);
        let present = e.files.iter().any(|f| f.name.starts_with(&prefix));
        if present && !damaged.iter().any(|d| d.starts_with(&prefix)) {
            continue;
        }
        if urls.get(n).is_none() && !refreshed {
            urls = fresh_urls(api, &e.id).await?;
            refreshed = true;
        }
        let Some(url) = urls.get(n).cloned() else {
            saved.warnings.push(format!(
                "screenshot {} of feedback {}: App Store Connect gave no URL",
                n + 1,
                e.id
            ));
            continue;
        };
        let mut got = download(api, &url).await;
        if matches!(got, Err(Failure::Expired(_))) && !refreshed {
            urls = fresh_urls(api, &e.id).await?;
            refreshed = true;
            if let Some(u) = urls.get(n) {
                got = download(api, u).await;
            }
        }
        match got {
            Ok((bytes, ext)) => {
                saved.bytes_downloaded += bytes.len() as u64;
                let name = format!("screenshot-{}.{ext}", n + 1);
                keep(e, dir, &name, &bytes, saved)?;
            }
            Err(f) => saved.warnings.push(format!(
                "screenshot {} of feedback {}: {}",
                n + 1,
                e.id,
                f.message()
            )),
        }
    }
    Ok(())
}

/// Fresh presigned URLs: the submission fetched again through the API.
async fn fresh_urls(api: &Client, id: &str) -> Result<Vec<String>, Error> {
    let doc = r::get_feedback(api, Kind::Screenshot.resource(), id).await?;
    Ok(screenshot_urls(&doc.data.attributes.unwrap_or(Value::Null)))
}

#[derive(Debug)]
enum Failure {
    /// 401/403/410: the presigned URL expired (or was refused).
    Expired(String),
    Other(String),
}

impl Failure {
    fn message(&self) -> &str {
        match self {
            Failure::Expired(m) | Failure::Other(m) => m,
        }
    }
}

/// What error messages call a presigned URL (its query is a credential).
const SHOT: &str = "a screenshot URL";

/// Fetch a presigned screenshot URL (no App Store Connect token), with the
/// client's retry policy for 5xx, 429 (Retry-After honoured), broken
/// connections and a body shorter than its Content-Length.
async fn download(api: &Client, url: &str) -> Result<(bytes::Bytes, &'static str), Failure> {
    api.retry_policy()
        .run(
            "GET screenshot",
            || download_once(api, url),
            ApiError::is_transient,
        )
        .await
        .map_err(|e| match e.status {
            Some(s @ (401 | 403 | 410)) => {
                Failure::Expired(format!("download answered {s} (the URL has expired)"))
            }
            Some(s) => Failure::Other(format!("download answered {s}")),
            None => Failure::Other(format!("download failed: {}", e.message)),
        })
}

async fn download_once(api: &Client, url: &str) -> Result<(bytes::Bytes, &'static str), ApiError> {
    let resp = api
        .transfer()
        .get(url)
        .send()
        .await
        .map_err(|e| ApiError::transport("GET", SHOT, &e))?;
    let status = resp.status();
    if !status.is_success() {
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(crate::api::client::parse_retry_after);
        return Err(ApiError::from_status(
            status.as_u16(),
            "GET",
            SHOT,
            b"",
            retry_after,
        ));
    }
    let ext = match resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
    {
        Some(t) if t.contains("jpeg") => "jpg",
        _ => "png",
    };
    let expected = resp.content_length();
    let bytes = resp.bytes().await.map_err(|e| {
        let mut err = ApiError::transport("GET", SHOT, &e);
        err.message = format!("ended early: {}", err.message);
        err
    })?;
    match expected {
        Some(n) if n != bytes.len() as u64 => {
            let mut err = ApiError::decode("GET", SHOT, String::new());
            err.kind = ApiErrorKind::Transient;
            err.status = None;
            err.message = format!("truncated: {} of {n} bytes", bytes.len());
            Err(err)
        }
        _ => Ok((bytes, ext)),
    }
}
