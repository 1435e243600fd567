//! What every App Store Connect API request goes through in the simulator:
//! injected faults, token verification, the hourly budget, query parameter
//! and body validation against Apple's schemas, and a check of the response.

use super::Sim;
use super::faults::{Fault, Kind, Scope};
use super::jsonapi::{error, error_at};
use super::openapi::Spec;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::Value;
use std::sync::Arc;

/// The audience Apple requires in App Store Connect API tokens.
const AUDIENCE: &str = "appstoreconnect-v1";
/// Apple's longest accepted token lifetime (`exp - iat`): 20 minutes.
const MAX_LIFETIME_SECS: i64 = 20 * 60;

const NOT_AUTHORIZED_DETAIL: &str = "Provide a properly configured and signed bearer token, and make sure that it has not expired. Learn more about Generating Tokens for API Requests https://developer.apple.com/go/?id=api-generating-tokens";

pub async fn api(
    State(sim): State<Arc<Sim>>,
    matched: MatchedPath,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().as_str().to_string();
    let template = matched.as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();

    let aimed = sim.faults.targeted(&method, &template);
    if let Some(r) = aimed.and_then(|k| targeted_early(&sim, k)) {
        return finish(&sim, &method, &path, r).await;
    }
    if aimed == Some(Kind::Hang) {
        tokio::time::sleep(sim.faults.hang()).await;
    }
    let fault = match aimed {
        Some(Kind::DropAfter) => Some(Fault::Drop),
        Some(_) => None,
        None => sim.faults.next(Scope::Api),
    };
    let early = match fault {
        Some(Fault::ServerError) => Some(error(
            503,
            "SERVICE_UNAVAILABLE",
            "The service is temporarily unavailable",
            "Injected by the simulator (fault api_5xx).",
        )),
        Some(Fault::RateLimited) => {
            let mut r = error(
                429,
                "RATE_LIMIT_EXCEEDED",
                "The request rate limit has been reached.",
                "We've received too many requests for this API. Please wait and try again or slow down your request rate.",
            );
            let secs = sim.faults.get().retry_after_secs;
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
            Some(r)
        }
        _ => None,
    };
    if let Some(r) = early {
        return finish(&sim, &method, &path, r).await;
    }

    let key = match verify(&sim, &req) {
        Ok(k) => k,
        Err(reason) => {
            let r = error(
                401,
                "NOT_AUTHORIZED",
                "Authentication credentials are missing or invalid.",
                &format!("{NOT_AUTHORIZED_DETAIL} (simulator: {reason})"),
            );
            return finish(&sim, &method, &path, r).await;
        }
    };
    if template.contains("/beta") && !key.may_use_testflight() {
        let r = error(
            403,
            "FORBIDDEN_ERROR",
            "This request is forbidden for security reasons",
            "The API key in use does not allow this request",
        );
        return finish(&sim, &method, &path, r).await;
    }
    let key = key.key_id;
    let (limit, remaining) = take_budget(&sim, &key);
    let rate_header = format!(
        "user-hour-lim:{limit};user-hour-rem:{};",
        remaining.unwrap_or(0)
    );
    if remaining.is_none() {
        let mut r = error(
            429,
            "RATE_LIMIT_EXCEEDED",
            "The request rate limit has been reached.",
            "We've received too many requests for this API. Please wait and try again or slow down your request rate.",
        );
        r.headers_mut().insert(
            "x-rate-limit",
            HeaderValue::from_str(&rate_header).unwrap_or(HeaderValue::from_static("")),
        );
        return finish(&sim, &method, &path, r).await;
    }

    if let Some(r) = check_query(&method, &template, &query) {
        return finish(&sim, &method, &path, r).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    if matches!(method.as_str(), "POST" | "PATCH")
        && let Some(r) = check_body(&template, &method, &bytes)
    {
        return finish(&sim, &method, &path, r).await;
    }
    let req = Request::from_parts(parts, Body::from(bytes));
    let mut resp = next.run(req).await;
    resp.headers_mut().insert(
        "x-rate-limit",
        HeaderValue::from_str(&rate_header).unwrap_or(HeaderValue::from_static("")),
    );
    let resp = check_response(&sim, &method, &template, resp).await;
    let resp = finish(&sim, &method, &path, resp).await;
    if fault == Some(Fault::Drop) {
        drop_connection(resp)
    } else {
        resp
    }
}

/// The answer a targeted fault gives instead of acting, if it does not act.
fn targeted_early(sim: &Sim, kind: Kind) -> Option<Response> {
    let limited = || {
        error(
            429,
            "RATE_LIMIT_EXCEEDED",
            "The request rate limit has been reached.",
            "We've received too many requests for this API. Please wait and try again or slow down your request rate.",
        )
    };
    match kind {
        Kind::ServerError => Some(error(
            503,
            "SERVICE_UNAVAILABLE",
            "The service is temporarily unavailable",
            "Injected by the simulator (targeted fault).",
        )),
        Kind::RateLimited => {
            let mut r = limited();
            let secs = sim.faults.get().retry_after_secs.max(1);
            r.headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
            Some(r)
        }
        Kind::RateLimitedBare => Some(limited()),
        Kind::DropBefore => Some(drop_connection(error(
            503,
            "SERVICE_UNAVAILABLE",
            "The service is temporarily unavailable",
            "Injected by the simulator (dropped before acting).",
        ))),
        Kind::ExpiredToken => Some(error(
            401,
            "NOT_AUTHORIZED",
            "Authentication credentials are missing or invalid.",
            &format!("{NOT_AUTHORIZED_DETAIL} (simulator: token expired, injected)"),
        )),
        Kind::DropAfter | Kind::Hang => None,
    }
}

async fn finish(sim: &Sim, method: &str, path: &str, mut resp: Response) -> Response {
    // The server's clock as App Store Connect states it, so a moved simulator
    // clock looks like a runner whose clock is off.
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&sim.now())
        .ok()
        .and_then(|d| HeaderValue::from_str(&d).ok());
    if let Some(d) = date {
        resp.headers_mut().insert("date", d);
    }
    sim.lock().log.push(super::state::Logged {
        method: method.into(),
        path: path.into(),
        status: resp.status().as_u16(),
    });
    resp
}

/// The response headers go out, then the body fails: the client sees a
/// dropped connection after the server already acted.
pub(crate) fn drop_connection(resp: Response) -> Response {
    let (parts, _) = resp.into_parts();
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("fault: connection dropped"))
    });
    let mut r = Response::from_parts(parts, Body::from_stream(stream));
    r.headers_mut()
        .insert("content-length", HeaderValue::from_static("100"));
    r
}

/// Verify the bearer token; the key it was signed with on success.
fn verify(sim: &Sim, req: &Request) -> Result<super::SimKey, String> {
    let cfg = sim.cfg();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or("no Authorization header")?;
    let token = auth
        .strip_prefix("Bearer ")
        .ok_or("Authorization is not a Bearer token")?;
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("malformed token: {e}"))?;
    if header.alg != jsonwebtoken::Algorithm::ES256 {
        return Err(format!("alg must be ES256, got {:?}", header.alg));
    }
    let Some(known) = cfg.key(header.kid.as_deref().unwrap_or_default()) else {
        return Err(format!(
            "unknown key id {:?}",
            header.kid.unwrap_or_default()
        ));
    };
    let key = jsonwebtoken::DecodingKey::from_ec_pem(known.public_key_pem.as_bytes())
        .map_err(|e| format!("simulator key: {e}"))?;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[AUDIENCE]);
    v.validate_exp = false;
    v.required_spec_claims = ["aud".to_string()].into_iter().collect();
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v)
        .map_err(|e| format!("token rejected: {e}"))?
        .claims;
    let (iat, exp) = (
        claims["iat"].as_i64().ok_or("no iat")?,
        claims["exp"].as_i64().ok_or("no exp")?,
    );
    let now = sim.now().as_second();
    if exp <= now {
        return Err(format!("token expired {}s ago", now - exp));
    }
    if exp - iat > MAX_LIFETIME_SECS {
        return Err(format!("token lifetime {}s exceeds 20 minutes", exp - iat));
    }
    if iat > now + 60 {
        return Err("token issued in the future".into());
    }
    match &known.issuer_id {
        Some(iss) if claims["iss"].as_str() != Some(iss) => {
            return Err("iss does not match the key's issuer".into());
        }
        None if claims["sub"] != "user" => {
            return Err("an individual key needs sub: \"user\"".into());
        }
        _ => {}
    }
    Ok(known)
}

/// Count a request against the key's rolling hour: (limit, remaining after
/// it), or no remaining when the budget was already spent.
fn take_budget(sim: &Sim, key: &str) -> (u64, Option<u64>) {
    let limit = sim.cfg().rate_limit_per_hour;
    let now = sim.now();
    let hour_ago = now - jiff::SignedDuration::from_hours(1);
    let mut st = sim.lock();
    let q = st.requests_by_key.entry(key.to_string()).or_default();
    while q.front().is_some_and(|t| *t <= hour_ago) {
        q.pop_front();
    }
    if q.len() as u64 >= limit {
        return (limit, None);
    }
    q.push_back(now);
    (limit, Some(limit - q.len() as u64))
}

fn check_query(method: &str, template: &str, query: &str) -> Option<Response> {
    let allowed = Spec::embedded().query_parameters(method, template);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split('=').next().unwrap_or_default();
        let key = key.replace("%5B", "[").replace("%5D", "]");
        if key != "cursor" && !allowed.contains(&key) {
            return Some(error_at(
                400,
                "PARAMETER_ERROR.ILLEGAL",
                "A parameter is not allowed for this request.",
                &format!("The parameter '{key}' can not be used with this request"),
                Some(serde_json::json!({"parameter": key})),
            ));
        }
    }
    None
}

fn check_body(template: &str, method: &str, body: &[u8]) -> Option<Response> {
    let schema = Spec::embedded().request_schema(method, template)?;
    let doc: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(error(
                400,
                "PARAMETER_ERROR.INVALID",
                "The request body is invalid.",
                &format!("The request body is not valid JSON: {e}"),
            ));
        }
    };
    let violations = Spec::embedded().validate(schema, &doc);
    let v = violations.first()?;
    let code = if v.message == "is required" {
        "ENTITY_ERROR.ATTRIBUTE.REQUIRED"
    } else if v.message.contains("not defined") {
        "ENTITY_ERROR.ATTRIBUTE.UNKNOWN"
    } else {
        "ENTITY_ERROR.ATTRIBUTE.INVALID"
    };
    let detail = violations
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join("; ");
    Some(error_at(
        409,
        code,
        "The provided entity is invalid.",
        &detail,
        Some(serde_json::json!({"pointer": v.pointer})),
    ))
}

/// Validate what we send against the spec; violations are recorded, not hidden.
async fn check_response(sim: &Sim, method: &str, template: &str, resp: Response) -> Response {
    let status = resp.status().as_u16();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let spec = Spec::embedded();
    let schema = if status >= 400 {
        spec.schema("ErrorResponse").map(Some)
    } else {
        spec.response_schema(method, template, status)
    };
    let problem = match schema {
        None => Some(format!("status {status} is not declared")),
        Some(None) if !bytes.is_empty() => {
            Some("a body was sent where the spec declares none".into())
        }
        Some(None) => None,
        Some(Some(s)) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(doc) => {
                let v = spec.validate(s, &doc);
                (!v.is_empty()).then(|| {
                    v.iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            }
            Err(e) => Some(format!("body is not JSON: {e}")),
        },
    };
    if let Some(p) = problem {
        sim.lock()
            .violations
            .push(format!("response to {method} {template} ({status}): {p}"));
    }
    Response::from_parts(parts, Body::from(bytes))
}
