//! GitHub's REST issues API: list a repository's issues with a label
//! (`GET /repos/{owner}/{repo}/issues`, every page), create one, and list and
//! add comments. `Authorization: Bearer`, a User-Agent, the pinned API version.

use super::Issue;
use super::http::Http;
use crate::api::client::encode;
use crate::error::Error;
use crate::secret::Secret;
use serde_json::{Value, json};

pub const DEFAULT_API: &str = "https://api.github.com";

pub struct GitHub {
    http: Http,
    /// `{api}/repos/{owner}/{repo}`
    repo_url: String,
}

impl GitHub {
    pub fn new(api: &str, owner: &str, repo: &str, token: Secret) -> Result<Self, Error> {
        let http = Http::new(
            "authorization",
            "Bearer ",
            token,
            format!("GitHub repository {owner}/{repo}"),
            "GITHUB_TOKEN",
            vec![
                ("accept", "application/vnd.github+json"),
                ("x-github-api-version", "2022-11-28"),
            ],
        )?;
        Ok(Self {
            http,
            repo_url: format!(
                "{}/repos/{}/{}",
                api.trim_end_matches('/'),
                encode(owner),
                encode(repo)
            ),
        })
    }

    fn issue(v: &Value) -> Option<Issue> {
        if v.get("pull_request").is_some() {
            return None;
        }
        Some(Issue {
            number: v.get("number")?.as_u64()?,
            url: v
                .get("html_url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            body: v
                .get("body")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// All issues (open and closed) with `label`; pull requests left out.
    pub async fn list(&self, label: &str) -> Result<Vec<Issue>, Error> {
        let url = format!(
            "{}/issues?state=all&per_page=100&labels={}",
            self.repo_url,
            encode(label)
        );
        Ok(self
            .http
            .get_all(&url)
            .await?
            .iter()
            .filter_map(Self::issue)
            .collect())
    }

    pub async fn create(&self, title: &str, body: &str, labels: &[String]) -> Result<Issue, Error> {
        let v = self
            .http
            .post(
                &format!("{}/issues", self.repo_url),
                &json!({"title": title, "body": body, "labels": labels}),
            )
            .await?;
        Self::issue(&v).ok_or_else(|| {
            Error::rejected(format!(
                "{} answered an issue without a number",
                self.http.what
            ))
        })
    }

    pub async fn comments(&self, issue: &Issue) -> Result<Vec<String>, Error> {
        let url = format!(
            "{}/issues/{}/comments?per_page=100",
            self.repo_url, issue.number
        );
        Ok(self
            .http
            .get_all(&url)
            .await?
            .iter()
            .filter_map(|c| c.get("body").and_then(Value::as_str).map(str::to_string))
            .collect())
    }

    pub async fn comment(&self, issue: &Issue, body: &str) -> Result<(), Error> {
        self.http
            .post(
                &format!("{}/issues/{}/comments", self.repo_url, issue.number),
                &json!({ "body": body }),
            )
            .await
            .map(|_| ())
    }
}
