//! Build number guard: what App Store Connect already has for this app,
//! version and platform, and the next free build number.

use crate::api::Client;
use crate::api::models::{BuildUpload, BuildUploadState, Platform};
use crate::api::resources as r;
use crate::error::Error;

/// Compare dotted build numbers numerically ("10" > "9", "1.2.10" > "1.2.9").
pub fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    let parse = |s: &str| {
        s.split('.')
            .map(|p| p.trim().parse::<u64>().unwrap_or(0))
            .collect::<Vec<_>>()
    };
    parse(a).cmp(&parse(b))
}

/// The number after `n`: its last component plus one.
pub fn increment(n: &str) -> String {
    let mut parts: Vec<String> = n.split('.').map(str::to_string).collect();
    if let Some(last) = parts.last_mut() {
        *last = (last.trim().parse::<u64>().unwrap_or(0) + 1).to_string();
    }
    parts.join(".")
}

/// The highest build number App Store Connect knows for the app (builds and
/// build uploads), optionally for one version.
pub async fn highest(
    api: &Client,
    app_id: &str,
    version: Option<&str>,
    platform: &Platform,
) -> Result<Option<String>, Error> {
    let mut numbers: Vec<String> = r::list_builds(api, app_id, version, platform)
        .await?
        .into_iter()
        .filter_map(|b| b.attrs().version)
        .collect();
    if let Some(v) = version {
        numbers.extend(
            r::list_build_uploads(api, app_id, v, None, platform)
                .await?
                .into_iter()
                .filter(|u| u.state() != Some(BuildUploadState::Failed))
                .filter_map(|u| u.attrs().cf_bundle_version),
        );
    }
    Ok(numbers.into_iter().max_by(|a, b| compare(a, b)))
}

pub async fn next(
    api: &Client,
    app_id: &str,
    version: Option<&str>,
    platform: &Platform,
) -> Result<String, Error> {
    Ok(highest(api, app_id, version, platform)
        .await?
        .map(|h| increment(&h))
        .unwrap_or_else(|| "1".into()))
}

/// What the guard found for this exact version and build number.
pub enum Existing {
    None,
    /// Uploaded already (PROCESSING or COMPLETE).
    Taken(BuildUpload),
    /// An earlier run reserved it but did not finish: resume it.
    Resumable(BuildUpload),
}

pub async fn existing(
    api: &Client,
    app_id: &str,
    version: &str,
    build: &str,
    platform: &Platform,
) -> Result<Existing, Error> {
    let ups = r::list_build_uploads(api, app_id, version, Some(build), platform).await?;
    let same: Vec<BuildUpload> = ups
        .into_iter()
        .filter(|u| {
            u.attrs().cf_bundle_version.as_deref() == Some(build)
                && u.attrs().cf_bundle_short_version_string.as_deref() == Some(version)
        })
        .collect();
    if let Some(t) = same.iter().find(|u| {
        matches!(
            u.state(),
            Some(BuildUploadState::Complete | BuildUploadState::Processing)
        )
    }) {
        return Ok(Existing::Taken(t.clone()));
    }
    if let Some(a) = same
        .iter()
        .find(|u| u.state() == Some(BuildUploadState::AwaitingUpload))
    {
        return Ok(Existing::Resumable(a.clone()));
    }
    Ok(Existing::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_compare_and_increment() {
        assert_eq!(compare("10", "9"), std::cmp::Ordering::Greater);
        assert_eq!(compare("1.2.10", "1.2.9"), std::cmp::Ordering::Greater);
        assert_eq!(compare("045", "45"), std::cmp::Ordering::Equal);
        assert_eq!(increment("45"), "46");
        assert_eq!(increment("1.2.9"), "1.2.10");
    }
}
