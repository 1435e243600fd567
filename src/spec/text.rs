//! A YAML scalar kept as written, with its location, for interpolation and
//! located validation after parsing.

use crate::config::env::Env;
use crate::error::{Error, Location};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_saphyr::Spanned;
use std::borrow::Cow;
use std::fmt;

/// The raw text of a scalar (numbers and booleans as their text).
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// A located scalar from the pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct Text(pub Spanned<Scalar>);

impl Text {
    pub fn raw(&self) -> &str {
        &self.0.value.0
    }

    pub fn location(&self, file: &str) -> Location {
        let l = self.0.referenced;
        Location {
            file: file.to_string(),
            line: l.line() as u32,
            column: l.column() as u32,
        }
    }

    /// The value with `${VAR}` (and `${VAR:-default}`) replaced; `$${` is a literal `${`.
    pub fn resolve(&self, env: &Env, file: &str) -> Result<String, Error> {
        interpolate(self.raw(), env).map_err(|msg| Error::input(msg).at(self.location(file)))
    }
}

impl JsonSchema for Text {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A string, number or boolean; `${VAR}` is replaced by the environment variable VAR.",
            "type": ["string", "number", "boolean"]
        })
    }
}

pub fn interpolate(input: &str, env: &Env) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(stripped) = after.strip_prefix("${") {
            out.push_str("${");
            rest = stripped;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {input:?}"))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("invalid variable name {name:?} in ${{{expr}}}"));
            }
            match (env.get(name), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    let why = if env.raw(name).is_some() {
                        "is set but empty"
                    } else {
                        "is not set"
                    };
                    return Err(format!(
                        "environment variable {name} {why} (write ${{{name}:-default}} to allow that)"
                    ));
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_rules() {
        let env = Env::from_pairs([("SHA", "abc123"), ("EMPTY", "")]);
        assert_eq!(
            interpolate("Fixes from ${SHA}", &env).unwrap(),
            "Fixes from abc123"
        );
        assert_eq!(
            interpolate("${MISSING:-none} $$HOME $${SHA}", &env).unwrap(),
            "none $$HOME ${SHA}"
        );
        assert_eq!(interpolate("cost: $5", &env).unwrap(), "cost: $5");
        assert!(
            interpolate("${MISSING}", &env)
                .unwrap_err()
                .contains("MISSING is not set")
        );
        assert!(
            interpolate("${EMPTY}", &env)
                .unwrap_err()
                .contains("EMPTY is set but empty")
        );
        assert!(interpolate("${SHA", &env).unwrap_err().contains("unclosed"));
        assert!(
            interpolate("${A B}", &env)
                .unwrap_err()
                .contains("invalid variable name")
        );
    }
}
