//! Loading and checking the App Store Connect API key (.p8).
//!
//! Apple's key file is a PKCS#8 PEM holding a P-256 EC private key. CI secrets
//! mangle it in predictable ways, so we accept the raw PEM, PEM with literal `\n`
//! escapes, base64 of the PEM (GitLab's integration line-wraps it), a path, and
//! check it locally so each common breakage gets its own message before any
//! request is made.

use crate::secret::Secret;
use base64::Engine;
use std::fmt;

/// A checked private key: PKCS#8 DER of a P-256 key, and its normalised PEM.
#[derive(Clone)]
pub struct PrivateKey {
    pem: Secret,
    der: Vec<u8>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(***)")
    }
}

impl PrivateKey {
    pub fn pem(&self) -> &Secret {
        &self.pem
    }
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// Why a key could not be used. Messages never contain key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the private key is empty")]
    Empty,
    #[error("the private key is neither PEM text nor base64 of a PEM")]
    NotPem,
    #[error(
        "the private key is a SEC1 'EC PRIVATE KEY', but App Store Connect keys are PKCS#8 ('PRIVATE KEY')"
    )]
    Sec1,
    #[error("the private key is encrypted ('ENCRYPTED PRIVATE KEY'); Apple's .p8 keys never are")]
    Encrypted,
    #[error("the value is an RSA key; App Store Connect API keys are EC P-256 keys")]
    Rsa,
    #[error("the value is a public key or certificate ({0}), not the private key")]
    NotPrivate(String),
    #[error("the PEM has a BEGIN line but no matching END line: the key was probably truncated")]
    Truncated,
    #[error("the PEM body is not valid base64 (line {0} of the key)")]
    BadBase64(usize),
    #[error("the key is on curve {0}; App Store Connect keys are P-256 (prime256v1)")]
    WrongCurve(String),
    #[error("the key is not a valid PKCS#8 P-256 private key")]
    Invalid,
}

impl KeyError {
    pub fn hint(&self) -> &'static str {
        match self {
            KeyError::Sec1 => {
                "convert it: openssl pkcs8 -topk8 -nocrypt -in key.pem -out AuthKey.p8, or use the .p8 downloaded from App Store Connect"
            }
            KeyError::Encrypted => {
                "decrypt it: openssl pkcs8 -in key.pem -out AuthKey.p8 -nocrypt, or use the .p8 downloaded from App Store Connect"
            }
            KeyError::Truncated | KeyError::BadBase64(_) => {
                "store the whole .p8 file, including the BEGIN and END lines; or store `base64 < AuthKey_XXXX.p8` instead"
            }
            _ => {
                "use the AuthKey_<KEY ID>.p8 file from App Store Connect > Users and Access > Integrations, as text, base64, or a path in ASC_PRIVATE_KEY_PATH"
            }
        }
    }
}

const PEM_LABELS_NOT_PRIVATE: [&str; 3] = ["PUBLIC KEY", "CERTIFICATE", "CERTIFICATE REQUEST"];

/// Parse key text as given in an environment variable or file.
pub fn parse(input: &str) -> Result<PrivateKey, KeyError> {
    let text = input.trim().trim_start_matches('\u{feff}');
    if text.is_empty() {
        return Err(KeyError::Empty);
    }
    let pem_text = if text.contains("-----BEGIN") {
        // Literal "\n" escapes, as left by JSON or single-quoted YAML secrets.
        if !text.contains('\n') && text.contains("\\n") {
            text.replace("\\r\\n", "\n").replace("\\n", "\n")
        } else {
            text.replace("\r\n", "\n")
        }
    } else {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| KeyError::NotPem)?;
        match String::from_utf8(decoded.clone()) {
            Ok(s) if s.contains("-----BEGIN") => return parse(&s),
            _ => return from_der(decoded),
        }
    };
    parse_pem(&pem_text)
}

fn parse_pem(text: &str) -> Result<PrivateKey, KeyError> {
    let begin = text.find("-----BEGIN ").ok_or(KeyError::NotPem)?;
    let rest = &text[begin + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or(KeyError::NotPem)?;
    let label = rest[..label_end].trim().to_string();
    match label.as_str() {
        "PRIVATE KEY" => {}
        "EC PRIVATE KEY" => return Err(KeyError::Sec1),
        "ENCRYPTED PRIVATE KEY" => return Err(KeyError::Encrypted),
        "RSA PRIVATE KEY" => return Err(KeyError::Rsa),
        l if PEM_LABELS_NOT_PRIVATE.contains(&l) => {
            return Err(KeyError::NotPrivate(l.to_string()));
        }
        _ => return Err(KeyError::NotPem),
    }
    let body_start = label_end + "-----".len();
    let end_marker = format!("-----END {label}-----");
    // Searched after the BEGIN line: the markers' dashes may run together.
    let end = rest[body_start..]
        .find(&end_marker)
        .map(|i| body_start + i)
        .ok_or(KeyError::Truncated)?;
    let body = &rest[body_start..end];
    let body = body
        .strip_prefix("\r\n")
        .or_else(|| body.strip_prefix('\n'))
        .unwrap_or(body);
    let mut b64 = String::new();
    for (i, line) in body.lines().enumerate() {
        let line = line.trim();
        if line
            .chars()
            .any(|c| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
        {
            return Err(KeyError::BadBase64(i + 1));
        }
        b64.push_str(line);
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map_err(|_| KeyError::BadBase64(body.lines().count().max(1)))?;
    from_der(der)
}

// DER encodings of the OIDs we recognise inside a PKCS#8 AlgorithmIdentifier.
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_P521: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_SECP256K1: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
const OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn from_der(der: Vec<u8>) -> Result<PrivateKey, KeyError> {
    // Look only at the head, where the AlgorithmIdentifier lives.
    let head = &der[..der.len().min(40)];
    if contains(head, OID_RSA) {
        return Err(KeyError::Rsa);
    }
    for (oid, name) in [
        (OID_P384, "P-384"),
        (OID_P521, "P-521"),
        (OID_SECP256K1, "secp256k1"),
    ] {
        if contains(head, oid) {
            return Err(KeyError::WrongCurve(name.into()));
        }
    }
    if !contains(head, OID_P256) {
        return Err(KeyError::Invalid);
    }
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
        .map_err(|_| KeyError::Invalid)?;
    let pem = to_pem("PRIVATE KEY", &der);
    Ok(PrivateKey {
        pem: Secret::new(pem),
        der,
    })
}

/// PEM-encode DER with the given label, 64 columns.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A freshly generated key pair: the private PKCS#8 PEM and the public key
/// (SubjectPublicKeyInfo PEM). Used by the demo and the tests.
pub fn generate() -> (Secret, String) {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .expect("generating a P-256 key cannot fail");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .expect("a generated key parses");
    let public_der = pair.public_key().as_der().expect("public key encodes");
    (
        Secret::new(to_pem("PRIVATE KEY", pkcs8.as_ref())),
        to_pem("PUBLIC KEY", public_der.as_ref()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz finding (credentials target): the END marker's dashes running
    /// into the BEGIN line's sliced the body backwards and panicked.
    #[test]
    fn overlapping_begin_and_end_markers_are_an_error_not_a_panic() {
        let text = "-----BEGIN PRIVATE KEY---------END PRIVATE KEY-----8";
        assert!(parse(text).is_err());
        assert!(parse("-----BEGIN PRIVATE KEY-----END PRIVATE KEY-----").is_err());
    }

    fn pem() -> String {
        generate().0.expose().to_string()
    }

    #[test]
    fn accepts_raw_escaped_base64_and_wrapped_base64() {
        let pem = pem();
        assert!(parse(&pem).is_ok());
        assert!(parse(&pem.replace('\n', "\\n")).is_ok());
        let b64 = base64::engine::general_purpose::STANDARD.encode(&pem);
        assert!(parse(&b64).is_ok());
        let wrapped: Vec<String> = b64
            .as_bytes()
            .chunks(60)
            .map(|c| String::from_utf8_lossy(c).into())
            .collect();
        assert!(
            parse(&(wrapped.join("\n") + "\n")).is_ok(),
            "GitLab's Base64.encode64 form"
        );
        assert!(parse(&pem.replace('\n', "\r\n")).is_ok(), "CRLF line ends");
    }

    #[test]
    fn each_breakage_gets_its_own_message() {
        let pem = pem();
        let cases: Vec<(String, KeyError)> = vec![
            ("   ".into(), KeyError::Empty),
            ("not a key at all!".into(), KeyError::NotPem),
            (pem.replace("PRIVATE KEY", "EC PRIVATE KEY"), KeyError::Sec1),
            (
                pem.replace("PRIVATE KEY", "ENCRYPTED PRIVATE KEY"),
                KeyError::Encrypted,
            ),
            (pem.replace("PRIVATE KEY", "RSA PRIVATE KEY"), KeyError::Rsa),
            (
                pem.replace("PRIVATE KEY", "PUBLIC KEY"),
                KeyError::NotPrivate("PUBLIC KEY".into()),
            ),
            (
                pem.lines().take(3).collect::<Vec<_>>().join("\n"),
                KeyError::Truncated,
            ),
            (pem.replacen("\n", "\n*", 2), KeyError::BadBase64(1)),
        ];
        for (input, want) in cases {
            assert_eq!(parse(&input).unwrap_err(), want, "input {input:?}");
        }
    }

    #[test]
    fn wrong_curve_is_named() {
        // PKCS#8 header of a P-384 key (AlgorithmIdentifier with secp384r1), body irrelevant.
        let mut der = vec![0x30, 0x81, 0xb6, 0x02, 0x01, 0x00, 0x30, 0x10, 0x06, 0x07];
        der.extend_from_slice(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
        der.extend_from_slice(OID_P384);
        der.extend_from_slice(&[0u8; 40]);
        let pem = to_pem("PRIVATE KEY", &der);
        assert_eq!(
            parse(&pem).unwrap_err(),
            KeyError::WrongCurve("P-384".into())
        );
    }

    #[test]
    fn garbage_pkcs8_is_invalid_and_messages_hold_no_key_material() {
        let mut der = vec![0x30, 0x20, 0x02, 0x01, 0x00];
        der.extend_from_slice(OID_P256);
        der.extend_from_slice(&[7u8; 30]);
        let err = parse(&to_pem("PRIVATE KEY", &der)).unwrap_err();
        assert_eq!(err, KeyError::Invalid);
        let pem = pem();
        let body_line = pem.lines().nth(1).unwrap();
        for e in [KeyError::Sec1, KeyError::Truncated, KeyError::BadBase64(2)] {
            assert!(!e.to_string().contains(body_line));
        }
    }
}
