//! What went wrong talking to App Store Connect, with Apple's own words kept.

use crate::error::{Detail, Error, ExitKind};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// One entry of Apple's `ErrorResponse.errors[]`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct AppleError {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
}

impl AppleError {
    /// `source.pointer` or `source.parameter`, where Apple says the problem is.
    pub fn source_text(&self) -> Option<String> {
        let s = self.source.as_ref()?;
        s.get("pointer")
            .or_else(|| s.get("parameter"))
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }
}

#[derive(Debug, Deserialize)]
struct ErrorDocument {
    #[serde(default)]
    errors: Vec<AppleError>,
}

/// What the caller can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiErrorKind {
    NotFound,
    Unauthorized,
    Forbidden,
    Conflict,
    /// 400 / 422 and other 4xx: the request was refused as sent.
    Invalid,
    RateLimited,
    /// 5xx, 408, connect failures, timeouts, dropped connections.
    Transient,
    /// A 2xx whose body did not match the expected shape.
    Decode,
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ApiErrorKind,
    pub status: Option<u16>,
    pub method: String,
    pub path: String,
    pub errors: Vec<AppleError>,
    pub retry_after: Option<Duration>,
    /// Transport or decode message when there is no Apple error document.
    pub message: String,
    /// True when the request may have reached the server (response lost).
    pub ambiguous: bool,
    /// True when no connection could be made at all (refused, DNS failure,
    /// connect timeout): the host was not reached.
    pub connect: bool,
}

impl ApiError {
    pub fn from_status(
        status: u16,
        method: &str,
        path: &str,
        body: &[u8],
        retry_after: Option<Duration>,
    ) -> Self {
        let errors = serde_json::from_slice::<ErrorDocument>(body)
            .map(|d| d.errors)
            .unwrap_or_default();
        let kind = match status {
            401 => ApiErrorKind::Unauthorized,
            403 => ApiErrorKind::Forbidden,
            404 => ApiErrorKind::NotFound,
            409 => ApiErrorKind::Conflict,
            429 => ApiErrorKind::RateLimited,
            408 | 500..=599 => ApiErrorKind::Transient,
            _ => ApiErrorKind::Invalid,
        };
        let message = if errors.is_empty() {
            String::from_utf8_lossy(&body[..body.len().min(300)])
                .trim()
                .to_string()
        } else {
            String::new()
        };
        Self {
            kind,
            status: Some(status),
            method: method.into(),
            path: path.into(),
            errors,
            retry_after,
            message,
            ambiguous: status >= 500,
            connect: false,
        }
    }

    pub fn transport(method: &str, path: &str, err: &reqwest::Error) -> Self {
        // A connect error means nothing reached the server; anything later may have.
        let ambiguous = !err.is_connect();
        Self {
            kind: ApiErrorKind::Transient,
            status: None,
            method: method.into(),
            path: path.into(),
            errors: Vec::new(),
            retry_after: None,
            message: describe_transport(err),
            ambiguous,
            connect: err.is_connect(),
        }
    }

    pub fn decode(method: &str, path: &str, message: String) -> Self {
        Self {
            kind: ApiErrorKind::Decode,
            status: Some(200),
            method: method.into(),
            path: path.into(),
            errors: Vec::new(),
            retry_after: None,
            message,
            ambiguous: false,
            connect: false,
        }
    }

    /// The host was never reached: name the URL so the reader can check it.
    pub fn unreachable(mut self, base: &str) -> Self {
        self.message = format!("cannot reach {base}: {}", self.message);
        self
    }

    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ApiErrorKind::Transient | ApiErrorKind::RateLimited
        )
    }

    /// Whether any of Apple's error codes starts with `prefix`.
    pub fn has_code(&self, prefix: &str) -> bool {
        self.errors.iter().any(|e| e.code.starts_with(prefix))
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)?;
        match self.status {
            Some(s) if self.kind != ApiErrorKind::Decode => write!(f, " answered {s}")?,
            _ => {}
        }
        for e in &self.errors {
            write!(f, ": {} ({})", e.title, e.code)?;
            if !e.detail.is_empty() && e.detail != e.title {
                write!(f, " - {}", e.detail)?;
            }
            if let Some(src) = e.source_text() {
                write!(f, " [at {src}]")?;
            }
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        let (kind, hint) = match e.kind {
            ApiErrorKind::Unauthorized => (
                ExitKind::Auth,
                Some(
                    "check ASC_KEY_ID and ASC_ISSUER_ID match the .p8 key, that the key is not revoked, and that the runner's clock is right",
                ),
            ),
            ApiErrorKind::Forbidden => (
                ExitKind::Auth,
                Some(
                    "the API key's role does not allow this; App Manager or Admin is needed for uploads and TestFlight",
                ),
            ),
            ApiErrorKind::NotFound => (
                ExitKind::Input,
                Some("check the id or bundle id, and that the API key's team owns the app"),
            ),
            ApiErrorKind::Conflict | ApiErrorKind::Invalid => (ExitKind::Rejected, None),
            ApiErrorKind::RateLimited => (
                ExitKind::Transient,
                Some(
                    "the API key's hourly request budget is spent; wait, or spread jobs across keys",
                ),
            ),
            ApiErrorKind::Transient if e.connect => (
                ExitKind::Transient,
                Some(
                    "check ASC_API_BASE_URL (unset it to use Apple's API), the runner's network, DNS and proxy settings",
                ),
            ),
            ApiErrorKind::Transient => (
                ExitKind::Transient,
                Some("App Store Connect or the network kept failing; re-run the job"),
            ),
            ApiErrorKind::Decode => (
                ExitKind::Transient,
                Some("App Store Connect answered in an unexpected shape; please report this"),
            ),
        };
        let details = e
            .errors
            .iter()
            .map(|a| Detail {
                code: a.code.clone(),
                message: format!("{} {}", a.title, a.detail).trim().into(),
            })
            .collect();
        let mut err = Error::new(kind, format!("App Store Connect: {e}"));
        err.details = details;
        if let Some(h) = hint {
            err = err.with_hint(h);
        }
        err
    }
}

/// A human description of a transport error, with its cause chain.
pub fn describe_transport(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut msg = if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "could not connect".to_string()
    } else {
        "connection failed".to_string()
    };
    let mut src = err.source();
    while let Some(s) = src {
        msg.push_str(&format!(": {s}"));
        src = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_apple_errors_and_maps_kinds() {
        let body = br#"{"errors":[{"status":"409","code":"ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE","title":"The provided entity includes an attribute with a value that has already been used","detail":"The bundle version must be higher than the previously uploaded version.","source":{"pointer":"/data/attributes/cfBundleVersion"}}]}"#;
        let e = ApiError::from_status(409, "POST", "/v1/buildUploads", body, None);
        assert_eq!(e.kind, ApiErrorKind::Conflict);
        assert!(e.has_code("ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE"));
        let text = e.to_string();
        assert!(
            text.contains("409") && text.contains("[at /data/attributes/cfBundleVersion]"),
            "{text}"
        );
        let err: Error = e.into();
        assert_eq!(err.exit_code(), 1);
        assert_eq!(
            err.details[0].code,
            "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE"
        );
    }

    #[test]
    fn status_classification() {
        let cases = [
            (401, ApiErrorKind::Unauthorized, 3),
            (403, ApiErrorKind::Forbidden, 3),
            (404, ApiErrorKind::NotFound, 2),
            (422, ApiErrorKind::Invalid, 1),
            (429, ApiErrorKind::RateLimited, 5),
            (500, ApiErrorKind::Transient, 5),
            (503, ApiErrorKind::Transient, 5),
            (408, ApiErrorKind::Transient, 5),
        ];
        for (status, kind, exit) in cases {
            let e = ApiError::from_status(status, "GET", "/v1/x", b"not json", None);
            assert_eq!(e.kind, kind, "{status}");
            assert_eq!(
                e.is_transient(),
                matches!(kind, ApiErrorKind::Transient | ApiErrorKind::RateLimited)
            );
            assert_eq!(Error::from(e).exit_code(), exit, "{status}");
        }
    }
}
