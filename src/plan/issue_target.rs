//! Where `--to-issues` / `to-issues:` files feedback: `github:OWNER/REPO` or
//! `gitlab:PROJECT_ID`, validated with the rest of the plan (no I/O), so the
//! plan does not depend on the feedback module that files them.

use crate::error::Error;
use serde::Serialize;

/// Where issues go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum IssueTarget {
    GitHub { owner: String, repo: String },
    GitLab { project: String },
}

impl IssueTarget {
    pub fn parse(s: &str) -> Result<IssueTarget, Error> {
        let bad = || {
            Error::input(format!("unknown issue target {s:?}"))
                .with_hint("use github:OWNER/REPO or gitlab:PROJECT_ID (a number or group/project)")
        };
        let (kind, rest) = s.trim().split_once(':').ok_or_else(bad)?;
        let rest = rest.trim();
        match kind.trim().to_ascii_lowercase().as_str() {
            "github" => {
                let (owner, repo) = rest.split_once('/').ok_or_else(bad)?;
                let ok = |p: &str| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                };
                if !ok(owner) || !ok(repo) {
                    return Err(bad());
                }
                Ok(IssueTarget::GitHub {
                    owner: owner.into(),
                    repo: repo.into(),
                })
            }
            "gitlab" if !rest.is_empty() && !rest.contains(char::is_whitespace) => {
                Ok(IssueTarget::GitLab {
                    project: rest.into(),
                })
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for IssueTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IssueTarget::GitHub { owner, repo } => write!(f, "github:{owner}/{repo}"),
            IssueTarget::GitLab { project } => write!(f, "gitlab:{project}"),
        }
    }
}
