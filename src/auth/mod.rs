//! App Store Connect authentication: ES256 JWTs signed with the team's API key.
//!
//! A token lives at most 20 minutes (Apple rejects longer ones for these
//! endpoints). `iat` is backdated to absorb clock skew between the CI runner
//! and Apple, and the cached token is re-signed well before it expires, so a
//! two-hour wait never sends an expired token.

pub mod key;

use crate::secret::Secret;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
pub use key::{KeyError, PrivateKey};
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// Apple's audience claim.
pub const AUDIENCE: &str = "appstoreconnect-v1";
/// Apple's maximum lifetime (`exp - iat`) for tokens used here.
pub const MAX_LIFETIME_SECS: i64 = 20 * 60;
/// How far `iat` is backdated.
pub const BACKDATE_SECS: i64 = 60;
/// A cached token is replaced once it has less than this left.
pub const REFRESH_MARGIN_SECS: i64 = 5 * 60;

/// Unix time source, injectable for tests.
pub trait Clock: Send + Sync + 'static {
    fn now_unix(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> i64 {
        jiff::Timestamp::now().as_second()
    }
}

/// A clock moved by hand (tests, and rehearsing long waits).
#[derive(Debug)]
pub struct ManualClock(pub std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn starting_now() -> Self {
        Self(std::sync::atomic::AtomicI64::new(
            jiff::Timestamp::now().as_second(),
        ))
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Who the key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    /// A team key: `iss` is the issuer id.
    Team(String),
    /// An individual key: `sub: "user"`.
    Individual,
}

#[derive(Debug, Serialize)]
struct Claims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    iat: i64,
    exp: i64,
    aud: &'a str,
}

struct Cached {
    token: Secret,
    exp: i64,
}

/// Callback told about each new token, so CI can mask it before anything prints.
pub type OnNewToken = Arc<dyn Fn(&Secret) + Send + Sync>;

pub struct TokenSource {
    key_id: String,
    issuer: Issuer,
    key: EncodingKey,
    clock: Arc<dyn Clock>,
    cached: Mutex<Option<Cached>>,
    on_new: Option<OnNewToken>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    pub fn new(key_id: &str, issuer: Issuer, key: &PrivateKey, clock: Arc<dyn Clock>) -> Self {
        install_crypto_provider();
        Self {
            key_id: key_id.to_string(),
            issuer,
            key: EncodingKey::from_ec_der(key.der()),
            clock,
            cached: Mutex::new(None),
            on_new: None,
        }
    }

    pub fn on_new_token(mut self, f: OnNewToken) -> Self {
        self.on_new = Some(f);
        self
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// A valid bearer token, re-signed when the cached one is close to expiry.
    pub fn token(&self) -> Secret {
        let now = self.clock.now_unix();
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cached.as_ref()
            && c.exp - now > REFRESH_MARGIN_SECS
        {
            return c.token.clone();
        }
        let iat = now - BACKDATE_SECS;
        let exp = iat + MAX_LIFETIME_SECS;
        let token = self.sign(iat, exp);
        if let Some(f) = &self.on_new {
            f(&token);
        }
        *cached = Some(Cached {
            token: token.clone(),
            exp,
        });
        token
    }

    /// Forget the cached token: the next [`token`](Self::token) signs a new
    /// one (after Apple answered 401 to a token it considers expired).
    pub fn invalidate(&self) {
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    fn sign(&self, iat: i64, exp: i64) -> Secret {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        header.typ = Some("JWT".into());
        let (iss, sub) = match &self.issuer {
            Issuer::Team(id) => (Some(id.as_str()), None),
            Issuer::Individual => (None, Some("user")),
        };
        let claims = Claims {
            iss,
            sub,
            iat,
            exp,
            aud: AUDIENCE,
        };
        // Signing with a key that parsed as P-256 PKCS#8 cannot fail.
        let jwt = jsonwebtoken::encode(&header, &claims, &self.key).unwrap_or_default();
        Secret::new(jwt)
    }
}

/// jsonwebtoken 12 needs a process-wide crypto provider; installing it twice is harmless.
pub fn install_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn decode(token: &str, public_pem: &str) -> (jsonwebtoken::Header, serde_json::Value) {
        let mut v = jsonwebtoken::Validation::new(Algorithm::ES256);
        v.set_audience(&[AUDIENCE]);
        v.validate_exp = false;
        v.required_spec_claims.clear();
        let key = jsonwebtoken::DecodingKey::from_ec_pem(public_pem.as_bytes()).unwrap();
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).unwrap();
        (data.header, data.claims)
    }

    #[test]
    fn team_token_claims_and_signature() {
        let (private, public) = key::generate();
        let key = key::parse(private.expose()).unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(1_700_000_000)));
        let src = TokenSource::new(
            "ABC123DEFG",
            Issuer::Team("issuer-uuid".into()),
            &key,
            clock,
        );
        let (header, claims) = decode(src.token().expose(), &public);
        assert_eq!(header.kid.as_deref(), Some("ABC123DEFG"));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(claims["iss"], "issuer-uuid");
        assert_eq!(claims["aud"], AUDIENCE);
        assert!(claims.get("sub").is_none());
        assert_eq!(claims["iat"], 1_700_000_000 - BACKDATE_SECS);
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert!(lifetime <= MAX_LIFETIME_SECS, "lifetime {lifetime}");
        assert!(claims["exp"].as_i64().unwrap() > 1_700_000_000 + REFRESH_MARGIN_SECS);
    }

    #[test]
    fn individual_token_uses_sub_user() {
        let (private, public) = key::generate();
        let key = key::parse(private.expose()).unwrap();
        let src = TokenSource::new("K", Issuer::Individual, &key, Arc::new(SystemClock));
        let (_, claims) = decode(src.token().expose(), &public);
        assert_eq!(claims["sub"], "user");
        assert!(claims.get("iss").is_none());
    }

    #[test]
    fn cached_then_refreshed_before_expiry_over_hours() {
        let (private, public) = key::generate();
        let key = key::parse(private.expose()).unwrap();
        let clock = Arc::new(ManualClock(AtomicI64::new(1_000_000)));
        let signed = Arc::new(AtomicI64::new(0));
        let counter = signed.clone();
        let src = TokenSource::new("K", Issuer::Individual, &key, clock.clone()).on_new_token(
            Arc::new(move |_| {
                counter.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let first = src.token();
        clock.0.fetch_add(60, Ordering::SeqCst);
        assert_eq!(src.token(), first, "reused within its life");
        // Walk two hours in 30 s steps: every token handed out must be valid for
        // at least the refresh margin at the moment it is handed out.
        for _ in 0..240 {
            clock.0.fetch_add(30, Ordering::SeqCst);
            let now = clock.now_unix();
            let (_, claims) = decode(src.token().expose(), &public);
            assert!(claims["exp"].as_i64().unwrap() - now > REFRESH_MARGIN_SECS - 30);
            assert!(claims["iat"].as_i64().unwrap() <= now);
        }
        let n = signed.load(Ordering::SeqCst);
        assert!((8..=12).contains(&n), "re-signed {n} times over two hours");
    }
}
