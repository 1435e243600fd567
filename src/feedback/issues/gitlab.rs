//! GitLab's REST issues API: list a project's issues with a label
//! (`GET /projects/:id/issues`, every page), create one, and list and add
//! notes. `PRIVATE-TOKEN` (GITLAB_TOKEN) or `JOB-TOKEN` (CI_JOB_TOKEN).

use super::Issue;
use super::http::Http;
use crate::api::client::encode;
use crate::error::Error;
use crate::secret::Secret;
use serde_json::{Value, json};

pub struct GitLab {
    http: Http,
    /// `{api}/projects/{id}`
    project_url: String,
}

impl GitLab {
    /// `job_token`: the token is CI_JOB_TOKEN (sent as JOB-TOKEN).
    pub fn new(api: &str, project: &str, token: Secret, job_token: bool) -> Result<Self, Error> {
        let (header, var) = if job_token {
            ("job-token", "CI_JOB_TOKEN")
        } else {
            ("private-token", "GITLAB_TOKEN")
        };
        let http = Http::new(
            header,
            "",
            token,
            format!("GitLab project {project}"),
            var,
            Vec::new(),
        )?;
        Ok(Self {
            http,
            project_url: format!("{}/projects/{}", api.trim_end_matches('/'), encode(project)),
        })
    }

    fn issue(v: &Value) -> Option<Issue> {
        Some(Issue {
            number: v.get("iid")?.as_u64()?,
            url: v
                .get("web_url")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            body: v
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
    }

    /// All issues (any state) with `label`.
    pub async fn list(&self, label: &str) -> Result<Vec<Issue>, Error> {
        let url = format!(
            "{}/issues?scope=all&per_page=100&labels={}",
            self.project_url,
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
                &format!("{}/issues", self.project_url),
                &json!({"title": title, "description": body, "labels": labels.join(",")}),
            )
            .await?;
        Self::issue(&v).ok_or_else(|| {
            Error::rejected(format!(
                "{} answered an issue without an iid",
                self.http.what
            ))
        })
    }

    pub async fn comments(&self, issue: &Issue) -> Result<Vec<String>, Error> {
        let url = format!(
            "{}/issues/{}/notes?per_page=100",
            self.project_url, issue.number
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
                &format!("{}/issues/{}/notes", self.project_url, issue.number),
                &json!({ "body": body }),
            )
            .await
            .map(|_| ())
    }

    /// Upload a file to the project; returns the Markdown that shows it.
    pub async fn upload(&self, name: &str, bytes: &[u8]) -> Result<String, Error> {
        let v = self
            .http
            .upload(&format!("{}/uploads", self.project_url), name, bytes)
            .await?;
        v.get("markdown")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                Error::rejected(format!(
                    "{} answered an upload without markdown",
                    self.http.what
                ))
            })
    }
}
