//! The pipeline file (`flightdeck.yml`): strict YAML types, parse errors with
//! file:line:column and "did you mean" hints, and the JSON Schema editors use.
//!
//! Every leaf is a located `Text`, so `${VAR}` interpolation and value checks
//! (durations, booleans, platforms) happen in `plan`, still pointing at the
//! exact line and column.

pub mod schema;
pub mod text;

use crate::error::{Error, Location};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
pub use text::Text;

/// A flightdeck pipeline.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Pipeline {
    /// Format version of this file; `1`.
    pub version: Text,
    /// The app, when the artifact or environment does not say (`ASC_APP_ID` / `ASC_BUNDLE_ID`).
    #[serde(default)]
    pub app: Option<AppSpec>,
    /// The steps, run in order.
    pub steps: Vec<Step>,
    /// The TestFlight audience: groups, testers and public links, reconciled before the testflight step.
    #[serde(default)]
    pub audience: Option<AudienceSpec>,
}

/// TestFlight audience as code.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AudienceSpec {
    /// Remove testers the group's list no longer names (from the listed groups only).
    #[serde(default)]
    pub prune: Option<Text>,
    /// The beta groups to keep as written.
    pub groups: Vec<AudienceGroupSpec>,
}

/// One beta group: created when missing, its public link and testers kept as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AudienceGroupSpec {
    /// The group's name (matched case-insensitively).
    pub name: Text,
    /// true: an external group (the default when it is created); false: internal.
    #[serde(default)]
    pub external: Option<Text>,
    /// The group's public TestFlight link (external groups only).
    #[serde(default)]
    pub public_link: Option<PublicLinkSpec>,
    /// A fastlane tester CSV (`first name,last name,email[,groups]`) or a list of testers.
    #[serde(default)]
    pub testers: Option<TestersField>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PublicLinkSpec {
    /// Whether the link is open (default true).
    #[serde(default)]
    pub enabled: Option<Text>,
    /// Most testers who may join through the link (1 to 10000); absent: no cap.
    #[serde(default)]
    pub limit: Option<Text>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TesterSpec {
    pub email: Text,
    #[serde(default)]
    pub first_name: Option<Text>,
    #[serde(default)]
    pub last_name: Option<Text>,
}

/// A group's testers: a CSV path, or a list.
#[derive(Debug)]
pub enum TestersList {
    File(String),
    Inline(Vec<TesterSpec>),
}

impl<'de> Deserialize<'de> for TestersList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = TestersList;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a CSV file path, or a list of { email, first-name, last-name }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TestersList, E> {
                Ok(TestersList::File(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<TestersList, A::Error> {
                let mut out = Vec::new();
                while let Some(t) = s.next_element::<TesterSpec>()? {
                    out.push(t);
                }
                Ok(TestersList::Inline(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `testers` with its location.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct TestersField(pub serde_saphyr::Spanned<TestersList>);

impl JsonSchema for TestersField {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Testers".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let item = g.subschema_for::<TesterSpec>();
        schemars::json_schema!({
            "description": "A fastlane tester CSV (`first name,last name,email[,groups]`, header optional) or a list of testers.",
            "oneOf": [{"type": "string"}, {"type": "array", "items": item}]
        })
    }
}

/// Which app: its App Store Connect id or its bundle id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AppSpec {
    /// App Store Connect app id (numeric, e.g. "1234567890").
    #[serde(default)]
    pub id: Option<Text>,
    /// Bundle identifier, e.g. com.example.app.
    #[serde(default)]
    pub bundle_id: Option<Text>,
}

/// One step: exactly one of upload, wait, testflight, feedback.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub enum Step {
    Upload(UploadStep),
    Wait(WaitStep),
    Testflight(TestflightStep),
    Feedback(FeedbackStep),
}

/// Upload an .ipa or .pkg through the Build Upload API.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UploadStep {
    /// Path to the .ipa or .pkg.
    pub file: Text,
    /// CFBundleShortVersionString; read from the artifact when absent, must agree when given.
    #[serde(default)]
    pub version: Option<Text>,
    /// CFBundleVersion; read from the artifact when absent, must agree when given.
    #[serde(default)]
    pub build_number: Option<Text>,
    /// IOS, MAC_OS, TV_OS or VISION_OS; read from the artifact when absent.
    #[serde(default)]
    pub platform: Option<Text>,
    /// Succeed (reporting the existing ids) when this build number was already uploaded.
    #[serde(default)]
    pub skip_if_exists: Option<Text>,
    /// Parts sent at once (1 to 32, default 4).
    #[serde(default)]
    pub concurrency: Option<Text>,
    /// Whole-file checksum sent with the commit: SHA_256 (default), MD5 or NONE.
    #[serde(default)]
    pub checksum: Option<Text>,
}

/// Wait until App Store Connect has processed the uploaded build.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WaitStep {
    /// Give up after this long (default 30m); exit code 4.
    #[serde(default)]
    pub timeout: Option<Text>,
    #[serde(default)]
    pub poll: Option<PollSpec>,
    /// Also listen for App Store Connect webhooks; polling stays on as a safety net.
    #[serde(default)]
    pub webhook: Option<WebhookSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PollSpec {
    /// The steady polling interval (default 30s; 5m when a webhook is configured).
    #[serde(default)]
    pub interval: Option<Text>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct WebhookSpec {
    /// Address to listen on, e.g. 0.0.0.0:8787 (or use `relay`).
    #[serde(default)]
    pub listen: Option<Text>,
    /// URL of a webhook relay (`flightdeck webhooks listen`) to subscribe to over
    /// outbound HTTP instead of listening; token from FLIGHTDECK_RELAY_TOKEN.
    #[serde(default)]
    pub relay: Option<Text>,
    /// Shared secret of the webhook (default: ASC_WEBHOOK_SECRET; random when `register` is used).
    #[serde(default)]
    pub secret: Option<Text>,
    /// Public URL of this listener: flightdeck registers a temporary webhook for it and
    /// deletes it afterwards. `auto` uses http://<listen address>/ (local rehearsal).
    #[serde(default)]
    pub register: Option<Text>,
}

/// Distribute the processed build through TestFlight.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestflightStep {
    /// Beta group names to add the build to.
    #[serde(default)]
    pub groups: Option<Vec<Text>>,
    /// What to Test notes: a text (for `locale`, default en-US) or a map of locale to text.
    #[serde(default)]
    pub whats_new: Option<WhatsNewField>,
    /// Locale of a single `whats-new` text.
    #[serde(default)]
    pub locale: Option<Text>,
    /// Submit for Beta App Review (needed for external groups).
    #[serde(default)]
    pub submit_for_review: Option<Text>,
    /// Notify testers now.
    #[serde(default)]
    pub notify: Option<Text>,
    /// Export compliance answer when the Info.plist does not give one.
    #[serde(default)]
    pub uses_non_exempt_encryption: Option<Text>,
    /// Once distributed, expire the app's older builds of the same platform
    /// (never one a pending beta review still needs).
    #[serde(default)]
    pub expire_previous: Option<Text>,
}

/// What to Test notes: one text, or a map of locale to text.
#[derive(Debug)]
pub enum WhatsNew {
    ByLocale(BTreeMap<String, Text>),
    Single(String),
}

impl<'de> Deserialize<'de> for WhatsNew {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = WhatsNew;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a text, or a map of locale to text")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<WhatsNew, E> {
                Ok(WhatsNew::Single(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<WhatsNew, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(k) = m.next_key::<String>()? {
                    out.insert(k, m.next_value::<Text>()?);
                }
                Ok(WhatsNew::ByLocale(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// `whats-new` with its location.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct WhatsNewField(pub serde_saphyr::Spanned<WhatsNew>);

impl JsonSchema for WhatsNewField {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WhatsNew".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "What to Test notes: a text (for `locale`, default en-US) or a map of locale to text.",
            "oneOf": [
                {"type": "string"},
                {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
            ]
        })
    }
}

/// Pull TestFlight feedback (crashes with logs, screenshots) to files.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FeedbackStep {
    /// Only feedback newer than this: a duration (24h) or a timestamp.
    #[serde(default)]
    pub since: Option<Text>,
    /// Directory to write to (default feedback/); it keeps an index, so a re-run fetches only what is new.
    #[serde(default)]
    pub out: Option<Text>,
    /// `current`: only the build this pipeline uploaded; or a build id. Default: every build of the app.
    #[serde(default)]
    pub build: Option<Text>,
    /// Only feedback from this app platform (IOS, MAC_OS, TV_OS, VISION_OS).
    #[serde(default)]
    pub platform: Option<Text>,
    /// Only feedback from this device model, e.g. iPhone16,1.
    #[serde(default)]
    pub device_model: Option<Text>,
    /// Only feedback from this OS version, e.g. 18.1.
    #[serde(default)]
    pub os_version: Option<Text>,
    /// Fail (exit 1) when crash submissions not yet in the directory's index exist.
    #[serde(default)]
    pub fail_on_crash: Option<Text>,
    /// File crashes and screenshot feedback as issues: github:OWNER/REPO or gitlab:PROJECT_ID.
    #[serde(default)]
    pub to_issues: Option<Text>,
    /// Labels for those issues (default [testflight]); the first finds existing ones.
    #[serde(default)]
    pub labels: Option<Vec<Text>>,
}

/// Parse a pipeline file's text. `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Pipeline, Error> {
    serde_saphyr::from_str::<Pipeline>(text).map_err(|e| yaml_error(&e, file))
}

/// Turn a serde-saphyr error into a located, actionable one.
fn yaml_error(e: &serde_saphyr::Error, file: &str) -> Error {
    let full = e.to_string();
    let msg = full.lines().next().unwrap_or(&full).to_string();
    let msg = strip_position_suffix(&msg);
    let mut err = Error::input(format!("invalid pipeline: {msg}"));
    if let Some(loc) = e.location() {
        err = err.at(Location {
            file: file.to_string(),
            line: loc.line() as u32,
            column: loc.column() as u32,
        });
    }
    if let Some(hint) = did_you_mean(&msg) {
        err = err.with_hint(hint);
    }
    err
}

/// serde-saphyr writes "error: line 4 column 7: unknown field ..."; keep the reason.
fn strip_position_suffix(msg: &str) -> String {
    let m = msg.strip_prefix("error: ").unwrap_or(msg);
    let m = match m.strip_prefix("line ").and_then(|r| r.split_once(": ")) {
        Some((pos, rest)) if pos.contains("column") => rest,
        _ => m,
    };
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

/// From serde's "unknown field `x`, expected one of `a`, `b`" (or variant), the nearest valid key.
pub fn did_you_mean(msg: &str) -> Option<String> {
    let unknown = msg.split('`').nth(1)?;
    if !(msg.contains("unknown field") || msg.contains("unknown variant")) {
        return None;
    }
    let list = msg.split_once("expected one of ")?.1;
    let expected: Vec<&str> = list
        .split(',')
        .map(|k| k.trim().trim_matches('`'))
        .filter(|k| !k.is_empty())
        .collect();
    let best = expected
        .iter()
        .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
        .min()
        .filter(|(d, k)| *d <= 3.max(k.len() / 3))?;
    Some(format!(
        "did you mean `{}`? valid keys here: {}",
        best.1,
        expected.join(", ")
    ))
}
