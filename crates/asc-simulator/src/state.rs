//! The simulator's records and how each renders as an Apple resource.

use crate::ids::uuid;
use crate::jsonapi::to_one;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

pub fn ts(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string()
        .replace("+00:00", "Z")
}

#[derive(Debug, Clone)]
pub struct App {
    pub id: String,
    pub bundle_id: String,
    pub name: String,
    pub sku: String,
}

#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    pub seq: u64,
    pub app_id: String,
    pub version: String,
    pub build_number: String,
    pub platform: String,
    pub state: String,
    pub errors: Vec<(String, String)>,
    pub warnings: Vec<(String, String)>,
    pub created: jiff::Timestamp,
    pub uploaded: Option<jiff::Timestamp>,
    pub file_id: Option<String>,
    pub build_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Part {
    pub number: u64,
    pub offset: u64,
    pub length: u64,
    pub expires: i64,
    pub etag: Option<String>,
}

#[derive(Debug, Clone)]
pub struct FileRec {
    pub id: String,
    pub upload_id: String,
    pub file_name: String,
    pub size: u64,
    pub uti: String,
    pub state: String,
    pub errors: Vec<(String, String)>,
    pub parts: Vec<Part>,
    pub checksum: Option<(String, String)>,
    pub spool: std::path::PathBuf,
}

impl FileRec {
    pub fn missing_parts(&self) -> Vec<u64> {
        self.parts
            .iter()
            .filter(|p| p.etag.is_none())
            .map(|p| p.number)
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct BuildRec {
    pub id: String,
    pub seq: u64,
    pub app_id: String,
    pub upload_id: String,
    pub version: String,
    pub short_version: String,
    pub platform: String,
    pub processing_state: String,
    pub uses_non_exempt_encryption: Option<bool>,
    pub uploaded: jiff::Timestamp,
    pub groups: BTreeSet<String>,
    pub internal_state: String,
    pub external_state: String,
    pub auto_notify: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub internal: bool,
    pub all_builds: bool,
    pub link: PublicLink,
}

/// A group's public TestFlight link settings.
#[derive(Debug, Clone, Default)]
pub struct PublicLink {
    pub enabled: bool,
    pub limit_enabled: bool,
    pub limit: Option<i64>,
    /// Made the first time the link is enabled, kept afterwards.
    pub id: Option<String>,
}

/// A beta tester of the team, in some of its apps and groups.
#[derive(Debug, Clone, Default)]
pub struct Tester {
    pub id: String,
    pub seq: u64,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub state: String,
    pub apps: BTreeSet<String>,
    pub groups: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Localization {
    pub id: String,
    pub build_id: String,
    pub locale: String,
    pub whats_new: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Submission {
    pub id: String,
    pub build_id: String,
    pub state: String,
    pub submitted: jiff::Timestamp,
}

#[derive(Debug, Clone)]
pub struct Hook {
    pub id: String,
    pub app_id: String,
    pub name: String,
    pub url: String,
    pub secret: String,
    pub enabled: bool,
    pub event_types: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub seq: u64,
    pub webhook_id: String,
    pub event_id: String,
    pub created: jiff::Timestamp,
    pub sent: Option<jiff::Timestamp>,
    pub state: String,
    pub redelivery: bool,
    pub status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct EventRec {
    pub id: String,
    pub event_type: String,
    pub payload: String,
    pub ping: bool,
    pub created: jiff::Timestamp,
}

#[derive(Debug, Clone)]
pub struct Feedback {
    pub id: String,
    pub seq: u64,
    pub app_id: String,
    pub build_id: String,
    pub crash: bool,
    pub comment: String,
    pub created: jiff::Timestamp,
    pub crash_log: Option<String>,
    pub screenshots: usize,
    pub device_model: String,
    pub os_version: String,
    /// appPlatform and devicePlatform (IOS, MAC_OS, ...).
    pub platform: String,
    /// The image bytes every screenshot of this submission serves (a 1x1 PNG when None).
    pub image: Option<Vec<u8>>,
    /// Fault: list responses carry already-expired screenshot URLs (a GET of the one submission does not).
    pub stale_list_urls: bool,
}

/// A request the simulator answered, for tests to count.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub status: u16,
}

#[derive(Debug, Default)]
pub struct State {
    pub apps: Vec<App>,
    pub uploads: BTreeMap<String, Upload>,
    pub files: BTreeMap<String, FileRec>,
    pub builds: BTreeMap<String, BuildRec>,
    pub groups: Vec<Group>,
    pub localizations: Vec<Localization>,
    pub submissions: Vec<Submission>,
    pub notifications: Vec<String>,
    pub webhooks: BTreeMap<String, Hook>,
    pub deliveries: Vec<Delivery>,
    pub events: BTreeMap<String, EventRec>,
    pub feedback: Vec<Feedback>,
    pub testers: BTreeMap<String, Tester>,
    /// (tester id, app id) of every invitation sent.
    pub invitations: Vec<(String, String)>,
    pub expired_builds: BTreeSet<String>,
    pub violations: Vec<String>,
    pub log: Vec<Logged>,
    /// Build number -> forced processing result (INVALID, FAILED) for tests.
    pub forced: BTreeMap<String, String>,
    pub requests_by_key: BTreeMap<String, std::collections::VecDeque<jiff::Timestamp>>,
    /// (upload id, new state, when) for every upload state change, for latency measurements.
    pub transitions: Vec<(String, String, std::time::Instant)>,
    pub omit_build_links: bool,
    seq: u64,
}

pub const DEMO_APP_ID: &str = "1234567890";
pub const DEMO_BUNDLE_ID: &str = "com.example.app";

impl State {
    /// One app with an internal all-builds group, an internal QA group and an external Beta group.
    pub fn seeded() -> Self {
        let mut s = State::default();
        s.add_app(DEMO_APP_ID, DEMO_BUNDLE_ID, "Example");
        s
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn add_app(&mut self, id: &str, bundle_id: &str, name: &str) {
        self.apps.push(App {
            id: id.into(),
            bundle_id: bundle_id.into(),
            name: name.into(),
            sku: format!("SKU-{id}"),
        });
        for (name, internal, all) in [
            ("App Store Connect Users", true, true),
            ("QA", true, false),
            ("Beta", false, false),
        ] {
            self.groups.push(Group {
                id: uuid(),
                app_id: id.into(),
                name: name.into(),
                internal,
                all_builds: all,
                ..Default::default()
            });
        }
    }

    pub fn app(&self, id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.id == id)
    }

    pub fn render_app(&self, a: &App, base: &str) -> Value {
        json!({
            "type": "apps", "id": a.id,
            "attributes": {"bundleId": a.bundle_id, "name": a.name, "sku": a.sku, "primaryLocale": "en-US"},
            "links": {"self": format!("{base}/v1/apps/{}", a.id)}
        })
    }

    pub fn render_upload(&self, u: &Upload, base: &str) -> Value {
        let details = |v: &Vec<(String, String)>| -> Value {
            v.iter()
                .map(|(c, d)| json!({"code": c, "description": d}))
                .collect()
        };
        let mut attrs = json!({
            "cfBundleShortVersionString": u.version, "cfBundleVersion": u.build_number,
            "createdDate": ts(u.created), "platform": u.platform,
            "state": {"state": u.state, "errors": details(&u.errors), "warnings": details(&u.warnings), "infos": []}
        });
        if let Some(t) = u.uploaded {
            attrs["uploadedDate"] = json!(ts(t));
        }
        json!({
            "type": "buildUploads", "id": u.id, "attributes": attrs,
            "relationships": {
                "build": to_one("builds", if self.omit_build_links { None } else { u.build_id.as_deref() }),
                "assetFile": to_one("buildUploadFiles", u.file_id.as_deref()),
                "buildUploadFiles": {"links": {
                    "self": format!("{base}/v1/buildUploads/{}/relationships/buildUploadFiles", u.id),
                    "related": format!("{base}/v1/buildUploads/{}/buildUploadFiles", u.id)}}
            },
            "links": {"self": format!("{base}/v1/buildUploads/{}", u.id)}
        })
    }

    pub fn render_file(&self, f: &FileRec, base: &str, secret: &str) -> Value {
        let ops: Vec<Value> = f
            .parts
            .iter()
            .map(|p| {
                let mut op = json!({
                    "method": "PUT",
                    "url": part_url(base, &f.id, p.number, p.expires, secret),
                    "length": p.length, "offset": p.offset, "partNumber": p.number,
                    "requestHeaders": [{"name": "Content-Type", "value": "application/octet-stream"}],
                    "expiration": ts(jiff::Timestamp::from_second(p.expires).unwrap_or(jiff::Timestamp::UNIX_EPOCH)),
                });
                if let Some(e) = &p.etag {
                    op["entityTag"] = json!(e);
                }
                op
            })
            .collect();
        let mut attrs = json!({
            "assetDeliveryState": {"state": f.state,
                "errors": f.errors.iter().map(|(c, d)| json!({"code": c, "description": d})).collect::<Vec<_>>(),
                "warnings": []},
            "assetType": "ASSET", "fileName": f.file_name, "fileSize": f.size, "uti": f.uti,
            "uploadOperations": ops,
        });
        if let Some((alg, hash)) = &f.checksum {
            attrs["sourceFileChecksums"] = json!({"file": {"hash": hash, "algorithm": alg}});
        }
        json!({"type": "buildUploadFiles", "id": f.id, "attributes": attrs,
               "links": {"self": format!("{base}/v1/buildUploadFiles/{}", f.id)}})
    }

    pub fn render_build(&self, b: &BuildRec, base: &str) -> Value {
        let mut attrs = json!({
            "version": b.version, "uploadedDate": ts(b.uploaded),
            "expirationDate": ts(b.uploaded + jiff::SignedDuration::from_hours(90 * 24)),
            "expired": self.expired_builds.contains(&b.id), "minOsVersion": "17.0", "processingState": b.processing_state,
            "buildAudienceType": "APP_STORE_ELIGIBLE",
        });
        if let Some(v) = b.uses_non_exempt_encryption {
            attrs["usesNonExemptEncryption"] = json!(v);
        }
        json!({
            "type": "builds", "id": b.id, "attributes": attrs,
            "relationships": {
                "app": to_one("apps", Some(&b.app_id)),
                "buildUpload": to_one("buildUploads", Some(&b.upload_id)),
                "buildBetaDetail": to_one("buildBetaDetails", Some(&b.id)),
            },
            "links": {"self": format!("{base}/v1/builds/{}", b.id)}
        })
    }

    pub fn render_group(&self, g: &Group, base: &str) -> Value {
        let mut attrs = json!({"name": g.name, "isInternalGroup": g.internal, "hasAccessToAllBuilds": g.all_builds,
                               "publicLinkEnabled": g.link.enabled, "publicLinkLimitEnabled": g.link.limit_enabled,
                               "feedbackEnabled": true});
        if let Some(l) = g.link.limit {
            attrs["publicLinkLimit"] = json!(l);
        }
        if let (true, Some(id)) = (g.link.enabled, &g.link.id) {
            attrs["publicLinkId"] = json!(id);
            attrs["publicLink"] = json!(format!("https://testflight.apple.com/join/{id}"));
        }
        json!({"type": "betaGroups", "id": g.id, "attributes": attrs,
               "relationships": {"app": to_one("apps", Some(&g.app_id))},
               "links": {"self": format!("{base}/v1/betaGroups/{}", g.id)}})
    }

    pub fn render_tester(&self, t: &Tester, base: &str) -> Value {
        let mut attrs = json!({"email": t.email, "inviteType": "EMAIL", "state": t.state});
        if let Some(f) = &t.first_name {
            attrs["firstName"] = json!(f);
        }
        if let Some(l) = &t.last_name {
            attrs["lastName"] = json!(l);
        }
        json!({"type": "betaTesters", "id": t.id, "attributes": attrs,
               "links": {"self": format!("{base}/v1/betaTesters/{}", t.id)}})
    }

    pub fn render_localization(&self, l: &Localization, base: &str) -> Value {
        let mut attrs = json!({"locale": l.locale});
        if let Some(w) = &l.whats_new {
            attrs["whatsNew"] = json!(w);
        }
        json!({"type": "betaBuildLocalizations", "id": l.id, "attributes": attrs,
               "relationships": {"build": to_one("builds", Some(&l.build_id))},
               "links": {"self": format!("{base}/v1/betaBuildLocalizations/{}", l.id)}})
    }

    pub fn render_beta_detail(&self, b: &BuildRec, base: &str) -> Value {
        json!({"type": "buildBetaDetails", "id": b.id,
               "attributes": {"autoNotifyEnabled": b.auto_notify, "internalBuildState": b.internal_state, "externalBuildState": b.external_state},
               "relationships": {"build": to_one("builds", Some(&b.id))},
               "links": {"self": format!("{base}/v1/buildBetaDetails/{}", b.id)}})
    }

    pub fn render_hook(&self, h: &Hook, base: &str) -> Value {
        json!({"type": "webhooks", "id": h.id,
               "attributes": {"enabled": h.enabled, "eventTypes": h.event_types, "name": h.name, "url": h.url},
               "relationships": {"app": to_one("apps", Some(&h.app_id)),
                                 "deliveries": {"links": {"related": format!("{base}/v1/webhooks/{}/deliveries", h.id)}}},
               "links": {"self": format!("{base}/v1/webhooks/{}", h.id)}})
    }

    pub fn render_delivery(&self, d: &Delivery, base: &str) -> Value {
        let mut attrs = json!({"createdDate": ts(d.created), "deliveryState": d.state, "redelivery": d.redelivery,
                               "request": {"url": self.webhooks.get(&d.webhook_id).map(|h| h.url.clone()).unwrap_or_default()}});
        if let Some(s) = d.sent {
            attrs["sentDate"] = json!(ts(s));
        }
        if let Some(s) = d.status {
            attrs["response"] =
                json!({"httpStatusCode": s, "body": d.response_body.clone().unwrap_or_default()});
        }
        if let Some(e) = &d.error {
            attrs["errorMessage"] = json!(e);
        }
        json!({"type": "webhookDeliveries", "id": d.id, "attributes": attrs,
               "relationships": {"event": to_one("webhookEvents", Some(&d.event_id))},
               "links": {"self": format!("{base}/v1/webhookDeliveries/{}", d.id)}})
    }

    pub fn render_event(&self, e: &EventRec) -> Value {
        let mut attrs = json!({"payload": e.payload, "ping": e.ping, "createdDate": ts(e.created)});
        if !e.ping {
            attrs["eventType"] = json!(e.event_type);
        }
        json!({"type": "webhookEvents", "id": e.id, "attributes": attrs})
    }

    pub fn render_feedback(&self, f: &Feedback, base: &str, now: jiff::Timestamp) -> Value {
        self.render_feedback_with(f, base, now, false)
    }

    /// `listed`: rendered in a list response (where `stale_list_urls` applies).
    pub fn render_feedback_with(
        &self,
        f: &Feedback,
        base: &str,
        now: jiff::Timestamp,
        listed: bool,
    ) -> Value {
        let kind = if f.crash {
            "betaFeedbackCrashSubmissions"
        } else {
            "betaFeedbackScreenshotSubmissions"
        };
        let mut attrs = json!({
            "createdDate": ts(f.created), "comment": f.comment, "email": "tester@example.com",
            "deviceModel": f.device_model, "osVersion": f.os_version, "locale": "en-US", "timeZone": "Europe/Berlin",
            "architecture": "arm64e", "connectionType": "WIFI", "batteryPercentage": 81,
            "appPlatform": f.platform, "devicePlatform": f.platform,
            "deviceFamily": if f.platform == "MAC_OS" { "MAC" } else { "IPHONE" },
            "buildBundleId": self.app(&f.app_id).map(|a| a.bundle_id.clone()).unwrap_or_default(),
        });
        let mut rels = json!({"build": to_one("builds", Some(&f.build_id)), "tester": {}});
        if f.crash {
            rels["crashLog"] = json!({"links": {"related": format!("{base}/v1/betaFeedbackCrashSubmissions/{}/crashLog", f.id)}});
        } else {
            let exp = if listed && f.stale_list_urls {
                now - jiff::SignedDuration::from_secs(1)
            } else {
                now + jiff::SignedDuration::from_hours(1)
            };
            attrs["screenshots"] = (1..=f.screenshots)
                .map(|n| json!({"url": format!("{base}/_sim/screenshots/{}/{n}.png?expires={}", f.id, exp.as_second()),
                                "width": 1179, "height": 2556, "expirationDate": ts(exp)}))
                .collect();
        }
        json!({"type": kind, "id": f.id, "attributes": attrs, "relationships": rels,
               "links": {"self": format!("{base}/v1/{kind}/{}", f.id)}})
    }
}

/// A presigned-style URL: the signature covers file, part and expiry.
pub fn part_url(base: &str, file_id: &str, part: u64, expires: i64, secret: &str) -> String {
    format!(
        "{base}/_upload/{file_id}/{part}?expires={expires}&sig={}",
        part_signature(file_id, part, expires, secret)
    )
}

pub fn part_signature(file_id: &str, part: u64, expires: i64, secret: &str) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{file_id}/{part}/{expires}").as_bytes());
    hex::encode(mac.finalize().into_bytes())[..32].to_string()
}
