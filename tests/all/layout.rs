//! The layout rules of docs/architecture.md that a grep can check: nothing
//! outside the command layer (`src/commands/`, `src/cli.rs`, `src/main.rs`)
//! imports `cli` or `commands`.

use std::path::{Path, PathBuf};

const FORBIDDEN: &[&str] = &[
    "crate::cli",
    "crate::commands",
    "flightdeck::cli",
    "flightdeck::commands",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable source directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each `file: line` under `src` (outside the command layer) that imports the command layer.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut found = Vec::new();
    for f in files {
        let rel = f.strip_prefix(src).expect("under src");
        if rel.starts_with("commands") || rel == Path::new("cli.rs") || rel == Path::new("main.rs")
        {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("a readable source file");
        for (i, line) in text.lines().enumerate() {
            if FORBIDDEN.iter().any(|p| line.contains(p)) {
                found.push(format!("src/{}:{}: {}", rel.display(), i + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn only_the_command_layer_imports_cli_or_commands() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let found = violations(&src);
    assert!(
        found.is_empty(),
        "modules outside src/commands/ import the command layer (see docs/architecture.md):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_names_a_planted_violation() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("commands")).unwrap();
    std::fs::create_dir_all(src.join("upload")).unwrap();
    std::fs::write(src.join("commands/x.rs"), "use crate::cli::Cli;\n").unwrap();
    std::fs::write(src.join("cli.rs"), "use crate::commands::Report;\n").unwrap();
    std::fs::write(
        src.join("upload/mod.rs"),
        "//! x\nuse crate::cli::UploadArgs;\n",
    )
    .unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod upload;\n").unwrap();
    assert_eq!(
        violations(src),
        ["src/upload/mod.rs:2: use crate::cli::UploadArgs;"]
    );
}
