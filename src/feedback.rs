//! `flightdeck feedback` and the pipeline's `feedback` step: TestFlight crash
//! submissions (with their crash logs) and screenshot submissions (with their
//! images, which expire, so they are fetched at once) written to files.
//!
//! Layout: `<out>/<submission id>/feedback.json`, `crash.log`,
//! `screenshot-<n>.<ext>`, and `<out>/index.json` listing everything.

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
            match download(ctx, url).await {
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

/// Fetch a presigned screenshot URL (no App Store Connect token).
async fn download(ctx: &Ctx, url: &str) -> Result<(bytes::Bytes, &'static str), String> {
    let resp = ctx
        .api
        .transfer()
        .get(url)
        .send()
        .await
        .map_err(|e| crate::api::error::describe_transport(&e))?;
    if !resp.status().is_success() {
        return Err(format!(
            "download answered {} (the URL may have expired)",
            resp.status()
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
    resp.bytes()
        .await
        .map(|b| (b, ext))
        .map_err(|e| e.to_string())
}
