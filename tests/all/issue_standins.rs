//! Loopback stand-ins for GitHub's and GitLab's issue REST APIs, written from
//! their public documentation: list (paginated: GitHub's `Link` header,
//! GitLab's `X-Next-Page` and `Link`), create, list and add comments/notes;
//! GitHub wants `Authorization: Bearer|token` and a User-Agent (403 without),
//! GitLab `PRIVATE-TOKEN` or `JOB-TOKEN`. Every call is recorded so tests can
//! count them. A fault makes a create land and still answer 502.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    GitHub,
    GitLab,
}

#[derive(Debug, Clone)]
pub struct StIssue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub comments: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub status: u16,
}

pub struct Tracker {
    pub flavor: Flavor,
    pub token: String,
    /// `owner/repo` (GitHub) or the project id (GitLab) that exists.
    pub repo: String,
    pub issues: Vec<StIssue>,
    pub calls: Vec<Call>,
    /// Bodies of GitLab `POST /projects/:id/uploads` (multipart, as sent).
    pub uploads: Vec<Vec<u8>>,
    /// Pages hold at most this many items whatever `per_page` asks.
    pub max_per_page: usize,
    /// The next this many creates store the issue and answer 502 anyway.
    pub lost_create_replies: usize,
    base: String,
}

pub struct StandIn {
    pub base: String,
    pub state: Arc<Mutex<Tracker>>,
}

impl StandIn {
    pub fn count(&self, method: &str, path_part: &str) -> usize {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.method == method && c.path.contains(path_part))
            .count()
    }
    pub fn issues(&self) -> Vec<StIssue> {
        self.state.lock().unwrap().issues.clone()
    }
    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }
}

pub async fn start(flavor: Flavor, repo: &str, token: &str) -> StandIn {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = match flavor {
        Flavor::GitHub => format!("http://{addr}"),
        Flavor::GitLab => format!("http://{addr}/api/v4"),
    };
    let state = Arc::new(Mutex::new(Tracker {
        flavor,
        token: token.into(),
        repo: repo.into(),
        issues: Vec::new(),
        calls: Vec::new(),
        uploads: Vec::new(),
        max_per_page: 100,
        lost_create_replies: 0,
        base: base.clone(),
    }));
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(state.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    StandIn { base, state }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn handle(
    State(st): State<Arc<Mutex<Tracker>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut t = st.lock().unwrap();
    let resp = route(&mut t, &method, &uri, &headers, &body);
    t.calls.push(Call {
        method: method.to_string(),
        path: uri.to_string(),
        status: resp.status().as_u16(),
    });
    resp
}

fn query(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), decode(v)))
        .collect()
}

fn decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn authorized(t: &Tracker, h: &HeaderMap) -> bool {
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default();
    match t.flavor {
        Flavor::GitHub => {
            let a = get("authorization");
            a == format!("Bearer {}", t.token) || a == format!("token {}", t.token)
        }
        Flavor::GitLab => get("private-token") == t.token || get("job-token") == t.token,
    }
}

fn route(t: &mut Tracker, method: &Method, uri: &Uri, h: &HeaderMap, body: &[u8]) -> Response {
    if t.flavor == Flavor::GitHub && h.get("user-agent").is_none() {
        return reply(
            StatusCode::FORBIDDEN,
            json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}),
        );
    }
    if !authorized(t, h) {
        let msg = match t.flavor {
            Flavor::GitHub => "Bad credentials",
            Flavor::GitLab => "401 Unauthorized",
        };
        return reply(StatusCode::UNAUTHORIZED, json!({ "message": msg }));
    }
    let path = uri.path();
    let rest = match t.flavor {
        Flavor::GitHub => {
            let Some(rest) = path.strip_prefix(&format!("/repos/{}/", t.repo)) else {
                return reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
            };
            rest.to_string()
        }
        Flavor::GitLab => {
            let enc = t.repo.replace('/', "%2F");
            let Some(rest) = path
                .strip_prefix(&format!("/api/v4/projects/{enc}/"))
                .or_else(|| path.strip_prefix(&format!("/api/v4/projects/{}/", t.repo)))
            else {
                return reply(
                    StatusCode::NOT_FOUND,
                    json!({"message": "404 Project Not Found"}),
                );
            };
            rest.to_string()
        }
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let q = query(uri);
    let json_body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let comments_seg = match t.flavor {
        Flavor::GitHub => "comments",
        Flavor::GitLab => "notes",
    };
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["issues"]) => list_issues(t, uri, &q),
        ("POST", ["issues"]) => create_issue(t, &json_body),
        ("GET", ["issues", n, seg]) if *seg == comments_seg => list_comments(t, uri, &q, n),
        ("POST", ["issues", n, seg]) if *seg == comments_seg => add_comment(t, n, &json_body),
        ("POST", ["uploads"]) if t.flavor == Flavor::GitLab => upload(t, h, body),
        _ => reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    }
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
}

/// A page of `items` with GitHub's Link or GitLab's X-Next-Page (and Link).
fn paged(t: &Tracker, uri: &Uri, q: &[(String, String)], items: Vec<Value>) -> Response {
    let default = match t.flavor {
        Flavor::GitHub => 30,
        Flavor::GitLab => 20,
    };
    let per: usize = param(q, "per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(default)
        .clamp(1, 100)
        .min(t.max_per_page);
    let page: usize = param(q, "page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1)
        .max(1);
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip((page - 1) * per).take(per).collect();
    let mut resp = reply(StatusCode::OK, Value::Array(data));
    if page * per < total {
        let others: Vec<String> = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty() && !p.starts_with("page="))
            .map(str::to_string)
            .collect();
        let origin = t.base.trim_end_matches("/api/v4");
        let next = format!(
            "{origin}{}?{}&page={}",
            uri.path(),
            others.join("&"),
            page + 1
        );
        let h = resp.headers_mut();
        h.insert("link", format!("<{next}>; rel=\"next\"").parse().unwrap());
        if t.flavor == Flavor::GitLab {
            h.insert("x-next-page", (page + 1).to_string().parse().unwrap());
            h.insert("x-page", page.to_string().parse().unwrap());
            h.insert("x-total", total.to_string().parse().unwrap());
        }
    }
    resp
}

fn render_issue(t: &Tracker, i: &StIssue) -> Value {
    match t.flavor {
        Flavor::GitHub => json!({
            "number": i.number, "title": i.title, "body": i.body, "state": "open",
            "html_url": format!("https://github.com/{}/issues/{}", t.repo, i.number),
            "labels": i.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        }),
        Flavor::GitLab => json!({
            "iid": i.number, "id": 1000 + i.number, "title": i.title, "description": i.body,
            "state": "opened", "labels": i.labels,
            "web_url": format!("https://gitlab.example/{}/-/issues/{}", t.repo, i.number),
        }),
    }
}

fn list_issues(t: &Tracker, uri: &Uri, q: &[(String, String)]) -> Response {
    let want: Vec<String> = param(q, "labels")
        .map(|l| l.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    // Newest first, as both APIs sort by default.
    let items: Vec<Value> = t
        .issues
        .iter()
        .rev()
        .filter(|i| want.iter().all(|w| i.labels.contains(w)))
        .map(|i| render_issue(t, i))
        .collect();
    paged(t, uri, q, items)
}

fn create_issue(t: &mut Tracker, b: &Value) -> Response {
    let Some(title) = b.get("title").and_then(Value::as_str) else {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Validation Failed"}),
        );
    };
    let (body_key, labels) = match t.flavor {
        Flavor::GitHub => (
            "body",
            b.get("labels")
                .and_then(Value::as_array)
                .map(|l| {
                    l.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Flavor::GitLab => (
            "description",
            b.get("labels")
                .and_then(Value::as_str)
                .map(|l| l.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        ),
    };
    let issue = StIssue {
        number: t.issues.len() as u64 + 1,
        title: title.into(),
        body: b
            .get(body_key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .into(),
        labels,
        comments: Vec::new(),
    };
    let v = render_issue(t, &issue);
    t.issues.push(issue);
    if t.lost_create_replies > 0 {
        t.lost_create_replies -= 1;
        return reply(StatusCode::BAD_GATEWAY, json!({"message": "Bad Gateway"}));
    }
    reply(StatusCode::CREATED, v)
}

/// GitLab's project upload: a multipart `file` field; answers the Markdown to embed.
fn upload(t: &mut Tracker, h: &HeaderMap, body: &[u8]) -> Response {
    let ct = h
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let text = String::from_utf8_lossy(body);
    let Some(name) = text
        .split("filename=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .filter(|_| {
            ct.starts_with("multipart/form-data; boundary=") && text.contains("name=\"file\"")
        })
    else {
        return reply(StatusCode::BAD_REQUEST, json!({"error": "file is missing"}));
    };
    let name = name.to_string();
    t.uploads.push(body.to_vec());
    let url = format!("/uploads/{:032x}/{name}", t.uploads.len());
    reply(
        StatusCode::CREATED,
        json!({"alt": name, "url": url, "full_path": format!("/{}{url}", t.repo),
               "markdown": format!("![{name}]({url})")}),
    )
}

fn find(t: &Tracker, n: &str) -> Option<usize> {
    let n: u64 = n.parse().ok()?;
    t.issues.iter().position(|i| i.number == n)
}

fn list_comments(t: &Tracker, uri: &Uri, q: &[(String, String)], n: &str) -> Response {
    let Some(i) = find(t, n) else {
        return reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
    };
    let items = t.issues[i]
        .comments
        .iter()
        .enumerate()
        .map(|(k, c)| json!({"id": k + 1, "body": c}))
        .collect();
    paged(t, uri, q, items)
}

fn add_comment(t: &mut Tracker, n: &str, b: &Value) -> Response {
    let Some(i) = find(t, n) else {
        return reply(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
    };
    let Some(body) = b.get("body").and_then(Value::as_str) else {
        return reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Validation Failed"}),
        );
    };
    t.issues[i].comments.push(body.into());
    let id = t.issues[i].comments.len();
    reply(StatusCode::CREATED, json!({"id": id, "body": body}))
}
