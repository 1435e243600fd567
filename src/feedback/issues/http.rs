//! The HTTP both issue trackers share: a token header, a User-Agent (GitHub
//! refuses requests without one), JSON bodies, paginated listing through the
//! `Link` header (or GitLab's `X-Next-Page`), bounded retries of reads, and
//! statuses turned into errors that name the repository and the variable
//! (never the token).

use crate::error::{Error, ExitKind};
use crate::secret::Secret;
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

pub const USER_AGENT: &str = concat!("flightdeck/", env!("CARGO_PKG_VERSION"));
const PER_PAGE_LIMIT: usize = 1000;

enum Body {
    Json(Value),
    Raw(String, Vec<u8>),
}

pub struct Http {
    client: reqwest::Client,
    header: &'static str,
    /// `Bearer ` for GitHub, empty for GitLab's token headers.
    prefix: &'static str,
    token: Secret,
    /// e.g. "GitHub repository acme/app", for errors.
    pub what: String,
    /// The variable the token came from, for errors.
    pub token_var: &'static str,
    extra: Vec<(&'static str, &'static str)>,
}

impl Http {
    pub fn new(
        header: &'static str,
        prefix: &'static str,
        token: Secret,
        what: String,
        token_var: &'static str,
        extra: Vec<(&'static str, &'static str)>,
    ) -> Result<Self, Error> {
        Ok(Self {
            client: crate::api::client::transfer_client()?,
            header,
            prefix,
            token,
            what,
            token_var,
            extra,
        })
    }

    async fn send_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(reqwest::header::HeaderMap, Value), Error> {
        self.send_raw(method, url, body.map(|b| Body::Json(b.clone())))
            .await
    }

    async fn send_raw(
        &self,
        method: Method,
        url: &str,
        body: Option<Body>,
    ) -> Result<(reqwest::header::HeaderMap, Value), Error> {
        let mut req = self
            .client
            .request(method, url)
            .header("user-agent", USER_AGENT)
            .header("accept", "application/json")
            .header(
                self.header,
                format!("{}{}", self.prefix, self.token.expose()),
            );
        for (k, v) in &self.extra {
            req = req.header(*k, *v);
        }
        match body {
            Some(Body::Json(b)) => req = req.json(&b),
            Some(Body::Raw(content_type, bytes)) => {
                req = req.header("content-type", content_type).body(bytes)
            }
            None => {}
        }
        let resp = req.send().await.map_err(|e| {
            Error::transient(format!(
                "{}: {}",
                self.what,
                crate::api::error::describe_transport(&e)
            ))
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(self.status_error(status.as_u16(), &text));
        }
        Ok((headers, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    fn status_error(&self, status: u16, body: &str) -> Error {
        let said = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .or(v.get("error"))
                    .map(|m| m.to_string().trim_matches('"').to_string())
            })
            .unwrap_or_default();
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {}", said.chars().take(200).collect::<String>())
        };
        let what = &self.what;
        let var = self.token_var;
        match status {
            401 => Error::new(
                ExitKind::Auth,
                format!("{what} refused the token in {var} (401){said}"),
            )
            .with_hint(format!("check that {var} is a valid, unexpired token")),
            403 => Error::new(
                ExitKind::Auth,
                format!("{what} refused access (403){said}"),
            )
            .with_hint(format!(
                "the token in {var} needs permission to read and write issues"
            )),
            404 | 410 => Error::input(format!(
                "{what} was not found ({status}){said}"
            ))
            .with_hint(format!(
                "check the name, that issues are enabled, and that the token in {var} can see it"
            )),
            429 | 500..=599 => Error::transient(format!("{what} answered {status}{said}")),
            _ => Error::rejected(format!("{what} answered {status}{said}")),
        }
    }

    /// A read, retried (briefly, bounded) on transient failures.
    pub async fn get(&self, url: &str) -> Result<(reqwest::header::HeaderMap, Value), Error> {
        let mut delay = Duration::from_millis(200);
        for attempt in 0.. {
            match self.send_once(Method::GET, url, None).await {
                Err(e) if e.kind == ExitKind::Transient && attempt < 3 => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                other => return other,
            }
        }
        unreachable!("the loop returns")
    }

    /// One file as `multipart/form-data` field `file` (GitLab's uploads), sent once.
    pub async fn upload(&self, url: &str, name: &str, bytes: &[u8]) -> Result<Value, Error> {
        let boundary = format!("flightdeck-{}", hex::encode(rand::random::<[u8; 12]>()));
        let safe: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .collect();
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let ct = format!("multipart/form-data; boundary={boundary}");
        self.send_raw(Method::POST, url, Some(Body::Raw(ct, body)))
            .await
            .map(|(_, v)| v)
    }

    /// A write, sent once: callers read back before any retry.
    pub async fn post(&self, url: &str, body: &Value) -> Result<Value, Error> {
        self.send_once(Method::POST, url, Some(body))
            .await
            .map(|(_, v)| v)
    }

    /// Every item of a paginated list, following `Link: <...>; rel="next"`
    /// (or `X-Next-Page` on GitLab).
    pub async fn get_all(&self, first: &str) -> Result<Vec<Value>, Error> {
        let mut out = Vec::new();
        let mut next = Some(first.to_string());
        let mut pages = 0;
        while let Some(url) = next.take() {
            let (headers, body) = self.get(&url).await?;
            out.extend(body.as_array().cloned().unwrap_or_default());
            pages += 1;
            if pages >= PER_PAGE_LIMIT {
                break;
            }
            next = headers
                .get("link")
                .and_then(|l| l.to_str().ok())
                .and_then(next_link)
                .or_else(|| {
                    let page = headers.get("x-next-page")?.to_str().ok()?.trim();
                    (!page.is_empty()).then(|| with_page(&url, page))
                });
        }
        Ok(out)
    }
}

/// The `rel="next"` URL of a Link header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// `url` with its `page` query parameter set to `page`.
pub fn with_page(url: &str, page: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("page="))
        .map(str::to_string)
        .collect();
    pairs.push(format!("page={page}"));
    format!("{base}?{}", pairs.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_give_the_next_page() {
        let h = r#"<https://api.github.com/repositories/1/issues?page=2>; rel="next", <https://api.github.com/repositories/1/issues?page=5>; rel="last""#;
        assert_eq!(
            next_link(h).as_deref(),
            Some("https://api.github.com/repositories/1/issues?page=2")
        );
        assert_eq!(next_link(r#"<https://x/?page=1>; rel="prev""#), None);
    }

    #[test]
    fn x_next_page_replaces_the_page_parameter() {
        assert_eq!(
            with_page(
                "http://h/api/v4/projects/7/issues?labels=a&page=1&per_page=100",
                "2"
            ),
            "http://h/api/v4/projects/7/issues?labels=a&per_page=100&page=2"
        );
    }
}
