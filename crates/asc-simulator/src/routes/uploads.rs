//! Build uploads and their files: create, reserve (upload operations), commit.

use super::{Id, Q, S, body, related};
use crate::ids::uuid;
use crate::jsonapi::{self, conflict, filter, not_found, page, param};
use crate::state::{FileRec, Part, Upload};
use axum::body::Bytes;
use axum::response::Response;
use serde_json::Value;

fn includes(q: &crate::jsonapi::Query) -> Vec<String> {
    param(q, "include")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

fn with_included(
    sim: &crate::Sim,
    st: &crate::state::State,
    u: &Upload,
    inc: &[String],
) -> Vec<Value> {
    let mut out = Vec::new();
    if inc.iter().any(|i| i == "build")
        && !st.omit_build_links
        && let Some(b) = u.build_id.as_ref().and_then(|b| st.builds.get(b))
    {
        out.push(st.render_build(b, &sim.base_url));
    }
    if inc.iter().any(|i| i == "assetFile")
        && let Some(f) = u.file_id.as_ref().and_then(|f| st.files.get(f))
    {
        out.push(st.render_file(f, &sim.base_url, &sim.url_secret));
    }
    out
}

pub async fn list_for_app(sim: S, id: Id, q: Q) -> Response {
    let st = sim.lock();
    if st.app(&id).is_none() {
        return not_found("apps", &id);
    }
    let versions = filter(&q, "cfBundleShortVersionString");
    let builds = filter(&q, "cfBundleVersion");
    let platforms = filter(&q, "platform");
    let states = filter(&q, "state");
    let mut ups: Vec<&Upload> = st
        .uploads
        .values()
        .filter(|u| u.app_id == *id)
        .filter(|u| versions.as_ref().is_none_or(|v| v.contains(&u.version)))
        .filter(|u| builds.as_ref().is_none_or(|v| v.contains(&u.build_number)))
        .filter(|u| platforms.as_ref().is_none_or(|v| v.contains(&u.platform)))
        .filter(|u| states.as_ref().is_none_or(|v| v.contains(&u.state)))
        .collect();
    ups.sort_by_key(|u| std::cmp::Reverse(u.seq));
    let inc = includes(&q);
    let mut included = Vec::new();
    let items = ups
        .iter()
        .map(|u| {
            included.extend(with_included(&sim, &st, u, &inc));
            st.render_upload(u, &sim.base_url)
        })
        .collect();
    page(
        items,
        included,
        &q,
        &sim.base_url,
        &format!("/v1/apps/{}/buildUploads", *id),
    )
}

pub async fn create(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let a = &doc["data"]["attributes"];
    let app_id = related(&doc, "app");
    let (version, build, platform) = (
        a["cfBundleShortVersionString"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        a["cfBundleVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        a["platform"].as_str().unwrap_or_default().to_string(),
    );
    let now = sim.now();
    let mut st = sim.lock();
    if st.app(&app_id).is_none() {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!("There is no app with id '{app_id}'"),
            Some("/data/relationships/app"),
        );
    }
    let taken = st.uploads.values().any(|u| {
        u.app_id == app_id
            && u.platform == platform
            && u.version == version
            && u.build_number == build
            && u.state != "FAILED"
    });
    if taken {
        return conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID.DUPLICATE",
            &format!(
                "The bundle version {build} has already been used for version {version}. Upload a build with a higher bundle version (CFBundleVersion)."
            ),
            Some("/data/attributes/cfBundleVersion"),
        );
    }
    let seq = st.next_seq();
    let u = Upload {
        id: uuid(),
        seq,
        app_id,
        version,
        build_number: build,
        platform,
        state: "AWAITING_UPLOAD".into(),
        errors: vec![],
        warnings: vec![],
        created: now,
        uploaded: None,
        file_id: None,
        build_id: None,
    };
    let rendered = st.render_upload(&u, &sim.base_url);
    let link = format!("{}/v1/buildUploads/{}", sim.base_url, u.id);
    st.uploads.insert(u.id.clone(), u);
    jsonapi::document(201, rendered, vec![], &link)
}

pub async fn get(sim: S, id: Id, q: Q) -> Response {
    let st = sim.lock();
    match st.uploads.get(&*id) {
        Some(u) => {
            let inc = with_included(&sim, &st, u, &includes(&q));
            jsonapi::document(
                200,
                st.render_upload(u, &sim.base_url),
                inc,
                &format!("{}/v1/buildUploads/{}", sim.base_url, u.id),
            )
        }
        None => not_found("buildUploads", &id),
    }
}

pub async fn delete(sim: S, id: Id) -> Response {
    let mut st = sim.lock();
    match st.uploads.remove(&*id) {
        Some(u) => {
            if let Some(f) = u.file_id.and_then(|f| st.files.remove(&f)) {
                let _ = std::fs::remove_file(&f.spool);
            }
            jsonapi::no_content()
        }
        None => not_found("buildUploads", &id),
    }
}

pub async fn files(sim: S, id: Id, q: Q) -> Response {
    let st = sim.lock();
    if !st.uploads.contains_key(&*id) {
        return not_found("buildUploads", &id);
    }
    let items = st
        .files
        .values()
        .filter(|f| f.upload_id == *id)
        .map(|f| st.render_file(f, &sim.base_url, &sim.url_secret))
        .collect();
    page(
        items,
        vec![],
        &q,
        &sim.base_url,
        &format!("/v1/buildUploads/{}/buildUploadFiles", *id),
    )
}

pub async fn reserve(sim: S, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let a = &doc["data"]["attributes"];
    let upload_id = related(&doc, "buildUpload");
    let (name, size, uti, asset) = (
        a["fileName"].as_str().unwrap_or_default().to_string(),
        a["fileSize"].as_u64().unwrap_or(0),
        a["uti"].as_str().unwrap_or_default().to_string(),
        a["assetType"].as_str().unwrap_or_default(),
    );
    if asset != "ASSET" {
        return conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "Only ASSET files are accepted for build uploads by this simulator.",
            Some("/data/attributes/assetType"),
        );
    }
    let ext_ok = (uti == "com.apple.ipa" && name.ends_with(".ipa"))
        || (uti == "com.apple.pkg" && name.ends_with(".pkg"));
    if !ext_ok {
        return conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            &format!("The uti '{uti}' does not match the file name '{name}'."),
            Some("/data/attributes/uti"),
        );
    }
    let cfg = sim.cfg();
    let now = sim.now().as_second();
    let file_id = uuid();
    let dir = sim.spool.join(&file_id);
    let spool = dir.join(&name);
    let made = std::fs::create_dir_all(&dir)
        .and_then(|_| std::fs::File::create(&spool))
        .and_then(|f| f.set_len(size));
    if let Err(e) = made {
        return jsonapi::error(
            500,
            "INTERNAL_ERROR",
            "The simulator could not reserve storage.",
            &e.to_string(),
        );
    }
    let mut parts = Vec::new();
    let mut offset = 0;
    let mut number = 1;
    while offset < size {
        let length = cfg.part_size.min(size - offset);
        let expires = if sim.faults.expire_url() {
            now - 60
        } else {
            now + cfg.url_ttl.as_secs() as i64
        };
        parts.push(Part {
            number,
            offset,
            length,
            expires,
            etag: None,
        });
        offset += length;
        number += 1;
    }
    let mut st = sim.lock();
    let Some(up) = st.uploads.get_mut(&upload_id) else {
        return conflict(
            "ENTITY_ERROR.RELATIONSHIP.INVALID",
            &format!("There is no build upload with id '{upload_id}'"),
            Some("/data/relationships/buildUpload"),
        );
    };
    if up.state != "AWAITING_UPLOAD" {
        return conflict(
            "STATE_ERROR",
            &format!(
                "The build upload is {} and accepts no more files.",
                up.state
            ),
            None,
        );
    }
    up.file_id = Some(file_id.clone());
    let f = FileRec {
        id: file_id.clone(),
        upload_id,
        file_name: name,
        size,
        uti,
        state: "AWAITING_UPLOAD".into(),
        errors: vec![],
        parts,
        checksum: None,
        spool,
    };
    let rendered = st.render_file(&f, &sim.base_url, &sim.url_secret);
    st.files.insert(file_id.clone(), f);
    jsonapi::document(
        201,
        rendered,
        vec![],
        &format!("{}/v1/buildUploadFiles/{file_id}", sim.base_url),
    )
}

/// Reading a file renews the URLs of parts not yet received.
pub async fn get_file(sim: S, id: Id) -> Response {
    let ttl = sim.cfg().url_ttl.as_secs() as i64;
    let now = sim.now().as_second();
    let mut st = sim.lock();
    let Some(f) = st.files.get_mut(&*id) else {
        return not_found("buildUploadFiles", &id);
    };
    if f.state == "AWAITING_UPLOAD" {
        for p in f
            .parts
            .iter_mut()
            .filter(|p| p.etag.is_none() && p.expires <= now + 60)
        {
            p.expires = now + ttl;
        }
    }
    let f = f.clone();
    jsonapi::document(
        200,
        st.render_file(&f, &sim.base_url, &sim.url_secret),
        vec![],
        &format!("{}/v1/buildUploadFiles/{}", sim.base_url, f.id),
    )
}

pub async fn commit(sim: S, id: Id, bytes: Bytes) -> Response {
    let doc = body(&bytes);
    let a = &doc["data"]["attributes"];
    if doc["data"]["id"].as_str() != Some(&*id) {
        return conflict(
            "ENTITY_ERROR.ATTRIBUTE.INVALID",
            "The id in the body does not match the URL.",
            Some("/data/id"),
        );
    }
    let now = sim.now();
    let mut st = sim.lock();
    let Some(f) = st.files.get_mut(&*id) else {
        return not_found("buildUploadFiles", &id);
    };
    if a["uploaded"] == true && f.state == "AWAITING_UPLOAD" {
        let missing = f.missing_parts();
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(|m| m.to_string()).collect();
            return conflict(
                "ENTITY_ERROR.ATTRIBUTE.INVALID",
                &format!(
                    "The file cannot be committed: parts {} were not uploaded.",
                    list.join(", ")
                ),
                Some("/data/attributes/uploaded"),
            );
        }
        if let Some(c) = a["sourceFileChecksums"]["file"].as_object() {
            let alg = c
                .get("algorithm")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            let hash = c
                .get("hash")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            f.checksum = Some((alg, hash));
        }
        f.state = "UPLOAD_COMPLETE".into();
        let (file_id, upload_id) = (f.id.clone(), f.upload_id.clone());
        if let Some(u) = st.uploads.get_mut(&upload_id) {
            u.state = "PROCESSING".into();
            u.uploaded = Some(now);
        }
        crate::processing::start(sim.0.clone(), upload_id, file_id);
    }
    let Some(f) = st.files.get(&*id) else {
        return not_found("buildUploadFiles", &id);
    };
    jsonapi::document(
        200,
        st.render_file(f, &sim.base_url, &sim.url_secret),
        vec![],
        &format!("{}/v1/buildUploadFiles/{}", sim.base_url, f.id),
    )
}
