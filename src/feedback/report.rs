//! What a pull reports, as data and text: the summary table's rows (newest
//! first: when, build, device, OS, the tester's comment, links to the saved
//! files), `feedback.md` and `feedback.json` in DIR, the one-line result, and
//! the crash gate's findings. The command or pipeline layer prints them.

use super::index::{Entry, Index};
use super::{Kind, Pulled};
use serde::Serialize;
use std::path::Path;

/// Summary tables show at most this many rows (step summaries have a size limit).
pub const MAX_ROWS: usize = 50;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    pub kind: Kind,
    pub when: String,
    pub build: String,
    pub device: String,
    pub os: String,
    pub comment: String,
    /// Paths of the saved files, relative to the directory the links are for.
    pub files: Vec<String>,
}

/// Rows for `entries` (already newest first); file paths are prefixed with `base`.
pub fn rows<'a>(entries: impl IntoIterator<Item = &'a Entry>, base: &str) -> Vec<SummaryRow> {
    entries
        .into_iter()
        .map(|e| SummaryRow {
            kind: e.kind,
            when: e.created.clone().unwrap_or_default(),
            build: e
                .build
                .clone()
                .or_else(|| e.build_id.clone())
                .unwrap_or_default(),
            device: e.device_model.clone().unwrap_or_default(),
            os: e.os_version.clone().unwrap_or_default(),
            comment: e.comment.clone().unwrap_or_default(),
            files: e
                .files
                .iter()
                .filter(|f| f.name != "submission.json")
                .map(|f| join(base, &format!("{}/{}", e.dir, f.name)))
                .collect(),
        })
        .collect()
}

fn join(base: &str, rel: &str) -> String {
    if base.is_empty() || base == "." {
        rel.to_string()
    } else {
        format!("{}/{rel}", base.trim_end_matches('/'))
    }
}

/// Markdown-safe cell text: no pipes, no newlines, no HTML.
pub fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace(['\r', '\n'], " ")
}

const HEADER: &str =
    "| when | kind | build | device | OS | comment | files |\n|---|---|---|---|---|---|---|\n";

fn row_md(r: &SummaryRow) -> String {
    let links: Vec<String> = r
        .files
        .iter()
        .map(|f| {
            let name = f.rsplit('/').next().unwrap_or(f);
            format!("[{}]({})", cell(name), f.replace(' ', "%20"))
        })
        .collect();
    format!(
        "| {} | {} | {} | {} | {} | {} | {} |\n",
        cell(&r.when),
        match r.kind {
            Kind::Crash => "💥 crash",
            Kind::Screenshot => "🖼️ screenshot",
        },
        cell(&r.build),
        cell(&r.device),
        cell(&r.os),
        cell(&r.comment),
        links.join(" ")
    )
}

/// The table, at most `MAX_ROWS` rows, with a note of the rest.
pub fn table(rows: &[SummaryRow]) -> String {
    let mut md = String::from(HEADER);
    for r in rows.iter().take(MAX_ROWS) {
        md.push_str(&row_md(r));
    }
    if rows.len() > MAX_ROWS {
        md.push_str(&format!(
            "\n…and {} more in feedback.md\n",
            rows.len() - MAX_ROWS
        ));
    }
    md
}

/// The step summary section for a pull (links relative to the job's workspace).
pub fn summary_markdown(p: &Pulled) -> String {
    let base = p.dir.to_string_lossy();
    let mut md = format!(
        "#### TestFlight feedback: {} crash, {} screenshot ({} new)\n\n",
        p.crashes,
        p.screenshots,
        p.new_ids.len()
    );
    if p.items.is_empty() {
        md.push_str("No feedback in scope.\n");
    } else {
        md.push_str(&table(&rows(&p.items, &base)));
    }
    md
}

/// `feedback.md`: everything DIR holds, newest first, links relative to DIR.
pub fn feedback_md(index: &Index) -> String {
    let all = index.newest_first();
    let crashes = all.iter().filter(|e| e.kind == Kind::Crash).count();
    let mut md = format!(
        "# TestFlight feedback\n\n{} submission(s): {} crash, {} screenshot.\n\n",
        all.len(),
        crashes,
        all.len() - crashes
    );
    // Every row here (the file is the full record); `table` caps only summaries.
    md.push_str(HEADER);
    for r in rows(all.iter().copied(), "") {
        md.push_str(&row_md(&r));
    }
    md
}

/// `feedback.json`: the same as data.
pub fn feedback_json(index: &Index) -> serde_json::Value {
    let all = index.newest_first();
    serde_json::json!({
        "count": all.len(),
        "crashes": all.iter().filter(|e| e.kind == Kind::Crash).count(),
        "screenshots": all.iter().filter(|e| e.kind == Kind::Screenshot).count(),
        "submissions": all,
    })
}

/// Write `feedback.md` and `feedback.json` into `out` (only when they change).
pub fn write_files(out: &Path, index: &Index) -> std::io::Result<()> {
    super::fetch::write_if_changed(&out.join("feedback.md"), feedback_md(index).as_bytes())?;
    let json = serde_json::to_string_pretty(&feedback_json(index)).unwrap_or_default();
    super::fetch::write_if_changed(&out.join("feedback.json"), json.as_bytes())?;
    Ok(())
}

/// The crash gate: one message per crash not in DIR's index before this run.
pub fn gate_findings(p: &Pulled) -> Vec<String> {
    p.new_crashes()
        .iter()
        .map(|e| {
            format!(
                "new TestFlight crash {} on {} ({}), build {}: {}{}",
                e.id,
                e.device_model.as_deref().unwrap_or("unknown device"),
                e.os_version.as_deref().unwrap_or("unknown OS"),
                e.build
                    .as_deref()
                    .or(e.build_id.as_deref())
                    .unwrap_or("unknown"),
                e.signature_title.as_deref().unwrap_or("no crash log"),
                e.comment
                    .as_deref()
                    .map(|c| format!(" — \"{}\"", c.replace(['\r', '\n'], " ")))
                    .unwrap_or_default()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_the_table_or_inject_html() {
        assert_eq!(cell("a | b\nc <!-- x -->"), "a \\| b c &lt;!-- x --&gt;");
    }

    #[test]
    fn tables_are_capped_with_a_note() {
        let row = SummaryRow {
            kind: Kind::Crash,
            when: "t".into(),
            build: "1".into(),
            device: "d".into(),
            os: "o".into(),
            comment: "c".into(),
            files: vec!["fb/x/crash.log".into()],
        };
        let md = table(&vec![row; MAX_ROWS + 3]);
        assert_eq!(md.matches("[crash.log](fb/x/crash.log)").count(), MAX_ROWS);
        assert!(md.contains("…and 3 more in feedback.md"));
    }
}
