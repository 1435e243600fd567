//! Loopback stand-ins for the third-party HTTP APIs flightdeck calls, written
//! from their public REST documentation: each checks what the real service
//! checks (auth header, User-Agent, body shape), records every call, and can
//! be told to fail (5xx), hang, or be down (not listening) to test retries.
//!
//! To add an API: write a `fn xyz_routes() -> Router<Arc<Recorder>>` and
//! start it with `Standin::start(xyz_routes())` (or `reserve` + `serve`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How a stand-in answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// Answer this status (and record nothing as delivered).
    Fail(u16),
    /// Hold the request for a minute, then fail.
    Hang,
}

/// One request a stand-in received.
#[derive(Debug, Clone)]
pub struct Call {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The mode it was answered in.
    pub mode: Mode,
}

impl Call {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct Recorder {
    pub calls: Mutex<Vec<Call>>,
    pub mode: Mutex<Mode>,
    /// The credential the service accepts.
    pub token: String,
}

impl Recorder {
    /// Record the call; `Some(response)` when the mode says not to serve it.
    async fn gate(&self, path: String, headers: &HeaderMap, body: &Bytes) -> Option<Response> {
        let mode = *self.mode.lock().unwrap();
        self.calls.lock().unwrap().push(Call {
            path,
            headers: headers.clone(),
            body: body.clone(),
            mode,
        });
        match mode {
            Mode::Up => None,
            Mode::Fail(s) => {
                Some((StatusCode::from_u16(s).unwrap(), "stand-in failure").into_response())
            }
            Mode::Hang => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Some(StatusCode::SERVICE_UNAVAILABLE.into_response())
            }
        }
    }
}

pub struct Standin {
    pub base: String,
    pub recorder: Arc<Recorder>,
    listener: Option<std::net::TcpListener>,
    port: u16,
}

impl Standin {
    /// A stand-in whose port is chosen but which is not listening yet ("down").
    pub fn reserve(token: &str) -> Self {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        Self {
            base: format!("http://127.0.0.1:{port}"),
            recorder: Arc::new(Recorder {
                calls: Mutex::new(Vec::new()),
                mode: Mutex::new(Mode::Up),
                token: token.into(),
            }),
            listener: None,
            port,
        }
    }

    /// Start serving `routes` on the reserved port ("up").
    pub async fn serve(&mut self, routes: Router<Arc<Recorder>>) {
        let l = match self.listener.take() {
            Some(l) => l,
            None => std::net::TcpListener::bind(("127.0.0.1", self.port)).unwrap(),
        };
        l.set_nonblocking(true).unwrap();
        let l = tokio::net::TcpListener::from_std(l).unwrap();
        let app = routes.with_state(self.recorder.clone());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    }

    pub async fn start(routes: Router<Arc<Recorder>>, token: &str) -> Self {
        let mut s = Self::reserve(token);
        s.serve(routes).await;
        s
    }

    pub fn set_mode(&self, m: Mode) {
        *self.recorder.mode.lock().unwrap() = m;
    }

    pub fn calls(&self) -> Vec<Call> {
        self.recorder.calls.lock().unwrap().clone()
    }

    /// Calls answered 2xx.
    pub fn delivered(&self) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.mode == Mode::Up)
            .collect()
    }
}

fn problem(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A plain webhook receiver (a `--forward URL` target): 200 to any POST.
pub fn sink_routes() -> Router<Arc<Recorder>> {
    Router::new().fallback(|State(r): State<Arc<Recorder>>, uri: axum::http::Uri, headers: HeaderMap, body: Bytes| async move {
        if let Some(resp) = r.gate(uri.path().to_string(), &headers, &body).await {
            return resp;
        }
        (StatusCode::OK, "ok").into_response()
    })
}

/// GitHub's "Create a repository dispatch event":
/// `POST /repos/{owner}/{repo}/dispatches` with `Authorization: Bearer` (or
/// `token`), a User-Agent (GitHub refuses requests without one), and
/// `{"event_type": <1-100 chars>, "client_payload": <object, at most 10
/// top-level properties>}`; answers 204 No Content.
pub fn github_routes() -> Router<Arc<Recorder>> {
    async fn dispatch(
        State(r): State<Arc<Recorder>>,
        Path((owner, repo)): Path<(String, String)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = format!("/repos/{owner}/{repo}/dispatches");
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let token = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("token "))
            .unwrap_or("");
        if token != r.token {
            r.calls.lock().unwrap().push(Call {
                path,
                headers,
                body,
                mode: Mode::Fail(401),
            });
            return problem(
                StatusCode::UNAUTHORIZED,
                json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
            );
        }
        if headers.get("user-agent").is_none() {
            r.calls.lock().unwrap().push(Call {
                path,
                headers,
                body,
                mode: Mode::Fail(403),
            });
            return problem(
                StatusCode::FORBIDDEN,
                json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}),
            );
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let kind_ok = v["event_type"]
            .as_str()
            .is_some_and(|t| !t.is_empty() && t.len() <= 100);
        let payload_ok = v
            .get("client_payload")
            .is_none_or(|p| p.as_object().is_some_and(|o| o.len() <= 10));
        if !kind_ok || !payload_ok {
            r.calls.lock().unwrap().push(Call {
                path,
                headers,
                body,
                mode: Mode::Fail(422),
            });
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"message": "Invalid request.", "documentation_url": "https://docs.github.com/rest/repos/repos#create-a-repository-dispatch-event"}),
            );
        }
        if let Some(resp) = r.gate(path, &headers, &body).await {
            return resp;
        }
        StatusCode::NO_CONTENT.into_response()
    }
    Router::new().route("/repos/{owner}/{repo}/dispatches", post(dispatch))
}

/// GitLab's "Trigger a pipeline with a token":
/// `POST /api/v4/projects/:id/trigger/pipeline` with `token` (a trigger
/// token or CI_JOB_TOKEN), `ref`, and optional `variables` (a hash of
/// strings), as form fields or JSON; answers 201 with the pipeline.
/// `CI_API_V4_URL` is `<base>/api/v4`.
pub fn gitlab_routes() -> Router<Arc<Recorder>> {
    async fn trigger(
        State(r): State<Arc<Recorder>>,
        Path(id): Path<String>,
        headers: HeaderMap,
        body: Bytes,
    ) -> Response {
        let path = format!("/api/v4/projects/{id}/trigger/pipeline");
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if v["token"].as_str() != Some(r.token.as_str()) {
            r.calls.lock().unwrap().push(Call {
                path,
                headers,
                body,
                mode: Mode::Fail(404),
            });
            return problem(StatusCode::NOT_FOUND, json!({"message": "404 Not Found"}));
        }
        let Some(reference) = v["ref"].as_str().map(str::to_string) else {
            r.calls.lock().unwrap().push(Call {
                path,
                headers,
                body,
                mode: Mode::Fail(400),
            });
            return problem(StatusCode::BAD_REQUEST, json!({"error": "ref is missing"}));
        };
        let vars_ok = v.get("variables").is_none_or(|m| {
            m.as_object()
                .is_some_and(|o| o.values().all(Value::is_string))
        });
        if !vars_ok {
            r.calls.lock().unwrap().push(Call {
                path,
                headers,
                body,
                mode: Mode::Fail(400),
            });
            return problem(
                StatusCode::BAD_REQUEST,
                json!({"error": "variables is invalid"}),
            );
        }
        if let Some(resp) = r.gate(path, &headers, &body).await {
            return resp;
        }
        let n = r.calls.lock().unwrap().len();
        problem(
            StatusCode::CREATED,
            json!({"id": n, "iid": n, "project_id": id, "status": "created", "ref": reference, "source": "trigger"}),
        )
    }
    Router::new().route("/api/v4/projects/{id}/trigger/pipeline", post(trigger))
}
