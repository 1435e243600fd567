//! A terminal (or an unknown CI): readable lines on stderr, outputs listed at the end.

use super::{Annotation, Backend};
use std::io::{self, Write};

#[derive(Default)]
pub struct Local {
    outputs: Vec<(String, String)>,
}

impl Backend for Local {
    fn mask(&mut self, _out: &mut dyn Write, _value: &str) -> io::Result<()> {
        Ok(())
    }

    fn annotate(&mut self, out: &mut dyn Write, a: &Annotation) -> io::Result<()> {
        let title = a
            .title
            .as_deref()
            .map(|t| format!("{t}: "))
            .unwrap_or_default();
        writeln!(out, "{}: {title}{}", a.level.as_str(), a.message)?;
        if let Some(loc) = &a.location {
            writeln!(out, "  --> {loc}")?;
        }
        Ok(())
    }

    fn group_start(&mut self, out: &mut dyn Write, title: &str) -> io::Result<()> {
        writeln!(out, "==> {title}")
    }

    fn group_end(&mut self, _out: &mut dyn Write) -> io::Result<()> {
        Ok(())
    }

    fn output(&mut self, _out: &mut dyn Write, name: &str, value: &str) -> io::Result<()> {
        self.outputs.retain(|(n, _)| n != name);
        self.outputs.push((name.to_string(), value.to_string()));
        Ok(())
    }

    fn finish(
        &mut self,
        out: &mut dyn Write,
        summary_md: &str,
        _a: &[Annotation],
        _json: &str,
    ) -> io::Result<()> {
        // The Markdown summary's headline and steps. Its error message and
        // hint are left out: the error annotation above already showed them,
        // and the final error line repeats the message last. The outputs
        // block is listed below.
        let body = summary_md.split("<details>").next().unwrap_or_default();
        if !body.trim().is_empty() {
            writeln!(out)?;
            for line in body.lines().filter(|l| {
                (l.starts_with("### ") || l.starts_with('|'))
                    && !l.starts_with("| ---")
                    && !l.starts_with("| step |")
            }) {
                let line = line
                    .trim_start_matches("### ")
                    .trim_matches('|')
                    .replace(" | ", ": ");
                writeln!(out, "{}", line.trim())?;
            }
        }
        if !self.outputs.is_empty() {
            writeln!(out, "\noutputs:")?;
            for (n, v) in &self.outputs {
                writeln!(out, "  {n} = {v}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terminal_summary_does_not_repeat_the_error() {
        let md = "### ❌ flightdeck upload failed (exit 2)\n\nApp.ipa: no such file\n\n> check the path\n\n| step | result |\n| --- | --- |\n| upload | failed |\n\n<details><summary>outputs</summary>\n\n| output | value |\n</details>\n";
        let mut local = Local::default();
        let mut out = Vec::new();
        local.output(&mut out, "app-id", "123").unwrap();
        local.finish(&mut out, md, &[], "{}").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\n❌ flightdeck upload failed (exit 2)\nupload: failed\n\noutputs:\n  app-id = 123\n"
        );
    }
}
