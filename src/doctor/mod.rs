//! `flightdeck doctor`: check a set-up without uploading anything.
//!
//! Most failed first runs are set-up problems: the wrong key format, an issuer
//! id pasted with a newline, a key without the role TestFlight needs, a clock
//! that is off, a secret the CI never passed. Each check is a function that
//! returns a typed `Check` (no printing); `run` puts them in order, skipping
//! the ones whose prerequisites failed, and the command layer prints them.
//! The exit code is the class of the first failure.

mod local;
mod remote;

use crate::config::Settings;
use crate::config::env::Env;
use crate::error::{Error, ExitKind};
use crate::plan::{AppRef, Plan};
use serde::Serialize;
use std::path::PathBuf;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "status", content = "class")]
pub enum Status {
    Pass,
    Warn,
    /// Failed; the class decides the exit code (input 2, auth 3, transient 5).
    Fail(ExitKind),
    /// Not run: an earlier check it depends on failed.
    Skip,
}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    #[serde(flatten)]
    pub status: Status,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Pass, detail, None::<String>)
    }
    pub fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, detail, Some(fix))
    }
    pub fn fail(
        name: &'static str,
        class: ExitKind,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Self::new(name, Status::Fail(class), detail, Some(fix))
    }
    pub fn skip(name: &'static str, because: &str) -> Self {
        Self::new(
            name,
            Status::Skip,
            format!("not checked: {because}"),
            None::<String>,
        )
    }
    fn new(
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: Option<impl Into<String>>,
    ) -> Self {
        Self {
            name,
            status,
            detail: detail.into(),
            fix: fix.map(Into::into),
        }
    }
    /// A failure from an `Error`: its message, its hint as the fix.
    pub fn from_error(name: &'static str, e: &Error) -> Self {
        Self::new(
            name,
            Status::Fail(e.kind),
            e.message.clone(),
            Some(e.hint.clone().unwrap_or_else(|| "see the message".into())),
        )
    }
    pub fn failed(&self) -> bool {
        matches!(self.status, Status::Fail(_))
    }
}

/// The checklist, in order.
#[derive(Debug, Clone, Serialize)]
pub struct Checklist {
    pub checks: Vec<Check>,
}

impl Checklist {
    /// 0 when nothing failed, else the exit code of the first failure's class.
    pub fn exit_code(&self) -> u8 {
        self.first_failure()
            .and_then(|c| match c.status {
                Status::Fail(k) => Some(k.code()),
                _ => None,
            })
            .unwrap_or(0)
    }

    pub fn first_failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.failed())
    }

    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// One line per check, with what to fix under it.
    pub fn render(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let mark = match c.status {
                Status::Pass => " ok ",
                Status::Warn => "warn",
                Status::Fail(_) => "FAIL",
                Status::Skip => "skip",
            };
            out.push_str(&format!("[{mark}] {:width$}  {}\n", c.name, c.detail));
            if let Some(fix) = c.fix.as_ref().filter(|_| c.status != Status::Pass) {
                out.push_str(&format!("       {:width$}  fix: {fix}\n", ""));
            }
        }
        let failed = self.checks.iter().filter(|c| c.failed()).count();
        let warned = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Warn)
            .count();
        let warnings = plural(warned, "warning");
        out.push_str(&match failed {
            0 => format!("doctor: all checks passed ({warnings})\n"),
            n => format!("doctor: {} failed, {warnings}\n", plural(n, "check")),
        });
        out
    }
}

/// `1 check`, `2 checks`.
pub fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// The pipeline as the command layer found it.
pub enum PipelineInput {
    /// The default file is not there (and none was asked for).
    Absent(PathBuf),
    Loaded(Result<Plan, Error>),
}

/// Everything doctor looks at.
pub struct Inputs<'a> {
    pub env: &'a Env,
    pub settings: &'a Settings,
    pub api_key_json: Option<&'a std::path::Path>,
    pub app: Option<AppRef>,
    pub pipeline: PipelineInput,
    /// Told about each signed token, so CI masks it.
    pub on_token: Option<crate::auth::OnNewToken>,
}

/// Run every check, in order.
pub async fn run(inputs: Inputs<'_>) -> Checklist {
    let mut checks = Vec::new();
    let creds = local::credentials(&inputs, &mut checks);
    let plan = match &inputs.pipeline {
        PipelineInput::Loaded(Ok(p)) => Some(p),
        _ => None,
    };
    let app = inputs
        .app
        .clone()
        .or_else(|| plan.and_then(|p| p.app.clone()));
    remote::all(&inputs, creds.as_ref(), app, &mut checks).await;
    checks.push(local::pipeline(&inputs.pipeline));
    checks.push(local::webhook_secret(&inputs.pipeline, inputs.settings));
    checks.push(local::ci(inputs.settings));
    Checklist { checks }
}
