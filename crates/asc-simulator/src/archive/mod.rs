//! The simulator's own reading of an uploaded app archive, as App Store
//! Connect's processing reads it: bundle id, both version strings, platform
//! and the export-compliance answer. It shares no code with flightdeck's
//! artifact inspection on purpose: if the product misreads an archive, the
//! simulator disagrees and a test fails, instead of both sides agreeing on
//! the same mistake.

mod ipa;
mod pkg;
mod xml;

use std::path::Path;

/// Apple's `Platform` values for builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Ios,
    MacOs,
    TvOs,
    VisionOs,
}

impl Platform {
    /// The spelling in Apple's API (`IOS`, `MAC_OS`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "IOS",
            Platform::MacOs => "MAC_OS",
            Platform::TvOs => "TV_OS",
            Platform::VisionOs => "VISION_OS",
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What processing learns from the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    pub bundle_id: String,
    /// CFBundleShortVersionString
    pub version: String,
    /// CFBundleVersion
    pub build_number: String,
    pub platform: Platform,
    /// ITSAppUsesNonExemptEncryption, when the archive answers it.
    pub uses_non_exempt_encryption: Option<bool>,
}

/// The fields as found, before checking that the required ones are there.
#[derive(Debug, Default)]
struct Found {
    bundle_id: Option<String>,
    version: Option<String>,
    build_number: Option<String>,
    platform: Option<Platform>,
    uses_non_exempt_encryption: Option<bool>,
}

/// Read the archive at `path`; its kind comes from the file name the upload
/// declared (`.ipa` or `.pkg`). The error says what is wrong, for the
/// upload's `INVALID_BINARY` state error.
pub fn read(path: &Path) -> Result<AppInfo, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let (found, default_platform) = if name.ends_with(".ipa") {
        (ipa::read(path)?, Platform::Ios)
    } else if name.ends_with(".pkg") {
        (pkg::read(path)?, Platform::MacOs)
    } else {
        return Err(format!("'{name}' is neither an .ipa nor a .pkg"));
    };
    let required = |v: Option<String>, key: &str| match v {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(format!("the app's {key} is missing")),
    };
    Ok(AppInfo {
        bundle_id: required(found.bundle_id, "CFBundleIdentifier")?,
        version: required(found.version, "CFBundleShortVersionString")?,
        build_number: required(found.build_number, "CFBundleVersion")?,
        platform: found.platform.unwrap_or(default_platform),
        uses_non_exempt_encryption: found.uses_non_exempt_encryption,
    })
}

#[cfg(test)]
mod tests;
