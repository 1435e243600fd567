//! Feedback as tracked issues: one issue per crash signature (with a comment
//! for each further occurrence) and one per screenshot submission, on GitHub
//! (`github:OWNER/REPO`) or GitLab (`gitlab:PROJECT_ID`).
//!
//! Idempotent without a search index (GitHub's lags behind writes): every
//! issue body carries a hidden marker, `<!-- flightdeck:crash:<sig> -->` or
//! `<!-- flightdeck:screenshot:<id> -->`, and every occurrence one for its
//! submission, `<!-- flightdeck:submission:<id> -->`. A run lists the
//! repository's issues with the label (every page) and the comments of the
//! issues it adds to, so re-runs and relays find what exists. A write that
//! failed in transit is read back before it is sent again.

pub mod github;
pub mod gitlab;
pub mod http;

use super::index::Entry;
use super::{Kind, fetch, signature};
use crate::api::Client;
use crate::config::IssueEnv;
use crate::error::Error;
use crate::error::ExitKind;
use crate::webhooks::Event;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const DEFAULT_LABEL: &str = "testflight";

/// Where issues go (parsed with the plan, which validates it without I/O).
pub use crate::plan::IssueTarget as Target;

/// An issue as the trackers list it.
#[derive(Debug, Clone)]
pub struct Issue {
    pub number: u64,
    pub url: String,
    pub body: String,
}

/// A connected tracker.
pub enum Tracker {
    GitHub(github::GitHub),
    GitLab(gitlab::GitLab),
}

impl Tracker {
    /// The tracker for `target`, with its token and API base from `env`.
    pub fn connect(target: &Target, env: &IssueEnv) -> Result<Tracker, Error> {
        match target {
            Target::GitHub { owner, repo } => {
                let token = env.github_token.clone().ok_or_else(|| {
                    Error::input(format!(
                        "GITHUB_TOKEN is not set: filing issues in {owner}/{repo} needs a token"
                    ))
                    .with_hint("in a workflow: env: { GITHUB_TOKEN: ${{ github.token }} } and permissions: { issues: write }")
                })?;
                let api = env.github_api.as_deref().unwrap_or(github::DEFAULT_API);
                Ok(Tracker::GitHub(github::GitHub::new(
                    api, owner, repo, token,
                )?))
            }
            Target::GitLab { project } => {
                let api = env.gitlab_api.as_deref().ok_or_else(|| {
                    Error::input(format!(
                        "CI_API_V4_URL is not set: which GitLab holds project {project}?"
                    ))
                    .with_hint("set CI_API_V4_URL, e.g. https://gitlab.com/api/v4")
                })?;
                let (token, job) = match (&env.gitlab_token, &env.ci_job_token) {
                    (Some(t), _) => (t.clone(), false),
                    (None, Some(t)) => (t.clone(), true),
                    (None, None) => {
                        return Err(Error::input(format!(
                            "neither GITLAB_TOKEN nor CI_JOB_TOKEN is set: filing issues in GitLab project {project} needs a token"
                        ))
                        .with_hint("set GITLAB_TOKEN to a token with the api scope"));
                    }
                };
                Ok(Tracker::GitLab(gitlab::GitLab::new(
                    api, project, token, job,
                )?))
            }
        }
    }

    async fn list(&self, label: &str) -> Result<Vec<Issue>, Error> {
        match self {
            Tracker::GitHub(g) => g.list(label).await,
            Tracker::GitLab(g) => g.list(label).await,
        }
    }
    async fn create(&self, title: &str, body: &str, labels: &[String]) -> Result<Issue, Error> {
        match self {
            Tracker::GitHub(g) => g.create(title, body, labels).await,
            Tracker::GitLab(g) => g.create(title, body, labels).await,
        }
    }
    async fn comments(&self, issue: &Issue) -> Result<Vec<String>, Error> {
        match self {
            Tracker::GitHub(g) => g.comments(issue).await,
            Tracker::GitLab(g) => g.comments(issue).await,
        }
    }
    async fn comment(&self, issue: &Issue, body: &str) -> Result<(), Error> {
        match self {
            Tracker::GitHub(g) => g.comment(issue, body).await,
            Tracker::GitLab(g) => g.comment(issue, body).await,
        }
    }
}

/// What filing did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Filed {
    /// URLs of the issues opened.
    pub opened: Vec<String>,
    /// Occurrences added as comments.
    pub commented: usize,
    /// Submissions already filed (found by their markers).
    pub already: usize,
}

pub fn crash_marker(sig: &str) -> String {
    format!("<!-- flightdeck:crash:{sig} -->")
}
pub fn screenshot_marker(id: &str) -> String {
    format!("<!-- flightdeck:screenshot:{id} -->")
}
pub fn submission_marker(id: &str) -> String {
    format!("<!-- flightdeck:submission:{id} -->")
}

/// Tester-written text, unable to forge a marker or break the layout.
fn quote(s: &str) -> String {
    s.replace('<', "&lt;")
        .replace('>', "&gt;")
        .lines()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The issue key: the signature, or the submission when its log gave none.
fn crash_key(e: &Entry) -> String {
    e.signature
        .clone()
        .unwrap_or_else(|| format!("nolog-{}", e.id))
}

fn occurrence(e: &Entry) -> String {
    let mut md = format!(
        "{}\n**{}** · build {} · {} · {}\n",
        submission_marker(&e.id),
        e.created.as_deref().unwrap_or("unknown time"),
        e.build
            .as_deref()
            .or(e.build_id.as_deref())
            .unwrap_or("unknown"),
        e.device_model.as_deref().unwrap_or("unknown device"),
        e.os_version
            .as_deref()
            .map(|o| format!("OS {o}"))
            .unwrap_or_else(|| "unknown OS".into()),
    );
    if let Some(c) = e.comment.as_deref().filter(|c| !c.trim().is_empty()) {
        md.push('\n');
        md.push_str(&quote(c));
        md.push('\n');
    }
    md.push_str(&format!("\nTestFlight submission `{}`\n", e.id));
    md
}

fn crash_issue(e: &Entry) -> (String, String) {
    let key = crash_key(e);
    let title = e
        .signature_title
        .clone()
        .unwrap_or_else(|| "a crash without a readable log".into());
    let mut body = format!(
        "{}\nTestFlight testers hit this crash.\n\n",
        crash_marker(&key)
    );
    if !e.frames.is_empty() {
        body.push_str("Top frames of the crashing thread (normalised):\n\n```\n");
        body.push_str(&e.frames.join("\n").replace("```", "'''"));
        body.push_str("\n```\n\n");
    }
    body.push_str("### Occurrences\n\n");
    body.push_str(&occurrence(e));
    (
        format!(
            "TestFlight crash: {}",
            title.chars().take(200).collect::<String>()
        ),
        body,
    )
}

/// Attach the saved screenshots where the tracker takes uploads (GitLab);
/// elsewhere the issue names them in the CI artifact.
async fn attachments(t: &Tracker, e: &Entry, out: Option<&Path>) -> Result<Vec<String>, Error> {
    let (Tracker::GitLab(g), Some(out)) = (t, out) else {
        return Ok(Vec::new());
    };
    let mut md = Vec::new();
    for f in e.files.iter().filter(|f| f.name.starts_with("screenshot-")) {
        if let Ok(bytes) = std::fs::read(out.join(&e.dir).join(&f.name)) {
            md.push(g.upload(&f.name, &bytes).await?);
        }
    }
    Ok(md)
}

fn screenshot_issue(e: &Entry, attached: &[String]) -> (String, String) {
    let first = e
        .comment
        .as_deref()
        .and_then(|c| c.lines().find(|l| !l.trim().is_empty()))
        .unwrap_or("screenshot feedback");
    let mut body = format!(
        "{}\nTestFlight screenshot feedback.\n\n",
        screenshot_marker(&e.id)
    );
    body.push_str(&occurrence(e));
    for a in attached {
        body.push_str(&format!("\n{a}\n"));
    }
    for (n, url) in e
        .image_urls
        .iter()
        .enumerate()
        .filter(|_| attached.is_empty())
    {
        body.push_str(&format!(
            "\n[screenshot {}]({url}) (App Store Connect's link expires; the CI artifact keeps `{}/screenshot-{}.*`)\n",
            n + 1,
            e.dir,
            n + 1
        ));
    }
    (
        format!(
            "TestFlight feedback: {}",
            first.chars().take(120).collect::<String>()
        ),
        body,
    )
}

/// The issues with the label, by the marker each body opens with.
struct Known {
    by_marker: BTreeMap<String, Issue>,
}

impl Known {
    fn from(issues: Vec<Issue>) -> Self {
        let mut by_marker = BTreeMap::new();
        for i in issues {
            for m in markers(&i.body) {
                if m.starts_with("<!-- flightdeck:crash:")
                    || m.starts_with("<!-- flightdeck:screenshot:")
                {
                    by_marker.entry(m).or_insert_with(|| i.clone());
                }
            }
        }
        Self { by_marker }
    }
}

/// Every `<!-- flightdeck:... -->` marker in a text.
fn markers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("<!-- flightdeck:") {
        let Some(end) = rest[i..].find("-->") else {
            break;
        };
        out.push(rest[i..i + end + 3].to_string());
        rest = &rest[i + end + 3..];
    }
    out
}

/// Create an issue; when the attempt failed in transit, look for it before trying again.
async fn create(
    t: &Tracker,
    label: &str,
    marker: &str,
    (title, body): (String, String),
    labels: &[String],
) -> Result<Issue, Error> {
    match t.create(&title, &body, labels).await {
        Err(e) if e.kind == ExitKind::Transient => {
            let again = Known::from(t.list(label).await?);
            match again.by_marker.get(marker) {
                Some(i) => Ok(i.clone()),
                None => t.create(&title, &body, labels).await,
            }
        }
        other => other,
    }
}

/// Add a comment; when the attempt failed in transit, look for it before trying again.
async fn comment(t: &Tracker, issue: &Issue, marker: &str, body: &str) -> Result<(), Error> {
    match t.comment(issue, body).await {
        Err(e) if e.kind == ExitKind::Transient => {
            if t.comments(issue).await?.iter().any(|c| c.contains(marker)) {
                Ok(())
            } else {
                t.comment(issue, body).await
            }
        }
        other => other,
    }
}

/// File `entries`: crashes grouped by signature (oldest occurrence opens the
/// issue), screenshots one issue each (their images attached from `out` where
/// the tracker takes uploads). `labels[0]` finds existing issues.
pub async fn file(
    t: &Tracker,
    labels: &[String],
    entries: &[Entry],
    out: Option<&Path>,
) -> Result<Filed, Error> {
    let default = vec![DEFAULT_LABEL.to_string()];
    let labels = if labels.is_empty() { &default } else { labels };
    let label = &labels[0];
    let mut known = Known::from(t.list(label).await?);
    let mut filed = Filed::default();
    let mut oldest_first: Vec<&Entry> = entries.iter().collect();
    oldest_first.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
    let mut groups: BTreeMap<String, Vec<&Entry>> = BTreeMap::new();
    for e in oldest_first.iter().filter(|e| e.kind == Kind::Crash) {
        groups.entry(crash_key(e)).or_default().push(e);
    }
    for (key, group) in groups {
        let marker = crash_marker(&key);
        let mut opened_with = None;
        let issue = match known.by_marker.get(&marker) {
            Some(i) => i.clone(),
            None => {
                let i = create(t, label, &marker, crash_issue(group[0]), labels).await?;
                filed.opened.push(i.url.clone());
                known.by_marker.insert(marker.clone(), i.clone());
                opened_with = Some(group[0].id.clone());
                i
            }
        };
        let mut seen = markers(&issue.body);
        let unseen = |seen: &[String], e: &Entry| !seen.contains(&submission_marker(&e.id));
        if group.iter().any(|e| unseen(&seen, e)) {
            for c in t.comments(&issue).await? {
                seen.extend(markers(&c));
            }
        }
        for e in group {
            let m = submission_marker(&e.id);
            if opened_with.as_deref() == Some(e.id.as_str()) {
                continue;
            }
            if !unseen(&seen, e) {
                filed.already += 1;
                continue;
            }
            comment(t, &issue, &m, &occurrence(e)).await?;
            seen.push(m);
            filed.commented += 1;
        }
    }
    for e in oldest_first.iter().filter(|e| e.kind == Kind::Screenshot) {
        let marker = screenshot_marker(&e.id);
        if known.by_marker.contains_key(&marker) {
            filed.already += 1;
            continue;
        }
        let attached = attachments(t, e, out).await?;
        let i = create(t, label, &marker, screenshot_issue(e, &attached), labels).await?;
        filed.opened.push(i.url.clone());
        known.by_marker.insert(marker, i);
    }
    Ok(filed)
}

/// The relay's path: fetch the submission a `BETA_FEEDBACK_*_SUBMISSION_CREATED`
/// event names and file it. `Ok(None)` for any other event.
pub async fn file_event(
    api: &Client,
    t: &Tracker,
    labels: &[String],
    event: &Event,
) -> Result<Option<Filed>, Error> {
    let Some(kind) = Kind::of_event(&event.kind) else {
        return Ok(None);
    };
    let id = event
        .instance_id
        .as_deref()
        .ok_or_else(|| Error::input(format!("the {} event names no submission", event.kind)))?;
    let doc = crate::api::resources::get_feedback(api, kind.resource(), id).await?;
    let mut e = fetch::entry(kind, &doc.data, &doc.included);
    if kind == Kind::Crash
        && let Some(sig) = crate::api::resources::crash_log(api, id)
            .await?
            .as_deref()
            .and_then(signature::of)
    {
        e.signature_title = Some(sig.title());
        e.signature = Some(sig.key);
        e.frames = sig.frames;
    }
    file(t, labels, &[e], None).await.map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_or_say_which_forms_exist() {
        assert_eq!(
            Target::parse("github:acme/app").unwrap(),
            Target::GitHub {
                owner: "acme".into(),
                repo: "app".into()
            }
        );
        assert_eq!(
            Target::parse("gitlab:42").unwrap(),
            Target::GitLab {
                project: "42".into()
            }
        );
        for bad in [
            "jira:ABC",
            "github:acme",
            "github:/app",
            "gitlab:",
            "acme/app",
            "github:a/b/c",
        ] {
            let e = Target::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.hint.unwrap().contains("github:OWNER/REPO"));
        }
    }

    #[test]
    fn tester_text_cannot_forge_a_marker() {
        let e = Entry {
            id: "A".into(),
            comment: Some(format!("hi {}", crash_marker("deadbeef"))),
            ..Entry::default()
        };
        let body = occurrence(&e);
        assert_eq!(markers(&body), vec![submission_marker("A")]);
    }

    #[test]
    fn missing_tokens_name_the_variable() {
        let gh = Target::parse("github:acme/app").unwrap();
        let e = Tracker::connect(&gh, &IssueEnv::default()).err().unwrap();
        assert!(e.message.contains("GITHUB_TOKEN"), "{}", e.message);
        let gl = Target::parse("gitlab:7").unwrap();
        let env = IssueEnv {
            gitlab_api: Some("http://127.0.0.1:1/api/v4".into()),
            ..IssueEnv::default()
        };
        let e = Tracker::connect(&gl, &env).err().unwrap();
        assert!(e.message.contains("GITLAB_TOKEN") && e.message.contains("CI_JOB_TOKEN"));
    }
}
