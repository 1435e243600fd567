//! `flightdeck init`: the files a first run needs, as pure functions.
//!
//! It looks for the artifact in the working directory (an .ipa or .pkg a
//! build left behind) to fill in the file path and bundle id, then returns a
//! starter `flightdeck.yml` and the CI's own file: a GitHub workflow using the
//! action, a `.gitlab-ci.yml` that includes the template, or a `bitrise.yml`
//! with the step. The command layer writes them, never over an existing file
//! without `--force`.

mod templates;

use crate::ci::Platform;
use std::path::{Path, PathBuf};

/// The CIs `init` writes a file for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ci {
    GitHub,
    GitLab,
    Bitrise,
}

impl Ci {
    pub fn from_platform(p: Platform) -> Option<Self> {
        match p {
            Platform::GitHub => Some(Ci::GitHub),
            Platform::GitLab => Some(Ci::GitLab),
            Platform::Bitrise => Some(Ci::Bitrise),
            Platform::Local => None,
        }
    }

    /// The CI a repository already uses, from its files.
    pub fn detect(dir: &Path) -> Option<Self> {
        if dir.join(".gitlab-ci.yml").is_file() {
            Some(Ci::GitLab)
        } else if dir.join("bitrise.yml").is_file() {
            Some(Ci::Bitrise)
        } else if dir.join(".github").is_dir() {
            Some(Ci::GitHub)
        } else {
            None
        }
    }

    /// The CI file, relative to the repository root.
    pub fn file(self) -> &'static str {
        match self {
            Ci::GitHub => ".github/workflows/testflight.yml",
            Ci::GitLab => ".gitlab-ci.yml",
            Ci::Bitrise => "bitrise.yml",
        }
    }
}

/// What `init` knows about the app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Starter {
    /// The artifact's path relative to the directory, `/`-separated.
    pub artifact: Option<String>,
    pub bundle_id: Option<String>,
}

/// A file to write: its path relative to the directory, and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileToWrite {
    pub path: PathBuf,
    pub contents: String,
}

const SKIP_DIRS: [&str; 6] = [
    ".git",
    "target",
    "node_modules",
    "Pods",
    ".build",
    "DerivedData",
];

/// The newest .ipa or .pkg under `dir` (three levels deep at most).
pub fn find_artifact(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    walk(dir, 0, &mut found);
    found.sort();
    found.pop().map(|(_, p)| p)
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<(std::time::SystemTime, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if depth < 3 && !SKIP_DIRS.contains(&name.as_str()) {
                walk(&p, depth + 1, found);
            }
        } else if name.ends_with(".ipa") || name.ends_with(".pkg") {
            let modified = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            found.push((modified, p));
        }
    }
}

/// What the directory says: the artifact (and its bundle id, when it opens).
pub fn starter(dir: &Path, bundle_id: Option<String>) -> Starter {
    let artifact = find_artifact(dir);
    let from_artifact = artifact
        .as_ref()
        .and_then(|p| crate::artifact::inspect(p).ok())
        .map(|a| a.bundle_id);
    Starter {
        artifact: artifact.map(|p| {
            p.strip_prefix(dir)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/")
        }),
        bundle_id: bundle_id.or(from_artifact),
    }
}

/// The starter pipeline and the CI file.
pub fn files(ci: Ci, s: &Starter) -> Vec<FileToWrite> {
    vec![
        FileToWrite {
            path: PathBuf::from("flightdeck.yml"),
            contents: templates::pipeline(s),
        },
        FileToWrite {
            path: PathBuf::from(ci.file()),
            contents: match ci {
                Ci::GitHub => templates::github(s),
                Ci::GitLab => templates::gitlab(),
                Ci::Bitrise => templates::bitrise(s),
            },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_ci_from_the_repository() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Ci::detect(d.path()), None);
        std::fs::create_dir(d.path().join(".github")).unwrap();
        assert_eq!(Ci::detect(d.path()), Some(Ci::GitHub));
        std::fs::write(d.path().join(".gitlab-ci.yml"), "").unwrap();
        assert_eq!(Ci::detect(d.path()), Some(Ci::GitLab));
    }

    #[test]
    fn finds_an_artifact_but_not_in_build_caches() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(find_artifact(d.path()), None);
        std::fs::create_dir_all(d.path().join("target/x")).unwrap();
        std::fs::write(d.path().join("target/x/Old.ipa"), "").unwrap();
        assert_eq!(find_artifact(d.path()), None);
        std::fs::create_dir_all(d.path().join("build")).unwrap();
        std::fs::write(d.path().join("build/App.ipa"), "").unwrap();
        assert_eq!(
            find_artifact(d.path()),
            Some(d.path().join("build/App.ipa"))
        );
        let s = starter(d.path(), Some("com.acme.x".into()));
        assert_eq!(s.artifact.as_deref(), Some("build/App.ipa"));
        assert_eq!(s.bundle_id.as_deref(), Some("com.acme.x"));
    }
}
