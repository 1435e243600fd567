//! `flightdeck init`: decide the CI, ask `init` for the files, write them
//! (never over an existing file without `--force`).

use super::{Invocation, Report};
use crate::ci::Platform;
use crate::cli::InitArgs;
use crate::error::Error;
use crate::init::{self, Ci};

/// `ci_flag`: the CI named by `--ci` (None for auto).
pub(super) fn run(
    a: &InitArgs,
    ci_flag: Option<Platform>,
    inv: &Invocation<'_>,
    report: &mut Report,
) -> Result<(), Error> {
    let s = inv.settings;
    let ci = ci_flag
        .map(|p| {
            Ci::from_platform(p).ok_or_else(|| {
                Error::input("init writes a file for --ci github, gitlab or bitrise, not none")
            })
        })
        .transpose()?
        .or_else(|| Ci::detect(&a.dir))
        .unwrap_or(Ci::GitHub);
    let starter = init::starter(&a.dir, a.bundle_id.clone().or(s.bundle_id.clone()));
    let files = init::files(ci, &starter);
    let existing: Vec<String> = files
        .iter()
        .filter(|f| a.dir.join(&f.path).exists())
        .map(|f| f.path.display().to_string())
        .collect();
    if !a.force && !existing.is_empty() {
        return Err(Error::input(format!(
            "{} already exists; nothing was written",
            existing.join(" and ")
        ))
        .with_hint("pass --force to overwrite, or merge the starter by hand (see `flightdeck init --help`)"));
    }
    let mut text = String::new();
    for f in &files {
        let path = a.dir.join(&f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::io("create", parent.display(), e))?;
        }
        std::fs::write(&path, &f.contents).map_err(|e| Error::io("write", path.display(), e))?;
        text.push_str(&format!("wrote {}\n", f.path.display()));
    }
    match &starter.artifact {
        Some(p) => text.push_str(&format!("the pipeline uploads {p}\n")),
        None => text.push_str("no .ipa or .pkg found: set upload.file in flightdeck.yml\n"),
    }
    text.push_str("next: set the secrets, then run `flightdeck doctor`\n");
    report.text = Some(text);
    report.data = Some(serde_json::json!({
        "ci": ci.file(),
        "files": files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>(),
        "artifact": starter.artifact,
        "bundle-id": starter.bundle_id,
    }));
    Ok(())
}
