//! Reporting in one place: every step result becomes CI outputs and a summary
//! row here, and every command's end becomes the outcome (JSON, Markdown
//! summary, annotations, stdout) here, so a value is named and worded the same
//! for a one-shot command and for the same step of `run`.

use crate::audience::Reconciled;
use crate::ci::{self, Annotation, Level, Reporter};
use crate::cli::Output;
use crate::config::duration;
use crate::error::Error;
use crate::feedback::Pulled;
use crate::feedback::issues::Filed;
use crate::outcome::{Outcome, Row};
use crate::plan::IssueTarget;
use crate::testflight::Distributed;
use crate::upload::Uploaded;
use crate::wait::Waited;
use std::io::Write;
use std::time::Duration;

/// What a command hands back besides its outputs.
#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub data: Option<serde_json::Value>,
    /// Printed on stdout in text mode (plans, tables, numbers).
    pub text: Option<String>,
}

impl Report {
    /// A summary row.
    pub fn row(&mut self, step: &str, result: impl Into<String>) {
        self.rows.push(Row {
            step: step.into(),
            result: result.into(),
        });
    }
}

pub fn upload(ci: &Reporter, report: &mut Report, u: &Uploaded) {
    ci.set_output("build-upload-id", &u.build_upload_id);
    ci.set_output("app-id", &u.app_id);
    ci.set_output("version", &u.version);
    ci.set_output("build-number", &u.build_number);
    ci.set_output("platform", u.platform.as_str());
    ci.set_output("bytes-uploaded", u.bytes_uploaded);
    ci.set_output("upload-seconds", format!("{:.1}", u.upload_seconds));
    report.row("upload", upload_row(u));
}

fn upload_row(u: &Uploaded) -> String {
    if u.skipped {
        return format!(
            "{} {} ({}) already uploaded: build upload {}",
            u.version, u.build_number, u.platform, u.build_upload_id
        );
    }
    let mib = u.bytes_uploaded as f64 / (1024.0 * 1024.0);
    format!(
        "{} {} ({}) as build upload {}: {:.1} MiB in {:.1}s ({:.1} MiB/s){}",
        u.version,
        u.build_number,
        u.platform,
        u.build_upload_id,
        mib,
        u.upload_seconds,
        mib / u.upload_seconds.max(0.001),
        if u.resumed { ", resumed" } else { "" }
    )
}

pub fn wait(ci: &Reporter, report: &mut Report, w: &Waited) {
    if let Some(v) = &w.build_upload_id {
        ci.set_output("build-upload-id", v);
    }
    if let Some(v) = &w.upload_state {
        ci.set_output("upload-state", v);
    }
    if let Some(v) = &w.build_id {
        ci.set_output("build-id", v);
    }
    if let Some(v) = &w.processing_state {
        ci.set_output("processing-state", v);
    }
    ci.set_output("processing-seconds", format!("{:.1}", w.processing_seconds));
    report.row("wait", wait_row(w));
}

fn wait_row(w: &Waited) -> String {
    let secs = |s: f64| duration::format(Duration::from_secs_f64(s));
    let t: Vec<String> = w
        .timeline
        .iter()
        .map(|(state, s)| format!("{state} {}", secs(*s)))
        .collect();
    format!(
        "processed in {} ({}); decided by {}",
        secs(w.processing_seconds),
        t.join(", "),
        w.decided_by
    )
}

pub fn testflight(ci: &Reporter, report: &mut Report, d: &Distributed) {
    ci.set_output("build-id", &d.build_id);
    let mut parts = vec![format!("build {}", d.build_id)];
    if !d.groups_added.is_empty() {
        parts.push(format!("groups: {}", d.groups_added.join(", ")));
    }
    if !d.localizations.is_empty() {
        parts.push(format!("notes: {}", d.localizations.join(", ")));
    }
    if d.submitted_for_review {
        parts.push("submitted for review".into());
    }
    if d.notified {
        parts.push("testers notified".into());
    }
    if let Some(x) = &d.expired {
        // `builds-expired`: how many older builds `expire-previous` expired.
        ci.set_output("builds-expired", x.expired.len());
        let builds: Vec<String> = x
            .expired
            .iter()
            .map(|(id, n)| format!("{n} ({id})"))
            .collect();
        parts.push(match builds.len() {
            0 => "no older build to expire".into(),
            n => format!("expired {n} older build(s): {}", builds.join(", ")),
        });
    }
    report.row("testflight", parts.join("; "));
}

/// An audience plan or apply as a command's result: the plan's text, the
/// summary row and outputs, and the reconcile as data.
pub fn audience_plan(ci: &Reporter, report: &mut Report, rec: &Reconciled) {
    let mut text = rec.plan.render();
    if rec.applied.is_none() {
        text.push_str("plan only: nothing was changed\n");
    }
    report.text = Some(report.text.take().unwrap_or_default() + &text);
    audience(ci, report, rec);
    report.data = serde_json::to_value(rec).ok();
}

/// Set the audience outputs and describe the result in one summary row.
pub fn audience(ci: &Reporter, report: &mut Report, rec: &Reconciled) {
    match rec.public_links.len() {
        0 => {}
        1 => {
            if let Some(u) = rec.public_links.values().next() {
                ci.set_output("public-link", u);
            }
        }
        _ => ci.set_output(
            "public-link",
            serde_json::to_string(&rec.public_links).unwrap_or_default(),
        ),
    }
    let result = match &rec.applied {
        None => format!("plan: {}", audience_plan_row(rec)),
        Some(a) => {
            ci.set_output("testers-added", a.added.len());
            ci.set_output("testers-removed", a.removed.len());
            let mut parts = Vec::new();
            if !a.groups_created.is_empty() {
                parts.push(format!("groups created: {}", a.groups_created.join(", ")));
            }
            if !a.links_changed.is_empty() {
                parts.push(format!("public links set: {}", a.links_changed.join(", ")));
            }
            parts.push(format!(
                "{} tester(s) added, {} removed",
                a.added.len(),
                a.removed.len()
            ));
            if a.already_there > 0 {
                parts.push(format!("{} already there", a.already_there));
            }
            for (g, u) in &rec.public_links {
                parts.push(format!("{g} public link {u}"));
            }
            parts.join("; ")
        }
    };
    report.row("audience", result);
}

/// The first changes of a plan, one per line of the summary cell.
fn audience_plan_row(rec: &Reconciled) -> String {
    if rec.plan.is_empty() {
        return "no changes".into();
    }
    const SHOWN: usize = 20;
    let lines: Vec<String> = rec.plan.changes.iter().map(|c| c.to_string()).collect();
    let mut s = lines
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("<br>");
    if lines.len() > SHOWN {
        s.push_str(&format!("<br>… and {} more", lines.len() - SHOWN));
    }
    for g in &rec.plan.emptied {
        s.push_str(&format!("<br>! {g} would be left with no testers"));
    }
    s
}

/// `testers remove`: `testers-removed` (0 or 1) and what happened.
pub fn tester_removed(ci: &Reporter, report: &mut Report, removed: usize, result: String) {
    ci.set_output("testers-removed", removed);
    report.text = Some(format!("{result}\n"));
    report.row("testers", result);
}

/// A finished pull: its outputs, its warnings and its table in the step summary.
pub fn feedback_pulled(ci: &Reporter, p: &Pulled) {
    ci.set_output("feedback-count", p.count);
    ci.set_output("crash-count", p.crashes);
    ci.set_output("screenshot-count", p.screenshots);
    ci.set_output("feedback-dir", p.dir.display());
    for w in &p.warnings {
        ci.warning(w.clone());
    }
    ci.summary_section(&crate::feedback::report::summary_markdown(p));
}

/// The feedback step's row: what was pulled and, with `--to-issues`, filed.
pub fn feedback(report: &mut Report, p: &Pulled, filed: Option<(&IssueTarget, &Filed)>) {
    let mut line = format!(
        "{} feedback item(s) ({} crash, {} screenshot), {} new, {} file(s) written, in {}",
        p.count,
        p.crashes,
        p.screenshots,
        p.new_ids.len(),
        p.files_written,
        p.dir.display()
    );
    if let Some((target, f)) = filed {
        line.push_str(&format!(
            "; {target}: {} issue(s) opened, {} occurrence(s) added, {} already filed",
            f.opened.len(),
            f.commented,
            f.already
        ));
    }
    report.row("feedback", line);
}

pub fn next_build_number(ci: &Reporter, report: &mut Report, app_id: &str, next: &str) {
    ci.set_output("build-number", next);
    ci.set_output("app-id", app_id);
    report.text = Some(format!("{next}\n"));
    report.data = Some(serde_json::json!({ "next_build_number": next }));
}

pub fn webhook_created(ci: &Reporter, report: &mut Report, id: &str, url: &str) {
    ci.set_output("webhook-id", id);
    report.row("webhooks create", format!("webhook {id} for {url}"));
    report.text = Some(format!("{id}\n"));
}

/// The end of every command: the outcome, its annotations, the step summary,
/// the platform's outputs, the final error line and stdout. Returns the exit code.
pub fn finish(
    command: &str,
    result: Result<(), Error>,
    report: Report,
    reporter: &Reporter,
    output: Output,
    out: &mut (dyn Write + Send),
) -> u8 {
    if let Err(e) = &result {
        annotate_error(reporter, e);
    }
    let outcome = Outcome {
        command: command.into(),
        ok: result.is_ok(),
        exit_code: result.as_ref().err().map(Error::exit_code).unwrap_or(0),
        outputs: reporter.outputs(),
        error: result.as_ref().err().cloned(),
        annotations: reporter.annotations(),
        summary: report.rows,
        data: report.data,
    };
    let json = serde_json::to_string_pretty(&outcome).unwrap_or_default();
    // The schema, completions and man page are documents, not runs: no step summary for them.
    let md = if matches!(command, "schema" | "completions" | "man") {
        String::new()
    } else {
        outcome.markdown()
    };
    reporter.finish(&md, &json);
    if let Err(e) = &result {
        reporter.final_error(&format!("flightdeck {}: {}", outcome.command, e.message));
    }
    match output {
        Output::Json => {
            let _ = writeln!(out, "{}", reporter.redact(&json));
        }
        Output::Text => {
            if let Some(t) = report.text {
                let _ = write!(out, "{}", reporter.redact(&t));
            }
        }
    }
    let _ = out.flush();
    outcome.exit_code
}

/// The error and each related problem as annotations (with file and line when known).
fn annotate_error(reporter: &Reporter, e: &Error) {
    for one in std::iter::once(e).chain(e.related.iter()) {
        let mut text = one.message.clone();
        for d in &one.details {
            text.push_str(&format!("\n{}: {}", d.code, d.message));
        }
        if let Some(h) = &one.hint {
            text.push_str(&format!("\nhint: {h}"));
        }
        reporter.annotate(Annotation::new(Level::Error, text).titled("flightdeck").at(
            one.location.as_deref().map(|l| ci::Location {
                file: l.file.clone(),
                line: l.line,
                column: l.column,
            }),
        ));
    }
}
