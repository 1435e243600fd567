//! The one error users see: a message, an optional hint, an optional source
//! location, Apple's details, and a documented exit code.
//!
//! Each layer has its own error type (`api::ApiError`, `auth::KeyError`,
//! `spec::SpecError`, `artifact::ArtifactError`); they convert into this one,
//! which is where the exit code is decided:
//!
//! | code | kind | meaning |
//! | --- | --- | --- |
//! | 0 | - | success |
//! | 1 | `Rejected` | App Store Connect rejected or failed the build |
//! | 2 | `Input` | bad input: flags, environment, pipeline file, artifact |
//! | 3 | `Auth` | authentication or permission refused (401/403) |
//! | 4 | `Timeout` | timed out waiting |
//! | 5 | `Transient` | transient failures exhausted (network, 5xx, 429), and local I/O failures |
//! | 130 | `Cancelled` | cancelled by SIGINT/SIGTERM |

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExitKind {
    Rejected,
    Input,
    Auth,
    Timeout,
    Transient,
    Cancelled,
}

impl ExitKind {
    pub fn code(self) -> u8 {
        match self {
            ExitKind::Rejected => 1,
            ExitKind::Input => 2,
            ExitKind::Auth => 3,
            ExitKind::Timeout => 4,
            ExitKind::Transient => 5,
            ExitKind::Cancelled => 130,
        }
    }
}

/// Where in a file a problem is (1-based).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One of Apple's reasons (state error, API error entry), kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detail {
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Error {
    pub kind: ExitKind,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// Boxed: rare, and it keeps `Result<T, Error>` small.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Box<Location>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Detail>,
    /// Further problems found in the same validation pass (pipeline files report all at once).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<Error>,
}

impl Error {
    pub fn new(kind: ExitKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
            location: None,
            details: Vec::new(),
            related: Vec::new(),
        }
    }
    pub fn input(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Input, message)
    }
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Rejected, message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Timeout, message)
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ExitKind::Transient, message)
    }
    /// A flag's value is wrong: `--timeout: ...`.
    pub fn flag(flag: &str, problem: impl fmt::Display) -> Self {
        Self::invalid(flag, problem)
    }
    /// A named value (flag, environment variable) is wrong: `NAME: problem`.
    pub fn invalid(name: &str, problem: impl fmt::Display) -> Self {
        Self::input(format!("{name}: {problem}"))
    }
    /// A required environment variable is missing; `why` says what needs it.
    pub fn unset(var: &str, why: &str) -> Self {
        Self::input(format!("{var} is not set: {why}"))
    }
    /// The system failed us (a write, a bind, TLS setup): not the user's input,
    /// so not exit 2. `cannot {action} {target}: {cause}`.
    pub fn io(action: &str, target: impl fmt::Display, cause: impl fmt::Display) -> Self {
        Self::transient(format!("cannot {action} {target}: {cause}"))
    }
    /// Reading a file the user named: a missing or forbidden file is bad input
    /// (exit 2), any other failure is I/O.
    pub fn read(what: &str, path: impl fmt::Display, cause: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let e = Self::io("read", format_args!("{what} {path}"), cause);
        match cause.kind() {
            K::NotFound | K::PermissionDenied | K::IsADirectory => Self {
                kind: ExitKind::Input,
                ..e
            },
            _ => e,
        }
    }
    /// Binding a listening socket: an address that is not one is bad input,
    /// anything else (in use, not permitted) is I/O.
    pub fn bind(action: &str, addr: &str, cause: &std::io::Error) -> Self {
        let e = Self::io(action, addr, cause);
        match cause.kind() {
            std::io::ErrorKind::InvalidInput => Self {
                kind: ExitKind::Input,
                ..e
            },
            _ => e,
        }
    }
    /// No app was named anywhere.
    pub fn missing_app() -> Self {
        Self::input(
            "which app? pass --app-id or --bundle-id, set `app:` in the pipeline, or set ASC_APP_ID / ASC_BUNDLE_ID",
        )
    }
    /// App Store Connect has no app with this bundle id for the key's team.
    pub fn no_app(bundle_id: &str) -> Self {
        Self::input(format!("App Store Connect has no app with bundle id {bundle_id} for this API key's team"))
            .with_hint("create the app in App Store Connect first, or check ASC_KEY_ID / ASC_ISSUER_ID belong to the right team")
    }
    pub fn cancelled() -> Self {
        Self::new(ExitKind::Cancelled, "cancelled by signal")
    }
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(Box::new(location));
        self
    }
    pub fn with_details(mut self, details: Vec<Detail>) -> Self {
        self.details = details;
        self
    }
    pub fn exit_code(&self) -> u8 {
        self.kind.code()
    }
    /// Prefix the message with what was being done, keeping kind and details.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
    /// Folds a list of problems into one error (the first leads, the rest are related).
    pub fn many(mut errors: Vec<Error>) -> Option<Error> {
        if errors.is_empty() {
            return None;
        }
        let mut first = errors.remove(0);
        first.related.extend(errors);
        Some(first)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        f.write_str(&self.message)?;
        for d in &self.details {
            write!(f, "\n  - {}: {}", d.code, d.message)?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        for r in &self.related {
            write!(f, "\n{r}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_contract() {
        let table = [
            (ExitKind::Rejected, 1),
            (ExitKind::Input, 2),
            (ExitKind::Auth, 3),
            (ExitKind::Timeout, 4),
            (ExitKind::Transient, 5),
            (ExitKind::Cancelled, 130),
        ];
        for (kind, code) in table {
            assert_eq!(kind.code(), code, "{kind:?}");
        }
    }

    #[test]
    fn display_carries_location_details_and_hint() {
        let e = Error::input("bad key")
            .at(Location {
                file: "f.yml".into(),
                line: 3,
                column: 5,
            })
            .with_details(vec![Detail {
                code: "X".into(),
                message: "y".into(),
            }])
            .with_hint("fix it");
        assert_eq!(
            e.to_string(),
            "f.yml:3:5: bad key\n  - X: y\n  hint: fix it"
        );
    }

    #[test]
    fn io_failures_are_not_bad_input() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(Error::io("write", "out/x", &full).exit_code(), 5);
        assert_eq!(Error::read("the key file", "k.p8", &full).exit_code(), 5);
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let e = Error::read("the key file", "k.p8", &missing);
        assert_eq!(
            (e.exit_code(), e.message.as_str()),
            (2, "cannot read the key file k.p8: entity not found")
        );
        assert_eq!(Error::read("the key file", "k.p8", &denied).exit_code(), 2);
        assert_eq!(Error::flag("--timeout", "bad").message, "--timeout: bad");
        let invalid = std::io::Error::from(std::io::ErrorKind::InvalidInput);
        let in_use = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        assert_eq!(Error::bind("listen on", "x", &invalid).exit_code(), 2);
        assert_eq!(Error::bind("listen on", ":1", &in_use).exit_code(), 5);
    }
}
