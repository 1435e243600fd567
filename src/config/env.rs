//! A snapshot of the process environment, read once at start-up.
//!
//! Nothing outside `config` reads environment variables: commands get a
//! validated `Settings`. Tests build an `Env` from pairs.

use crate::error::Error;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

/// A value found in the environment, with the name it was found under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub value: String,
}

impl Env {
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect();
        Self { vars }
    }

    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The raw value, empty or not.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// A non-empty value (empty counts as unset).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.raw(name).filter(|v| !v.trim().is_empty())
    }

    pub fn is_true(&self, name: &str) -> bool {
        matches!(self.get(name), Some(v) if v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// The first of `names` with a non-empty value. When none has one but some are
    /// set to the empty string, that is an error: in CI an empty variable almost
    /// always means a secret that was referenced but never configured.
    pub fn lookup(&self, names: &[&str]) -> Result<Option<Found>, Error> {
        if let Some(name) = names.iter().find(|n| self.get(n).is_some()) {
            return Ok(Some(Found {
                name: name.to_string(),
                value: self.get(name).unwrap_or_default().to_string(),
            }));
        }
        if let Some(empty) = names.iter().find(|n| self.raw(n).is_some()) {
            return Err(Error::input(format!(
                "environment variable {empty} is set but empty: the CI secret is probably not configured"
            ))
            .with_hint(format!(
                "define the secret in your CI settings and pass it as {empty}, or unset the variable; \
                 on GitHub, secrets are not available to workflows triggered from forks"
            )));
        }
        Ok(None)
    }

    /// All variables, for platform detection.
    pub fn vars(&self) -> &BTreeMap<String, String> {
        &self.vars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_prefers_the_first_non_empty_name() {
        let env = Env::from_pairs([("B", "2"), ("C", "3")]);
        let found = env.lookup(&["A", "B", "C"]).unwrap().unwrap();
        assert_eq!(
            found,
            Found {
                name: "B".into(),
                value: "2".into()
            }
        );
    }

    #[test]
    fn set_but_empty_is_a_ci_secret_error() {
        let env = Env::from_pairs([("ASC_KEY_ID", "")]);
        let err = env.lookup(&["ASC_KEY_ID", "OTHER"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.message.contains("ASC_KEY_ID is set but empty"),
            "{}",
            err.message
        );
        assert!(err.message.contains("CI secret is probably not configured"));
    }

    #[test]
    fn an_empty_alias_is_fine_when_another_name_is_set() {
        let env = Env::from_pairs([("ASC_KEY_ID", ""), ("OTHER", "x")]);
        assert_eq!(
            env.lookup(&["ASC_KEY_ID", "OTHER"]).unwrap().unwrap().value,
            "x"
        );
    }
}
