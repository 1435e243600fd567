//! GitLab CI: a dotenv report for outputs, collapsible sections, and a Code
//! Quality report for problems located in files (shown in merge requests).

use super::{Annotation, Backend, Level, Paths, env_name};
use std::collections::BTreeMap;
use std::io::{self, Write};

pub struct GitLab {
    paths: Paths,
    outputs: BTreeMap<String, String>,
    sections: Vec<String>,
    counter: usize,
    clock: fn() -> i64,
}

impl GitLab {
    /// Starts this run's reports empty, so a run that fails early (or is
    /// killed) never leaves a previous run's outputs looking current.
    pub fn new(paths: Paths) -> Self {
        Self::with_clock(paths, now)
    }

    /// With a fixed clock, so tests can check the exact section lines.
    pub fn with_clock(paths: Paths, clock: fn() -> i64) -> Self {
        let gl = Self {
            paths,
            outputs: BTreeMap::new(),
            sections: Vec::new(),
            counter: 0,
            clock,
        };
        if let Err(e) = gl.write_dotenv().and_then(|_| gl.write_code_quality(&[])) {
            tracing::warn!("cannot reset the GitLab reports: {e}");
        }
        gl
    }

    /// Rewrite the whole dotenv file: valid at every moment, last value wins.
    fn write_dotenv(&self) -> io::Result<()> {
        if self.paths.gitlab_dotenv.as_os_str().is_empty() {
            return Ok(());
        }
        let tmp = self.paths.gitlab_dotenv.with_extension("env.tmp");
        std::fs::write(&tmp, dotenv(&self.outputs))?;
        std::fs::rename(&tmp, &self.paths.gitlab_dotenv)
    }

    fn write_code_quality(&self, annotations: &[Annotation]) -> io::Result<()> {
        if self.paths.gitlab_codequality.as_os_str().is_empty() {
            return Ok(());
        }
        let report = serde_json::to_string_pretty(&code_quality(annotations))
            .unwrap_or_else(|_| "[]".into());
        std::fs::write(&self.paths.gitlab_codequality, report)
    }
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A section name GitLab accepts (`[a-zA-Z0-9_.-]+`), unique in the job:
/// `flightdeck_<n>_<title in lower case>`.
pub fn section_name(n: usize, title: &str) -> String {
    let slug: String = title
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let slug: String = slug
        .split('_')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("_")
        .chars()
        .take(40)
        .collect();
    if slug.is_empty() {
        format!("flightdeck_{n}")
    } else {
        format!("flightdeck_{n}_{slug}")
    }
}

/// A dotenv value GitLab accepts: one line, and `$` escaped (values are expanded).
pub fn dotenv_value(v: &str) -> String {
    v.replace(['\r', '\n'], " ").replace('$', "$$")
}

/// The dotenv file: `KEY=value` lines only, no blank lines or comments.
pub fn dotenv(outputs: &BTreeMap<String, String>) -> String {
    outputs
        .iter()
        .map(|(k, v)| format!("{}={}\n", env_name(k), dotenv_value(v)))
        .collect()
}

/// Code Quality entries for located annotations.
pub fn code_quality(annotations: &[Annotation]) -> serde_json::Value {
    use sha2::Digest;
    let items: Vec<serde_json::Value> = annotations
        .iter()
        .filter_map(|a| {
            let loc = a.location.as_ref()?;
            let severity = match a.level {
                Level::Error => "major",
                Level::Warning => "minor",
                Level::Notice => "info",
            };
            let fp = hex::encode(sha2::Sha256::digest(format!(
                "{}:{}:{}",
                loc.file, loc.line, a.message
            )));
            Some(serde_json::json!({
                "description": a.message,
                "check_name": a.title.clone().unwrap_or_else(|| "flightdeck".into()),
                "fingerprint": fp,
                "severity": severity,
                "location": {"path": loc.file, "lines": {"begin": loc.line.max(1)}}
            }))
        })
        .collect();
    serde_json::Value::Array(items)
}

impl Backend for GitLab {
    fn mask(&mut self, _out: &mut dyn Write, _value: &str) -> io::Result<()> {
        // GitLab has no runtime masking; the Reporter redacts everything instead.
        Ok(())
    }

    fn annotate(&mut self, out: &mut dyn Write, a: &Annotation) -> io::Result<()> {
        let color = a.level.ansi_color("\x1b[36m");
        let at = a.at_suffix();
        writeln!(
            out,
            "{color}{}\x1b[0m{at}: {}",
            a.level.as_str().to_uppercase(),
            a.message
        )
    }

    fn group_start(&mut self, out: &mut dyn Write, title: &str) -> io::Result<()> {
        self.counter += 1;
        let name = section_name(self.counter, title);
        // A header line must stay one line: the marker needs its `\r\e[0K`.
        let header = title.replace(['\r', '\n'], " ");
        write!(
            out,
            "\x1b[0Ksection_start:{}:{name}[collapsed=true]\r\x1b[0K{header}\n",
            (self.clock)()
        )?;
        self.sections.push(name);
        Ok(())
    }

    fn group_end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        if let Some(name) = self.sections.pop() {
            write!(
                out,
                "\x1b[0Ksection_end:{}:{name}\r\x1b[0K\n",
                (self.clock)()
            )?;
        }
        Ok(())
    }

    fn output(&mut self, _out: &mut dyn Write, name: &str, value: &str) -> io::Result<()> {
        self.outputs.insert(name.to_string(), value.to_string());
        self.write_dotenv()
    }

    fn finish(
        &mut self,
        _out: &mut dyn Write,
        _md: &str,
        annotations: &[Annotation],
        _json: &str,
    ) -> io::Result<()> {
        self.write_dotenv()?;
        self.write_code_quality(annotations)
    }

    fn final_error(&mut self, out: &mut dyn Write, message: &str) -> io::Result<()> {
        writeln!(out, "\x1b[31;1mERROR: {message}\x1b[0m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::Location;
    use crate::ci::tests::Buf;
    use crate::ci::{Platform, Reporter};

    #[test]
    fn sections_are_exact_collapsed_and_nest() {
        let buf = Buf::default();
        let backend = GitLab::with_clock(Paths::default(), || 1_700_000_000);
        let r = Reporter::with_backend(Platform::GitLab, Box::new(backend), Box::new(buf.clone()));
        r.group_start("Step 1/2: upload build/App.ipa");
        r.group_start("doctor: checks");
        r.group_end();
        r.group_end();
        r.group_start("\u{1F680}");
        r.group_end();
        assert_eq!(
            buf.text(),
            "\x1b[0Ksection_start:1700000000:flightdeck_1_step_1_2_upload_build_app.ipa[collapsed=true]\r\x1b[0KStep 1/2: upload build/App.ipa\n\
             \x1b[0Ksection_start:1700000000:flightdeck_2_doctor_checks[collapsed=true]\r\x1b[0Kdoctor: checks\n\
             \x1b[0Ksection_end:1700000000:flightdeck_2_doctor_checks\r\x1b[0K\n\
             \x1b[0Ksection_end:1700000000:flightdeck_1_step_1_2_upload_build_app.ipa\r\x1b[0K\n\
             \x1b[0Ksection_start:1700000000:flightdeck_3[collapsed=true]\r\x1b[0K\u{1F680}\n\
             \x1b[0Ksection_end:1700000000:flightdeck_3\r\x1b[0K\n"
        );
        for name in ["flightdeck_1_step_1_2_upload_build_app.ipa", "flightdeck_3"] {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            );
        }
    }

    #[test]
    fn dotenv_is_strict_one_line_per_key() {
        let mut o = BTreeMap::new();
        o.insert("build-id".to_string(), "a\nb".to_string());
        o.insert("version".to_string(), "1.0 $HOME".to_string());
        assert_eq!(
            dotenv(&o),
            "FLIGHTDECK_BUILD_ID=a b\nFLIGHTDECK_VERSION=1.0 $$HOME\n"
        );
    }

    #[test]
    fn a_new_run_starts_with_empty_reports() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            gitlab_dotenv: dir.path().join("flightdeck.env"),
            gitlab_codequality: dir.path().join("gl-code-quality-report.json"),
            ..Paths::default()
        };
        std::fs::write(&paths.gitlab_dotenv, "FLIGHTDECK_BUILD_UPLOAD_ID=old\n").unwrap();
        std::fs::write(&paths.gitlab_codequality, "[{\"old\":1}]").unwrap();
        let _r = Reporter::new(Platform::GitLab, paths.clone(), Box::new(Buf::default()));
        assert_eq!(std::fs::read_to_string(&paths.gitlab_dotenv).unwrap(), "");
        assert_eq!(
            std::fs::read_to_string(&paths.gitlab_codequality).unwrap(),
            "[]"
        );
    }

    #[test]
    fn writes_dotenv_sections_and_code_quality() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            gitlab_dotenv: dir.path().join("flightdeck.env"),
            gitlab_codequality: dir.path().join("gl-code-quality-report.json"),
            ..Paths::default()
        };
        let buf = Buf::default();
        let r = Reporter::new(Platform::GitLab, paths, Box::new(buf.clone()));
        r.group_start("Upload");
        r.set_output("build-upload-id", "u1");
        r.set_output("build-upload-id", "u2");
        r.annotate(
            Annotation::new(Level::Error, "unknown key").at(Some(Location {
                file: "flightdeck.yml".into(),
                line: 3,
                column: 1,
            })),
        );
        r.finish("", "{}");
        let log = buf.text();
        assert!(
            log.contains("\x1b[0Ksection_start:")
                && log.contains(":flightdeck_1_upload[collapsed=true]\r\x1b[0KUpload\n"),
            "{log:?}"
        );
        assert!(
            log.contains("\x1b[0Ksection_end:") && log.contains(":flightdeck_1_upload\r\x1b[0K\n")
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("flightdeck.env")).unwrap(),
            "FLIGHTDECK_BUILD_UPLOAD_ID=u2\n"
        );
        let cq: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("gl-code-quality-report.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(cq[0]["location"]["path"], "flightdeck.yml");
        assert_eq!(cq[0]["location"]["lines"]["begin"], 3);
        assert_eq!(cq[0]["severity"], "major");
        assert_eq!(cq[0]["fingerprint"].as_str().unwrap().len(), 64);
    }
}
