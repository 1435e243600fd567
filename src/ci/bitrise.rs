//! Bitrise: outputs exported with `envman add` (stdin closed, no `$`
//! expansion), the summary and outcome written into `$BITRISE_DEPLOY_DIR`, and
//! the final error printed in red so Bitrise shows it as the failure reason.

use super::{Annotation, Backend, Paths, env_name};
use std::io::{self, Write};
use std::process::{Command, Stdio};

pub struct Bitrise {
    paths: Paths,
}

const SUMMARY: &str = "flightdeck-summary.md";
const OUTCOME: &str = "flightdeck-outcome.json";

impl Bitrise {
    /// Empties this run's deploy-dir files first, so a run that fails early
    /// (or is killed) never leaves a previous run's outcome looking current.
    pub fn new(paths: Paths) -> Self {
        let b = Self { paths };
        if let Err(e) = b.write_files("", "") {
            tracing::warn!("cannot reset the Bitrise deploy files: {e}");
        }
        b
    }

    fn write_files(&self, summary_md: &str, json: &str) -> io::Result<()> {
        if let Some(dir) = &self.paths.bitrise_deploy_dir {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(SUMMARY), summary_md)?;
            std::fs::write(dir.join(OUTCOME), json)?;
        }
        Ok(())
    }
}

impl Backend for Bitrise {
    fn mask(&mut self, _out: &mut dyn Write, _value: &str) -> io::Result<()> {
        Ok(())
    }

    fn annotate(&mut self, out: &mut dyn Write, a: &Annotation) -> io::Result<()> {
        let color = a.level.ansi_color("\x1b[34;1m");
        let at = a.at_suffix();
        writeln!(out, "{color}{}{at}: {}\x1b[0m", a.level.as_str(), a.message)
    }

    fn group_start(&mut self, out: &mut dyn Write, title: &str) -> io::Result<()> {
        writeln!(out, "\x1b[34;1m==> {title}\x1b[0m")
    }

    fn group_end(&mut self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn output(&mut self, _out: &mut dyn Write, name: &str, value: &str) -> io::Result<()> {
        let Some(envman) = &self.paths.envman else {
            return Ok(());
        };
        let status = Command::new(envman)
            .args([
                "add",
                "--key",
                &env_name(name),
                "--value",
                value,
                "--no-expand",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("envman exited with {status}")))
        }
    }

    fn finish(
        &mut self,
        _out: &mut dyn Write,
        summary_md: &str,
        _a: &[Annotation],
        json: &str,
    ) -> io::Result<()> {
        self.write_files(summary_md, json)
    }

    fn final_error(&mut self, out: &mut dyn Write, message: &str) -> io::Result<()> {
        writeln!(out, "\x1b[31;1m{message}\x1b[0m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ci::tests::Buf;
    use crate::ci::{Platform, Reporter};

    #[test]
    fn phases_get_the_same_headers_as_gitlab_sections() {
        let buf = Buf::default();
        let r = Reporter::new(Platform::Bitrise, Paths::default(), Box::new(buf.clone()));
        r.group_start("upload");
        r.group_end();
        r.group_start("doctor: checks");
        r.final_error("it broke");
        assert_eq!(
            buf.text(),
            "\x1b[34;1m==> upload\x1b[0m\n\x1b[34;1m==> doctor: checks\x1b[0m\n\x1b[31;1mit broke\x1b[0m\n"
        );
    }
}
