//! Command-line flags (clap). Raw values only; `commands` turns them into plans.

use crate::ci::Platform;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "flightdeck",
    version,
    about = "Ship iOS, macOS, tvOS and visionOS builds through the App Store Connect API, from any CI, with no Mac."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// text, or json: one JSON outcome document on stdout and nothing else there.
    #[arg(long, global = true, value_enum, default_value_t = Output::Text)]
    pub output: Output,
    /// error, warn, info, debug or trace (or FLIGHTDECK_LOG / RUST_LOG).
    #[arg(long, global = true)]
    pub log_level: Option<String>,
    /// Which CI to report to; auto detects it from the environment.
    #[arg(long, global = true, value_enum, default_value_t = CiChoice::Auto)]
    pub ci: CiChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CiChoice {
    Auto,
    Github,
    Gitlab,
    Bitrise,
    None,
}

impl CiChoice {
    pub fn platform(self) -> Option<Platform> {
        match self {
            CiChoice::Auto => None,
            CiChoice::Github => Some(Platform::GitHub),
            CiChoice::Gitlab => Some(Platform::GitLab),
            CiChoice::Bitrise => Some(Platform::Bitrise),
            CiChoice::None => Some(Platform::Local),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a pipeline file (default flightdeck.yml, or FLIGHTDECK_PIPELINE).
    Run {
        /// The pipeline file (default flightdeck.yml, or FLIGHTDECK_PIPELINE).
        #[arg(long)]
        pipeline: Option<PathBuf>,
        /// Preflight and print the plan: reads from App Store Connect, writes nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate a pipeline file; errors carry file:line:column.
    Validate {
        /// The pipeline file (default flightdeck.yml, or FLIGHTDECK_PIPELINE).
        #[arg(long)]
        pipeline: Option<PathBuf>,
    },
    /// Upload an .ipa or .pkg.
    Upload(UploadArgs),
    /// Wait until App Store Connect has processed a build.
    Wait(WaitArgs),
    /// Distribute a processed build through TestFlight.
    Testflight(TestflightArgs),
    /// Pull TestFlight crash and screenshot feedback to files.
    Feedback(FeedbackArgs),
    /// Manage App Store Connect webhooks, or receive them.
    #[command(subcommand)]
    Webhooks(WebhooksCmd),
    /// Print the highest build number App Store Connect knows + 1.
    NextBuildNumber(NextArgs),
    /// Run the embedded App Store Connect simulator.
    Simulator(SimulatorArgs),
    /// Run the example pipeline against the embedded simulator, end to end.
    Demo,
    /// Print the pipeline file's JSON Schema.
    #[command(hide = true)]
    Schema,
}

#[derive(Debug, Args, Clone, Default)]
pub struct AppArgs {
    /// App Store Connect app id (default ASC_APP_ID).
    #[arg(long, value_parser = resource_id)]
    pub app_id: Option<String>,
    /// Bundle id (default ASC_BUNDLE_ID).
    #[arg(long, conflicts_with = "app_id")]
    pub bundle_id: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct WebhookArgs {
    /// Also listen for App Store Connect webhooks on this address (polling stays on).
    #[arg(long)]
    pub webhook_listen: Option<String>,
    /// Environment variable holding the webhook secret (default ASC_WEBHOOK_SECRET).
    #[arg(long)]
    pub webhook_secret_env: Option<String>,
    /// Register a temporary webhook for this public URL (or `auto`) and delete it afterwards.
    #[arg(long)]
    pub webhook_register: Option<String>,
}

/// How to wait for processing: shared by `wait` and `upload --wait`.
#[derive(Debug, Args, Clone, Default)]
pub struct WaitFlags {
    /// Give up waiting after this long (default 30m); exit code 4.
    #[arg(long)]
    pub timeout: Option<String>,
    /// Steady polling interval (default 30s; 5m with a webhook).
    #[arg(long)]
    pub poll_interval: Option<String>,
    #[command(flatten)]
    pub webhook: WebhookArgs,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The .ipa (iOS, tvOS, visionOS) or .pkg (macOS) to upload.
    pub file: PathBuf,
    #[command(flatten)]
    pub app: AppArgs,
    /// IOS, MAC_OS, TV_OS or VISION_OS (default: from the artifact; must agree with it).
    #[arg(long)]
    pub platform: Option<String>,
    /// CFBundleShortVersionString (default: from the artifact; must agree with it).
    #[arg(long)]
    pub version: Option<String>,
    /// CFBundleVersion (default: from the artifact; must agree with it).
    #[arg(long)]
    pub build_number: Option<String>,
    /// Succeed (reporting the existing ids) when the build number was already uploaded.
    #[arg(long)]
    pub skip_if_exists: bool,
    /// Parts sent at once (1-32).
    #[arg(long, default_value_t = crate::plan::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// Whole-file checksum sent with the commit: SHA_256, MD5 or NONE.
    #[arg(long, default_value = "SHA_256")]
    pub checksum: String,
    /// Wait for processing after the upload.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub waiting: WaitFlags,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The build upload to wait for (the `build-upload-id` output of `upload`).
    #[arg(long, required_unless_present = "build", conflicts_with = "build", value_parser = resource_id)]
    pub build_upload: Option<String>,
    /// A build to wait for.
    #[arg(long, value_parser = resource_id)]
    pub build: Option<String>,
    #[command(flatten)]
    pub waiting: WaitFlags,
    /// The app (needed only to register a temporary webhook).
    #[command(flatten)]
    pub app: AppArgs,
}

#[derive(Debug, Args)]
pub struct TestflightArgs {
    /// The build to distribute (the `build-id` output of `wait` or `upload --wait`).
    #[arg(long, value_parser = resource_id)]
    pub build: String,
    /// Beta group to add the build to, by name (any case) or id (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// What to Test notes for --locale (default: WhatToTest.<locale>.txt files in TestFlight/).
    #[arg(long, conflicts_with = "whats_new_dir")]
    pub whats_new: Option<String>,
    /// Directory of WhatToTest.<locale>.txt files (Xcode Cloud's layout), one localization each.
    #[arg(long)]
    pub whats_new_dir: Option<PathBuf>,
    /// Locale of --whats-new.
    #[arg(long, default_value = "en-US")]
    pub locale: String,
    /// Submit the build for Beta App Review (needed for external groups); a submission already made counts.
    #[arg(long)]
    pub submit_for_review: bool,
    /// Notify the testers, unless they were already notified of this build.
    #[arg(long)]
    pub notify: bool,
    /// Export compliance answer (true or false) when the build has none.
    #[arg(long)]
    pub uses_non_exempt_encryption: Option<bool>,
}

#[derive(Debug, Args)]
pub struct FeedbackArgs {
    /// Only feedback on this build (default: every build of the app).
    #[arg(long, value_parser = resource_id)]
    pub build: Option<String>,
    /// A duration (24h) or an RFC 3339 timestamp.
    #[arg(long)]
    pub since: Option<String>,
    /// Directory the feedback is written to (one folder per item, plus index.json).
    #[arg(long, default_value = "feedback")]
    pub out: PathBuf,
    #[command(flatten)]
    pub app: AppArgs,
}

#[derive(Debug, Args)]
pub struct NextArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// Only builds of this CFBundleShortVersionString (default: every version).
    #[arg(long)]
    pub version: Option<String>,
    /// IOS, MAC_OS, TV_OS or VISION_OS.
    #[arg(long, default_value = "IOS")]
    pub platform: String,
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCmd {
    /// List the app's webhooks.
    List(AppArgs),
    /// Create a webhook (the secret is read from --secret-env).
    Create(WebhookCreateArgs),
    /// Change a webhook.
    Update(WebhookUpdateArgs),
    /// Delete a webhook.
    Delete {
        /// The webhook's id (see `webhooks list`).
        #[arg(value_parser = resource_id)]
        id: String,
    },
    /// Send a test delivery.
    Ping {
        /// The webhook's id (see `webhooks list`).
        #[arg(value_parser = resource_id)]
        id: String,
    },
    /// List deliveries (optionally only FAILED, SUCCEEDED or PENDING).
    Deliveries {
        /// The webhook's id (see `webhooks list`).
        #[arg(value_parser = resource_id)]
        id: String,
        /// Only deliveries in this state: SUCCEEDED, FAILED or PENDING.
        #[arg(long, value_parser = delivery_state)]
        state: Option<String>,
    },
    /// Send a delivery again.
    Redeliver {
        /// The delivery's id (see `webhooks deliveries`).
        #[arg(value_parser = resource_id)]
        delivery_id: String,
    },
    /// Receive deliveries: verify, dedupe, log, forward.
    Listen {
        /// Address to listen on, e.g. 0.0.0.0:8787.
        #[arg(long)]
        listen: String,
        /// Environment variable holding the webhook secret.
        #[arg(long, default_value = "ASC_WEBHOOK_SECRET")]
        secret_env: String,
        /// Forward each verified delivery (body and signature) to this URL (repeatable).
        #[arg(long = "forward")]
        forward: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct WebhookCreateArgs {
    #[command(flatten)]
    pub app: AppArgs,
    /// A name for the webhook, shown in App Store Connect.
    #[arg(long)]
    pub name: String,
    /// Where Apple sends deliveries: an http(s) URL.
    #[arg(long, value_parser = web_url)]
    pub url: String,
    /// Event type (repeatable), e.g. BUILD_UPLOAD_STATE_UPDATED.
    #[arg(long = "event", required = true)]
    pub events: Vec<String>,
    /// Environment variable holding the signing secret.
    #[arg(long, default_value = "ASC_WEBHOOK_SECRET")]
    pub secret_env: String,
    /// Create it disabled (no deliveries until enabled).
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Debug, Args)]
pub struct WebhookUpdateArgs {
    /// The webhook's id (see `webhooks list`).
    #[arg(value_parser = resource_id)]
    pub id: String,
    /// A new name.
    #[arg(long)]
    pub name: Option<String>,
    /// A new delivery URL (http or https).
    #[arg(long, value_parser = web_url)]
    pub url: Option<String>,
    /// Replace the event types with these (repeatable), e.g. BUILD_UPLOAD_STATE_UPDATED.
    #[arg(long = "event")]
    pub events: Vec<String>,
    /// Environment variable holding a new signing secret.
    #[arg(long)]
    pub secret_env: Option<String>,
    /// Turn deliveries on (true) or off (false).
    #[arg(long)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Args)]
pub struct SimulatorArgs {
    /// Address to serve the simulated App Store Connect API on.
    #[arg(long, default_value = "127.0.0.1:4010")]
    pub listen: String,
    /// Write ASC_* variables for this simulator (with a generated key) to this file.
    #[arg(long, default_value = "flightdeck-simulator.env")]
    pub write_env: PathBuf,
    /// Bytes per upload part.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    pub part_size: u64,
    /// Processing time after a commit (e.g. 2s).
    #[arg(long, default_value = "2s")]
    pub processing_delay: String,
    /// Create feedback for each processed build.
    #[arg(long)]
    pub seed_feedback: bool,
    /// Faults as JSON, e.g. '{"seed":7,"api_5xx":0.1,"part_drop":0.05}'.
    #[arg(long)]
    pub faults: Option<String>,
    /// Bandwidth shared by all part uploads, like an uplink (e.g. 100Mbit/s,
    /// 50MiB/s); unlimited by default.
    #[arg(long)]
    pub bandwidth: Option<String>,
}

/// Apple's `deliveryState` values (`filter[deliveryState]`), in any case.
pub fn delivery_state(v: &str) -> Result<String, String> {
    const STATES: [&str; 3] = ["SUCCEEDED", "FAILED", "PENDING"];
    let up = v.trim().to_ascii_uppercase();
    match STATES.contains(&up.as_str()) {
        true => Ok(up),
        false => Err(format!(
            "not a delivery state; use one of {}",
            STATES.join(", ")
        )),
    }
}

/// An absolute http(s) URL with a host, as Apple's `format: uri` for webhook URLs needs.
pub fn web_url(v: &str) -> Result<String, String> {
    let u = reqwest::Url::parse(v.trim())
        .map_err(|e| format!("not a URL ({e}); use e.g. https://ci.example.com/hooks/asc"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err("use an http:// or https:// URL with a host".into());
    }
    Ok(v.trim().to_string())
}

/// An App Store Connect resource id: it goes into a URL path, so it must be one
/// path segment (letters, digits, `-`, `_`, `.`), as Apple's ids are.
pub fn resource_id(v: &str) -> Result<String, String> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match ok {
        true => Ok(v.to_string()),
        false => Err("not an App Store Connect id (letters, digits, - _ . only)".into()),
    }
}
