//! Inspecting the artifact before anything is created on App Store Connect:
//! bundle id, versions, platform and export-compliance answer, from the
//! `.ipa`'s `Payload/*.app/Info.plist` or the `.pkg`'s XAR table of contents.

mod ipa;
pub mod limits;
pub mod nasty;
mod pkg;

use crate::api::models::Platform;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Ipa,
    Pkg,
}

impl Kind {
    /// The `uti` App Store Connect expects for the file.
    pub fn uti(self) -> &'static str {
        match self {
            Kind::Ipa => "com.apple.ipa",
            Kind::Pkg => "com.apple.pkg",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    pub path: PathBuf,
    pub file_name: String,
    pub size: u64,
    pub kind: Kind,
    pub bundle_id: String,
    /// CFBundleShortVersionString
    pub version: String,
    /// CFBundleVersion
    pub build_number: String,
    pub platform: Platform,
    /// ITSAppUsesNonExemptEncryption, when the Info.plist answers it.
    pub uses_non_exempt_encryption: Option<bool>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArtifactError {
    #[error("{0}: no such file")]
    Missing(String),
    #[error("{0}: cannot read the file: {1}")]
    Unreadable(String, String),
    #[error("{0}: the file is empty")]
    Empty(String),
    #[error("{0}: expected an .ipa or .pkg file")]
    UnknownKind(String),
    #[error("{0}: not a valid .ipa (zip archive): {1}")]
    NotZip(String, String),
    #[error("{0}: no Payload/<Name>.app/Info.plist inside the .ipa")]
    NoInfoPlist(String),
    #[error("{0}: the .ipa holds several apps under Payload/: {1}")]
    SeveralApps(String, String),
    #[error("{0}: Info.plist cannot be read: {1}")]
    BadPlist(String, String),
    #[error("{0}: Info.plist has no {1}")]
    MissingKey(String, &'static str),
    #[error("{0}: not a valid .pkg (xar archive): {1}")]
    NotXar(String, String),
    #[error("{0}: refused: {1}")]
    TooLarge(String, String),
    #[error("{0}: damaged: {1}")]
    Corrupt(String, String),
    #[error("{0}: the archive holds an entry with an unsafe path: {1}")]
    UnsafeEntry(String, String),
    #[error(
        "{0}: the .pkg has no PackageInfo or Distribution with the app's bundle id and version"
    )]
    NoPackageInfo(String),
}

impl ArtifactError {
    pub fn hint(&self) -> &'static str {
        match self {
            ArtifactError::Missing(_) => {
                "check the path; in CI, check that the build step wrote the artifact where this step looks"
            }
            ArtifactError::UnknownKind(_) => {
                "upload the .ipa produced by `xcodebuild -exportArchive` (iOS, tvOS, visionOS) or the .pkg (macOS)"
            }
            ArtifactError::NoPackageInfo(_) => {
                "pass --bundle-id, --version and --build-number for this .pkg"
            }
            ArtifactError::TooLarge(..) | ArtifactError::UnsafeEntry(..) => {
                "this is not an archive Xcode exports; export the archive again and check where the file came from"
            }
            _ => "export the archive again; a truncated or renamed file is the usual cause",
        }
    }
}

impl From<ArtifactError> for crate::error::Error {
    fn from(e: ArtifactError) -> Self {
        let hint = e.hint();
        crate::error::Error::input(e.to_string()).with_hint(hint)
    }
}

/// What the Info.plist (or PackageInfo) says.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct BundleInfo {
    pub bundle_id: Option<String>,
    pub version: Option<String>,
    pub build_number: Option<String>,
    pub platform: Option<Platform>,
    pub uses_non_exempt_encryption: Option<bool>,
}

/// Open and read the artifact's metadata.
pub fn inspect(path: &Path) -> Result<Artifact, ArtifactError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ArtifactError::Missing(shown.clone()),
        _ => ArtifactError::Unreadable(shown.clone(), e.to_string()),
    })?;
    if meta.is_dir() {
        return Err(ArtifactError::UnknownKind(shown));
    }
    if meta.len() == 0 {
        return Err(ArtifactError::Empty(shown));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let kind = match ext.as_deref() {
        Some("ipa") => Kind::Ipa,
        Some("pkg") => Kind::Pkg,
        _ => return Err(ArtifactError::UnknownKind(shown)),
    };
    let file = std::fs::File::open(path)
        .map_err(|e| ArtifactError::Unreadable(shown.clone(), e.to_string()))?;
    let info = read_info(kind, std::io::BufReader::new(file), meta.len(), &shown)?;
    let require = |v: Option<String>, key: &'static str| -> Result<String, ArtifactError> {
        v.filter(|s| !s.trim().is_empty())
            .ok_or_else(|| match kind {
                Kind::Ipa => ArtifactError::MissingKey(shown.clone(), key),
                Kind::Pkg => ArtifactError::NoPackageInfo(shown.clone()),
            })
    };
    Ok(Artifact {
        path: path.to_path_buf(),
        file_name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size: meta.len(),
        kind,
        bundle_id: require(info.bundle_id, "CFBundleIdentifier")?,
        version: require(info.version, "CFBundleShortVersionString")?,
        build_number: require(info.build_number, "CFBundleVersion")?,
        platform: info.platform.unwrap_or(match kind {
            Kind::Ipa => Platform::Ios,
            Kind::Pkg => Platform::MacOs,
        }),
        uses_non_exempt_encryption: info.uses_non_exempt_encryption,
    })
}

/// Read the metadata of an archive of `kind` from any seekable reader of
/// `len` bytes (a file, or bytes in memory for the fuzz targets).
pub(crate) fn read_info<R: std::io::Read + std::io::Seek>(
    kind: Kind,
    r: R,
    len: u64,
    shown: &str,
) -> Result<BundleInfo, ArtifactError> {
    match kind {
        Kind::Ipa => ipa::read(r, shown),
        Kind::Pkg => pkg::read(r, len, shown),
    }
}

/// Read an in-memory archive the way `inspect` reads a file, for fuzzing and
/// property tests: every input must end in `Ok` or an `ArtifactError`.
pub fn probe(kind: Kind, bytes: &[u8]) -> Result<(), ArtifactError> {
    read_info(
        kind,
        std::io::Cursor::new(bytes),
        bytes.len() as u64,
        "input",
    )
    .map(|_| ())
}

/// Platform from `DTPlatformName`, else `UIDeviceFamily` (3 = tv, 7 = vision).
pub(crate) fn platform_from_plist(dict: &plist::Dictionary) -> Option<Platform> {
    if let Some(name) = dict.get("DTPlatformName").and_then(|v| v.as_string()) {
        match name.to_ascii_lowercase().as_str() {
            "iphoneos" | "iphonesimulator" => return Some(Platform::Ios),
            "appletvos" | "appletvsimulator" => return Some(Platform::TvOs),
            "xros" | "xrsimulator" | "visionos" => return Some(Platform::VisionOs),
            "macosx" => return Some(Platform::MacOs),
            _ => {}
        }
    }
    let families: Vec<u64> = dict
        .get("UIDeviceFamily")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_unsigned_integer()).collect())
        .unwrap_or_default();
    if families.contains(&3) {
        Some(Platform::TvOs)
    } else if families.contains(&7) {
        Some(Platform::VisionOs)
    } else if families.is_empty() {
        None
    } else {
        Some(Platform::Ios)
    }
}

/// Read the keys flightdeck needs from an Info.plist (binary or XML).
pub(crate) fn bundle_info_from_plist(
    bytes: &[u8],
    shown: &str,
) -> Result<BundleInfo, ArtifactError> {
    limits::check_plist_shape(bytes, shown)?;
    let dict: plist::Dictionary = plist::from_bytes(bytes)
        .map_err(|e| ArtifactError::BadPlist(shown.to_string(), e.to_string()))?;
    let s = |k: &str| dict.get(k).and_then(|v| v.as_string()).map(str::to_string);
    Ok(BundleInfo {
        bundle_id: s("CFBundleIdentifier"),
        version: s("CFBundleShortVersionString"),
        build_number: s("CFBundleVersion"),
        platform: platform_from_plist(&dict),
        uses_non_exempt_encryption: dict
            .get("ITSAppUsesNonExemptEncryption")
            .and_then(|v| v.as_boolean()),
    })
}

#[cfg(test)]
mod tests;
