//! Reporting in one place: every step result becomes CI outputs and a summary
//! row here, and every command's end becomes the outcome (JSON, Markdown
//! summary, annotations, stdout) here, so a value is named and worded the same
//! for a one-shot command and for the same step of `run`.

use crate::ci::{self, Annotation, Level, Reporter};
use crate::cli::Output;
use crate::config::duration;
use crate::error::Error;
use crate::feedback::Pulled;
use crate::outcome::{Outcome, Row};
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
    if !u.build_upload_id.is_empty() {
        ci.set_output("build-upload-id", &u.build_upload_id);
    }
    if let Some(b) = &u.build_id {
        ci.set_output("build-id", b);
    }
    ci.set_output("app-id", &u.app_id);
    ci.set_output("version", &u.version);
    ci.set_output("build-number", &u.build_number);
    ci.set_output("platform", u.platform.as_str());
    ci.set_output("bytes-uploaded", u.bytes_uploaded);
    ci.set_output("upload-seconds", format!("{:.1}", u.upload_seconds));
    report.row("upload", upload_row(u));
}

fn upload_row(u: &Uploaded) -> String {
    if u.reused {
        return format!(
            "{} {} ({}) already uploaded by an earlier run: reusing build upload {}",
            u.version, u.build_number, u.platform, u.build_upload_id
        );
    }
    if u.skipped && u.build_upload_id.is_empty() {
        return format!(
            "{} {} ({}) already exists as build {}",
            u.version,
            u.build_number,
            u.platform,
            u.build_id.as_deref().unwrap_or_default()
        );
    }
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
    use crate::testflight::{Change, NoteChange};
    ci.set_output("build-id", &d.build_id);
    ci.set_output("build-url", &d.build_url);
    let names: Vec<&str> = d.groups.iter().map(|g| g.name.as_str()).collect();
    ci.set_output("beta-groups", names.join(","));
    if let Some(r) = &d.review {
        ci.set_output("beta-review-state", &r.state);
    }
    let already = |c: Change| {
        if c == Change::Already {
            " (already)"
        } else {
            ""
        }
    };
    let mut parts = vec![format!("build {}", d.build_id)];
    if !d.groups.is_empty() {
        let g: Vec<String> = d
            .groups
            .iter()
            .map(|g| format!("{}{}", g.name, already(g.change)))
            .collect();
        parts.push(format!("groups: {}", g.join(", ")));
    }
    if !d.notes.is_empty() {
        let n: Vec<String> = d
            .notes
            .iter()
            .map(|n| match n.change {
                NoteChange::Unchanged => format!("{} (unchanged)", n.locale),
                _ => n.locale.clone(),
            })
            .collect();
        parts.push(format!("notes: {}", n.join(", ")));
    }
    if let Some(r) = &d.review {
        let verb = match r.change {
            Change::Done => "submitted for review",
            Change::Already => "review already submitted",
        };
        parts.push(format!("{verb}: {}", r.state));
    }
    match d.notified {
        Some(Change::Done) => parts.push("testers notified".into()),
        Some(Change::Already) => parts.push("testers already notified".into()),
        None => {}
    }
    parts.push(d.build_url.clone());
    report.row("testflight", parts.join("; "));
}

pub fn feedback(ci: &Reporter, report: &mut Report, p: &Pulled) {
    ci.set_output("feedback-count", p.count);
    ci.set_output("feedback-dir", p.dir.display());
    report.row(
        "feedback",
        format!(
            "{} feedback item(s) ({} crash, {} screenshot) in {}",
            p.count,
            p.crashes,
            p.screenshots,
            p.dir.display()
        ),
    );
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
    // The schema is a document, not a run: no step summary for it.
    let md = if command == "schema" {
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
