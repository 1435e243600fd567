//! The outcome every command produces: the JSON document of `--output json`,
//! the Markdown step summary, and the exit code. The same on every CI.

use crate::ci::Annotation;
use crate::error::Error;
use serde::Serialize;
use std::collections::BTreeMap;

/// A line of the summary table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub step: String,
    pub result: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub command: String,
    pub ok: bool,
    pub exit_code: u8,
    pub outputs: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
    pub annotations: Vec<Annotation>,
    pub summary: Vec<Row>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Outcome {
    pub fn markdown(&self) -> String {
        let mut md = if self.ok {
            format!("### ✅ flightdeck {} succeeded\n\n", self.command)
        } else {
            let msg = self
                .error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            format!(
                "### ❌ flightdeck {} failed (exit {})\n\n{}\n\n",
                self.command,
                self.exit_code,
                escape_md(&msg)
            )
        };
        if let Some(h) = self.error.as_ref().and_then(|e| e.hint.as_ref()) {
            md.push_str(&format!("> {}\n\n", escape_md(h)));
        }
        if !self.summary.is_empty() {
            md.push_str("| step | result |\n| --- | --- |\n");
            for r in &self.summary {
                md.push_str(&format!(
                    "| {} | {} |\n",
                    escape_md(&r.step),
                    escape_md(&r.result)
                ));
            }
            md.push('\n');
        }
        if !self.outputs.is_empty() {
            md.push_str(
                "<details><summary>outputs</summary>\n\n| output | value |\n| --- | --- |\n",
            );
            for (k, v) in &self.outputs {
                md.push_str(&format!("| `{k}` | `{}` |\n", escape_md(v)));
            }
            md.push_str("\n</details>\n");
        }
        md
    }
}

fn escape_md(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
