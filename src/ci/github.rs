//! GitHub Actions: workflow commands, `$GITHUB_OUTPUT` heredocs with a random
//! delimiter, `$GITHUB_STEP_SUMMARY` Markdown.

use super::{Annotation, Backend, Paths};
use std::fs::OpenOptions;
use std::io::{self, Write};

pub struct GitHub {
    paths: Paths,
    warned_no_output_file: bool,
}

impl GitHub {
    pub fn new(paths: Paths) -> Self {
        Self {
            paths,
            warned_no_output_file: false,
        }
    }
}

/// Escape command data: `%`, CR, LF.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escape a command property: data escapes plus `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One `NAME<<DELIM` heredoc entry for `$GITHUB_OUTPUT`; the delimiter is
/// random and never occurs in the value.
pub fn heredoc(name: &str, value: &str) -> String {
    use rand::RngCore;
    loop {
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        let delim = format!("ghadelimiter_{}", hex::encode(b));
        if !value.contains(&delim) && !name.contains(&delim) {
            return format!("{name}<<{delim}\n{value}\n{delim}\n");
        }
    }
}

fn append(path: &std::path::Path, text: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(text.as_bytes())
}

impl Backend for GitHub {
    fn mask(&mut self, out: &mut dyn Write, value: &str) -> io::Result<()> {
        writeln!(out, "::add-mask::{}", escape_data(value))
    }

    fn annotate(&mut self, out: &mut dyn Write, a: &Annotation) -> io::Result<()> {
        let mut props = Vec::new();
        if let Some(t) = &a.title {
            props.push(format!("title={}", escape_property(t)));
        }
        if let Some(loc) = &a.location {
            props.push(format!("file={}", escape_property(&loc.file)));
            if loc.line > 0 {
                props.push(format!("line={}", loc.line));
                if loc.column > 0 {
                    props.push(format!("col={}", loc.column));
                }
            }
        }
        let props = if props.is_empty() {
            String::new()
        } else {
            format!(" {}", props.join(","))
        };
        let msg: String = a.message.chars().take(4000).collect();
        writeln!(out, "::{}{props}::{}", a.level.as_str(), escape_data(&msg))
    }

    fn group_start(&mut self, out: &mut dyn Write, title: &str) -> io::Result<()> {
        writeln!(out, "::group::{}", escape_data(title))
    }

    fn group_end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "::endgroup::")
    }

    fn output(&mut self, out: &mut dyn Write, name: &str, value: &str) -> io::Result<()> {
        match &self.paths.github_output {
            Some(p) => append(p, &heredoc(name, value)),
            None => {
                if !self.warned_no_output_file {
                    self.warned_no_output_file = true;
                    writeln!(
                        out,
                        "::warning::GITHUB_OUTPUT is not set (runner older than v2.297.0?); step outputs are only in the log and --output json"
                    )?;
                }
                Ok(())
            }
        }
    }

    fn finish(
        &mut self,
        _out: &mut dyn Write,
        summary_md: &str,
        _a: &[Annotation],
        _json: &str,
    ) -> io::Result<()> {
        if let Some(p) = &self.paths.github_step_summary
            && !summary_md.is_empty()
        {
            // GitHub drops summaries over 1 MiB entirely; ours are far smaller, but cap anyway.
            let md: String = summary_md.chars().take(900_000).collect();
            append(p, &format!("{md}\n"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::Location;
    use crate::ci::tests::Buf;
    use crate::ci::{Level, Platform, Reporter};

    #[test]
    fn escaping_matches_the_toolkit() {
        assert_eq!(escape_data("50% a\r\nb::c"), "50%25 a%0D%0Ab::c");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn heredoc_uses_a_fresh_delimiter() {
        let h = heredoc("notes", "line one\nEOF\nline three");
        let mut lines = h.lines();
        let first = lines.next().unwrap();
        let delim = first.strip_prefix("notes<<").unwrap();
        assert!(delim.starts_with("ghadelimiter_") && delim.len() > 20);
        assert_eq!(
            h,
            format!("notes<<{delim}\nline one\nEOF\nline three\n{delim}\n")
        );
        assert_ne!(heredoc("a", "b"), heredoc("a", "b"));
    }

    #[test]
    fn writes_commands_outputs_and_summary() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths {
            github_output: Some(dir.path().join("out")),
            github_step_summary: Some(dir.path().join("summary.md")),
            ..Paths::default()
        };
        let buf = Buf::default();
        let r = Reporter::new(Platform::GitHub, paths, Box::new(buf.clone()));
        r.mask("-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----");
        r.group_start("Upload");
        r.annotate(
            crate::ci::Annotation::new(Level::Error, "unknown key `timout`\nsee docs")
                .titled("pipeline")
                .at(Some(Location {
                    file: "flightdeck.yml".into(),
                    line: 4,
                    column: 7,
                })),
        );
        r.set_output("build-id", "b-123");
        r.group_end();
        r.finish("## flightdeck\nok", "{}");
        let log = buf.text();
        insta::assert_snapshot!(log, @r"
        ::add-mask::-----BEGIN PRIVATE KEY-----%0AMIGHAgEAMBMGByqGSM49AgEGCCqGSM49%0A-----END PRIVATE KEY-----
        ::add-mask::-----BEGIN PRIVATE KEY-----
        ::add-mask::MIGHAgEAMBMGByqGSM49AgEGCCqGSM49
        ::add-mask::-----END PRIVATE KEY-----
        ::group::Upload
        ::error title=pipeline,file=flightdeck.yml,line=4,col=7::unknown key `timout`%0Asee docs
        ::endgroup::
        ");
        let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
        let delim = out
            .lines()
            .next()
            .unwrap()
            .strip_prefix("build-id<<")
            .unwrap()
            .to_string();
        assert_eq!(out, format!("build-id<<{delim}\nb-123\n{delim}\n"));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("summary.md")).unwrap(),
            "## flightdeck\nok\n"
        );
    }
}
