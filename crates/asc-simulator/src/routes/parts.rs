//! Upload part URLs, behaving like presigned object-storage URLs: no
//! `Authorization` allowed, a signature and expiry in the query, the exact
//! length required, the bytes written at the part's offset, an ETag back.

use super::{Q, S};
use crate::faults::{Fault, Kind, Scope};
use crate::jsonapi::param;
use crate::state::part_signature;
use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

fn s3_error(status: StatusCode, code: &str, message: &str) -> Response {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [("content-type", "application/xml")], xml).into_response()
}

pub async fn put(
    sim: S,
    Path((file_id, part)): Path<(String, u64)>,
    q: Q,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = format!("/_upload/{file_id}/{part}");
    let resp = put_part(&sim, &file_id, part, &q, &headers, body).await;
    sim.lock().log.push(crate::state::Logged {
        method: "PUT".into(),
        path,
        status: resp.status().as_u16(),
    });
    resp
}

/// A response whose body breaks: to the client, a connection dropped mid-reply.
fn dropped() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("fault: connection dropped"))
    });
    let mut r = Response::new(Body::from_stream(stream));
    *r.status_mut() = StatusCode::BAD_GATEWAY;
    r.headers_mut().insert(
        "content-length",
        axum::http::HeaderValue::from_static("100"),
    );
    r
}

async fn put_part(
    sim: &S,
    file_id: &str,
    part: u64,
    q: &crate::jsonapi::Query,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    if headers.contains_key("authorization") {
        return s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed; the URL is presigned, do not send an Authorization header",
        );
    }
    let expires: i64 = param(q, "expires")
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    if param(q, "sig") != Some(part_signature(file_id, part, expires, &sim.url_secret).as_str()) {
        return s3_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided",
        );
    }
    if expires <= sim.now().as_second() {
        return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let (offset, length, spool) = {
        let st = sim.lock();
        let Some(f) = st.files.get(file_id) else {
            return s3_error(
                StatusCode::NOT_FOUND,
                "NoSuchUpload",
                "The specified upload does not exist",
            );
        };
        if f.state != "AWAITING_UPLOAD" {
            return s3_error(
                StatusCode::CONFLICT,
                "InvalidState",
                "The file was already committed",
            );
        }
        let Some(p) = f.parts.iter().find(|p| p.number == part) else {
            return s3_error(StatusCode::NOT_FOUND, "NoSuchPart", "No such part");
        };
        (p.offset, p.length, f.spool.clone())
    };
    let declared: Option<u64> = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|d| d != length) {
        return s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &format!("Content-Length must be {length} for this part"),
        );
    }
    let aimed = sim.faults.targeted("PUT", "/_upload/{file}/{part}");
    match aimed {
        Some(Kind::ServerError) => {
            return s3_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "SlowDown",
                "Please reduce your request rate. (injected)",
            );
        }
        Some(Kind::RateLimited) => {
            let mut r = s3_error(
                StatusCode::TOO_MANY_REQUESTS,
                "SlowDown",
                "Please reduce your request rate. (injected)",
            );
            let secs = sim.faults.get().retry_after_secs.max(1);
            r.headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from(secs));
            return r;
        }
        Some(Kind::RateLimitedBare) => {
            return s3_error(
                StatusCode::TOO_MANY_REQUESTS,
                "SlowDown",
                "Please reduce your request rate. (injected)",
            );
        }
        Some(Kind::DropBefore) => return dropped(),
        Some(Kind::ExpiredToken) => {
            return s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
        }
        Some(Kind::Hang) => tokio::time::sleep(sim.faults.hang()).await,
        Some(Kind::DropAfter) | None => {}
    }
    let fault = match aimed {
        Some(_) => None,
        None => sim.faults.next(Scope::Part),
    };
    let slow = sim.faults.get().part_slow_ms;
    if slow > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(slow)).await;
    }
    if fault == Some(Fault::Stall) {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    if fault == Some(Fault::ServerError) {
        return s3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "We encountered an internal error. Please try again. (injected)",
        );
    }
    let cut_at = (fault == Some(Fault::Drop)).then_some(length / 2);
    let written = match write_at(sim, &spool, offset, length, body, cut_at).await {
        Ok(n) => n,
        Err(_) if cut_at.is_some() => return dropped(),
        Err(e) => return s3_error(StatusCode::BAD_REQUEST, "IncompleteBody", &e),
    };
    if written != length {
        return s3_error(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            &format!("received {written} of {length} bytes"),
        );
    }
    let etag = format!(
        "\"{}\"",
        &part_signature(file_id, part, written as i64, "etag")[..32].to_uppercase()
    );
    {
        let mut st = sim.lock();
        if let Some(p) = st
            .files
            .get_mut(file_id)
            .and_then(|f| f.parts.iter_mut().find(|p| p.number == part))
        {
            p.etag = Some(etag.trim_matches('"').to_string());
        }
    }
    if aimed == Some(Kind::DropAfter) {
        return dropped();
    }
    (StatusCode::OK, [("etag", etag)]).into_response()
}

/// Bytes gathered from the body before one positioned write to the spool.
const BATCH: usize = 1 << 20;

/// Stream the body into the spool file at `offset`; `cut_at` simulates a
/// connection dropped after that many bytes. The body's buffers are written
/// as they are (no copy), a batch at a time, with positioned writes on the
/// blocking pool.
async fn write_at(
    sim: &S,
    spool: &std::path::Path,
    offset: u64,
    length: u64,
    body: Body,
    cut_at: Option<u64>,
) -> Result<u64, String> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(spool)
        .map_err(|e| e.to_string())?;
    let file = std::sync::Arc::new(file);
    let mut stream = body.into_data_stream();
    let (mut n, mut written) = (0u64, 0u64);
    let mut batch: Vec<axum::body::Bytes> = Vec::new();
    let mut batched = 0usize;
    let flush = |batch: Vec<axum::body::Bytes>, at: u64| {
        let file = file.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut at = at;
                for b in &batch {
                    file.write_all_at(b, at)?;
                    at += b.len() as u64;
                }
                Ok::<_, std::io::Error>(())
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
        }
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("body ended early: {e}"))?;
        if n + chunk.len() as u64 > length {
            return Err(format!("more than the part's {length} bytes were sent"));
        }
        sim.link.pass(chunk.len()).await;
        n += chunk.len() as u64;
        batched += chunk.len();
        batch.push(chunk);
        if let Some(cut) = cut_at
            && n >= cut
        {
            return Err("connection dropped (injected)".into());
        }
        if batched >= BATCH {
            flush(std::mem::take(&mut batch), offset + written).await?;
            written = n;
            batched = 0;
        }
    }
    if !batch.is_empty() {
        flush(batch, offset + written).await?;
    }
    Ok(n)
}

/// A raw sink on the same machinery (disk write), for comparing flightdeck
/// with `curl -T` in the benchmark.
pub async fn sink(sim: S, headers: HeaderMap, body: Body) -> Response {
    let length: u64 = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    let path = sim.spool.join("sink.bin");
    if let Err(e) = tokio::fs::File::create(&path).await {
        return s3_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &e.to_string(),
        );
    }
    match write_at(&sim, &path, 0, length, body, None).await {
        Ok(n) => (StatusCode::OK, format!("{n}\n")).into_response(),
        Err(e) => s3_error(StatusCode::BAD_REQUEST, "IncompleteBody", &e),
    }
}
