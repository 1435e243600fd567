//! The incremental index, `<out>/index.json`: which submissions DIR holds,
//! each saved file with its size and SHA-256 (so a truncated or missing file
//! is noticed and fetched again), and when the last run started (the default
//! `since` of the next one).

use super::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const FILE: &str = "index.json";
const VERSION: u32 = 2;

/// One saved file, relative to the submission's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRec {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// A submission as DIR holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub id: String,
    pub kind: Kind,
    pub created: Option<String>,
    pub build_id: Option<String>,
    /// The build number, when App Store Connect included the build.
    pub build: Option<String>,
    pub device_model: Option<String>,
    pub os_version: Option<String>,
    pub platform: Option<String>,
    pub comment: Option<String>,
    /// The submission's directory under DIR.
    pub dir: String,
    pub files: Vec<FileRec>,
    /// Screenshots the submission has (all must be saved for it to be complete).
    #[serde(default)]
    pub expected_screenshots: usize,
    /// Crash signature key and frames (crashes with a readable log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_title: Option<String>,
    /// Filed as an issue (`--to-issues`) by a run that finished filing.
    #[serde(default)]
    pub filed: bool,
    /// Presigned screenshot URLs from the listing; never stored (they expire).
    #[serde(skip)]
    pub image_urls: Vec<String>,
}

impl Entry {
    /// The files that are absent from disk or differ in size from the record.
    pub fn damaged(&self, out: &Path) -> Vec<String> {
        self.files
            .iter()
            .filter(|f| {
                std::fs::metadata(out.join(&self.dir).join(&f.name))
                    .map(|m| m.len() != f.size)
                    .unwrap_or(true)
            })
            .map(|f| f.name.clone())
            .collect()
    }

    /// Saved, and nothing missing or truncated on disk.
    pub fn intact(&self, out: &Path) -> bool {
        let shots = self
            .files
            .iter()
            .filter(|f| f.name.starts_with("screenshot-"))
            .count();
        let log_ok = self.kind != Kind::Crash || self.files.iter().any(|f| f.name == "crash.log");
        shots >= self.expected_screenshots && log_ok && self.damaged(out).is_empty()
    }

    pub fn record(&mut self, rec: FileRec) {
        self.files.retain(|f| f.name != rec.name);
        self.files.push(rec);
        self.files.sort_by(|a, b| a.name.cmp(&b.name));
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub version: u32,
    /// When the last run started listing (RFC 3339).
    pub last_run: Option<String>,
    pub entries: BTreeMap<String, Entry>,
}

impl Index {
    /// The index in `out`; an absent, unreadable or older-format one is empty
    /// (files on disk are then verified against what is fetched, not rewritten when equal).
    pub fn load(out: &Path) -> Index {
        std::fs::read(out.join(FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<Index>(&b).ok())
            .filter(|i| i.version == VERSION)
            .unwrap_or_default()
    }

    pub fn save(&mut self, out: &Path) -> std::io::Result<()> {
        self.version = VERSION;
        let text = serde_json::to_string_pretty(self).unwrap_or_default();
        super::fetch::write_if_changed(&out.join(FILE), text.as_bytes()).map(|_| ())
    }

    pub fn last_run(&self) -> Option<jiff::Timestamp> {
        self.last_run.as_deref().and_then(|t| t.parse().ok())
    }

    /// Entries newest first.
    pub fn newest_first(&self) -> Vec<&Entry> {
        let mut v: Vec<&Entry> = self.entries.values().collect();
        v.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        v
    }
}
