//! `.ipa`: a zip whose `Payload/<Name>.app/Info.plist` describes the app.

use super::{ArtifactError, BundleInfo, bundle_info_from_plist};
use std::io::Read;
use std::path::Path;

/// Info.plist files are small; refuse anything that claims to be huge.
const MAX_PLIST: u64 = 8 * 1024 * 1024;

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

pub fn read(path: &Path, shown: &str) -> Result<BundleInfo, ArtifactError> {
    let file = std::fs::File::open(path)
        .map_err(|e| ArtifactError::Unreadable(shown.into(), e.to_string()))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| ArtifactError::NotZip(shown.into(), e.to_string()))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok())
        .map(|n| n.into_owned())
        .collect();
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
        return Err(ArtifactError::BadPlist(
            shown.into(),
            format!("{name} is {} bytes", entry.size()),
        ));
    }
    let mut bytes = Vec::new();
    entry
        .take(MAX_PLIST)
        .read_to_end(&mut bytes)
        .map_err(|e| ArtifactError::NotZip(shown.into(), e.to_string()))?;
    bundle_info_from_plist(&bytes, &format!("{shown} ({name})"))
}
