//! App Store Connect webhooks on the receiving side: signature verification,
//! lenient payload parsing, and an HTTP receiver (used by `wait` and by
//! `webhooks listen`) that accepts a delivery as a POST to any path and
//! answers 2xx only to a verified one.

pub mod receiver;
pub mod writes;

use serde_json::Value;

pub const SIGNATURE_HEADER: &str = "x-apple-signature";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no x-apple-signature header")]
    Unsigned,
    #[error("x-apple-signature is not of the form hmacsha256=<hex>")]
    BadHeader,
    #[error("the signature does not match the body and secret")]
    Mismatch,
}

/// Check `hmacsha256=<hex>` over the raw body, in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), Rejection> {
    use hmac::{KeyInit, Mac};
    let header = header.ok_or(Rejection::Unsigned)?.trim();
    let (scheme, hex_sig) = header.split_once('=').ok_or(Rejection::BadHeader)?;
    if !scheme.eq_ignore_ascii_case("hmacsha256") {
        return Err(Rejection::BadHeader);
    }
    let sig = hex::decode(hex_sig.trim()).map_err(|_| Rejection::BadHeader)?;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret).map_err(|_| Rejection::Mismatch)?;
    mac.update(body);
    mac.verify_slice(&sig).map_err(|_| Rejection::Mismatch)
}

/// A webhook notification, read leniently.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `data.id`, the delivery's event id (for de-duplication).
    pub id: Option<String>,
    /// `data.type`, e.g. `buildUploadStateUpdated`.
    pub kind: String,
    pub instance_type: Option<String>,
    pub instance_id: Option<String>,
    /// `newState`, `newValue` or `newExternalBuildState`, whichever is there.
    pub new_state: Option<String>,
    pub timestamp: Option<String>,
}

impl Event {
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let data = v
            .get("data")
            .filter(|d| d.is_object())
            .ok_or("no data object")?;
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .ok_or("no data.type")?
            .to_string();
        let str_at = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let attrs = data.get("attributes").cloned().unwrap_or(Value::Null);
        let instance = data.get("relationships").and_then(|r| r.get("instance"));
        // Apple's samples use both `instance.data.{type,id}` and `instance.{type,id}`.
        let inst = instance.map(|i| i.get("data").filter(|d| d.is_object()).unwrap_or(i));
        Ok(Self {
            id: str_at(data, "id"),
            kind,
            instance_type: inst.and_then(|i| str_at(i, "type")),
            instance_id: inst.and_then(|i| str_at(i, "id")),
            new_state: ["newState", "newValue", "newExternalBuildState"]
                .iter()
                .find_map(|k| str_at(&attrs, k)),
            timestamp: str_at(&attrs, "timestamp"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VECTOR: &str =
        "hmacsha256=7f062172b01cb00b53ca068614674a3d982a34062a0f5d37687d5e3377e54657";

    #[test]
    fn apple_test_vector_and_rejections() {
        let secret = b"This is my secret";
        assert_eq!(verify(secret, b"Hello, World!", Some(VECTOR)), Ok(()));
        assert_eq!(
            verify(
                secret,
                b"Hello, World!",
                Some(&VECTOR.to_uppercase().replace("HMACSHA256", "hmacsha256"))
            ),
            Ok(())
        );
        assert_eq!(
            verify(secret, b"Hello, World?", Some(VECTOR)),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            verify(b"other", b"Hello, World!", Some(VECTOR)),
            Err(Rejection::Mismatch)
        );
        assert_eq!(
            verify(secret, b"Hello, World!", None),
            Err(Rejection::Unsigned)
        );
        assert_eq!(
            verify(secret, b"x", Some("sha1=abcd")),
            Err(Rejection::BadHeader)
        );
        assert_eq!(
            verify(secret, b"x", Some("hmacsha256=zz")),
            Err(Rejection::BadHeader)
        );
    }

    #[test]
    fn parses_apples_samples_and_variants() {
        let upload = br#"{"data":{"type":"buildUploadStateUpdated","id":"7c81","version":1,"attributes":{"newState":"COMPLETE"},
            "relationships":{"instance":{"data":{"type":"buildUploads","id":"ad7e"}}}}}"#;
        let e = Event::parse(upload).unwrap();
        assert_eq!(
            (
                e.kind.as_str(),
                e.instance_id.as_deref(),
                e.new_state.as_deref()
            ),
            ("buildUploadStateUpdated", Some("ad7e"), Some("COMPLETE"))
        );
        let flat = br#"{"data":{"type":"backgroundAssetVersionStateUpdated","id":"1","attributes":{"newState":"READY","timestamp":"2025-05-08T01:29:36.16Z"},
            "relationships":{"instance":{"type":"backgroundAssetVersions","id":"bav1"}},"extra":true}}"#;
        let e = Event::parse(flat).unwrap();
        assert_eq!(e.instance_id.as_deref(), Some("bav1"));
        assert_eq!(e.timestamp.as_deref(), Some("2025-05-08T01:29:36.16Z"));
        let ping = br#"{"data":{"type":"webhookPingCreated","id":"0123","version":1,"attributes":{"timestamp":"2025-06-09T10:09:30.123456789Z"}}}"#;
        let e = Event::parse(ping).unwrap();
        assert_eq!(
            (e.kind.as_str(), e.instance_id),
            ("webhookPingCreated", None)
        );
        assert!(Event::parse(b"{").is_err());
        assert!(Event::parse(br#"{"data":[]}"#).is_err());
        assert!(Event::parse(br#"{"data":{"id":"x"}}"#).is_err());
    }
}
