//! The checks that need no network: where the credentials come from, the key,
//! the ids, the pipeline, the webhook secret, the CI and its files.

use super::{Check, Inputs, PipelineInput};
use crate::auth::key;
use crate::ci::Platform;
use crate::config::credentials::{self, Named, Raw};
use crate::config::{Credentials, Settings};
use crate::error::ExitKind;
use crate::plan::Step;
use std::path::Path;

/// credentials, private-key, key-id and issuer-id; the credentials when usable.
pub fn credentials(inputs: &Inputs, checks: &mut Vec<Check>) -> Option<Credentials> {
    let raw = match credentials::find(inputs.env, inputs.api_key_json) {
        Ok(raw) => raw,
        Err(e) => {
            checks.push(Check::from_error("credentials", &e));
            for name in ["private-key", "key-id", "issuer-id"] {
                checks.push(Check::skip(name, "no credentials were found"));
            }
            return None;
        }
    };
    checks.push(source(&raw));
    let key = private_key(&raw);
    let key_ok = !key.failed();
    checks.push(key);
    let key_id = key_id(&raw);
    let key_id_ok = !key_id.failed();
    checks.push(key_id);
    let issuer = issuer_id(&raw);
    let issuer_ok = !issuer.failed();
    checks.push(issuer);
    if !(key_ok && key_id_ok && issuer_ok) {
        return None;
    }
    raw.finish().ok().map(|l| l.credentials)
}

fn source(raw: &Raw) -> Check {
    let mut detail = format!("found {}", raw.source);
    for n in &raw.notes {
        detail.push_str(&format!("; {n}"));
    }
    if raw.in_house {
        return Check::warn(
            "credentials",
            format!("{detail}; {}", credentials::in_house_warning()),
            "create a key in App Store Connect > Users and Access > Integrations",
        );
    }
    Check::pass("credentials", detail)
}

fn private_key(raw: &Raw) -> Check {
    let text = match &raw.key {
        Ok(t) => t,
        Err(e) => return Check::from_error("private-key", e),
    };
    match key::parse(&text.value) {
        Ok(_) => Check::pass(
            "private-key",
            format!("{} holds a PKCS#8 P-256 private key", text.from),
        ),
        Err(e) => Check::fail(
            "private-key",
            ExitKind::Input,
            format!("{}: {e}", text.from),
            e.hint(),
        ),
    }
}

/// Apple's key ids are 10 upper-case letters and digits.
fn looks_like_key_id(id: &str) -> bool {
    id.len() == 10
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// The XXXX of an `AuthKey_XXXX.p8` key file, when the key came from one.
fn id_in_key_file_name(raw: &Raw) -> Option<String> {
    let file = raw.key.as_ref().ok()?.file.as_ref()?;
    let name = file.file_name()?.to_str()?.to_string();
    let id = name.strip_prefix("AuthKey_")?.strip_suffix(".p8")?;
    Some(id.to_string())
}

fn key_id(raw: &Raw) -> Check {
    let Some(Named { from, value, .. }) = &raw.key_id else {
        let e = credentials::missing_key_id();
        return Check::from_error("key-id", &e);
    };
    let (id, note) = credentials::clean_id(from, value);
    let fix_where = "App Store Connect > Users and Access > Integrations shows each key's id; it is also the XXXX of AuthKey_XXXX.p8";
    if let Some(file_id) = id_in_key_file_name(raw).filter(|f| *f != id) {
        return Check::warn(
            "key-id",
            format!(
                "the key id in {from} is not the {file_id} of the key file's name AuthKey_{file_id}.p8"
            ),
            fix_where,
        );
    }
    if let Some(note) = note {
        return Check::warn(
            "key-id",
            format!("{note} (it still works)"),
            format!("store {from} as the bare key id"),
        );
    }
    if !looks_like_key_id(&id) {
        return Check::warn(
            "key-id",
            format!(
                "the key id in {from} has {} characters; Apple's are 10 upper-case letters and digits",
                id.chars().count()
            ),
            fix_where,
        );
    }
    Check::pass(
        "key-id",
        format!("{from} looks like an App Store Connect key id"),
    )
}

fn issuer_id(raw: &Raw) -> Check {
    let Some(Named { from, value, .. }) = &raw.issuer else {
        return Check::pass(
            "issuer-id",
            "no issuer id: an individual key (the token says sub: \"user\")",
        );
    };
    let (id, note) = credentials::clean_id(from, value);
    if !credentials::is_uuid(&id) {
        return Check::fail(
            "issuer-id",
            ExitKind::Input,
            format!("the issuer id in {from} is not a UUID"),
            "copy the Issuer ID shown above the keys in App Store Connect > Users and Access > Integrations (a UUID such as 57246542-96fe-1a63-e053-0824d011072a)",
        );
    }
    match note {
        Some(note) => Check::warn(
            "issuer-id",
            format!("{note} (it still works)"),
            format!("store {from} as the bare UUID, with no newline or quotes"),
        ),
        None => Check::pass("issuer-id", format!("{from} is a UUID")),
    }
}

pub fn pipeline(input: &PipelineInput) -> Check {
    match input {
        PipelineInput::Absent(p) => Check::warn(
            "pipeline",
            format!("no pipeline file {}", p.display()),
            "run `flightdeck init` to write a starter flightdeck.yml, or pass --pipeline FILE",
        ),
        PipelineInput::Loaded(Ok(plan)) => Check::pass(
            "pipeline",
            format!("{} is valid ({} steps)", plan.file, plan.steps.len()),
        ),
        PipelineInput::Loaded(Err(e)) => {
            let mut c = Check::from_error("pipeline", e);
            if let Some(loc) = &e.location {
                c.detail = format!("{loc}: {}", c.detail);
            }
            c
        }
    }
}

pub fn webhook_secret(input: &PipelineInput, settings: &Settings) -> Check {
    let PipelineInput::Loaded(Ok(plan)) = input else {
        return Check::skip("webhook-secret", "no valid pipeline");
    };
    let needing: Vec<bool> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Wait(w) => w.webhook.as_ref().map(|h| h.secret.is_some()),
            _ => None,
        })
        .collect();
    if needing.is_empty() {
        return Check::pass(
            "webhook-secret",
            "not needed: the pipeline receives no webhooks",
        );
    }
    if needing.iter().all(|has| *has) || settings.webhook_secret.is_some() {
        return Check::pass("webhook-secret", "set for the pipeline's webhook listener");
    }
    Check::fail(
        "webhook-secret",
        ExitKind::Input,
        "the pipeline's wait step listens for webhooks but no secret is set",
        "set ASC_WEBHOOK_SECRET (a CI secret), or `secret: \"${ASC_WEBHOOK_SECRET}\"` in the step's webhook",
    )
}

/// Whether a file can be appended to (created if missing, and then removed).
fn writable(p: &Path) -> Result<(), String> {
    let existed = p.exists();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| format!("{}: {e}", p.display()))?;
    if !existed {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

fn writable_dir(d: &Path) -> Result<(), String> {
    std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    writable(&d.join(".flightdeck-doctor"))
}

pub fn ci(s: &Settings) -> Check {
    let paths = &s.ci_paths;
    let (name, problems): (&str, Vec<String>) = match s.platform {
        Platform::Local => {
            return Check::pass(
                "ci",
                "no CI detected: reporting to the terminal (--ci or GITHUB_ACTIONS/GITLAB_CI/BITRISE_IO choose one)",
            );
        }
        Platform::GitHub => {
            let mut p = Vec::new();
            for (var, path) in [
                ("GITHUB_OUTPUT", &paths.github_output),
                ("GITHUB_STEP_SUMMARY", &paths.github_step_summary),
            ] {
                match path {
                    Some(f) => p.extend(writable(f).err()),
                    None => p.push(format!("{var} is not set (runner older than v2.297.0?)")),
                }
            }
            ("GitHub Actions", p)
        }
        Platform::GitLab => {
            let p = [&paths.gitlab_dotenv, &paths.gitlab_codequality]
                .into_iter()
                .filter_map(|f| writable(f).err())
                .collect();
            ("GitLab CI", p)
        }
        Platform::Bitrise => {
            let mut p = Vec::new();
            if paths.envman.is_none() {
                p.push("envman is not on PATH: outputs cannot be exported".to_string());
            }
            if let Some(d) = &paths.bitrise_deploy_dir {
                p.extend(writable_dir(d).err());
            }
            ("Bitrise", p)
        }
    };
    if problems.is_empty() {
        Check::pass(
            "ci",
            format!("{name} detected; its output files are writable"),
        )
    } else {
        Check::fail(
            "ci",
            ExitKind::Input,
            format!("{name} detected, but: {}", problems.join("; ")),
            "run flightdeck as a step of the job itself (not in a container without the runner's files), or pass --ci none",
        )
    }
}
