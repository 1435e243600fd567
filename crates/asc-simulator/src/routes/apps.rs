use super::{Id, Q, S};
use crate::jsonapi::{self, fields, filter, page};
use axum::response::Response;

pub async fn list(sim: S, q: Q) -> Response {
    let st = sim.lock();
    let ids = filter(&q, "id");
    let bundles = filter(&q, "bundleId");
    let f = fields(&q, "apps");
    let items = st
        .apps
        .iter()
        .filter(|a| ids.as_ref().is_none_or(|v| v.contains(&a.id)))
        .filter(|a| bundles.as_ref().is_none_or(|v| v.contains(&a.bundle_id)))
        .map(|a| jsonapi::sparse(st.render_app(a, &sim.base_url), f.as_ref()))
        .collect();
    page(items, vec![], &q, &sim.base_url, "/v1/apps")
}

pub async fn get(sim: S, id: Id, q: Q) -> Response {
    let st = sim.lock();
    match st.app(&id) {
        Some(a) => jsonapi::document(
            200,
            jsonapi::sparse(st.render_app(a, &sim.base_url), fields(&q, "apps").as_ref()),
            vec![],
            &format!("{}/v1/apps/{}", sim.base_url, a.id),
        ),
        None => jsonapi::not_found("apps", &id),
    }
}
