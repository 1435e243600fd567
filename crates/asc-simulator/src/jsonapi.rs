//! The simulator's own JSON:API rendering: errors in Apple's `ErrorResponse`
//! shape, documents and paged lists with `links.next` and `meta.paging`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// An Apple-style error response.
pub fn error(status: u16, code: &str, title: &str, detail: &str) -> Response {
    error_at(status, code, title, detail, None)
}

pub fn error_at(
    status: u16,
    code: &str,
    title: &str,
    detail: &str,
    source: Option<Value>,
) -> Response {
    let mut e = json!({
        "id": crate::ids::uuid(),
        "status": status.to_string(),
        "code": code,
        "title": title,
        "detail": detail,
    });
    if let Some(s) = source {
        e["source"] = s;
    }
    json_response(status, &json!({ "errors": [e] }))
}

pub fn not_found(kind: &str, id: &str) -> Response {
    error_at(
        404,
        "NOT_FOUND",
        "The specified resource does not exist",
        &format!("There is no resource of type '{kind}' with id '{id}'"),
        Some(json!({"parameter": "id"})),
    )
}

pub fn conflict(code: &str, detail: &str, pointer: Option<&str>) -> Response {
    error_at(
        409,
        code,
        "The request entity is not valid for this operation.",
        detail,
        pointer.map(|p| json!({"pointer": p})),
    )
}

pub fn json_response(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("content-type", "application/json")],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response()
}

pub fn document(status: u16, data: Value, included: Vec<Value>, self_link: &str) -> Response {
    let mut doc = json!({ "data": data, "links": { "self": self_link } });
    if !included.is_empty() {
        doc["included"] = Value::Array(included);
    }
    json_response(status, &doc)
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Query parameters as pairs, in order.
pub type Query = Vec<(String, String)>;

pub fn param<'a>(q: &'a Query, name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Comma-separated filter values.
pub fn filter(q: &Query, name: &str) -> Option<Vec<String>> {
    param(q, &format!("filter[{name}]")).map(|v| v.split(',').map(str::to_string).collect())
}

/// A page of `items` per `limit` and `cursor`, with `links.next` when more remain.
pub fn page(
    items: Vec<Value>,
    included: Vec<Value>,
    q: &Query,
    base_url: &str,
    path: &str,
) -> Response {
    let limit: usize = param(q, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(50)
        .clamp(1, 200);
    let start: usize = param(q, "cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    let total = items.len();
    let data: Vec<Value> = items.into_iter().skip(start).take(limit).collect();
    let link = |cursor: Option<usize>| {
        let mut pairs: Vec<(String, String)> =
            q.iter().filter(|(k, _)| k != "cursor").cloned().collect();
        if let Some(c) = cursor {
            pairs.push(("cursor".into(), c.to_string()));
        }
        let qs: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", encode(v)))
            .collect();
        if qs.is_empty() {
            format!("{base_url}{path}")
        } else {
            format!("{base_url}{path}?{}", qs.join("&"))
        }
    };
    let mut links = json!({ "self": link(None) });
    let mut paging = json!({ "total": total, "limit": limit });
    if start + limit < total {
        links["next"] = json!(link(Some(start + limit)));
        paging["nextCursor"] = json!((start + limit).to_string());
    }
    let mut doc = json!({ "data": data, "links": links, "meta": { "paging": paging } });
    if !included.is_empty() {
        doc["included"] = Value::Array(included);
    }
    json_response(200, &doc)
}

/// A to-one relationship linkage.
pub fn to_one(kind: &str, id: Option<&str>) -> Value {
    match id {
        Some(id) => json!({ "data": { "type": kind, "id": id } }),
        None => json!({}),
    }
}

/// The requested sparse fieldset, if any (`fields[kind]`).
pub fn fields(q: &Query, kind: &str) -> Option<Vec<String>> {
    param(q, &format!("fields[{kind}]")).map(|v| v.split(',').map(str::to_string).collect())
}

/// Apply a sparse fieldset to a rendered resource.
pub fn sparse(mut resource: Value, fields: Option<&Vec<String>>) -> Value {
    if let Some(f) = fields {
        for section in ["attributes", "relationships"] {
            if let Some(obj) = resource.get_mut(section).and_then(|v| v.as_object_mut()) {
                obj.retain(|k, _| f.contains(k));
            }
        }
    }
    resource
}

/// Percent-encode a query value (RFC 3986 unreserved characters stay), for
/// the `links` the simulator writes.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(encode("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(encode("a b,c[d]/é"), "a%20b%2Cc%5Bd%5D%2F%C3%A9");
    }
}
