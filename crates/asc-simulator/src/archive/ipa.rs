//! An `.ipa` is a zip holding exactly one `Payload/<Name>.app/`, whose
//! `Info.plist` (XML or binary) describes the app.

use super::{Found, Platform};
use std::io::Read;
use std::path::Path;

/// An Info.plist is a few kilobytes; a bigger one is not read.
const PLIST_LIMIT: u64 = 8 << 20;

pub(super) fn read(path: &Path) -> Result<Found, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open the file: {e}"))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| format!("not a zip archive: {e}"))?;
    let plists: Vec<String> = archive
        .file_names()
        .filter_map(|n| n.ok())
        .filter(|n| is_app_info_plist(n))
        .map(|n| n.into_owned())
        .collect();
    let entry_name = match &plists[..] {
        [only] => only.clone(),
        [] => return Err("no Payload/<Name>.app/Info.plist in the .ipa".into()),
        several => return Err(format!("several apps in Payload/: {}", several.join(", "))),
    };
    let entry = archive
        .by_name(&entry_name)
        .map_err(|e| format!("{entry_name}: {e}"))?;
    if entry.size() > PLIST_LIMIT {
        return Err(format!("{entry_name} is {} bytes", entry.size()));
    }
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .take(PLIST_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{entry_name}: {e}"))?;
    from_info_plist(&bytes).map_err(|e| format!("{entry_name}: {e}"))
}

/// `Payload/<Name>.app/Info.plist`, and not a nested bundle's.
fn is_app_info_plist(entry: &str) -> bool {
    let mut parts = entry.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("Payload"), Some(app), Some("Info.plist"), None) if app.ends_with(".app")
    )
}

fn from_info_plist(bytes: &[u8]) -> Result<Found, String> {
    let value = plist::Value::from_reader(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a property list: {e}"))?;
    let dict = value
        .as_dictionary()
        .ok_or("the property list is not a dictionary")?;
    let text = |key: &str| {
        dict.get(key)
            .and_then(plist::Value::as_string)
            .map(String::from)
    };
    Ok(Found {
        bundle_id: text("CFBundleIdentifier"),
        version: text("CFBundleShortVersionString"),
        build_number: text("CFBundleVersion"),
        platform: platform(dict),
        uses_non_exempt_encryption: dict
            .get("ITSAppUsesNonExemptEncryption")
            .and_then(plist::Value::as_boolean),
    })
}

/// `DTPlatformName` when it names a known SDK, else the `UIDeviceFamily`
/// list (3 is Apple TV, 7 is Vision Pro, anything else an iOS device).
fn platform(dict: &plist::Dictionary) -> Option<Platform> {
    let sdk = dict
        .get("DTPlatformName")
        .and_then(plist::Value::as_string)
        .map(str::to_ascii_lowercase);
    let by_sdk = match sdk.as_deref() {
        Some("iphoneos" | "iphonesimulator") => Some(Platform::Ios),
        Some("appletvos" | "appletvsimulator") => Some(Platform::TvOs),
        Some("xros" | "xrsimulator" | "visionos") => Some(Platform::VisionOs),
        Some("macosx") => Some(Platform::MacOs),
        _ => None,
    };
    if by_sdk.is_some() {
        return by_sdk;
    }
    let families: Vec<u64> = dict
        .get("UIDeviceFamily")
        .and_then(plist::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(plist::Value::as_unsigned_integer)
        .collect();
    if families.is_empty() {
        None
    } else if families.contains(&3) {
        Some(Platform::TvOs)
    } else if families.contains(&7) {
        Some(Platform::VisionOs)
    } else {
        Some(Platform::Ios)
    }
}
