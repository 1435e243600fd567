//! The generated corpus of hostile artifacts, read by the binary under a
//! fixed address-space limit: each ends with exit 2 and an error naming the
//! file and what was wrong, and nothing reaches App Store Connect.

use crate::support::*;
use flightdeck::artifact::nasty;
use std::time::Duration;

/// Address space the binary may use: far below what inflating any bomb would
/// take (2 GiB), comfortably above what a normal run needs.
const ADDRESS_SPACE: u64 = 1536 * 1024 * 1024;

#[tokio::test]
async fn nasty_artifacts_end_with_exit_2_within_fixed_memory() {
    let env = start().await;
    for n in nasty::corpus() {
        let p = env.path(n.name);
        std::fs::write(&p, &n.bytes).unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .envs(env.vars())
            .current_dir(env.dir.path())
            .args(["upload", p.to_str().unwrap()])
            .kill_on_drop(true);
        // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: ADDRESS_SPACE,
                    rlim_max: ADDRESS_SPACE,
                };
                if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("{} did not end", n.name))
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", n.name);
        assert!(
            err.contains(n.name) && err.contains(n.expect),
            "{}: {err}",
            n.name
        );
        assert!(!err.contains("panicked"), "{}: {err}", n.name);
    }
    assert!(env.sim().lock().uploads.is_empty(), "nothing was uploaded");
}
