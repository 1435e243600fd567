//! `expire-previous`: once a new build is distributed, expire the app's older
//! builds of the same platform, so testers stop installing last week's. Never
//! the new build, never a newer one, never one a pending beta review needs.

use crate::api::models::{Build, Platform, ProcessingState};
use crate::api::{Client, beta, resources as r};
use crate::error::Error;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Expired {
    /// (build id, build number) of each build expired.
    pub expired: Vec<(String, String)>,
    /// Older builds kept because a beta review of them is pending.
    pub kept_for_review: Vec<String>,
}

/// The builds to expire: valid, unexpired, uploaded before `new`, not `new`,
/// and not in `pending`. Pure, so the rule is tested on its own.
pub fn older_builds<'a>(all: &'a [Build], new: &Build, pending: &[String]) -> Vec<&'a Build> {
    let new_at = uploaded(new);
    all.iter()
        .filter(|b| b.id != new.id)
        .filter(|b| b.attrs().expired != Some(true))
        .filter(|b| b.attrs().processing_state == Some(ProcessingState::Valid))
        .filter(|b| match (uploaded(b), new_at) {
            (Some(t), Some(n)) => t < n,
            _ => false,
        })
        .filter(|b| !pending.contains(&b.id))
        .collect()
}

fn uploaded(b: &Build) -> Option<jiff::Timestamp> {
    b.attrs().uploaded_date?.parse().ok()
}

/// The app's builds on the new build's platform (found by listing each platform).
async fn same_platform(
    api: &Client,
    app_id: &str,
    build_id: &str,
    hint: Option<&Platform>,
) -> Result<Vec<Build>, Error> {
    let platforms: Vec<Platform> = match hint {
        Some(p) => vec![p.clone()],
        None => Platform::ALL
            .iter()
            .map(|p| p.parse().unwrap_or(Platform::Ios))
            .collect(),
    };
    for p in platforms {
        let builds = r::list_builds(api, app_id, None, &p).await?;
        if builds.iter().any(|b| b.id == build_id) {
            return Ok(builds);
        }
    }
    Err(Error::transient(format!(
        "build {build_id} is not among the app's builds yet"
    )))
}

pub async fn expire_previous(
    api: &Client,
    app_id: &str,
    build_id: &str,
    platform: Option<&Platform>,
) -> Result<Expired, Error> {
    let all = same_platform(api, app_id, build_id, platform).await?;
    let Some(new) = all.iter().find(|b| b.id == build_id) else {
        return Ok(Expired::default());
    };
    let candidates: Vec<String> = older_builds(&all, new, &[])
        .iter()
        .map(|b| b.id.clone())
        .collect();
    let mut pending = Vec::new();
    for chunk in candidates.chunks(50) {
        pending.extend(beta::pending_reviews(api, chunk).await?);
    }
    let mut out = Expired {
        kept_for_review: pending.clone(),
        ..Default::default()
    };
    for b in older_builds(&all, new, &pending) {
        beta::expire_build(api, &b.id)
            .await
            .map_err(|e| Error::from(e).context(format!("expiring build {}", b.id)))?;
        out.expired
            .push((b.id.clone(), b.attrs().version.unwrap_or_default()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::models::{BuildAttributes, Resource};

    fn build(id: &str, at: &str, state: ProcessingState, expired: bool) -> Build {
        Resource {
            kind: "builds".into(),
            id: id.into(),
            attributes: Some(BuildAttributes {
                version: Some(id.into()),
                uploaded_date: Some(at.into()),
                processing_state: Some(state),
                uses_non_exempt_encryption: None,
                expired: Some(expired),
            }),
            relationships: None,
        }
    }

    #[test]
    fn only_older_valid_unexpired_unreviewed_builds() {
        use ProcessingState::*;
        let all = vec![
            build("1", "2026-01-01T00:00:00Z", Valid, false),
            build("2", "2026-01-02T00:00:00Z", Valid, true),
            build("3", "2026-01-03T00:00:00Z", Processing, false),
            build("4", "2026-01-04T00:00:00Z", Valid, false),
            build("5", "2026-01-05T00:00:00Z", Valid, false),
            build("6", "2026-01-06T00:00:00Z", Valid, false),
        ];
        let new = all[4].clone();
        let ids = |v: Vec<&Build>| v.iter().map(|b| b.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(older_builds(&all, &new, &[])), vec!["1", "4"]);
        assert_eq!(ids(older_builds(&all, &new, &["4".into()])), vec!["1"]);
    }
}
