//! The plan: every step and its parameters, decided before anything runs.
//!
//! `from_pipeline` validates a parsed pipeline against the environment and
//! reports every problem at once, each at its file:line:column. The plan has
//! no I/O; `--dry-run` and `validate` print it; commands execute it.

use crate::api::models::Platform;
use crate::config::duration;
use crate::config::env::Env;
use crate::config::tuning::UploadTuning;
use crate::error::{Error, Location};
use crate::secret::Secret;
use crate::spec::{self, Pipeline, Step as SpecStep, Text, WhatsNew};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_POLL: Duration = Duration::from_secs(30);
pub const DEFAULT_POLL_WITH_WEBHOOK: Duration = Duration::from_secs(300);
pub const DEFAULT_CONCURRENCY: usize = 4;

pub use crate::app::AppRef;
pub use issue_target::IssueTarget;

mod issue_target;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ChecksumAlgorithm {
    #[serde(rename = "SHA_256")]
    Sha256,
    #[serde(rename = "MD5")]
    Md5,
    /// Commit with `uploaded: true` only (the spec makes checksums optional).
    #[serde(rename = "NONE")]
    None,
}

impl ChecksumAlgorithm {
    pub fn apple_name(self) -> &'static str {
        match self {
            Self::Sha256 => "SHA_256",
            Self::Md5 => "MD5",
            Self::None => "NONE",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UploadPlan {
    pub file: PathBuf,
    pub app: Option<AppRef>,
    pub version: Option<String>,
    pub build_number: Option<String>,
    pub platform: Option<Platform>,
    pub skip_if_exists: bool,
    pub concurrency: usize,
    pub checksum: ChecksumAlgorithm,
    /// Where the values came from, for located errors when they disagree with the artifact.
    #[serde(skip)]
    pub origin: Option<Location>,
    /// The part scheduler's techniques (a benchmark knob, all on by default).
    #[serde(skip)]
    pub tuning: UploadTuning,
}

impl UploadPlan {
    /// Upload `file` with the defaults: every value from the artifact, the
    /// default concurrency, SHA-256.
    pub fn for_file(file: impl Into<PathBuf>) -> Self {
        Self {
            file: file.into(),
            app: None,
            version: None,
            build_number: None,
            platform: None,
            skip_if_exists: false,
            concurrency: DEFAULT_CONCURRENCY,
            checksum: ChecksumAlgorithm::Sha256,
            origin: None,
            tuning: UploadTuning::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WaitTarget {
    /// The upload made by an earlier step of the same run.
    PreviousUpload,
    BuildUpload(String),
    Build(String),
}

impl WaitTarget {
    /// This target with `PreviousUpload` replaced by the upload the run made.
    pub fn resolve(&self, previous_upload: Option<&str>) -> Result<WaitTarget, Error> {
        match self {
            WaitTarget::PreviousUpload => previous_upload
                .map(|id| WaitTarget::BuildUpload(id.into()))
                .ok_or_else(|| Error::input("wait needs an earlier upload step")),
            t => Ok(t.clone()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Register {
    /// http://<bound listen address>/ (local rehearsal against the simulator).
    Auto,
    Url(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct WebhookListen {
    pub listen: String,
    pub secret: Option<Secret>,
    pub register: Option<Register>,
}

/// Wait through a webhook relay: subscribe to its `/events` over outbound HTTP.
#[derive(Debug, Clone, Serialize)]
pub struct RelayWait {
    pub url: String,
    /// FLIGHTDECK_RELAY_TOKEN.
    pub token: Option<Secret>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WaitPlan {
    pub target: WaitTarget,
    #[serde(serialize_with = "ser_duration")]
    pub timeout: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub poll_interval: Duration,
    pub webhook: Option<WebhookListen>,
    pub relay: Option<RelayWait>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildRef {
    /// The build produced by an earlier step of the same run.
    Previous,
    Id(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct TestFlightPlan {
    pub build: BuildRef,
    pub groups: Vec<String>,
    /// locale -> What to Test text
    pub whats_new: BTreeMap<String, String>,
    pub submit_for_review: bool,
    pub notify: bool,
    pub uses_non_exempt_encryption: Option<bool>,
    /// Expire the app's older builds of the platform once distributed.
    pub expire_previous: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Since {
    Ago(#[serde(serialize_with = "ser_duration")] Duration),
    At(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct FeedbackPlan {
    pub app: Option<AppRef>,
    /// None: every build of the app.
    pub build: Option<BuildRef>,
    pub since: Option<Since>,
    pub out: PathBuf,
    pub platform: Option<Platform>,
    pub device_model: Option<String>,
    pub os_version: Option<String>,
    pub fail_on_crash: bool,
    pub to_issues: Option<IssueTarget>,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    Upload(UploadPlan),
    Wait(WaitPlan),
    Testflight(TestFlightPlan),
    Feedback(FeedbackPlan),
}

impl Step {
    pub fn name(&self) -> &'static str {
        match self {
            Step::Upload(_) => "upload",
            Step::Wait(_) => "wait",
            Step::Testflight(_) => "testflight",
            Step::Feedback(_) => "feedback",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub file: String,
    pub app: Option<AppRef>,
    pub steps: Vec<Step>,
    /// The TestFlight audience, reconciled before the testflight step.
    pub audience: Option<crate::audience::Audience>,
}

fn ser_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&duration::format(*d))
}

/// Parses values of a pipeline, collecting every problem.
struct Resolver<'a> {
    env: &'a Env,
    file: &'a str,
    problems: Vec<Error>,
}

impl Resolver<'_> {
    fn text(&mut self, t: &Text) -> Option<String> {
        match t.resolve(self.env, self.file) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(e);
                None
            }
        }
    }

    fn opt_text(&mut self, t: &Option<Text>) -> Option<String> {
        t.as_ref()
            .and_then(|t| self.text(t))
            .filter(|s| !s.is_empty())
    }

    fn problem(&mut self, t: &Text, msg: String) {
        self.problems
            .push(Error::input(msg).at(t.location(self.file)));
    }

    fn parse<T>(
        &mut self,
        t: &Option<Text>,
        what: &str,
        f: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let t = t.as_ref()?;
        let v = self.text(t)?;
        match f(&v) {
            Ok(x) => Some(x),
            Err(e) => {
                self.problem(t, format!("{what}: {e}"));
                None
            }
        }
    }

    fn bool(&mut self, t: &Option<Text>, what: &str) -> Option<bool> {
        self.parse(t, what, parse_bool)
    }

    fn duration(&mut self, t: &Option<Text>, what: &str) -> Option<Duration> {
        self.parse(t, what, duration::parse)
    }
}

pub fn parse_bool(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}

pub fn parse_platform(v: &str) -> Result<Platform, String> {
    let norm = v.trim().to_ascii_uppercase().replace(['-', ' '], "_");
    let p = match norm.as_str() {
        "IOS" => Platform::Ios,
        "MAC_OS" | "MACOS" | "OSX" => Platform::MacOs,
        "TV_OS" | "TVOS" | "APPLETVOS" => Platform::TvOs,
        "VISION_OS" | "VISIONOS" | "XROS" => Platform::VisionOs,
        _ => {
            return Err(format!(
                "unknown platform {v:?}; use one of {}",
                Platform::ALL.join(", ")
            ));
        }
    };
    Ok(p)
}

pub fn parse_checksum(v: &str) -> Result<ChecksumAlgorithm, String> {
    match v.trim().to_ascii_uppercase().replace('-', "_").as_str() {
        "SHA_256" | "SHA256" => Ok(ChecksumAlgorithm::Sha256),
        "MD5" => Ok(ChecksumAlgorithm::Md5),
        "NONE" | "OFF" => Ok(ChecksumAlgorithm::None),
        other => Err(format!(
            "unknown checksum {other:?}; use SHA_256, MD5 or NONE"
        )),
    }
}

pub fn parse_concurrency(v: &str) -> Result<usize, String> {
    match v.trim().parse::<usize>() {
        Ok(n @ 1..=32) => Ok(n),
        _ => Err(format!("expected a whole number from 1 to 32, got {v:?}")),
    }
}

pub fn parse_since(v: &str) -> Result<Since, String> {
    if let Ok(ts) = v.trim().parse::<jiff::Timestamp>() {
        return Ok(Since::At(ts.to_string()));
    }
    duration::parse(v)
        .map(Since::Ago)
        .map_err(|e| format!("{e}, or an RFC 3339 timestamp"))
}

/// Validate a pipeline into a plan, reporting every problem at once.
pub fn from_pipeline(
    p: &Pipeline,
    env: &Env,
    file: &str,
    default_app: Option<AppRef>,
) -> Result<Plan, Error> {
    let mut r = Resolver {
        env,
        file,
        problems: Vec::new(),
    };
    if let Some(v) = r.text(&p.version)
        && v != "1"
    {
        r.problem(
            &p.version,
            format!("unsupported pipeline version {v:?}; this flightdeck reads version 1"),
        );
    }
    let app = match &p.app {
        Some(a) => match (r.opt_text(&a.id), r.opt_text(&a.bundle_id)) {
            (Some(id), _) => Some(AppRef::Id(id)),
            (None, Some(b)) => Some(AppRef::BundleId(b)),
            (None, None) => None,
        },
        None => default_app,
    };
    if p.steps.is_empty() {
        r.problems
            .push(Error::input("the pipeline has no steps").at(Location {
                file: file.into(),
                line: 1,
                column: 1,
            }));
    }
    let mut steps = Vec::new();
    let mut uploaded = false;
    for step in &p.steps {
        let planned = match step {
            SpecStep::Upload(u) => {
                uploaded = true;
                Step::Upload(upload(&mut r, u, app.clone()))
            }
            SpecStep::Wait(w) => Step::Wait(wait(&mut r, w, WaitTarget::PreviousUpload)),
            SpecStep::Testflight(t) => Step::Testflight(testflight(&mut r, t)),
            SpecStep::Feedback(f) => Step::Feedback(feedback(&mut r, f, app.clone(), uploaded)),
        };
        steps.push(planned);
    }
    let audience = p
        .audience
        .as_ref()
        .map(|a| crate::audience::from_spec(a, env, file, &mut r.problems));
    // Steps that need an earlier upload.
    if !uploaded {
        for (i, s) in steps.iter().enumerate() {
            if matches!(s, Step::Wait(_) | Step::Testflight(_)) {
                r.problems.push(
                    Error::input(format!("step {} ({}) needs an earlier upload step in the same pipeline", i + 1, s.name()))
                        .at(Location { file: file.into(), line: 1, column: 1 })
                        .with_hint("add an `upload` step before it, or run `flightdeck wait --build-upload ID` / `flightdeck testflight --build ID` directly"),
                );
            }
        }
    }
    match Error::many(r.problems) {
        Some(e) => Err(e),
        None => Ok(Plan {
            file: file.to_string(),
            app,
            steps,
            audience,
        }),
    }
}

fn feedback(
    r: &mut Resolver,
    f: &spec::FeedbackStep,
    app: Option<AppRef>,
    uploaded: bool,
) -> FeedbackPlan {
    let build = match (&f.build, r.opt_text(&f.build)) {
        (Some(t), Some(b)) if b.eq_ignore_ascii_case("current") => {
            if !uploaded {
                r.problem(t, "build: current needs an earlier upload step".into());
            }
            Some(BuildRef::Previous)
        }
        (_, Some(id)) => Some(BuildRef::Id(id)),
        _ => None,
    };
    let labels = f
        .labels
        .iter()
        .flatten()
        .filter_map(|l| r.text(l))
        .filter(|l| !l.trim().is_empty())
        .collect();
    FeedbackPlan {
        app,
        build,
        since: r.parse(&f.since, "since", parse_since),
        out: PathBuf::from(r.opt_text(&f.out).unwrap_or_else(|| "feedback".into())),
        platform: r.parse(&f.platform, "platform", parse_platform),
        device_model: r.opt_text(&f.device_model),
        os_version: r.opt_text(&f.os_version),
        fail_on_crash: r.bool(&f.fail_on_crash, "fail-on-crash").unwrap_or(false),
        to_issues: r.parse(&f.to_issues, "to-issues", |v| {
            IssueTarget::parse(v)
                .map_err(|e| format!("{}; {}", e.message, e.hint.unwrap_or_default()))
        }),
        labels,
    }
}

fn upload(r: &mut Resolver, u: &spec::UploadStep, app: Option<AppRef>) -> UploadPlan {
    UploadPlan {
        file: PathBuf::from(r.text(&u.file).unwrap_or_default()),
        app,
        version: r.opt_text(&u.version),
        build_number: r.opt_text(&u.build_number),
        platform: r.parse(&u.platform, "platform", parse_platform),
        skip_if_exists: r.bool(&u.skip_if_exists, "skip-if-exists").unwrap_or(false),
        concurrency: r
            .parse(&u.concurrency, "concurrency", parse_concurrency)
            .unwrap_or(DEFAULT_CONCURRENCY),
        checksum: r
            .parse(&u.checksum, "checksum", parse_checksum)
            .unwrap_or(ChecksumAlgorithm::Sha256),
        origin: Some(u.file.location(r.file)),
        tuning: UploadTuning::from_env(r.env),
    }
}

fn wait(r: &mut Resolver, w: &spec::WaitStep, target: WaitTarget) -> WaitPlan {
    let relay = w.webhook.as_ref().and_then(|h| relay_wait(r, h));
    let webhook = w.webhook.as_ref().filter(|h| h.relay.is_none()).map(|h| {
        let listen = match &h.listen {
            Some(l) => r.text(l).unwrap_or_default(),
            None => {
                r.problems.push(Error::input(format!(
                    "{}: the wait step's webhook needs `listen:` or `relay:`",
                    r.file
                )));
                String::new()
            }
        };
        if let Some(l) = &h.listen
            && !listen.is_empty()
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            r.problem(
                l,
                format!("listen: {listen:?} is not an address like 0.0.0.0:8787"),
            );
        }
        let secret = r.opt_text(&h.secret).map(Secret::new);
        let register = r.opt_text(&h.register).map(|v| {
            if v == "auto" {
                Register::Auto
            } else {
                Register::Url(v)
            }
        });
        if let (Some(Register::Url(u)), Some(t)) = (&register, &h.register)
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            r.problem(t, format!("register: {u:?} is not an http(s) URL"));
        }
        WebhookListen {
            listen,
            secret,
            register,
        }
    });
    let poll = w
        .poll
        .as_ref()
        .and_then(|p| r.duration(&p.interval, "poll.interval"));
    let default_poll = if webhook.is_some() || relay.is_some() {
        DEFAULT_POLL_WITH_WEBHOOK
    } else {
        DEFAULT_POLL
    };
    WaitPlan {
        target,
        timeout: r.duration(&w.timeout, "timeout").unwrap_or(DEFAULT_TIMEOUT),
        poll_interval: poll.unwrap_or(default_poll),
        webhook,
        relay,
    }
}

fn relay_wait(r: &mut Resolver, h: &spec::WebhookSpec) -> Option<RelayWait> {
    let t = h.relay.as_ref()?;
    let url = r.text(t)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        r.problem(t, format!("relay: {url:?} is not an http(s) URL"));
    }
    if let Some(l) = &h.listen {
        r.problem(l, "a webhook takes `listen:` or `relay:`, not both".into());
    }
    Some(RelayWait {
        url,
        token: r.env.get(RELAY_TOKEN).map(Secret::new),
    })
}

/// The bearer token a waiting job presents to the relay.
pub const RELAY_TOKEN: &str = "FLIGHTDECK_RELAY_TOKEN";

fn testflight(r: &mut Resolver, t: &spec::TestflightStep) -> TestFlightPlan {
    let groups = t
        .groups
        .iter()
        .flatten()
        .filter_map(|g| r.text(g))
        .collect();
    let locale = r.opt_text(&t.locale).unwrap_or_else(|| "en-US".into());
    let mut whats_new = BTreeMap::new();
    if let Some(w) = &t.whats_new {
        match &w.0.value {
            WhatsNew::Single(s) => {
                let loc = w.0.referenced;
                match crate::spec::text::interpolate(s, r.env) {
                    Ok(v) => {
                        whats_new.insert(locale, v);
                    }
                    Err(e) => r.problems.push(Error::input(e).at(Location {
                        file: r.file.into(),
                        line: loc.line() as u32,
                        column: loc.column() as u32,
                    })),
                }
            }
            WhatsNew::ByLocale(m) => {
                for (loc, text) in m {
                    if let Some(v) = r.text(text) {
                        whats_new.insert(loc.clone(), v);
                    }
                }
            }
        }
    }
    TestFlightPlan {
        build: BuildRef::Previous,
        groups,
        whats_new,
        submit_for_review: r
            .bool(&t.submit_for_review, "submit-for-review")
            .unwrap_or(false),
        notify: r.bool(&t.notify, "notify").unwrap_or(false),
        uses_non_exempt_encryption: r
            .bool(&t.uses_non_exempt_encryption, "uses-non-exempt-encryption"),
        expire_previous: r
            .bool(&t.expire_previous, "expire-previous")
            .unwrap_or(false),
    }
}

/// Human-readable plan, as `--dry-run` and `validate` print it.
pub fn render(plan: &Plan) -> String {
    let mut out = format!("plan for {}\n", plan.file);
    match &plan.app {
        Some(AppRef::Id(id)) => out.push_str(&format!("  app: id {id}\n")),
        Some(AppRef::BundleId(b)) => out.push_str(&format!("  app: bundle id {b}\n")),
        None => out.push_str("  app: from the artifact's bundle id\n"),
    }
    for (i, s) in plan.steps.iter().enumerate() {
        let n = i + 1;
        let line = match s {
            Step::Upload(u) => format!(
                "upload {} (version {}, build {}, platform {}; {} parts at once, {} checksum{})",
                u.file.display(),
                u.version.as_deref().unwrap_or("from artifact"),
                u.build_number.as_deref().unwrap_or("from artifact"),
                u.platform
                    .as_ref()
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "from artifact".into()),
                u.concurrency,
                u.checksum.apple_name(),
                if u.skip_if_exists {
                    "; skip if already uploaded"
                } else {
                    ""
                }
            ),
            Step::Wait(w) => format!(
                "wait for processing (timeout {}, poll every {}{})",
                duration::format(w.timeout),
                duration::format(w.poll_interval),
                w.webhook
                    .as_ref()
                    .map(|h| format!(", webhook on {}", h.listen))
                    .or_else(|| w
                        .relay
                        .as_ref()
                        .map(|h| format!(", webhook relay {}", h.url)))
                    .unwrap_or_default()
            ),
            Step::Testflight(t) => format!(
                "testflight (groups: {}; notes: {}; submit for review: {}; notify: {})",
                if t.groups.is_empty() {
                    "none".into()
                } else {
                    t.groups.join(", ")
                },
                if t.whats_new.is_empty() {
                    "none".into()
                } else {
                    t.whats_new.keys().cloned().collect::<Vec<_>>().join(", ")
                },
                t.submit_for_review,
                t.notify
            ),
            Step::Feedback(f) => format!(
                "feedback to {}{}{}{}{}",
                f.out.display(),
                match &f.since {
                    Some(Since::Ago(d)) => format!(" (last {})", duration::format(*d)),
                    Some(Since::At(t)) => format!(" (since {t})"),
                    None => String::new(),
                },
                match &f.build {
                    Some(BuildRef::Previous) => " for the uploaded build",
                    _ => "",
                },
                if f.fail_on_crash {
                    ", failing on new crashes"
                } else {
                    ""
                },
                f.to_issues
                    .as_ref()
                    .map(|t| format!(", filing issues in {t}"))
                    .unwrap_or_default()
            ),
        };
        out.push_str(&format!("  {n}. {line}\n"));
    }
    if let Some(a) = &plan.audience {
        let names: Vec<&str> = a.groups.iter().map(|g| g.name.as_str()).collect();
        out.push_str(&format!(
            "  audience: {} (prune: {}), reconciled before the testflight step\n",
            names.join(", "),
            a.prune
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_target_resolves_to_the_run_s_upload() {
        let prev = WaitTarget::PreviousUpload;
        assert_eq!(
            prev.resolve(Some("U1")).unwrap(),
            WaitTarget::BuildUpload("U1".into())
        );
        assert_eq!(prev.resolve(None).unwrap_err().exit_code(), 2);
        let b = WaitTarget::Build("B1".into());
        assert_eq!(b.resolve(Some("U1")).unwrap(), b);
    }
}
