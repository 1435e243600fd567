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
        // The Markdown summary, minus its table rules and the outputs block (listed below).
        let body = summary_md.split("<details>").next().unwrap_or_default();
        if !body.trim().is_empty() {
            writeln!(out)?;
            for line in body
                .lines()
                .filter(|l| !l.starts_with("| ---") && !l.starts_with("| step |"))
            {
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
