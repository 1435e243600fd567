//! Validation against Apple's OpenAPI schemas (the slice vendored in
//! the repository's `spec/asc-openapi.json` by `scripts/vendor-spec.py`).
//!
//! Strict: an object property the schema does not declare is a violation, so
//! a misspelt attribute (`sourceFileChecksum` for `sourceFileChecksums`) fails
//! here exactly as it would fail at Apple. Supports the keywords the spec
//! uses: `$ref`, `type`, `properties`, `required`, `additionalProperties`,
//! `items`, `enum`, `nullable`, `oneOf` (+ `discriminator`), `format`,
//! `minimum`, `maximum`.

use serde_json::Value;
use std::sync::OnceLock;

const EMBEDDED: &str = include_str!("../../../spec/asc-openapi.json");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the validated document.
    pub pointer: String,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}",
            if self.pointer.is_empty() {
                "/"
            } else {
                &self.pointer
            },
            self.message
        )
    }
}

pub struct Spec {
    doc: Value,
}

impl Spec {
    pub fn embedded() -> &'static Spec {
        static SPEC: OnceLock<Spec> = OnceLock::new();
        SPEC.get_or_init(|| Spec {
            doc: serde_json::from_str(EMBEDDED).expect("vendored spec is JSON"),
        })
    }

    pub fn version(&self) -> &str {
        self.doc["info"]["version"].as_str().unwrap_or("?")
    }

    fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.doc["paths"]
            .get(template)?
            .get(method.to_ascii_lowercase())
    }

    /// The operations the vendored slice covers, as (method, path template).
    pub fn operations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(paths) = self.doc["paths"].as_object() {
            for (p, ops) in paths {
                for m in ops.as_object().into_iter().flat_map(|o| o.keys()) {
                    out.push((m.to_ascii_uppercase(), p.clone()));
                }
            }
        }
        out
    }

    pub fn request_schema(&self, method: &str, template: &str) -> Option<&Value> {
        self.operation(method, template)?.get("requestBody")
    }

    /// `Some(None)` means the status is declared without a body.
    pub fn response_schema(
        &self,
        method: &str,
        template: &str,
        status: u16,
    ) -> Option<Option<&Value>> {
        let r = self
            .operation(method, template)?
            .get("responses")?
            .get(status.to_string())?;
        Some(if r.is_null() { None } else { Some(r) })
    }

    /// The query parameters an operation declares.
    pub fn query_parameters(&self, method: &str, template: &str) -> Vec<String> {
        self.operation(method, template)
            .and_then(|o| o["parameters"].as_array())
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "query")
                    .filter_map(|p| p["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn schema(&self, name: &str) -> Option<&Value> {
        self.doc["components"]["schemas"].get(name)
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut s = schema;
        for _ in 0..32 {
            match s.get("$ref").and_then(|r| r.as_str()) {
                Some(r) => match r
                    .strip_prefix("#/components/schemas/")
                    .and_then(|n| self.schema(n))
                {
                    Some(next) => s = next,
                    None => return s,
                },
                None => return s,
            }
        }
        s
    }

    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(schema, value, "", &mut out);
        out
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, out: &mut Vec<Violation>) {
        let push = |out: &mut Vec<Violation>, m: String| {
            out.push(Violation {
                pointer: at.to_string(),
                message: m,
            })
        };
        if value.is_null() {
            if schema["nullable"] == true || self.resolve(schema)["nullable"] == true {
                return;
            }
            push(out, "null is not allowed here".into());
            return;
        }
        let s = self.resolve(schema);
        if let Some(options) = s["oneOf"].as_array() {
            self.check_one_of(s, options, value, at, out);
            return;
        }
        if let Some(allowed) = s["enum"].as_array()
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(|v| v.to_string()).collect();
            push(out, format!("{value} is not one of {}", list.join(", ")));
            return;
        }
        match s["type"].as_str() {
            Some("object") => self.check_object(s, value, at, out),
            Some("array") => match value.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check(&s["items"], item, &format!("{at}/{i}"), out);
                    }
                }
                None => push(out, format!("expected an array, got {}", kind(value))),
            },
            Some("string") => match value.as_str() {
                Some(text) => {
                    if s["format"] == "date-time" && text.parse::<jiff::Timestamp>().is_err() {
                        push(out, format!("{text:?} is not an RFC 3339 date-time"));
                    }
                    if s["format"] == "uri" && !text.contains(':') {
                        push(out, format!("{text:?} is not a URI"));
                    }
                }
                None => push(out, format!("expected a string, got {}", kind(value))),
            },
            Some("integer") => match value.as_i64().or_else(|| value.as_u64().map(|u| u as i64)) {
                Some(n) => {
                    if let Some(min) = s["minimum"].as_i64()
                        && n < min
                    {
                        push(out, format!("{n} is below the minimum {min}"));
                    }
                    if let Some(max) = s["maximum"].as_i64()
                        && n > max
                    {
                        push(out, format!("{n} is above the maximum {max}"));
                    }
                }
                None => push(out, format!("expected an integer, got {}", kind(value))),
            },
            Some("number") if !value.is_number() => {
                push(out, format!("expected a number, got {}", kind(value)))
            }
            Some("boolean") if !value.is_boolean() => {
                push(out, format!("expected a boolean, got {}", kind(value)))
            }
            _ => {}
        }
    }

    fn check_object(&self, s: &Value, value: &Value, at: &str, out: &mut Vec<Violation>) {
        let Some(obj) = value.as_object() else {
            out.push(Violation {
                pointer: at.into(),
                message: format!("expected an object, got {}", kind(value)),
            });
            return;
        };
        for req in s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str())
        {
            if !obj.contains_key(req) {
                out.push(Violation {
                    pointer: format!("{at}/{req}"),
                    message: "is required".into(),
                });
            }
        }
        let props = s["properties"].as_object();
        for (k, v) in obj {
            let here = format!("{at}/{k}");
            match props.and_then(|p| p.get(k)) {
                Some(ps) => self.check(ps, v, &here, out),
                None => match s.get("additionalProperties") {
                    Some(ap) if ap.is_object() => self.check(ap, v, &here, out),
                    Some(Value::Bool(true)) => {}
                    _ => out.push(Violation {
                        pointer: here,
                        message: "is not defined by the schema".into(),
                    }),
                },
            }
        }
    }

    fn check_one_of(
        &self,
        s: &Value,
        options: &[Value],
        value: &Value,
        at: &str,
        out: &mut Vec<Violation>,
    ) {
        if let (Some(prop), Some(mapping)) = (
            s["discriminator"]["propertyName"].as_str(),
            s["discriminator"]["mapping"].as_object(),
        ) {
            let tag = value.get(prop).and_then(|t| t.as_str()).unwrap_or_default();
            match mapping.get(tag) {
                Some(r) => self.check(&serde_json::json!({ "$ref": r }), value, at, out),
                None => out.push(Violation {
                    pointer: format!("{at}/{prop}"),
                    message: format!("{tag:?} is not one of the allowed types"),
                }),
            }
            return;
        }
        let matching = options
            .iter()
            .filter(|o| self.validate(o, value).is_empty())
            .count();
        if matching != 1 {
            out.push(Violation {
                pointer: at.into(),
                message: format!(
                    "matches {matching} of the oneOf alternatives, expected exactly one"
                ),
            });
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn catches_misspelt_and_missing_attributes() {
        let spec = Spec::embedded();
        let schema = spec
            .request_schema("PATCH", "/v1/buildUploadFiles/{id}")
            .unwrap();
        let good = json!({"data": {"type": "buildUploadFiles", "id": "f", "attributes": {"uploaded": true,
            "sourceFileChecksums": {"file": {"hash": "ab", "algorithm": "SHA_256"}}}}});
        assert_eq!(spec.validate(schema, &good), vec![]);
        let bad = json!({"data": {"type": "buildUploadFiles", "id": "f", "attributes": {"uploaded": true, "sourceFileChecksum": "ab"}}});
        let v = spec.validate(schema, &bad);
        assert_eq!(
            v[0].to_string(),
            "/data/attributes/sourceFileChecksum: is not defined by the schema"
        );
        let bad = json!({"data": {"type": "buildUploadFiles", "attributes": {"uploaded": "yes",
            "sourceFileChecksums": {"file": {"hash": "ab", "algorithm": "SHA256"}}}}});
        let v: Vec<String> = spec
            .validate(schema, &bad)
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert!(v.contains(&"/data/id: is required".to_string()), "{v:?}");
        assert!(
            v.contains(&"/data/attributes/uploaded: expected a boolean, got a string".to_string()),
            "{v:?}"
        );
        assert!(
            v.iter().any(|m| m.starts_with(
                "/data/attributes/sourceFileChecksums/file/algorithm: \"SHA256\" is not one of"
            )),
            "{v:?}"
        );
    }

    #[test]
    fn nullable_and_one_of() {
        let spec = Spec::embedded();
        let schema = spec
            .request_schema("PATCH", "/v1/buildUploadFiles/{id}")
            .unwrap();
        let nulls = json!({"data": {"type": "buildUploadFiles", "id": "f", "attributes": {"uploaded": null, "sourceFileChecksums": null}}});
        assert_eq!(spec.validate(schema, &nulls), vec![]);
        let err = spec.schema("ErrorResponse").unwrap();
        let ok = json!({"errors": [{"status": "404", "code": "NOT_FOUND", "title": "t", "detail": "d", "source": {"parameter": "id"}}]});
        assert_eq!(spec.validate(err, &ok), vec![]);
        let two = json!({"errors": [{"status": "404", "code": "NOT_FOUND", "title": "t", "detail": "d", "source": {"parameter": "id", "pointer": "/x"}}]});
        assert_eq!(spec.validate(err, &two).len(), 1);
    }
}
