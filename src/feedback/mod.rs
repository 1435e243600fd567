//! `flightdeck feedback` and the pipeline's `feedback` step: TestFlight crash
//! submissions (with their crash logs) and screenshot submissions (with their
//! images, which expire, so they are fetched at once) kept in a directory,
//! incrementally.
//!
//! Layout: `<out>/<submission id>/submission.json`, `crash.log`,
//! `screenshot-<n>.<ext>`; `<out>/index.json` (what DIR holds, see `index`),
//! `<out>/feedback.md` and `<out>/feedback.json` (see `report`).
//!
//! Data flows scope -> list (`fetch`) -> save what DIR lacks -> `Pulled`, a
//! typed result the command or pipeline layer reports; nothing here prints.

pub mod fetch;
pub mod index;
pub mod issues;
pub mod report;
pub mod signature;

use crate::api::Client;
use crate::api::models::Resource;
use crate::api::resources::FeedbackFilter;
use crate::ci::{Annotation, Level, Reporter};
use crate::error::Error;
use crate::plan::Since;
use index::{Entry, Index};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// How far before the last run a re-run looks again (late-indexed submissions).
pub const OVERLAP: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Crash,
    Screenshot,
}

impl Kind {
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Crash => "betaFeedbackCrashSubmissions",
            Kind::Screenshot => "betaFeedbackScreenshotSubmissions",
        }
    }

    /// The kind a webhook event type names, if it is a feedback event.
    pub fn of_event(kind: &str) -> Option<Kind> {
        match kind {
            "betaFeedbackCrashSubmissionCreated" | "BETA_FEEDBACK_CRASH_SUBMISSION_CREATED" => {
                Some(Kind::Crash)
            }
            "betaFeedbackScreenshotSubmissionCreated"
            | "BETA_FEEDBACK_SCREENSHOT_SUBMISSION_CREATED" => Some(Kind::Screenshot),
            _ => None,
        }
    }
}

/// What to pull: the app, the list filters, and the oldest submission wanted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scope {
    pub app_id: String,
    pub filter: FeedbackFilter,
    pub cutoff: Option<jiff::Timestamp>,
}

impl Scope {
    pub fn before_cutoff(&self, e: &Entry) -> bool {
        match (
            self.cutoff,
            e.created
                .as_deref()
                .and_then(|c| c.parse::<jiff::Timestamp>().ok()),
        ) {
            (Some(cut), Some(c)) => c < cut,
            _ => false,
        }
    }
}

/// A `feedback` request as the command or pipeline gives it.
#[derive(Debug, Clone)]
pub struct Request {
    pub app_id: String,
    pub filter: FeedbackFilter,
    /// `since` when given; otherwise the index's last run (less `OVERLAP`).
    pub since: Option<Since>,
    pub out: PathBuf,
}

/// The result of a pull.
#[derive(Debug, Clone, Serialize)]
pub struct Pulled {
    pub dir: PathBuf,
    /// Submissions in scope this run, by kind.
    pub count: usize,
    pub crashes: usize,
    pub screenshots: usize,
    /// Ids in scope that DIR's index did not hold before this run.
    pub new_ids: Vec<String>,
    pub files_written: usize,
    pub bytes_downloaded: u64,
    /// The scope's entries, newest first.
    pub items: Vec<Entry>,
    /// Problems that did not stop the pull (a screenshot that would not download).
    pub warnings: Vec<String>,
    pub cutoff: Option<String>,
}

impl Pulled {
    /// Crash submissions in scope that DIR's index did not hold before this run.
    pub fn new_crashes(&self) -> Vec<&Entry> {
        self.items
            .iter()
            .filter(|e| e.kind == Kind::Crash && self.new_ids.contains(&e.id))
            .collect()
    }
}

pub fn cutoff(since: &Option<Since>, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    match since {
        Some(Since::Ago(d)) => Some(now - jiff::SignedDuration::try_from(*d).unwrap_or_default()),
        Some(Since::At(t)) => t.parse().ok(),
        None => None,
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::io("write", path.display(), e).with_hint("check the `out` directory is writable")
}

/// Pull the scope into `req.out`, fetching only what DIR's index lacks.
pub async fn run(api: &Client, req: &Request) -> Result<Pulled, Error> {
    let out = &req.out;
    std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
    let mut index = Index::load(out);
    let started = jiff::Timestamp::now();
    let scope = Scope {
        app_id: req.app_id.clone(),
        filter: req.filter.clone(),
        cutoff: cutoff(&req.since, started).or(index.last_run().map(|t| t - OVERLAP)),
    };
    let known: BTreeSet<String> = index.entries.keys().cloned().collect();
    let listed = fetch::list(api, &scope).await?;
    let mut pulled = Pulled {
        dir: out.clone(),
        count: listed.len(),
        crashes: listed
            .iter()
            .filter(|l| l.entry.kind == Kind::Crash)
            .count(),
        screenshots: listed
            .iter()
            .filter(|l| l.entry.kind == Kind::Screenshot)
            .count(),
        new_ids: Vec::new(),
        files_written: 0,
        bytes_downloaded: 0,
        items: Vec::new(),
        warnings: Vec::new(),
        cutoff: scope.cutoff.map(|c| c.to_string()),
    };
    for l in listed {
        let id = l.entry.id.clone();
        let entry = merge(index.entries.remove(&id), l.entry);
        let entry = save_entry(api, entry, Some(&l.raw), out, &mut pulled).await?;
        if !known.contains(&id) {
            pulled.new_ids.push(id.clone());
        }
        pulled.items.push(entry.clone());
        index.entries.insert(id, entry);
    }
    repair_unlisted(api, &mut index, out, &mut pulled).await?;
    index.last_run = Some(started.to_string());
    index
        .save(out)
        .map_err(|e| io_err(&out.join(index::FILE), e))?;
    report::write_files(out, &index).map_err(|e| io_err(out, e))?;
    pulled
        .items
        .sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(pulled)
}

/// What `--to-issues` should file: every entry of DIR not yet filed (this
/// run's new ones, and any a failed earlier run left), with this run's
/// screenshot URLs where it listed them.
pub fn unfiled(p: &Pulled) -> Vec<Entry> {
    let index = Index::load(&p.dir);
    index
        .newest_first()
        .into_iter()
        .filter(|e| !e.filed)
        .map(|e| {
            p.items
                .iter()
                .find(|i| i.id == e.id)
                .cloned()
                .unwrap_or_else(|| e.clone())
        })
        .collect()
}

/// Record in DIR's index that `ids` are filed.
pub fn mark_filed(out: &Path, ids: &[String]) -> Result<(), Error> {
    let mut index = Index::load(out);
    for id in ids {
        if let Some(e) = index.entries.get_mut(id) {
            e.filed = true;
        }
    }
    index
        .save(out)
        .map_err(|e| io_err(&out.join(index::FILE), e))
}

/// `--to-issues`: file every entry of DIR not yet filed, then record them as
/// filed; the tracker is not called when there is nothing new.
pub async fn file_unfiled(
    tracker: &issues::Tracker,
    labels: &[String],
    p: &Pulled,
) -> Result<issues::Filed, Error> {
    let todo = unfiled(p);
    let filed = if todo.is_empty() {
        issues::Filed::default()
    } else {
        issues::file(tracker, labels, &todo, Some(&p.dir)).await?
    };
    let ids: Vec<String> = todo.into_iter().map(|e| e.id).collect();
    mark_filed(&p.dir, &ids)?;
    Ok(filed)
}

/// `fail-on-crash`: an error annotation per crash not in DIR's index before
/// this run, and exit 1 when there is any.
pub fn crash_gate(ci: &Reporter, p: &Pulled) -> Result<(), Error> {
    let findings = report::gate_findings(p);
    for m in &findings {
        ci.annotate(Annotation::new(Level::Error, m.clone()).titled("TestFlight crash"));
    }
    if findings.is_empty() {
        return Ok(());
    }
    Err(Error::rejected(format!(
        "{} new TestFlight crash submission(s) (fail-on-crash)",
        findings.len()
    ))
    .with_hint(format!(
        "see {}/feedback.md; a re-run with the same directory passes once they are recorded",
        p.dir.display()
    )))
}

/// The listed entry, keeping what the index knew (saved files, signature).
fn merge(known: Option<Entry>, fresh: Entry) -> Entry {
    match known {
        Some(k) => Entry {
            files: k.files,
            signature: k.signature,
            frames: k.frames,
            signature_title: k.signature_title,
            filed: k.filed,
            build: fresh.build.clone().or(k.build),
            ..fresh
        },
        None => fresh,
    }
}

/// Save what DIR lacks of `e`; `raw` is the listed resource (fetched by id when absent).
async fn save_entry(
    api: &Client,
    mut e: Entry,
    raw: Option<&Resource<Value>>,
    out: &Path,
    pulled: &mut Pulled,
) -> Result<Entry, Error> {
    if e.intact(out) {
        return Ok(e);
    }
    let fetched;
    let raw = match raw {
        Some(r) => r,
        None => match crate::api::resources::get_feedback(api, e.kind.resource(), &e.id).await {
            Ok(doc) => {
                fetched = doc.data;
                &fetched
            }
            // Deleted in App Store Connect: DIR keeps what it has.
            Err(err) if err.kind == crate::api::error::ApiErrorKind::NotFound => {
                pulled.warnings.push(format!(
                    "feedback {} no longer exists in App Store Connect; kept as saved",
                    e.id
                ));
                return Ok(e);
            }
            Err(err) => return Err(err.into()),
        },
    };
    let s = fetch::save(api, &mut e, out, Some(raw)).await?;
    pulled.files_written += s.files_written;
    pulled.bytes_downloaded += s.bytes_downloaded;
    pulled.warnings.extend(s.warnings);
    Ok(e)
}

/// Entries outside this run's scope whose files went missing or short.
async fn repair_unlisted(
    api: &Client,
    index: &mut Index,
    out: &Path,
    pulled: &mut Pulled,
) -> Result<(), Error> {
    let damaged: Vec<String> = index
        .entries
        .values()
        .filter(|e| !e.intact(out) && !pulled.items.iter().any(|i| i.id == e.id))
        .map(|e| e.id.clone())
        .collect();
    for id in damaged {
        if let Some(e) = index.entries.remove(&id) {
            let e = save_entry(api, e, None, out, pulled).await?;
            index.entries.insert(id, e);
        }
    }
    Ok(())
}
