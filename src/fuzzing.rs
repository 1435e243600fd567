//! The entry points shared by the `cargo fuzz` targets (`fuzz/`) and the
//! property tests that run them on stable in CI (`tests/all/parsers.rs`).
//! Each takes arbitrary bytes and must end in `Ok` or a typed error: a panic,
//! a hang or unbounded memory is a finding. Each also checks that a secret
//! given as input never comes back in an error message.

use crate::config::env::Env;

/// The pipeline file parser, then `${VAR}` interpolation of the whole text.
pub fn pipeline(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::spec::parse(&text, "fuzz.yml");
    let env = Env::from_pairs([("SHA", "abc123"), ("EMPTY", "")]);
    let _ = crate::spec::text::interpolate(&text, &env);
}

/// Fields separated by NUL: private key text, key id, issuer id, duration.
pub fn credentials(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\0');
    let key = parts.next().unwrap_or_default();
    let key_id = parts.next().unwrap_or("ABC123DEFG");
    let issuer = parts.next();
    if let Err(e) = crate::auth::key::parse(key) {
        assert_no_key_material(key, &e.to_string());
    }
    // A key text naming an existing file would be read as a path: not here.
    if !key.contains('/') {
        let mut vars = vec![("ASC_PRIVATE_KEY", key), ("ASC_KEY_ID", key_id)];
        vars.extend(issuer.map(|i| ("ASC_ISSUER_ID", i)));
        if let Err(e) = crate::config::load_credentials(&Env::from_pairs(vars)) {
            assert_no_key_material(key, &e.message);
        }
    }
    if let Some(d) = parts.next() {
        let _ = crate::config::duration::parse(d);
    }
}

/// First byte picks the reader (even: `.ipa`, odd: `.pkg`), the rest is the file.
pub fn artifact(data: &[u8]) {
    let Some((kind, bytes)) = data.split_first() else {
        return;
    };
    let kind = if kind % 2 == 0 {
        crate::artifact::Kind::Ipa
    } else {
        crate::artifact::Kind::Pkg
    };
    let _ = crate::artifact::probe(kind, bytes);
}

/// First line is the `x-apple-signature` header, the rest the delivery body.
pub fn webhook(data: &[u8]) {
    const SECRET: &str = "fuzz-webhook-secret-value";
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let header = String::from_utf8_lossy(&data[..split]);
    let body = data.get(split + 1..).unwrap_or_default();
    if let Err(e) = crate::webhooks::verify(SECRET.as_bytes(), body, Some(&header)) {
        assert!(!e.to_string().contains(SECRET));
    }
    if let Err(e) = crate::webhooks::Event::parse(body) {
        assert!(!e.contains(SECRET));
    }
}

/// Base64-looking lines of the key input (24+ characters) must not be echoed.
fn assert_no_key_material(key: &str, message: &str) {
    let b64 = |c: char| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_');
    for line in key.lines().map(str::trim) {
        if line.len() >= 24 && line.chars().all(b64) {
            assert!(
                !message.contains(line),
                "error echoes key material: {message}"
            );
        }
    }
}

/// Starting inputs for `credentials`: the key as PEM, base64, escaped `\n`,
/// CRLF, with and without ids.
pub fn credential_seeds(pem: &str) -> Vec<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
    vec![
        pem.to_string(),
        b64.clone(),
        pem.replace('\n', "\\n"),
        pem.replace('\n', "\r\n"),
        format!("{pem}\0KEY1234567\057246542-96fe-1a63-e053-0824d011072a\05m"),
        format!("{b64}\0KEY1234567\0\01h30m"),
        pem.replace("PRIVATE KEY", "PUBLIC KEY"),
        pem[..pem.len() / 2].to_string(),
    ]
}
