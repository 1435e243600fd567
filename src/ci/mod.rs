//! Reporting back to the CI: outputs, annotations, groups, a summary, masks.
//!
//! `Reporter` is the one entry point. It registers secrets first, redacts every
//! string it is handed, caps annotations per type (GitHub attaches only ten),
//! remembers outputs for the JSON outcome, and delegates the platform's own
//! mechanics to a `Backend`. Everything it prints goes to one stream (stderr),
//! so workflow commands keep their order and stdout stays pure JSON.

mod bitrise;
mod github;
mod gitlab;
mod local;

use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;

pub use bitrise::Bitrise;
pub use github::GitHub;
pub use gitlab::GitLab;
pub use local::Local;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    #[value(name = "github")]
    GitHub,
    #[value(name = "gitlab")]
    GitLab,
    Bitrise,
    #[value(name = "none")]
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }

    /// The terminal colour of this level on CIs that render ANSI logs (each
    /// picks its own colour for notices).
    fn ansi_color(self, notice: &'static str) -> &'static str {
        match self {
            Level::Error => "\x1b[31;1m",
            Level::Warning => "\x1b[33;1m",
            Level::Notice => notice,
        }
    }
}

/// Where in a file an annotation points (1-based). `ci` is a leaf module:
/// callers convert their own locations (`error::Location`) into this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: String,
    pub line: u32,
    pub column: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Annotation {
    pub level: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

impl Annotation {
    pub fn new(level: Level, message: impl Into<String>) -> Self {
        Self {
            level,
            message: message.into(),
            title: None,
            location: None,
        }
    }
    pub fn titled(mut self, title: impl Into<String>) -> Self {
        self.title = Some(title.into());
        self
    }
    pub fn at(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }
    /// ` (file:line:column)`, or nothing.
    fn at_suffix(&self) -> String {
        self.location
            .as_ref()
            .map(|l| format!(" ({l})"))
            .unwrap_or_default()
    }
}

/// Where each platform's files live, resolved by `config` from the environment.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    pub github_output: Option<PathBuf>,
    pub github_step_summary: Option<PathBuf>,
    pub gitlab_dotenv: PathBuf,
    pub gitlab_codequality: PathBuf,
    pub bitrise_deploy_dir: Option<PathBuf>,
    pub envman: Option<PathBuf>,
}

/// A platform's mechanics. Strings arrive already redacted.
pub trait Backend: Send {
    fn mask(&mut self, out: &mut dyn Write, value: &str) -> io::Result<()>;
    fn annotate(&mut self, out: &mut dyn Write, a: &Annotation) -> io::Result<()>;
    fn group_start(&mut self, out: &mut dyn Write, title: &str) -> io::Result<()>;
    fn group_end(&mut self, out: &mut dyn Write) -> io::Result<()>;
    fn output(&mut self, out: &mut dyn Write, name: &str, value: &str) -> io::Result<()>;
    /// Called once at the end with the Markdown summary and every annotation made.
    fn finish(
        &mut self,
        out: &mut dyn Write,
        summary_md: &str,
        annotations: &[Annotation],
        outcome_json: &str,
    ) -> io::Result<()>;
    /// Print the final error line so the platform picks it up as the failure reason.
    fn final_error(&mut self, out: &mut dyn Write, message: &str) -> io::Result<()> {
        writeln!(out, "error: {message}")
    }
}

/// Annotations of one level attached before the rest are only summarised.
pub const MAX_ANNOTATIONS_PER_LEVEL: usize = 9;

struct Inner {
    backend: Box<dyn Backend>,
    out: Box<dyn Write + Send>,
    secrets: Vec<String>,
    /// Also told every masked value (the command layer passes the process-wide
    /// log redaction, `secret::register`; `ci` itself imports nothing).
    on_mask: Option<fn(&str)>,
    outputs: BTreeMap<String, String>,
    annotations: Vec<Annotation>,
    emitted: BTreeMap<Level, usize>,
    groups_open: usize,
    /// Extra Markdown appended to the step summary (tables a step reports).
    sections: Vec<String>,
}

pub struct Reporter {
    platform: Platform,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("platform", &self.platform)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    pub fn new(platform: Platform, paths: Paths, out: Box<dyn Write + Send>) -> Self {
        let backend: Box<dyn Backend> = match platform {
            Platform::GitHub => Box::new(GitHub::new(paths)),
            Platform::GitLab => Box::new(GitLab::new(paths)),
            Platform::Bitrise => Box::new(Bitrise::new(paths)),
            Platform::Local => Box::new(Local::default()),
        };
        Self::with_backend(platform, backend, out)
    }

    pub fn with_backend(
        platform: Platform,
        backend: Box<dyn Backend>,
        out: Box<dyn Write + Send>,
    ) -> Self {
        Self {
            platform,
            inner: Mutex::new(Inner {
                backend,
                out,
                secrets: Vec::new(),
                on_mask: None,
                outputs: BTreeMap::new(),
                annotations: Vec::new(),
                emitted: BTreeMap::new(),
                groups_open: 0,
                sections: Vec::new(),
            }),
        }
    }

    /// Call `hook` with every value masked from now on (e.g. so the log
    /// writer redacts it too).
    pub fn on_mask(self, hook: fn(&str)) -> Self {
        self.lock().on_mask = Some(hook);
        self
    }

    pub fn platform(&self) -> Platform {
        self.platform
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Register a secret: masked on the platform, and redacted from everything
    /// this reporter writes from now on.
    pub fn mask(&self, secret: &str) {
        let secret = secret.trim();
        if secret.len() < 4 {
            return;
        }
        let mut g = self.lock();
        let inner = &mut *g;
        let mut pieces = vec![secret.to_string()];
        pieces.extend(
            secret
                .lines()
                .map(str::trim)
                .filter(|l| l.len() >= 8)
                .map(str::to_string),
        );
        for p in pieces {
            if let Some(hook) = inner.on_mask {
                hook(&p);
            }
            if !inner.secrets.contains(&p) {
                let _ = inner.backend.mask(&mut inner.out, &p);
                inner.secrets.push(p);
            }
        }
        // Longest first, so a whole secret is replaced before its lines.
        inner.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    pub fn annotate(&self, a: Annotation) {
        let mut g = self.lock();
        let inner = &mut *g;
        let a = Annotation {
            message: neutralize(&redact(&inner.secrets, &a.message)),
            title: a.title.map(|t| redact(&inner.secrets, &t)),
            ..a
        };
        let n = inner.emitted.entry(a.level).or_default();
        *n += 1;
        if *n <= MAX_ANNOTATIONS_PER_LEVEL {
            let _ = inner.backend.annotate(&mut inner.out, &a);
        } else {
            let _ = writeln!(
                inner.out,
                "{}: {}",
                a.level.as_str(),
                neutralize(&a.message)
            );
        }
        inner.annotations.push(a);
    }

    pub fn error(&self, message: impl Into<String>) {
        self.annotate(Annotation::new(Level::Error, message));
    }
    pub fn warning(&self, message: impl Into<String>) {
        self.annotate(Annotation::new(Level::Warning, message));
    }
    pub fn notice(&self, message: impl Into<String>) {
        self.annotate(Annotation::new(Level::Notice, message));
    }

    pub fn group_start(&self, title: &str) {
        let mut g = self.lock();
        let inner = &mut *g;
        let t = redact(&inner.secrets, title);
        let _ = inner.backend.group_start(&mut inner.out, &t);
        inner.groups_open += 1;
    }

    pub fn group_end(&self) {
        let mut g = self.lock();
        let inner = &mut *g;
        if inner.groups_open > 0 {
            inner.groups_open -= 1;
            let _ = inner.backend.group_end(&mut inner.out);
        }
    }

    /// Set an output now (written immediately, so a cancelled run keeps it).
    pub fn set_output(&self, name: &str, value: impl ToString) {
        let mut g = self.lock();
        let inner = &mut *g;
        let v = redact(&inner.secrets, &value.to_string());
        if let Err(e) = inner.backend.output(&mut inner.out, name, &v) {
            let _ = writeln!(inner.out, "warning: could not write output {name}: {e}");
        }
        inner.outputs.insert(name.to_string(), v);
    }

    pub fn outputs(&self) -> BTreeMap<String, String> {
        self.lock().outputs.clone()
    }

    pub fn annotations(&self) -> Vec<Annotation> {
        self.lock().annotations.clone()
    }

    /// Add a Markdown section to the step summary written by `finish`.
    pub fn summary_section(&self, md: &str) {
        self.lock().sections.push(md.to_string());
    }

    /// Close groups, write the summary and platform reports.
    pub fn finish(&self, summary_md: &str, outcome_json: &str) {
        let mut g = self.lock();
        let inner = &mut *g;
        while inner.groups_open > 0 {
            inner.groups_open -= 1;
            let _ = inner.backend.group_end(&mut inner.out);
        }
        for (level, n) in inner.emitted.clone() {
            if n > MAX_ANNOTATIONS_PER_LEVEL {
                let a = Annotation::new(
                    level,
                    format!(
                        "{} more {} messages were not annotated; see the log",
                        n - MAX_ANNOTATIONS_PER_LEVEL,
                        level.as_str()
                    ),
                );
                let _ = inner.backend.annotate(&mut inner.out, &a);
            }
        }
        let mut full = summary_md.to_string();
        if !summary_md.is_empty() {
            for s in &inner.sections {
                full.push('\n');
                full.push_str(s);
            }
        }
        let md = redact(&inner.secrets, &full);
        let json = redact(&inner.secrets, outcome_json);
        let annotations = inner.annotations.clone();
        if let Err(e) = inner
            .backend
            .finish(&mut inner.out, &md, &annotations, &json)
        {
            let _ = writeln!(
                inner.out,
                "warning: could not write the CI report files: {e}"
            );
        }
        let _ = inner.out.flush();
    }

    pub fn final_error(&self, message: &str) {
        let mut g = self.lock();
        let inner = &mut *g;
        let m = neutralize(&redact(&inner.secrets, message));
        let _ = inner.backend.final_error(&mut inner.out, &m);
    }

    /// Write a plain log line through the reporter (redacted, neutralised).
    pub fn line(&self, text: &str) {
        let mut g = self.lock();
        let inner = &mut *g;
        let t = neutralize(&redact(&inner.secrets, text));
        let _ = writeln!(inner.out, "{t}");
    }

    /// Redact registered secrets from text produced elsewhere.
    pub fn redact(&self, text: &str) -> String {
        redact(&self.lock().secrets, text)
    }
}

fn redact(secrets: &[String], text: &str) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

/// Make untrusted text (Apple's messages, file contents) inert as a workflow
/// command: GitHub parses `::cmd::` at a line start after trimming leading
/// whitespace, and the legacy `##[cmd]` anywhere in a line. A zero-width space
/// breaks both markers while the text still reads the same. Line ends are kept.
pub fn neutralize(text: &str) -> String {
    text.split('\n')
        .map(|l| {
            let l = l.replace("##[", "##\u{200B}[");
            let t = l.trim_start();
            if let Some(rest) = t.strip_prefix("::") {
                format!("{}:\u{200B}:{rest}", &l[..l.len() - t.len()])
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `build-upload-id` -> `FLIGHTDECK_BUILD_UPLOAD_ID`.
pub fn env_name(output: &str) -> String {
    format!(
        "FLIGHTDECK_{}",
        output.to_ascii_uppercase().replace(['-', '.', ' '], "_")
    )
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::sync::Arc;

    /// A writer tests can read back.
    #[derive(Clone, Default)]
    pub struct Buf(pub Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        pub fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn neutralizes_workflow_commands_in_untrusted_text() {
        assert_eq!(
            neutralize("::error::x\n  ::warning::y\nok ##[set-output name=a]b\n"),
            ":\u{200B}:error::x\n  :\u{200B}:warning::y\nok ##\u{200B}[set-output name=a]b\n"
        );
    }

    #[test]
    fn env_names() {
        assert_eq!(env_name("build-upload-id"), "FLIGHTDECK_BUILD_UPLOAD_ID");
    }

    #[test]
    fn every_masked_value_reaches_the_on_mask_hook() {
        static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
        fn record(v: &str) {
            SEEN.lock().unwrap().push(v.to_string());
        }
        let r = Reporter::new(Platform::Local, Paths::default(), Box::new(Buf::default()))
            .on_mask(record);
        r.mask("abc");
        r.mask("first-line-value\nsecond-line-value");
        assert_eq!(
            *SEEN.lock().unwrap(),
            [
                "first-line-value\nsecond-line-value",
                "first-line-value",
                "second-line-value"
            ]
        );
    }

    #[test]
    fn local_reporter_redacts_and_caps_annotations() {
        let buf = Buf::default();
        let r = Reporter::new(Platform::Local, Paths::default(), Box::new(buf.clone()));
        r.mask("s3cr3t-value");
        for i in 0..12 {
            r.error(format!("problem {i} with s3cr3t-value"));
        }
        r.set_output("app-id", "id-s3cr3t-value");
        r.finish("summary s3cr3t-value", "{}");
        let text = buf.text();
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert_eq!(r.outputs()["app-id"], "id-***");
        assert!(
            text.contains("3 more error messages were not annotated"),
            "{text}"
        );
    }
}
