//! The one HTTP client for App Store Connect: base URL, bearer token,
//! timeouts, retries, rate-limit tracking, JSON:API decoding and paging.

use crate::api::error::{ApiError, ApiErrorKind};
use crate::api::ratelimit::RateLimit;
use crate::api::retry::RetryPolicy;
use crate::auth::TokenSource;
use bytes::Bytes;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.appstoreconnect.apple.com";
pub const USER_AGENT: &str = concat!("flightdeck/", env!("CARGO_PKG_VERSION"));

/// Whether a request can be repeated blindly after a lost response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// GET, PATCH, DELETE, relationship POSTs: repeating has the same effect.
    Safe,
    /// Creating POSTs: only retried when the request surely did not land
    /// (429, connect failure); callers reconcile the ambiguous cases.
    Unsafe,
}

pub struct Client {
    http: reqwest::Client,
    transfer: reqwest::Client,
    base: String,
    tokens: Arc<TokenSource>,
    retry: RetryPolicy,
    rate: Mutex<Option<RateLimit>>,
    /// Whether any request of this run got past connecting to `base`.
    reached: AtomicBool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

fn builder() -> reqwest::ClientBuilder {
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|c| reqwest::Certificate::from_der(c.as_ref()).ok());
    reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .connect_timeout(Duration::from_secs(15))
        .tcp_nodelay(true)
        .tls_certs_merge(roots)
}

/// Build an HTTP client for transfers that carry no App Store Connect token
/// (upload parts, screenshot downloads, webhook forwarding).
pub fn transfer_client() -> Result<reqwest::Client, crate::error::Error> {
    builder()
        .read_timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| {
            crate::error::Error::io("set up", "HTTPS", e)
                .with_hint("set SSL_CERT_FILE to a CA bundle")
        })
}

impl Client {
    pub fn new(
        base: &str,
        tokens: Arc<TokenSource>,
        retry: RetryPolicy,
    ) -> Result<Self, crate::error::Error> {
        let http = builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| {
                crate::error::Error::io("set up", "HTTPS", e)
                    .with_hint("set SSL_CERT_FILE to a CA bundle")
            })?;
        Ok(Self {
            http,
            transfer: transfer_client()?,
            base: base.trim_end_matches('/').to_string(),
            tokens,
            retry,
            rate: Mutex::new(None),
            reached: AtomicBool::new(false),
        })
    }

    /// The same client with another per-request timeout (API calls, and the
    /// read timeout of transfers): a request that hangs past it is a
    /// transient failure, retried like a dropped connection.
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, crate::error::Error> {
        let setup = |e| {
            crate::error::Error::io("set up", "HTTPS", e)
                .with_hint("set SSL_CERT_FILE to a CA bundle")
        };
        self.http = builder().timeout(timeout).build().map_err(setup)?;
        self.transfer = builder().read_timeout(timeout).build().map_err(setup)?;
        Ok(self)
    }

    /// Client for presigned URLs: never sends the App Store Connect token.
    pub fn transfer(&self) -> &reqwest::Client {
        &self.transfer
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The latest `X-Rate-Limit` reading, if Apple sent one.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        *self.rate.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    /// One attempt: send, record the rate limit, map non-2xx to `ApiError`.
    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes), ApiError> {
        let token = self.tokens.token();
        let mut auth =
            HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                ApiError::decode(method.as_str(), path, "token is not a valid header".into())
            })?;
        auth.set_sensitive(true);
        let mut req = self
            .http
            .request(method.clone(), self.url(path))
            .header(AUTHORIZATION, auth)
            .header(ACCEPT, "application/json");
        if let Some(b) = body {
            req = req
                .header(CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(b).unwrap_or_default());
        }
        let resp = req.send().await.map_err(|e| {
            let e = ApiError::transport(method.as_str(), path, &e);
            if !e.connect {
                self.reached.store(true, Ordering::Relaxed);
            }
            e
        })?;
        self.reached.store(true, Ordering::Relaxed);
        let status = resp.status();
        if let Some(rl) = resp
            .headers()
            .get("x-rate-limit")
            .and_then(|v| v.to_str().ok())
            .and_then(RateLimit::parse)
        {
            *self.rate.lock().unwrap_or_else(|p| p.into_inner()) = Some(rl);
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ApiError::transport(method.as_str(), path, &e))?;
        if status.is_success() {
            Ok((status, bytes))
        } else {
            Err(ApiError::from_status(
                status.as_u16(),
                method.as_str(),
                path,
                &bytes,
                retry_after,
            ))
        }
    }

    /// Send with the retry policy. `Unsafe` requests are retried only when the
    /// server surely did not act on them. While the host has never been
    /// reached, connect failures get the short first-contact policy and end
    /// with an error naming the URL; once it has, the normal budget applies.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idem: Idempotency,
    ) -> Result<Bytes, ApiError> {
        match self.send_retried(method.clone(), path, body, idem).await {
            // Apple answers 401 to a token that expired mid-run (a clock
            // jump, a long upload): sign a fresh one and try once more. The
            // request was refused, so even a non-idempotent one is safe.
            Err(e) if e.kind == ApiErrorKind::Unauthorized => {
                tracing::warn!(
                    "{method} {}: 401 NOT_AUTHORIZED, retrying once with a new token",
                    strip_query(path)
                );
                self.tokens.invalidate();
                self.send_retried(method, path, body, idem).await
            }
            other => other,
        }
    }

    async fn send_retried(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idem: Idempotency,
    ) -> Result<Bytes, ApiError> {
        let what = format!("{method} {}", strip_query(path));
        let attempt = || async { self.send_once(&method, path, body).await.map(|(_, b)| b) };
        let retryable = |e: &ApiError| match idem {
            Idempotency::Safe => e.is_transient(),
            Idempotency::Unsafe => {
                e.kind == ApiErrorKind::RateLimited || (e.is_transient() && !e.ambiguous)
            }
        };
        if !self.reached.load(Ordering::Relaxed) {
            let first = self.retry.first_contact();
            match first.run(&what, attempt, |e| e.connect).await {
                Ok(b) => return Ok(b),
                Err(e) if e.connect => return Err(e.unreachable(&self.base)),
                Err(e) if !retryable(&e) => return Err(e),
                // Reached, but with a failure that can heal: the normal budget.
                Err(_) => {}
            }
        }
        self.retry.run(&what, attempt, retryable).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let body = self
            .send(Method::GET, path, None, Idempotency::Safe)
            .await?;
        decode("GET", path, &body)
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
        idem: Idempotency,
    ) -> Result<T, ApiError> {
        let bytes = self.send(Method::POST, path, Some(body), idem).await?;
        decode("POST", path, &bytes)
    }

    /// POST that answers 204 (relationship changes).
    pub async fn post_no_content(&self, path: &str, body: &Value) -> Result<(), ApiError> {
        self.send(Method::POST, path, Some(body), Idempotency::Safe)
            .await
            .map(|_| ())
    }

    pub async fn patch<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, ApiError> {
        let bytes = self
            .send(Method::PATCH, path, Some(body), Idempotency::Safe)
            .await?;
        decode("PATCH", path, &bytes)
    }

    pub async fn delete(&self, path: &str) -> Result<(), ApiError> {
        self.send(Method::DELETE, path, None, Idempotency::Safe)
            .await
            .map(|_| ())
    }

    /// Every item of a paged list, following `links.next` exactly as given.
    /// Included resources of all pages are returned alongside.
    pub async fn get_all<T: DeserializeOwned>(&self, path: &str) -> Result<Paged<T>, ApiError> {
        let mut out = Paged {
            data: Vec::new(),
            included: Vec::new(),
        };
        let mut next = Some(path.to_string());
        let mut pages = 0;
        while let Some(p) = next.take() {
            let page: crate::api::models::ListDocument<T> = self.get(&p).await?;
            out.data.extend(page.data);
            out.included.extend(page.included);
            pages += 1;
            next = page
                .links
                .and_then(|l| l.next)
                .filter(|n| !n.is_empty() && pages < 1000);
        }
        Ok(out)
    }
}

/// All pages of a list.
#[derive(Debug)]
pub struct Paged<T> {
    pub data: Vec<T>,
    pub included: Vec<Value>,
}

/// Decode a body, naming the JSON path that did not match.
pub fn decode<T: DeserializeOwned>(method: &str, path: &str, body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        ApiError::decode(
            method,
            path,
            format!(
                "unexpected response at JSON path `{}`: {}",
                e.path(),
                e.inner()
            ),
        )
    })
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<f64>() {
        // Capped: the retry policy caps waits anyway, and huge values must not overflow.
        return (secs >= 0.0 && secs.is_finite())
            .then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = jiff::fmt::rfc2822::parse(v.trim()).ok()?.timestamp();
    let d = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(d).unwrap_or(Duration::ZERO))
}

fn strip_query(path: &str) -> &str {
    path.split('?').next().unwrap_or(path)
}

/// Percent-encode a query value (RFC 3986 unreserved characters stay).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?k=v&k=v` with values encoded; keys such as `filter[app]` are kept as Apple writes them.
pub fn with_query(path: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", encode(v)))
        .collect();
    format!("{path}?{}", q.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(
            parse_retry_after("1e300"),
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            with_query(
                "/v1/apps",
                &[("filter[bundleId]", "com.example.app"), ("limit", "200")]
            ),
            "/v1/apps?filter[bundleId]=com.example.app&limit=200"
        );
        assert_eq!(encode("a b&c/é"), "a%20b%26c%2F%C3%A9");
    }

    #[test]
    fn decode_names_the_json_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            data: Vec<Inner>,
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            id: String,
        }
        let e = decode::<T>("GET", "/v1/x", br#"{"data":[{"id":"1"},{"id":7}]}"#).unwrap_err();
        assert!(e.message.contains("`data[1].id`"), "{}", e.message);
    }
}
