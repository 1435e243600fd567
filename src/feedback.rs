//! `flightdeck feedback` and the pipeline's `feedback` step: TestFlight crash
//! submissions (with their crash logs) and screenshot submissions (with their
//! images, which expire, so they are fetched at once) written to files.
//!
//! Layout: `<out>/<submission id>/feedback.json`, `crash.log`,
//! `screenshot-<n>.<ext>`, and `<out>/index.json` listing everything.

use crate::api::error::ApiError;
use crate::api::models::Resource;
use crate::api::resources as r;
use crate::context::Ctx;
use crate::error::Error;
use crate::plan::Since;
use serde::Serialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: String,
    pub kind: &'static str,
    pub created: Option<String>,
    pub comment: Option<String>,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Pulled {
    pub dir: PathBuf,
    pub count: usize,
    pub crashes: usize,
    pub screenshots: usize,
    pub items: Vec<Item>,
}

pub fn cutoff(since: &Option<Since>, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    match since {
        Some(Since::Ago(d)) => Some(now - jiff::SignedDuration::try_from(*d).unwrap_or_default()),
        Some(Since::At(t)) => t.parse().ok(),
        None => None,
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::io("write", path.display(), e).with_hint("check the `out` directory is writable")
}

pub async fn run(
    ctx: &Ctx,
    app_id: &str,
    build_id: Option<&str>,
    since: &Option<Since>,
    out: &Path,
) -> Result<Pulled, Error> {
    let cutoff = cutoff(since, jiff::Timestamp::now());
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let mut items = Vec::new();
    for (kind, crash) in [
        ("betaFeedbackCrashSubmissions", true),
        ("betaFeedbackScreenshotSubmissions", false),
    ] {
        let list = r::list_feedback(&ctx.api, app_id, kind, build_id).await?;
        for s in list {
            let created = s
                .attributes
                .as_ref()
                .and_then(|a| a.get("createdDate"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if let (Some(c), Some(cut)) = (
                created
                    .as_deref()
                    .and_then(|c| c.parse::<jiff::Timestamp>().ok()),
                cutoff,
            ) && c < cut
            {
                continue;
            }
            items.push(save(ctx, &s, crash, out).await?);
        }
    }
    let crashes = items.iter().filter(|i| i.kind == "crash").count();
    let index = out.join("index.json");
    std::fs::write(
        &index,
        serde_json::to_string_pretty(&items).unwrap_or_default(),
    )
    .map_err(|e| io_err(&index, e))?;
    Ok(Pulled {
        dir: out.to_path_buf(),
        count: items.len(),
        crashes,
        screenshots: items.len() - crashes,
        items,
    })
}

/// A path component from an id Apple chose (never trusted as a path).
fn safe(id: &str) -> String {
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

async fn save(ctx: &Ctx, s: &Resource<Value>, crash: bool, out: &Path) -> Result<Item, Error> {
    let dir = out.join(safe(&s.id));
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
    let attrs = s.attributes.clone().unwrap_or(Value::Null);
    let meta = dir.join("feedback.json");
    let doc = serde_json::json!({"id": s.id, "type": s.kind, "attributes": attrs, "relationships": s.relationships});
    std::fs::write(
        &meta,
        serde_json::to_string_pretty(&doc).unwrap_or_default(),
    )
    .map_err(|e| io_err(&meta, e))?;
    let mut files = vec!["feedback.json".to_string()];
    if crash {
        if let Some(text) = r::crash_log(&ctx.api, &s.id).await? {
            let p = dir.join("crash.log");
            std::fs::write(&p, text).map_err(|e| io_err(&p, e))?;
            files.push("crash.log".into());
        }
    } else {
        for (n, shot) in attrs
            .get("screenshots")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(url) = shot.get("url").and_then(Value::as_str) else {
                continue;
            };
            match screenshot(ctx, &s.id, n, url).await {
                Ok((bytes, ext)) => {
                    let name = format!("screenshot-{}.{ext}", n + 1);
                    let p = dir.join(&name);
                    std::fs::write(&p, bytes).map_err(|e| io_err(&p, e))?;
                    files.push(name);
                }
                Err(e) => ctx
                    .ci
                    .warning(format!("screenshot {} of feedback {}: {e}", n + 1, s.id)),
            }
        }
    }
    Ok(Item {
        id: s.id.clone(),
        kind: if crash { "crash" } else { "screenshot" },
        created: attrs
            .get("createdDate")
            .and_then(Value::as_str)
            .map(str::to_string),
        comment: attrs
            .get("comment")
            .and_then(Value::as_str)
            .map(str::to_string),
        files,
    })
}

/// Download screenshot `n` of a submission, retrying transient failures;
/// a URL that expired (403) is refetched once from the submission.
async fn screenshot(
    ctx: &Ctx,
    id: &str,
    n: usize,
    url: &str,
) -> Result<(bytes::Bytes, &'static str), String> {
    match download(ctx, url).await {
        Err(e) if e.status == Some(403) => {
            tracing::info!(
                "screenshot {} of feedback {id}: URL expired, fetching a new one",
                n + 1
            );
            let fresh = r::get_feedback(&ctx.api, "betaFeedbackScreenshotSubmissions", id)
                .await
                .map_err(|e| e.to_string())?;
            let url = fresh
                .attributes
                .as_ref()
                .and_then(|a| a.get("screenshots")?.get(n)?.get("url")?.as_str())
                .ok_or("the submission no longer lists this screenshot")?
                .to_string();
            download(ctx, &url).await
        }
        other => other,
    }
    .map_err(|e| match e.status {
        Some(s) => format!("download answered {s} (the URL may have expired)"),
        None => e.to_string(),
    })
}

/// Fetch a presigned screenshot URL (no App Store Connect token), with the
/// client's retry policy for 5xx, 429 and broken connections.
async fn download(ctx: &Ctx, url: &str) -> Result<(bytes::Bytes, &'static str), ApiError> {
    let policy = ctx.api.retry_policy();
    policy
        .run(
            "GET screenshot",
            || download_once(ctx, url),
            ApiError::is_transient,
        )
        .await
}

/// What error messages call a presigned URL (its query is a credential).
const SHOT: &str = "a screenshot URL";

async fn download_once(ctx: &Ctx, url: &str) -> Result<(bytes::Bytes, &'static str), ApiError> {
    let resp = ctx
        .api
        .transfer()
        .get(url)
        .send()
        .await
        .map_err(|e| ApiError::transport("GET", SHOT, &e))?;
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::api::client::parse_retry_after);
    let ext = match resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
    {
        Some(t) if t.contains("jpeg") => "jpg",
        _ => "png",
    };
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| ApiError::transport("GET", SHOT, &e))?;
    if !status.is_success() {
        return Err(ApiError::from_status(
            status.as_u16(),
            "GET",
            SHOT,
            b"",
            retry_after,
        ));
    }
    Ok((bytes, ext))
}
