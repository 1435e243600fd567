//! Forward targets and the forwarders that drive them: every verified event
//! goes to every target, retried with capped exponential backoff and jitter
//! until the target answers 2xx, or until the event is older than the
//! maximum age (then it is reported failed in the log and the metrics).
//!
//! A target is a URL (the raw body and the original `x-apple-signature`),
//! `github:OWNER/REPO` (a `repository_dispatch` whose `client_payload` is
//! the event) or `gitlab:PROJECT_ID[@REF]` (a pipeline trigger whose
//! variables carry the event), or a [`Sink`] the command layer builds in
//! process (filing feedback events as tracked issues): each gets the same
//! durability, dedupe and retries.

use super::Tuning;
use super::metrics::{Metrics, bump};
use super::store::{Job, Settle, Store};
use crate::secret::Secret;
use crate::webhooks::{Event, SIGNATURE_HEADER};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Forwards in flight at once, per target.
const IN_FLIGHT: usize = 16;

/// A target that runs in this process: it is handed each event's body and
/// answers Ok once it took the event (an Err is retried like a 5xx).
pub trait Sink: Send + Sync {
    fn send<'a>(
        &'a self,
        body: &'a [u8],
    ) -> futures_util::future::BoxFuture<'a, Result<(), String>>;
}

/// A [`Sink`] with its stable name in the store.
#[derive(Clone)]
pub struct NamedSink {
    pub key: String,
    pub sink: Arc<dyn Sink>,
}

impl std::fmt::Debug for NamedSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sink({})", self.key)
    }
}

impl PartialEq for NamedSink {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for NamedSink {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Sink(NamedSink),
    Url(String),
    GitHub {
        repo: String,
        api: String,
        token: Secret,
    },
    GitLab {
        project: String,
        reference: String,
        api: String,
        token: Secret,
    },
}

impl Target {
    /// Parse a `--forward` value; `env` reads the tokens and API bases.
    pub fn parse(spec: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, String> {
        let spec = spec.trim();
        if let Some(repo) = spec.strip_prefix("github:") {
            let valid = repo.split('/').count() == 2 && repo.split('/').all(|p| !p.is_empty());
            if !valid {
                return Err(format!("--forward {spec:?}: expected github:OWNER/REPO"));
            }
            let token = env("GITHUB_TOKEN").filter(|t| !t.is_empty()).ok_or_else(|| format!("--forward {spec}: GITHUB_TOKEN is not set (a token that may create repository_dispatch events)"))?;
            let api = env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
            return Ok(Target::GitHub {
                repo: repo.into(),
                api: api.trim_end_matches('/').into(),
                token: Secret::new(token),
            });
        }
        if let Some(rest) = spec.strip_prefix("gitlab:") {
            let (project, reference) = rest.split_once('@').unwrap_or((rest, "main"));
            if project.is_empty() || reference.is_empty() {
                return Err(format!(
                    "--forward {spec:?}: expected gitlab:PROJECT_ID or gitlab:PROJECT_ID@REF"
                ));
            }
            let token = ["GITLAB_TOKEN", "CI_JOB_TOKEN"].iter().find_map(|v| env(v).filter(|t| !t.is_empty())).ok_or_else(|| format!("--forward {spec}: set GITLAB_TOKEN to the project's pipeline trigger token (or CI_JOB_TOKEN)"))?;
            let api = env("CI_API_V4_URL").unwrap_or_else(|| "https://gitlab.com/api/v4".into());
            return Ok(Target::GitLab {
                project: project.into(),
                reference: reference.into(),
                api: api.trim_end_matches('/').into(),
                token: Secret::new(token),
            });
        }
        if spec.starts_with("http://") || spec.starts_with("https://") {
            return Ok(Target::Url(spec.into()));
        }
        Err(format!(
            "--forward {spec:?}: expected an http(s) URL, github:OWNER/REPO or gitlab:PROJECT_ID"
        ))
    }

    /// A stable name, used as the target's identity in the store.
    pub fn key(&self) -> String {
        match self {
            Target::Sink(s) => s.key.clone(),
            Target::Url(u) => u.clone(),
            Target::GitHub { repo, .. } => format!("github:{repo}"),
            Target::GitLab {
                project, reference, ..
            } => format!("gitlab:{project}@{reference}"),
        }
    }

    /// One attempt; Ok(()) when the target answered 2xx.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        job: &Job,
        timeout: Duration,
    ) -> Result<(), Refusal> {
        let request = match self {
            Target::Sink(s) => return s.sink.send(&job.body).await.map_err(Refusal::from),
            Target::Url(url) => http
                .post(url)
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, &job.signature)
                .body(job.body.clone()),
            Target::GitHub { repo, api, token } => {
                let payload: serde_json::Value =
                    serde_json::from_slice(&job.body).map_err(|e| Refusal::from(e.to_string()))?;
                let kind = payload["data"]["type"]
                    .as_str()
                    .unwrap_or("appStoreConnectEvent");
                http.post(format!("{api}/repos/{repo}/dispatches"))
                    .header("accept", "application/vnd.github+json")
                    .header("x-github-api-version", "2022-11-28")
                    .bearer_auth(token.expose())
                    .json(&serde_json::json!({ "event_type": kind, "client_payload": payload }))
            }
            Target::GitLab {
                project,
                reference,
                api,
                token,
            } => {
                let e = Event::parse(&job.body).map_err(|e| Refusal::from(e.to_string()))?;
                let body = String::from_utf8_lossy(&job.body).into_owned();
                http.post(format!(
                    "{api}/projects/{}/trigger/pipeline",
                    encode_path(project)
                ))
                .json(&serde_json::json!({
                    "token": token.expose(),
                    "ref": reference,
                    "variables": {
                        "ASC_EVENT_ID": job.id,
                        "ASC_EVENT_TYPE": e.kind,
                        "ASC_INSTANCE_ID": e.instance_id.unwrap_or_default(),
                        "ASC_NEW_STATE": e.new_state.unwrap_or_default(),
                        "ASC_EVENT_PAYLOAD": body,
                    }
                }))
            }
        };
        match request.timeout(timeout).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(Refusal {
                why: format!("answered {}", r.status()),
                retry_after: r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(crate::api::client::parse_retry_after),
            }),
            Err(e) => Err(crate::api::error::describe_transport(&e).into()),
        }
    }
}

/// Why one forward attempt did not land, and how long the target asked the
/// relay to wait (`Retry-After` on a 429 or 503).
#[derive(Debug)]
pub struct Refusal {
    pub why: String,
    pub retry_after: Option<Duration>,
}

impl From<String> for Refusal {
    fn from(why: String) -> Self {
        Refusal {
            why,
            retry_after: None,
        }
    }
}

/// The pause before the next attempt: the backoff, or longer when the
/// target asked for it with `Retry-After` (held to [`RETRY_AFTER_CAP`]).
fn pause_after(refusal: &Refusal, attempts: u32, max: Duration) -> Duration {
    let backoff = backoff(attempts, max);
    refusal
        .retry_after
        .map_or(backoff, |asked| backoff.max(asked.min(RETRY_AFTER_CAP)))
}

/// The longest `Retry-After` a target is obeyed for.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// `group/project` is a valid GitLab id once its slash is encoded.
fn encode_path(project: &str) -> String {
    project.replace('%', "%25").replace('/', "%2F")
}

/// The pause before attempt `attempts + 1`: 1s doubling up to `max`, with
/// the upper half jittered so relays do not retry in step.
pub fn backoff(attempts: u32, max: Duration) -> Duration {
    use rand::Rng;
    let full = Duration::from_secs(1)
        .saturating_mul(1u32 << attempts.min(20))
        .min(max);
    full.mul_f64(rand::rng().random_range(0.5..=1.0))
}

/// Start one forwarder per target.
pub fn spawn_all(
    targets: &[Target],
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
    tuning: Tuning,
    cancel: CancellationToken,
) -> JoinSet<()> {
    let mut set = JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let w = Forwarder {
            index: i,
            target: t.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            http: http.clone(),
            tuning: tuning.clone(),
        };
        set.spawn(w.run(cancel.clone()));
    }
    set
}

/// Wait for the forwarders to hand back their work, at most `limit`.
pub async fn finish(mut set: JoinSet<()>, limit: Duration) {
    if tokio::time::timeout(limit, async { while set.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("relay: forwards still running after {limit:?} are left pending");
        set.abort_all();
    }
}

#[derive(Clone)]
struct Forwarder {
    index: usize,
    target: Target,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
    tuning: Tuning,
}

impl Forwarder {
    async fn run(self, cancel: CancellationToken) {
        let mut running = JoinSet::new();
        let me = Arc::new(self);
        while !cancel.is_cancelled() {
            while running.try_join_next().is_some() {}
            let room = IN_FLIGHT.saturating_sub(running.len());
            if room == 0 {
                running.join_next().await;
                continue;
            }
            let jobs = tokio::select! {
                _ = cancel.cancelled() => break,
                j = me.store.next_jobs(me.index, room) => j,
            };
            match jobs {
                Ok(jobs) => {
                    for job in jobs {
                        running.spawn(me.clone().attempt(job));
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        "relay: cannot read pending forwards for {}: {e}",
                        me.target.key()
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        // In-flight attempts finish (bounded by the forward timeout).
        while running.join_next().await.is_some() {}
    }

    async fn attempt(self: Arc<Self>, job: Job) {
        let key = self.target.key();
        let age = Duration::from_millis(super::now_ms().saturating_sub(job.received_ms));
        let outcome = match self
            .target
            .send(&self.http, &job, self.tuning.forward_timeout)
            .await
        {
            Ok(()) => {
                bump(&self.metrics.forward_ok);
                tracing::info!("relay: forwarded event {} to {key}", job.id);
                Settle::Done
            }
            Err(Refusal { why, .. }) if age >= self.tuning.max_age => {
                bump(&self.metrics.forward_failed);
                tracing::error!(
                    "relay: gave up forwarding event {} to {key} after {} attempt(s) over {age:?}: {why}",
                    job.id,
                    job.attempts + 1
                );
                Settle::Failed
            }
            Err(refusal) => {
                bump(&self.metrics.forward_retry);
                let pause = pause_after(&refusal, job.attempts, self.tuning.retry_max_delay);
                tracing::warn!(
                    "relay: forwarding event {} to {key}: {}; retrying in {pause:?}",
                    job.id,
                    refusal.why
                );
                Settle::Retry {
                    at_ms: super::now_ms() + pause.as_millis() as u64,
                }
            }
        };
        let id = job.id.clone();
        if let Err(e) = self.store.settle(job, outcome).await {
            tracing::error!("relay: cannot record the forward of event {id} to {key}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_and_their_environment() {
        let env = |k: &str| match k {
            "GITHUB_TOKEN" => Some("ghs_x".to_string()),
            "CI_API_V4_URL" => Some("http://127.0.0.1:1/api/v4/".to_string()),
            "CI_JOB_TOKEN" => Some("job".to_string()),
            _ => None,
        };
        assert_eq!(
            Target::parse("https://ci.example/hook", &env)
                .unwrap()
                .key(),
            "https://ci.example/hook"
        );
        let gh = Target::parse("github:acme/app", &env).unwrap();
        assert!(matches!(&gh, Target::GitHub { api, .. } if api == "https://api.github.com"));
        let gl = Target::parse("gitlab:42@release", &env).unwrap();
        assert!(
            matches!(&gl, Target::GitLab { api, reference, token, .. } if api == "http://127.0.0.1:1/api/v4" && reference == "release" && token.expose() == "job")
        );
        assert_eq!(gl.key(), "gitlab:42@release");
        assert!(Target::parse("github:acme", &env).is_err());
        assert!(Target::parse("ftp://x", &env).is_err());
        let none = |_: &str| None;
        let e = Target::parse("github:acme/app", &none).unwrap_err();
        assert!(e.contains("GITHUB_TOKEN"), "{e}");
        assert_eq!(encode_path("group/app"), "group%2Fapp");
    }

    #[test]
    fn a_retry_after_is_obeyed_up_to_its_cap() {
        let max = Duration::from_secs(2);
        let asked = |secs| Refusal {
            why: "answered 429".into(),
            retry_after: Some(Duration::from_secs(secs)),
        };
        assert_eq!(pause_after(&asked(30), 0, max), Duration::from_secs(30));
        assert_eq!(pause_after(&asked(99_999), 0, max), RETRY_AFTER_CAP);
        let early = pause_after(&asked(0), 3, max);
        assert!(early >= max / 2 && early <= max, "{early:?}");
        let plain = pause_after(&Refusal::from("answered 500".to_string()), 0, max);
        assert!(plain <= Duration::from_secs(1), "{plain:?}");
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let max = Duration::from_secs(60);
        for n in 0..30 {
            let d = backoff(n, max);
            let full = Duration::from_secs(1 << n.min(20)).min(max);
            assert!(d >= full / 2 && d <= full, "{n}: {d:?}");
        }
    }
}
