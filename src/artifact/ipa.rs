//! `.ipa`: a zip whose `Payload/<Name>.app/Info.plist` describes the app.
//! Nothing is extracted; only that one entry is inflated, within the caps of
//! `limits`.

use super::limits::{MAX_ENTRIES, MAX_PLIST, human, read_capped};
use super::{ArtifactError, BundleInfo, bundle_info_from_plist};
use std::io::{Read, Seek};

/// The `Payload/X.app/Info.plist` entry names of an archive.
pub fn info_plist_entries<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    names
        .filter(|n| {
            let parts: Vec<&str> = n.split('/').collect();
            parts.len() == 3
                && parts[0] == "Payload"
                && parts[1].ends_with(".app")
                && parts[2] == "Info.plist"
        })
        .map(str::to_string)
        .collect()
}

/// An entry name that would escape an extraction directory: absolute, with
/// a drive letter, or with a `..` component.
pub fn is_unsafe_name(name: &str) -> bool {
    let n = name.replace('\\', "/");
    n.starts_with('/') || n.as_bytes().get(1) == Some(&b':') || n.split('/').any(|c| c == "..")
}

pub fn read<R: Read + Seek>(r: R, shown: &str) -> Result<BundleInfo, ArtifactError> {
    let mut zip =
        zip::ZipArchive::new(r).map_err(|e| ArtifactError::NotZip(shown.into(), e.to_string()))?;
    if zip.len() > MAX_ENTRIES {
        return Err(ArtifactError::TooLarge(
            shown.into(),
            format!("{} zip entries (at most {MAX_ENTRIES})", zip.len()),
        ));
    }
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok())
        .map(|n| n.into_owned())
        .collect();
    if let Some(bad) = names.iter().find(|n| is_unsafe_name(n)) {
        return Err(ArtifactError::UnsafeEntry(shown.into(), format!("`{bad}`")));
    }
    let entries = info_plist_entries(names.iter().map(String::as_str));
    let name = match entries.as_slice() {
        [] => return Err(ArtifactError::NoInfoPlist(shown.into())),
        [one] => one.clone(),
        many => return Err(ArtifactError::SeveralApps(shown.into(), many.join(", "))),
    };
    let entry = zip
        .by_name(&name)
        .map_err(|e| ArtifactError::NotZip(shown.into(), e.to_string()))?;
    if entry.size() > MAX_PLIST {
        return Err(ArtifactError::TooLarge(
            shown.into(),
            format!(
                "{name} declares {} bytes (at most {})",
                entry.size(),
                human(MAX_PLIST)
            ),
        ));
    }
    let bytes = read_capped(entry, MAX_PLIST, shown, &name)?;
    bundle_info_from_plist(&bytes, &format!("{shown} ({name})"))
}

#[cfg(test)]
mod tests {
    use super::is_unsafe_name;

    #[test]
    fn unsafe_entry_names() {
        for bad in [
            "../../etc/passwd",
            "/etc/passwd",
            "Payload/../../x",
            "C:\\x",
            "a\\..\\b",
        ] {
            assert!(is_unsafe_name(bad), "{bad}");
        }
        for ok in ["Payload/A.app/Info.plist", "Payload/..app/x", "a..b/c"] {
            assert!(!is_unsafe_name(ok), "{ok}");
        }
    }
}
