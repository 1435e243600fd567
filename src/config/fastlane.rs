//! fastlane's API key JSON file (`api_key_path`, `APP_STORE_CONNECT_API_KEY_PATH`):
//! `key_id`, `issuer_id`, `key` (or `key_filepath`), `is_key_content_base64`,
//! `in_house`, `duration`. Files written by hand often hold the PEM with raw
//! line breaks inside the JSON string, which strict JSON forbids; they are
//! accepted too.

use super::credentials::{Named, Raw, Source, read_key_file};
use crate::error::Error;
use serde::Deserialize;
use serde_json::Value;
use std::path::Path;

#[derive(Debug, Deserialize)]
struct ApiKeyFile {
    key_id: Option<Value>,
    issuer_id: Option<Value>,
    key: Option<String>,
    key_filepath: Option<String>,
    #[serde(default)]
    in_house: Option<Value>,
}

fn text(v: &Option<Value>) -> Option<String> {
    match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

fn truthy(v: &Option<Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => {
            matches!(s.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        }
        _ => false,
    }
}

/// Escape raw CR/LF/TAB inside JSON string literals, so a PEM pasted with its
/// line breaks still parses.
pub fn escape_raw_breaks(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 64);
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                '\n' => {
                    out.push_str("\\n");
                    continue;
                }
                '\r' => {
                    out.push_str("\\r");
                    continue;
                }
                '\t' => {
                    out.push_str("\\t");
                    continue;
                }
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
    }
    out
}

fn parse(path: &Path, body: &str) -> Result<ApiKeyFile, Error> {
    serde_json::from_str(body)
        .or_else(|first| serde_json::from_str(&escape_raw_breaks(body)).map_err(|_| first))
        .map_err(|e| {
            Error::input(format!(
                "{}:{}:{}: fastlane API key JSON is not valid: {e}",
                path.display(),
                e.line(),
                e.column()
            ))
            .with_hint("the file is a JSON object: {\"key_id\": \"...\", \"issuer_id\": \"...\", \"key\": \"-----BEGIN PRIVATE KEY-----\\n...\"}")
        })
}

/// Read the file named by `via` (a flag or variable name).
pub fn read(path: &Path, via: &str) -> Result<Raw, Error> {
    let shown = path.display();
    let body = std::fs::read_to_string(path)
        .map_err(|e| Error::read("fastlane's API key JSON", &shown, &e).context(via))?;
    let file = parse(path, &body)?;
    let from = |field: &str| format!("{field} in {shown}");
    let key = match (&file.key, &file.key_filepath) {
        (Some(k), _) if !k.trim().is_empty() => Ok(Named {
            from: from("key"),
            value: k.clone(),
            file: None,
        }),
        (_, Some(p)) if !p.trim().is_empty() => {
            let p = Path::new(p.trim());
            let beside = path.parent().map(|d| d.join(p));
            let found = match beside {
                Some(b) if !p.is_absolute() && !p.is_file() && b.is_file() => b,
                _ => p.to_path_buf(),
            };
            read_key_file(&from("key_filepath"), &found).map(|value| Named {
                from: from("key_filepath"),
                value,
                file: Some(found.clone()),
            })
        }
        _ => Err(Error::input(format!(
            "{shown}: fastlane API key JSON has neither \"key\" nor \"key_filepath\""
        ))),
    };
    Ok(Raw {
        source: Source::ApiKeyJson {
            path: path.to_path_buf(),
            via: via.to_string(),
        },
        key_id: text(&file.key_id).map(|value| Named {
            from: from("key_id"),
            value,
            file: None,
        }),
        issuer: text(&file.issuer_id).map(|value| Named {
            from: from("issuer_id"),
            value,
            file: None,
        }),
        key,
        in_house: truthy(&file.in_house),
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_line_breaks_inside_strings_only_are_escaped() {
        let j = "{\n \"key\": \"a\nb\\\"c\r\n\"\n}";
        assert_eq!(escape_raw_breaks(j), "{\n \"key\": \"a\\nb\\\"c\\r\\n\"\n}");
    }

    #[test]
    fn errors_name_the_file_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.json");
        std::fs::write(&p, "{\"key_id\": \"K\",,}").unwrap();
        let e = read(&p, "--api-key-json").unwrap_err();
        assert!(e.message.contains("key.json:1:"), "{}", e.message);
        std::fs::write(&p, "{\"key_id\": \"K\"}").unwrap();
        let raw = read(&p, "--api-key-json").unwrap();
        assert!(
            raw.key
                .unwrap_err()
                .message
                .contains("neither \"key\" nor \"key_filepath\"")
        );
        let e = read(
            &dir.path().join("nope.json"),
            "APP_STORE_CONNECT_API_KEY_PATH",
        )
        .unwrap_err();
        assert!(
            e.message
                .starts_with("APP_STORE_CONNECT_API_KEY_PATH: cannot read")
        );
    }
}
