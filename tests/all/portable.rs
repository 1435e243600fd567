//! `scripts/check-glibc.sh`, the portable build's gate: it reads the highest
//! GLIBC_x.y symbol version a binary needs and fails above the floor. Run on
//! the flightdeck binary of this build, whose figure depends on the host.

use std::process::Command;

fn check(bin: &str, max: &str) -> (i32, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check-glibc.sh");
    let out = Command::new("bash")
        .args([script, bin, max])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn has(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn check_glibc_reads_the_highest_version_and_enforces_the_floor() {
    if !(has("objdump") || has("readelf")) {
        eprintln!("skipped: neither objdump nor readelf (binutils) is installed");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_flightdeck");
    let (code, text) = check(bin, "99.0");
    assert_eq!(code, 0, "{text}");
    let Some(need) = text
        .split("needs GLIBC_")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
    else {
        eprintln!("skipped: this build links no glibc ({text})");
        return;
    };
    assert_eq!(need.split('.').next(), Some("2"), "{text}");
    assert_eq!(check(bin, need).0, 0, "exactly the floor passes: {text}");
    let (code, text) = check(bin, "2.0");
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("needs GLIBC_{need}, newer than 2.0")),
        "{text}"
    );
    assert_eq!(check("/nonexistent/flightdeck", "2.17").0, 2);
}
