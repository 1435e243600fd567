//! What to Test notes kept as files, in Xcode Cloud's layout:
//! `TestFlight/WhatToTest.<locale>.txt`, one localization per file. Teams
//! moving from Xcode Cloud keep these files; flightdeck reads them when no
//! notes are configured (or from `--whats-new-dir` / `whats-new: { dir }`).

use crate::error::Error;
use std::collections::BTreeMap;
use std::path::Path;

/// Apple's limit for `whatsNew`, in characters.
pub const MAX_WHATS_NEW_CHARS: usize = 4000;

/// The locale of a `WhatToTest.<locale>.txt` file name, if it is one.
pub fn locale_of(file_name: &str) -> Option<&str> {
    let locale = file_name
        .strip_prefix("WhatToTest.")?
        .strip_suffix(".txt")?;
    let ok = !locale.is_empty()
        && locale
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some(locale)
}

/// locale -> text for every note file in `dir`. A missing directory is no
/// notes when `required` is false (Xcode Cloud's default location), an input
/// error when it was named.
pub fn read_dir(dir: &Path, required: bool) -> Result<BTreeMap<String, String>, Error> {
    let mut out = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(out),
        Err(e) => {
            return Err(Error::read("the What to Test directory", dir.display(), &e)
                .with_hint("it holds WhatToTest.<locale>.txt files, e.g. WhatToTest.en-US.txt"));
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(locale) = locale_of(&name) else {
            continue;
        };
        let path = entry.path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| Error::read("a What to Test file", path.display(), &e))?;
        out.insert(locale.to_string(), text.trim_end().to_string());
    }
    if required && out.is_empty() {
        return Err(Error::input(format!(
            "{} holds no WhatToTest.<locale>.txt file",
            dir.display()
        ))
        .with_hint(
            "name the files like Xcode Cloud does: WhatToTest.en-US.txt, WhatToTest.de-DE.txt",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_file_names() {
        assert_eq!(locale_of("WhatToTest.en-US.txt"), Some("en-US"));
        assert_eq!(locale_of("WhatToTest.zh-Hans.txt"), Some("zh-Hans"));
        assert_eq!(locale_of("WhatToTest..txt"), None);
        assert_eq!(locale_of("WhatToTest.en-US.md"), None);
        assert_eq!(locale_of("Notes.en-US.txt"), None);
    }

    #[test]
    fn a_directory_of_notes_is_read_and_a_missing_default_is_none() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("WhatToTest.en-US.txt"), "Try the login\n").unwrap();
        std::fs::write(d.path().join("WhatToTest.de-DE.txt"), "Anmeldung testen").unwrap();
        std::fs::write(d.path().join("README.md"), "ignored").unwrap();
        let n = read_dir(d.path(), true).unwrap();
        assert_eq!(n.len(), 2);
        assert_eq!(n["en-US"], "Try the login");
        let missing = d.path().join("nope");
        assert!(read_dir(&missing, false).unwrap().is_empty());
        assert_eq!(read_dir(&missing, true).unwrap_err().exit_code(), 2);
    }
}
