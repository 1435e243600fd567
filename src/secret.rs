//! A string that must never be printed: private keys, signed tokens, webhook secrets.
//!
//! `Debug` and `Display` print a placeholder; the only way to read the value is
//! [`Secret::expose`], which makes every use greppable. CI masking registers the
//! exposed value with the platform before anything else is printed (see `ci`).

use std::fmt;
use std::sync::RwLock;

/// Every value masked in this process, so the log writer can redact too.
static REGISTERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remember `value` (4 characters or more) for [`redact`].
pub fn register(value: &str) {
    if value.len() < 4 {
        return;
    }
    let mut all = REGISTERED.write().unwrap_or_else(|p| p.into_inner());
    if !all.iter().any(|v| v == value) {
        all.push(value.to_string());
    }
}

/// `text` with every registered value replaced by `***`: the last line of
/// defence for log lines, which do not pass through the CI reporter.
pub fn redact(text: &str) -> String {
    let all = REGISTERED.read().unwrap_or_else(|p| p.into_inner());
    let mut out = text.to_string();
    for v in all.iter() {
        if out.contains(v.as_str()) {
            out = out.replace(v.as_str(), "***");
        }
    }
    out
}

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value. Call only where the value is sent, signed or masked.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// A random secret of `bytes` random bytes, hex encoded (for temporary webhooks).
pub fn random_hex(bytes: usize) -> Secret {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    Secret(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"***\"");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn registered_values_are_redacted() {
        register("registered-secret-value");
        register("abc");
        assert_eq!(redact("a registered-secret-value b abc"), "a *** b abc");
    }

    #[test]
    fn random_secrets_differ() {
        assert_ne!(random_hex(16), random_hex(16));
        assert_eq!(random_hex(16).expose().len(), 32);
    }
}
