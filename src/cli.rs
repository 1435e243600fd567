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
    /// fastlane's API key JSON file (key_id, issuer_id, key); also
    /// APP_STORE_CONNECT_API_KEY_PATH.
    #[arg(long, global = true, value_name = "FILE")]
    pub api_key_json: Option<PathBuf>,
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
        #[arg(long)]
        pipeline: Option<PathBuf>,
        /// Validate, resolve and print the plan; call nothing (an `audience:` is read, never written).
        #[arg(long)]
        dry_run: bool,
        /// Confirm an audience prune that leaves a group with no testers.
        #[arg(long)]
        yes: bool,
    },
    /// Validate a pipeline file; errors carry file:line:column.
    Validate {
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
    /// Reconcile the pipeline's `audience:` (groups, testers, public links).
    #[command(subcommand)]
    Audience(AudienceCmd),
    /// One-off beta tester management (fastlane's tester CSV format).
    #[command(subcommand)]
    Testers(TestersCmd),
    /// Print the highest build number App Store Connect knows + 1.
    NextBuildNumber(NextArgs),
    /// Run the embedded App Store Connect simulator.
    Simulator(SimulatorArgs),
    /// Run the example pipeline against the embedded simulator, end to end.
    Demo,
    /// Check the set-up (credentials, key, role, clock, app, pipeline, CI) and say what to fix.
    Doctor(DoctorArgs),
    /// Write a starter flightdeck.yml and the CI file (for the CI named by
    /// --ci github|gitlab|bitrise; auto looks at the repository, else github).
    Init(InitArgs),
    /// Print the pipeline file's JSON Schema.
    #[command(hide = true)]
    Schema,
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    #[command(hide = true)]
    Man,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The pipeline to check (default flightdeck.yml, or FLIGHTDECK_PIPELINE).
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    #[command(flatten)]
    pub app: AppArgs,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Bundle id of the app (default: from the artifact found, else ASC_BUNDLE_ID).
    #[arg(long)]
    pub bundle_id: Option<String>,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
    /// Directory to write into (default: the working directory).
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args, Clone, Default)]
pub struct AppArgs {
    /// App Store Connect app id (default ASC_APP_ID).
    #[arg(long)]
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
    /// Subscribe to a webhook relay (`webhooks listen`) over outbound HTTP; token from FLIGHTDECK_RELAY_TOKEN.
    #[arg(long, conflicts_with = "webhook_listen")]
    pub webhook_relay: Option<String>,
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
    #[arg(long, required_unless_present = "build", conflicts_with = "build")]
    pub build_upload: Option<String>,
    /// A build to wait for.
    #[arg(long)]
    pub build: Option<String>,
    #[command(flatten)]
    pub waiting: WaitFlags,
    /// The app (needed only to register a temporary webhook).
    #[command(flatten)]
    pub app: AppArgs,
}

#[derive(Debug, Args)]
pub struct TestflightArgs {
    #[arg(long)]
    pub build: String,
    /// Beta group name (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// What to Test notes.
    #[arg(long)]
    pub whats_new: Option<String>,
    #[arg(long, default_value = "en-US")]
    pub locale: String,
    #[arg(long)]
    pub submit_for_review: bool,
    #[arg(long)]
    pub notify: bool,
    /// Export compliance answer when the build has none.
    #[arg(long)]
    pub uses_non_exempt_encryption: Option<bool>,
    /// Once distributed, expire the app's older builds of the same platform.
    #[arg(long)]
    pub expire_previous: bool,
}

#[derive(Debug, Args)]
pub struct FeedbackArgs {
    #[arg(long)]
    pub build: Option<String>,
    /// A duration (24h) or an RFC 3339 timestamp.
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long, default_value = "feedback")]
    pub out: PathBuf,
    /// Only feedback from this app platform (IOS, MAC_OS, TV_OS, VISION_OS).
    #[arg(long)]
    pub platform: Option<String>,
    /// Only feedback from this device model, e.g. iPhone16,1.
    #[arg(long)]
    pub device_model: Option<String>,
    /// Only feedback from this OS version, e.g. 18.1.
    #[arg(long)]
    pub os_version: Option<String>,
    /// Exit 1 when crash submissions not yet in OUT's index exist.
    #[arg(long)]
    pub fail_on_crash: bool,
    /// File crashes and screenshots as issues: github:OWNER/REPO or gitlab:PROJECT_ID.
    #[arg(long)]
    pub to_issues: Option<String>,
    /// Label for those issues (repeatable; default testflight).
    #[arg(long = "label")]
    pub labels: Vec<String>,
    #[command(flatten)]
    pub app: AppArgs,
}

#[derive(Debug, Args)]
pub struct NextArgs {
    #[command(flatten)]
    pub app: AppArgs,
    #[arg(long)]
    pub version: Option<String>,
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
    Delete { id: String },
    /// Send a test delivery.
    Ping { id: String },
    /// List deliveries (optionally only FAILED, SUCCEEDED or PENDING).
    Deliveries {
        id: String,
        #[arg(long)]
        state: Option<String>,
    },
    /// Send a delivery again.
    Redeliver { delivery_id: String },
    /// The relay: verify, persist, dedupe, forward until acknowledged, stream to subscribers.
    Listen(ListenArgs),
}

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Address to serve on, e.g. 0.0.0.0:8787.
    #[arg(long)]
    pub listen: String,
    #[arg(long, default_value = "ASC_WEBHOOK_SECRET")]
    pub secret_env: String,
    /// Forward every verified event here until it answers 2xx (repeatable): a URL
    /// (raw body and signature), github:OWNER/REPO or gitlab:PROJECT_ID[@REF].
    #[arg(long = "forward")]
    pub forward: Vec<String>,
    /// Directory of the embedded durable store (unused with --redis).
    #[arg(long, default_value = "flightdeck-relay-spool")]
    pub spool: PathBuf,
    /// Share dedupe, pending forwards and subscribers with other relays (default FLIGHTDECK_REDIS_URL).
    #[arg(long)]
    pub redis: Option<String>,
    /// Environment variable holding the bearer token of GET /events (off without it).
    #[arg(long)]
    pub subscriber_token_env: Option<String>,
    /// Report a forward as failed once its event is this old.
    #[arg(long, default_value = "24h")]
    pub max_age: String,
    /// Longest pause between two attempts of a forward.
    #[arg(long, default_value = "5m")]
    pub retry_max_delay: String,
    /// With --redis: take over forwards another relay has held this long.
    #[arg(long, default_value = "90s")]
    pub claim_idle: String,
    /// How long a subscriber can still receive an event after it arrived.
    #[arg(long, default_value = "10m")]
    pub replay_window: String,
    /// Time limit for receiving one delivery's body (a slow client gets 408).
    #[arg(long, default_value = "10s")]
    pub request_timeout: String,
    /// File feedback events as issues: github:OWNER/REPO or gitlab:PROJECT_ID
    /// (needs App Store Connect credentials to fetch the submission).
    #[arg(long)]
    pub feedback_to_issues: Option<String>,
    /// Label for those issues (repeatable; default testflight).
    #[arg(long = "feedback-label")]
    pub feedback_labels: Vec<String>,
}

#[derive(Debug, Args)]
pub struct WebhookCreateArgs {
    #[command(flatten)]
    pub app: AppArgs,
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub url: String,
    /// Event type (repeatable), e.g. BUILD_UPLOAD_STATE_UPDATED.
    #[arg(long = "event", required = true)]
    pub events: Vec<String>,
    #[arg(long, default_value = "ASC_WEBHOOK_SECRET")]
    pub secret_env: String,
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Debug, Args)]
pub struct WebhookUpdateArgs {
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long = "event")]
    pub events: Vec<String>,
    #[arg(long)]
    pub secret_env: Option<String>,
    #[arg(long)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Args)]
pub struct SimulatorArgs {
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

#[derive(Debug, Args)]
pub struct AudienceArgs {
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// Confirm a prune that leaves a group with no testers.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum AudienceCmd {
    /// Show the changes that would make App Store Connect match; write nothing.
    Plan(AudienceArgs),
    /// Make the changes.
    Apply(AudienceArgs),
}

#[derive(Debug, Subcommand)]
pub enum TestersCmd {
    /// List the app's testers, or one group's.
    List {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        group: Option<String>,
    },
    /// Add a tester to a group (inviting them).
    Add {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        group: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
    },
    /// Remove a tester from a group, or from the app.
    Remove {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        email: String,
        #[arg(
            long,
            required_unless_present = "whole_app",
            conflicts_with = "whole_app"
        )]
        group: Option<String>,
        /// From the app and every group of it.
        #[arg(long = "app")]
        whole_app: bool,
    },
    /// Add every tester of a CSV (first name,last name,email[,groups]) to a group.
    Import {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        group: String,
        file: PathBuf,
    },
    /// Write the app's (or a group's) testers as a CSV that `import` reads back.
    Export {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Shell completions for `shell`, generated from these flags.
pub fn completions(shell: clap_complete::Shell) -> String {
    use clap::CommandFactory;
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "flightdeck", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The man page (roff), generated from these flags.
pub fn man_page() -> String {
    use clap::CommandFactory;
    let mut out = Vec::new();
    // Rendering into memory cannot fail.
    let _ = clap_mangen::Man::new(Cli::command()).render(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}
