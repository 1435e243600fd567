//! Turning the environment and global flags into one validated `Settings`.
//! This is the only code that reads environment variables.

pub mod credentials;
pub mod duration;
pub mod env;
mod fastlane;
pub mod tuning;

use crate::auth::{Issuer, PrivateKey};
use crate::ci::{self, Platform};
use crate::error::Error;
use crate::secret::Secret;
use env::Env;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Names each input is accepted under, in precedence order: ours, fastlane's,
/// Codemagic's, then the GitHub Action input.
pub const KEY_ID: &[&str] = &[
    "ASC_KEY_ID",
    "APP_STORE_CONNECT_API_KEY_KEY_ID",
    "APP_STORE_CONNECT_KEY_IDENTIFIER",
    "INPUT_API-KEY-ID",
];
pub const ISSUER_ID: &[&str] = &[
    "ASC_ISSUER_ID",
    "APP_STORE_CONNECT_API_KEY_ISSUER_ID",
    "APP_STORE_CONNECT_ISSUER_ID",
    "INPUT_API-ISSUER-ID",
    "INPUT_ISSUER-ID",
];
pub const PRIVATE_KEY: &[&str] = &[
    "ASC_PRIVATE_KEY",
    "APP_STORE_CONNECT_API_KEY_KEY",
    "APP_STORE_CONNECT_PRIVATE_KEY",
    "INPUT_API-PRIVATE-KEY",
];
pub const PRIVATE_KEY_PATH: &[&str] = &[
    "ASC_PRIVATE_KEY_PATH",
    "APP_STORE_CONNECT_API_KEY_KEY_FILEPATH",
    "INPUT_API-KEY-PATH",
];
pub const APP_ID: &[&str] = &["ASC_APP_ID", "INPUT_APP-ID"];
pub const BUNDLE_ID: &[&str] = &["ASC_BUNDLE_ID", "INPUT_BUNDLE-ID"];
pub const API_BASE: &[&str] = &["ASC_API_BASE_URL"];
pub const PIPELINE: &[&str] = &["FLIGHTDECK_PIPELINE", "INPUT_PIPELINE"];
pub const WEBHOOK_SECRET: &[&str] = &["ASC_WEBHOOK_SECRET"];
/// Tokens for filing feedback as issues (masked like every secret).
pub const ISSUE_TOKENS: &[&str] = &["GITHUB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN"];

/// Where and as whom feedback is filed as issues (`--to-issues`).
#[derive(Debug, Clone, Default)]
pub struct IssueEnv {
    pub github_token: Option<Secret>,
    /// `GITHUB_API_URL` (default https://api.github.com).
    pub github_api: Option<String>,
    pub gitlab_token: Option<Secret>,
    pub ci_job_token: Option<Secret>,
    /// `CI_API_V4_URL`, e.g. https://gitlab.com/api/v4.
    pub gitlab_api: Option<String>,
}

impl IssueEnv {
    pub fn load(env: &Env) -> Self {
        let secret = |n: &str| env.get(n).filter(|v| !v.is_empty()).map(Secret::new);
        let text = |n: &str| env.get(n).filter(|v| !v.is_empty()).map(str::to_string);
        Self {
            github_token: secret("GITHUB_TOKEN"),
            github_api: text("GITHUB_API_URL"),
            gitlab_token: secret("GITLAB_TOKEN"),
            ci_job_token: secret("CI_JOB_TOKEN"),
            gitlab_api: text("CI_API_V4_URL"),
        }
    }
}

/// Everything needed to call App Store Connect.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub key_id: String,
    pub issuer: Issuer,
    pub key: PrivateKey,
}

/// Global settings, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub api_base: String,
    pub app_id: Option<String>,
    pub bundle_id: Option<String>,
    pub pipeline: Option<PathBuf>,
    pub webhook_secret: Option<Secret>,
    pub platform: ci::Platform,
    pub ci_paths: ci::Paths,
    pub workspace: Option<PathBuf>,
    /// Network tuning (`FLIGHTDECK_HTTP_TIMEOUT`, `FLIGHTDECK_RETRY_DELAY`).
    pub net: Net,
    /// `FLIGHTDECK_UPLOAD_TUNING`: the part scheduler's techniques.
    pub upload_tuning: tuning::UploadTuning,
    pub issues: IssueEnv,
    credentials: Option<Result<Credentials, Error>>,
    /// What was fixed up while reading the credentials (a trimmed newline...).
    pub credential_warnings: Vec<String>,
}

/// Per-request timeout and the first retry delay; None: the defaults
/// (60 s, 500 ms). Tests and slow links tune them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Net {
    pub http_timeout: Option<Duration>,
    pub retry_delay: Option<Duration>,
}

impl Net {
    fn load(env: &Env) -> Result<Self, Error> {
        let read = |name: &str| -> Result<Option<Duration>, Error> {
            env.get(name)
                .map(|v| {
                    duration::parse(v)
                        .ok()
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| {
                            Error::input(format!(
                                "{name} must be a duration such as 2s or 500ms, got {v:?}"
                            ))
                        })
                })
                .transpose()
        };
        Ok(Self {
            http_timeout: read("FLIGHTDECK_HTTP_TIMEOUT")?,
            retry_delay: read("FLIGHTDECK_RETRY_DELAY")?,
        })
    }
}

impl Settings {
    pub fn load(env: &Env, ci_flag: Option<ci::Platform>) -> Result<Self, Error> {
        Self::load_with(env, ci_flag, None)
    }

    /// `load`, with fastlane's API key JSON given by `--api-key-json`.
    pub fn load_with(
        env: &Env,
        ci_flag: Option<ci::Platform>,
        api_key_json: Option<&Path>,
    ) -> Result<Self, Error> {
        let api_base = env
            .lookup(API_BASE)?
            .map(|f| f.value)
            .unwrap_or_else(|| crate::api::client::DEFAULT_BASE_URL.to_string());
        if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
            return Err(Error::input(format!(
                "ASC_API_BASE_URL must be an http(s) URL, got {api_base:?}"
            )));
        }
        let platform = detect_platform(ci_flag, env);
        let loaded = credentials::load(env, api_key_json);
        let credential_warnings = loaded
            .as_ref()
            .map(|l| l.warnings.clone())
            .unwrap_or_default();
        Ok(Self {
            api_base,
            app_id: env.lookup(APP_ID)?.map(|f| f.value),
            bundle_id: env.lookup(BUNDLE_ID)?.map(|f| f.value),
            pipeline: env.lookup(PIPELINE)?.map(|f| PathBuf::from(f.value)),
            webhook_secret: env.lookup(WEBHOOK_SECRET)?.map(|f| Secret::new(f.value)),
            platform,
            ci_paths: ci_paths(env),
            workspace: env
                .get("GITHUB_WORKSPACE")
                .or(env.get("CI_PROJECT_DIR"))
                .or(env.get("BITRISE_SOURCE_DIR"))
                .map(PathBuf::from),
            net: Net::load(env)?,
            upload_tuning: tuning::UploadTuning::from_env(env),
            credentials: Some(loaded.map(|l| l.credentials)),
            issues: IssueEnv::load(env),
            credential_warnings,
        })
    }

    /// Settings for code that builds its own credentials (the demo, tests).
    pub fn with_credentials(api_base: &str, creds: Credentials) -> Self {
        Self {
            api_base: api_base.to_string(),
            app_id: None,
            bundle_id: None,
            pipeline: None,
            webhook_secret: None,
            platform: ci::Platform::Local,
            ci_paths: ci::Paths::default(),
            workspace: None,
            net: Net::default(),
            upload_tuning: tuning::UploadTuning::default(),
            issues: IssueEnv::default(),
            credentials: Some(Ok(creds)),
            credential_warnings: Vec::new(),
        }
    }

    /// The credentials, or the reason they are unusable.
    pub fn credentials(&self) -> Result<&Credentials, Error> {
        match &self.credentials {
            Some(Ok(c)) => Ok(c),
            Some(Err(e)) => Err(e.clone()),
            None => Err(Error::input("no App Store Connect credentials")),
        }
    }

    /// A path as CI annotations want it: relative to the workspace when inside it.
    pub fn display_path(&self, p: &Path) -> String {
        if let Some(ws) = &self.workspace
            && let Ok(abs) = std::path::absolute(p)
            && let Ok(rel) = abs.strip_prefix(ws)
        {
            return rel.to_string_lossy().replace('\\', "/");
        }
        p.to_string_lossy().into_owned()
    }
}

/// Where the CI files go; also used when the rest of the settings are invalid,
/// so a failed run still replaces the previous run's files.
pub fn ci_paths(env: &Env) -> ci::Paths {
    ci::Paths {
        github_output: env.get("GITHUB_OUTPUT").map(PathBuf::from),
        github_step_summary: env.get("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        gitlab_dotenv: PathBuf::from(env.get("FLIGHTDECK_DOTENV").unwrap_or("flightdeck.env")),
        gitlab_codequality: PathBuf::from(
            env.get("FLIGHTDECK_CODEQUALITY_REPORT")
                .unwrap_or("gl-code-quality-report.json"),
        ),
        bitrise_deploy_dir: env.get("BITRISE_DEPLOY_DIR").map(PathBuf::from),
        envman: env.get("PATH").and_then(|p| find_on_path(p, "envman")),
    }
}

fn find_on_path(path: &str, name: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Read the key id, issuer and private key from the environment, under any
/// peer's names (see `credentials`).
pub fn load_credentials(env: &Env) -> Result<Credentials, Error> {
    credentials::load(env, None).map(|l| l.credentials)
}

/// Platform detection: flag, then GitHub, GitLab, Bitrise, else a terminal.
pub fn detect_platform(flag: Option<Platform>, env: &Env) -> Platform {
    if let Some(p) = flag {
        return p;
    }
    if env.is_true("GITHUB_ACTIONS") {
        Platform::GitHub
    } else if env.is_true("GITLAB_CI") {
        Platform::GitLab
    } else if env.is_true("BITRISE_IO") || env.get("ENVMAN_ENVSTORE_PATH").is_some() {
        Platform::Bitrise
    } else {
        Platform::Local
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::key;

    #[test]
    fn ci_detection_order() {
        let d =
            |pairs: &[(&str, &str)]| detect_platform(None, &Env::from_pairs(pairs.iter().copied()));
        assert_eq!(
            d(&[("GITHUB_ACTIONS", "true"), ("GITLAB_CI", "true")]),
            Platform::GitHub
        );
        assert_eq!(
            d(&[("GITLAB_CI", "true"), ("CI", "true")]),
            Platform::GitLab
        );
        assert_eq!(d(&[("ENVMAN_ENVSTORE_PATH", "/x")]), Platform::Bitrise);
        assert_eq!(d(&[("CI", "true")]), Platform::Local);
        assert_eq!(
            detect_platform(
                Some(Platform::GitLab),
                &Env::from_pairs([("GITHUB_ACTIONS", "true")])
            ),
            Platform::GitLab
        );
    }

    fn env_with(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn fastlane_and_codemagic_aliases_work() {
        let (pem, _) = key::generate();
        let fastlane = env_with(&[
            ("APP_STORE_CONNECT_API_KEY_KEY_ID", "K1"),
            ("APP_STORE_CONNECT_API_KEY_ISSUER_ID", "I1"),
            ("APP_STORE_CONNECT_API_KEY_KEY", pem.expose()),
        ]);
        let c = load_credentials(&fastlane).unwrap();
        assert_eq!(
            (c.key_id.as_str(), c.issuer),
            ("K1", Issuer::Team("I1".into()))
        );
        let codemagic = env_with(&[
            ("APP_STORE_CONNECT_KEY_IDENTIFIER", "K2"),
            ("APP_STORE_CONNECT_PRIVATE_KEY", pem.expose()),
        ]);
        let c = load_credentials(&codemagic).unwrap();
        assert_eq!((c.key_id.as_str(), c.issuer), ("K2", Issuer::Individual));
        let gha = env_with(&[
            ("INPUT_API-KEY-ID", "K3"),
            ("INPUT_API-PRIVATE-KEY", pem.expose()),
        ]);
        assert_eq!(load_credentials(&gha).unwrap().key_id, "K3");
    }

    #[test]
    fn key_from_a_path_in_either_variable() {
        let (pem, _) = key::generate();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("AuthKey_K.p8");
        std::fs::write(&p, pem.expose()).unwrap();
        let p = p.to_str().unwrap();
        assert!(
            load_credentials(&env_with(&[
                ("ASC_KEY_ID", "K"),
                ("ASC_PRIVATE_KEY_PATH", p)
            ]))
            .is_ok()
        );
        assert!(
            load_credentials(&env_with(&[("ASC_KEY_ID", "K"), ("ASC_PRIVATE_KEY", p)])).is_ok()
        );
        let e = load_credentials(&env_with(&[
            ("ASC_KEY_ID", "K"),
            ("ASC_PRIVATE_KEY_PATH", "/nope/AuthKey.p8"),
        ]))
        .unwrap_err();
        assert!(
            e.message
                .contains("ASC_PRIVATE_KEY_PATH: cannot read the key file /nope/AuthKey.p8"),
            "{}",
            e.message
        );
    }

    #[test]
    fn missing_and_empty_inputs_say_what_to_do() {
        let e = load_credentials(&env_with(&[])).unwrap_err();
        assert!(e.message.starts_with("ASC_KEY_ID is not set"));
        let e = load_credentials(&env_with(&[("ASC_KEY_ID", "K")])).unwrap_err();
        assert!(e.message.starts_with("no private key"));
        let e = load_credentials(&env_with(&[("ASC_KEY_ID", "K"), ("ASC_PRIVATE_KEY", "")]))
            .unwrap_err();
        assert!(
            e.message.contains("ASC_PRIVATE_KEY is set but empty"),
            "{}",
            e.message
        );
        let e = load_credentials(&env_with(&[
            ("ASC_KEY_ID", "K"),
            (
                "ASC_PRIVATE_KEY",
                "-----BEGIN EC PRIVATE KEY-----\nAA\n-----END EC PRIVATE KEY-----",
            ),
        ]))
        .unwrap_err();
        assert!(
            e.message
                .starts_with("ASC_PRIVATE_KEY: the private key is a SEC1"),
            "{}",
            e.message
        );
        assert!(e.hint.unwrap().contains("openssl pkcs8 -topk8"));
    }
}
