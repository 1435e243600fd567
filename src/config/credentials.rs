//! Where the App Store Connect key comes from, in every peer tool's format.
//!
//! Teams arrive from fastlane, Codemagic, Apple-Actions, GitLab's integration
//! or the `asc` CLI with their secrets stored under those tools' names. This
//! module finds the credentials (`find`: which variables or file, never their
//! values), then checks and assembles them (`Raw::finish`). The names each
//! peer uses are one table, `PEER_NAMES`, that the tests walk and the README
//! table is checked against. `doctor` runs the same steps one by one.

use super::env::Env;
use super::{Credentials, ISSUER_ID, KEY_ID, PRIVATE_KEY, PRIVATE_KEY_PATH};
use crate::auth::{Issuer, key};
use crate::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};

/// `asc`'s name for the base64-encoded .p8.
pub const PRIVATE_KEY_B64: &[&str] = &["ASC_PRIVATE_KEY_B64"];
/// fastlane's API key JSON file (`api_key_path`).
pub const API_KEY_JSON: &[&str] = &["APP_STORE_CONNECT_API_KEY_PATH", "PILOT_API_KEY_PATH"];
/// fastlane's and GitLab's flag saying the key is base64 (detected either way).
pub const KEY_IS_BASE64: &[&str] = &["APP_STORE_CONNECT_API_KEY_IS_KEY_CONTENT_BASE64"];

/// What a peer's name stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    KeyId,
    IssuerId,
    Key,
    KeyBase64,
    KeyPath,
    KeyIsBase64,
    ApiKeyJson,
    InHouse,
    Duration,
}

impl Field {
    /// How flightdeck reads it, for the README table.
    pub fn ours(self) -> &'static str {
        match self {
            Field::KeyId => "`ASC_KEY_ID`",
            Field::IssuerId => "`ASC_ISSUER_ID`",
            Field::Key => "`ASC_PRIVATE_KEY` (PEM, escaped `\\n`, or base64)",
            Field::KeyBase64 => "`ASC_PRIVATE_KEY` (base64 is detected)",
            Field::KeyPath => "`ASC_PRIVATE_KEY_PATH`",
            Field::KeyIsBase64 => "not needed: base64 is detected either way",
            Field::ApiKeyJson => "`--api-key-json FILE` / `APP_STORE_CONNECT_API_KEY_PATH`",
            Field::InHouse => "read; `true` (an Enterprise key) is a warning",
            Field::Duration => "ignored: tokens last at most 20 minutes and are renewed",
        }
    }
}

/// Where a peer's name appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// An environment variable (or CI secret).
    Env,
    /// A field of fastlane's API key JSON file.
    JsonField,
    /// A command-line option of the peer tool.
    Option,
    /// An input of a GitHub Action (`with:`).
    ActionInput,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Env => "variable",
            Via::JsonField => "JSON field",
            Via::Option => "option",
            Via::ActionInput => "action input",
        }
    }
}

/// One row of the migration table: a peer tool's name and what it maps to.
#[derive(Debug, Clone, Copy)]
pub struct PeerName {
    pub peer: &'static str,
    pub name: &'static str,
    pub via: Via,
    pub field: Field,
}

const fn row(peer: &'static str, name: &'static str, via: Via, field: Field) -> PeerName {
    PeerName {
        peer,
        name,
        via,
        field,
    }
}

const FASTLANE: &str = "fastlane";
const GITLAB: &str = "GitLab App Store Connect integration";
const CODEMAGIC: &str = "Codemagic";
const APPLE_ACTIONS: &str = "Apple-Actions (upload-testflight-build)";
const ASC: &str = "asc CLI";

/// Every peer name flightdeck accepts.
pub const PEER_NAMES: &[PeerName] = &[
    row(
        FASTLANE,
        "APP_STORE_CONNECT_API_KEY_KEY_ID",
        Via::Env,
        Field::KeyId,
    ),
    row(
        FASTLANE,
        "APP_STORE_CONNECT_API_KEY_ISSUER_ID",
        Via::Env,
        Field::IssuerId,
    ),
    row(
        FASTLANE,
        "APP_STORE_CONNECT_API_KEY_KEY",
        Via::Env,
        Field::Key,
    ),
    row(
        FASTLANE,
        "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH",
        Via::Env,
        Field::KeyPath,
    ),
    row(
        FASTLANE,
        "APP_STORE_CONNECT_API_KEY_IS_KEY_CONTENT_BASE64",
        Via::Env,
        Field::KeyIsBase64,
    ),
    row(
        FASTLANE,
        "APP_STORE_CONNECT_API_KEY_PATH",
        Via::Env,
        Field::ApiKeyJson,
    ),
    row(FASTLANE, "PILOT_API_KEY_PATH", Via::Env, Field::ApiKeyJson),
    row(FASTLANE, "api_key_path", Via::Option, Field::ApiKeyJson),
    row(FASTLANE, "key_id", Via::JsonField, Field::KeyId),
    row(FASTLANE, "issuer_id", Via::JsonField, Field::IssuerId),
    row(FASTLANE, "key", Via::JsonField, Field::Key),
    row(FASTLANE, "key_filepath", Via::JsonField, Field::KeyPath),
    row(
        FASTLANE,
        "is_key_content_base64",
        Via::JsonField,
        Field::KeyIsBase64,
    ),
    row(FASTLANE, "in_house", Via::JsonField, Field::InHouse),
    row(FASTLANE, "duration", Via::JsonField, Field::Duration),
    row(
        GITLAB,
        "APP_STORE_CONNECT_API_KEY_KEY_ID",
        Via::Env,
        Field::KeyId,
    ),
    row(
        GITLAB,
        "APP_STORE_CONNECT_API_KEY_ISSUER_ID",
        Via::Env,
        Field::IssuerId,
    ),
    row(
        GITLAB,
        "APP_STORE_CONNECT_API_KEY_KEY",
        Via::Env,
        Field::KeyBase64,
    ),
    row(
        GITLAB,
        "APP_STORE_CONNECT_API_KEY_IS_KEY_CONTENT_BASE64",
        Via::Env,
        Field::KeyIsBase64,
    ),
    row(
        CODEMAGIC,
        "APP_STORE_CONNECT_KEY_IDENTIFIER",
        Via::Env,
        Field::KeyId,
    ),
    row(
        CODEMAGIC,
        "APP_STORE_CONNECT_ISSUER_ID",
        Via::Env,
        Field::IssuerId,
    ),
    row(
        CODEMAGIC,
        "APP_STORE_CONNECT_PRIVATE_KEY",
        Via::Env,
        Field::Key,
    ),
    row(APPLE_ACTIONS, "api-key-id", Via::ActionInput, Field::KeyId),
    row(
        APPLE_ACTIONS,
        "issuer-id",
        Via::ActionInput,
        Field::IssuerId,
    ),
    row(
        APPLE_ACTIONS,
        "api-private-key",
        Via::ActionInput,
        Field::Key,
    ),
    row(ASC, "ASC_KEY_ID", Via::Env, Field::KeyId),
    row(ASC, "ASC_ISSUER_ID", Via::Env, Field::IssuerId),
    row(ASC, "ASC_PRIVATE_KEY", Via::Env, Field::Key),
    row(ASC, "ASC_PRIVATE_KEY_PATH", Via::Env, Field::KeyPath),
    row(ASC, "ASC_PRIVATE_KEY_B64", Via::Env, Field::KeyBase64),
];

/// The migration table as Markdown, exactly as the README shows it.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| tool | their name | kind | flightdeck |\n| --- | --- | --- | --- |\n");
    for r in PEER_NAMES {
        out.push_str(&format!(
            "| {} | `{}` | {} | {} |\n",
            r.peer,
            r.name,
            r.via.as_str(),
            r.field.ours()
        ));
    }
    out
}

/// The environment variables a field is read from, in precedence order
/// (fields without variables, such as `InHouse`, have none).
pub fn variables(field: Field) -> &'static [&'static str] {
    match field {
        Field::KeyId => KEY_ID,
        Field::IssuerId => ISSUER_ID,
        Field::Key => PRIVATE_KEY,
        Field::KeyBase64 => PRIVATE_KEY_B64,
        Field::KeyPath => PRIVATE_KEY_PATH,
        Field::KeyIsBase64 => KEY_IS_BASE64,
        Field::ApiKeyJson => API_KEY_JSON,
        Field::InHouse | Field::Duration => &[],
    }
}

/// Where the credentials were found (names and paths, never values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Variables {
        key_id: Option<String>,
        issuer: Option<String>,
        key: Option<String>,
    },
    ApiKeyJson {
        path: PathBuf,
        via: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Variables {
                key_id,
                issuer,
                key,
            } => {
                let names: Vec<&str> = [key_id, issuer, key]
                    .into_iter()
                    .flatten()
                    .map(String::as_str)
                    .collect();
                write!(f, "environment variables {}", names.join(", "))
            }
            Source::ApiKeyJson { path, via } => {
                write!(f, "fastlane API key JSON {} (from {via})", path.display())
            }
        }
    }
}

/// One value and where it came from (a variable name, or `key_id in FILE`).
#[derive(Debug, Clone)]
pub struct Named {
    pub from: String,
    pub value: String,
    /// The file the value was read from, if any.
    pub file: Option<PathBuf>,
}

/// The credentials as found, before they are checked.
#[derive(Debug, Clone)]
pub struct Raw {
    pub source: Source,
    pub key_id: Option<Named>,
    pub issuer: Option<Named>,
    /// The key text (read from its file when given as a path).
    pub key: Result<Named, Error>,
    pub in_house: bool,
    pub notes: Vec<String>,
}

/// Checked credentials, where they came from, and what was fixed up on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub credentials: Credentials,
    pub source: Source,
    pub warnings: Vec<String>,
}

/// Find the credentials: `--api-key-json` first, then fastlane's JSON file
/// variable, then the key id, issuer and key variables under any alias.
pub fn find(env: &Env, api_key_json: Option<&Path>) -> Result<Raw, Error> {
    if let Some(path) = api_key_json {
        return super::fastlane::read(path, "--api-key-json");
    }
    if let Some(f) = env.lookup(API_KEY_JSON)? {
        let mut raw = super::fastlane::read(Path::new(f.value.trim()), &f.name)?;
        if env.lookup(KEY_ID).ok().flatten().is_some() {
            raw.notes.push(format!(
                "both {} and API key variables are set; using the JSON file",
                f.name
            ));
        }
        return Ok(raw);
    }
    let key_id = env.lookup(KEY_ID)?.map(|f| Named {
        from: f.name,
        value: f.value,
        file: None,
    });
    let issuer = env.lookup(ISSUER_ID)?.map(|f| Named {
        from: f.name,
        value: f.value,
        file: None,
    });
    let key = key_from_variables(env);
    if key_id.is_none() && issuer.is_none() && key.is_err() {
        return Err(missing_key_id());
    }
    Ok(Raw {
        source: Source::Variables {
            key_id: key_id.as_ref().map(|n| n.from.clone()),
            issuer: issuer.as_ref().map(|n| n.from.clone()),
            key: key.as_ref().ok().map(|n| n.from.clone()),
        },
        key_id,
        issuer,
        key,
        in_house: false,
        notes: Vec::new(),
    })
}

fn key_from_variables(env: &Env) -> Result<Named, Error> {
    if let Some(f) = env.lookup(PRIVATE_KEY)? {
        let v = f.value.trim();
        if !v.contains("-----") && Path::new(v).is_file() {
            let value = read_key_file(&f.name, Path::new(v))?;
            return Ok(Named {
                from: f.name,
                value,
                file: Some(PathBuf::from(v)),
            });
        }
        return Ok(Named {
            from: f.name,
            value: f.value,
            file: None,
        });
    }
    if let Some(f) = env.lookup(PRIVATE_KEY_B64)? {
        return Ok(Named {
            from: f.name,
            value: f.value,
            file: None,
        });
    }
    if let Some(f) = env.lookup(PRIVATE_KEY_PATH)? {
        let path = PathBuf::from(f.value.trim());
        let value = read_key_file(&f.name, &path)?;
        return Ok(Named {
            from: f.name,
            value,
            file: Some(path),
        });
    }
    Err(Error::input(
        "no private key: set ASC_PRIVATE_KEY (the .p8 contents, or base64 of them), ASC_PRIVATE_KEY_B64 or ASC_PRIVATE_KEY_PATH, or pass fastlane's API key JSON with --api-key-json",
    )
    .with_hint("the key is the AuthKey_<KEY ID>.p8 file downloaded once from App Store Connect"))
}

pub(super) fn read_key_file(what: &str, path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| {
        Error::read("the key file", path.display(), &e)
            .context(what)
            .with_hint("check the path; in CI, write the secret to a file first or pass the key text in ASC_PRIVATE_KEY")
    })
}

/// An id as pasted into a CI secret, cleaned: surrounding whitespace
/// (a trailing newline) and quotes removed. The note says what was removed.
pub fn clean_id(from: &str, raw: &str) -> (String, Option<String>) {
    let trimmed = raw.trim();
    let unquoted = trimmed
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| {
            trimmed
                .strip_prefix('\'')
                .and_then(|s| s.strip_suffix('\''))
        })
        .unwrap_or(trimmed)
        .trim();
    if unquoted == raw {
        return (raw.to_string(), None);
    }
    let mut removed = Vec::new();
    if raw.ends_with('\n') || raw.ends_with('\r') {
        removed.push("a trailing newline");
    } else if trimmed != raw {
        removed.push("surrounding whitespace");
    }
    if unquoted != trimmed {
        removed.push("quotes");
    }
    let note = format!("{from}: removed {} from the value", removed.join(" and "));
    (unquoted.to_string(), Some(note))
}

/// Whether `s` has the shape of an issuer id (a UUID).
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Raw {
    /// Check and assemble: key id present, ids cleaned, key parsed.
    pub fn finish(self) -> Result<Loaded, Error> {
        let mut warnings = self.notes.clone();
        let key_id = self.key_id.as_ref().ok_or_else(missing_key_id)?;
        let (key_id_value, note) = clean_id(&key_id.from, &key_id.value);
        warnings.extend(note);
        let issuer = match &self.issuer {
            Some(n) => {
                let (v, note) = clean_id(&n.from, &n.value);
                warnings.extend(note);
                Issuer::Team(v)
            }
            None => Issuer::Individual,
        };
        if self.in_house {
            warnings.push(in_house_warning());
        }
        let text = self.key.clone()?;
        let key = key::parse(&text.value)
            .map_err(|e| Error::invalid(&text.from, &e).with_hint(e.hint()))?;
        Ok(Loaded {
            credentials: Credentials {
                key_id: key_id_value,
                issuer,
                key,
            },
            source: self.source,
            warnings,
        })
    }
}

pub fn missing_key_id() -> Error {
    Error::unset("ASC_KEY_ID", "flightdeck needs an App Store Connect API key")
        .with_hint("create a key in App Store Connect > Users and Access > Integrations and pass its id as ASC_KEY_ID, with ASC_ISSUER_ID and ASC_PRIVATE_KEY (or fastlane's API key JSON with --api-key-json)")
}

pub fn in_house_warning() -> String {
    "in_house is true (an Enterprise key): App Store Connect uploads and TestFlight need a key of an App Store Connect team".into()
}

/// Find and check, in one go (what every command but `doctor` needs).
pub fn load(env: &Env, api_key_json: Option<&Path>) -> Result<Loaded, Error> {
    find(env, api_key_json)?.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_lose_newlines_and_quotes_with_a_note() {
        assert_eq!(clean_id("X", "abc"), ("abc".into(), None));
        let (v, note) = clean_id("ASC_ISSUER_ID", "abc\n");
        assert_eq!(v, "abc");
        assert!(
            note.unwrap()
                .contains("ASC_ISSUER_ID: removed a trailing newline")
        );
        let (v, note) = clean_id("I", " \"abc\" ");
        assert_eq!(v, "abc");
        assert!(note.unwrap().contains("surrounding whitespace and quotes"));
        assert_eq!(clean_id("I", "'abc'").0, "abc");
    }

    #[test]
    fn uuid_shape() {
        assert!(is_uuid("57246542-96fe-1a63-e053-0824d011072a"));
        assert!(!is_uuid("57246542-96fe-1a63-e053-0824d011072"));
        assert!(!is_uuid("not-a-uuid"));
    }

    #[test]
    fn every_variable_in_the_table_is_read_and_every_alias_is_in_the_table() {
        for r in PEER_NAMES.iter().filter(|r| r.via == Via::Env) {
            // Base64 text is also read from the plain key variables.
            let base64_in_key =
                r.field == Field::KeyBase64 && variables(Field::Key).contains(&r.name);
            assert!(
                variables(r.field).contains(&r.name) || base64_in_key,
                "{} ({}) is in the table but not read",
                r.name,
                r.peer
            );
        }
        for field in [Field::KeyId, Field::IssuerId, Field::Key, Field::KeyPath] {
            for name in variables(field).iter().filter(|n| !n.starts_with("INPUT_")) {
                assert!(
                    PEER_NAMES.iter().any(|r| r.name == *name)
                        || name.starts_with("ASC_")
                        || name.starts_with("FLIGHTDECK_"),
                    "{name} is read but missing from the table"
                );
            }
        }
    }

    #[test]
    fn source_names_variables_never_values() {
        let env = Env::from_pairs([
            ("APP_STORE_CONNECT_KEY_IDENTIFIER", "K"),
            ("ASC_PRIVATE_KEY_B64", "c2VjcmV0"),
        ]);
        let raw = find(&env, None).unwrap();
        let shown = raw.source.to_string();
        assert_eq!(
            shown,
            "environment variables APP_STORE_CONNECT_KEY_IDENTIFIER, ASC_PRIVATE_KEY_B64"
        );
        assert!(
            raw.finish()
                .unwrap_err()
                .message
                .starts_with("ASC_PRIVATE_KEY_B64:")
        );
    }
}
