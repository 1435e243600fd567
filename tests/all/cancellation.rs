//! SIGTERM in each phase of a pipeline (create, parts, commit, wait poll,
//! wait webhook, testflight, feedback): the binary exits 130, writes the
//! outputs known so far, deletes its temporary webhook, and the next run of
//! the same pipeline, unchanged, finishes the job with one build upload in
//! total (no `skip-if-exists`: an interrupted AWAITING_UPLOAD upload is
//! resumed, and a committed one of the same file is reused and waited for
//! instead of uploaded again).
//! The process is held in a phase by a simulator hang aimed at that phase's
//! request (or by a long processing time for the wait phases).

use crate::fault_matrix::sim_config;
use crate::support::*;
use asc_simulator::faults::{Faults, Kind, Target};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Create,
    Parts,
    Commit,
    WaitPoll,
    WaitWebhook,
    Testflight,
    Feedback,
}

const PHASES: [Phase; 7] = [
    Phase::Create,
    Phase::Parts,
    Phase::Commit,
    Phase::WaitPoll,
    Phase::WaitWebhook,
    Phase::Testflight,
    Phase::Feedback,
];

impl Phase {
    /// The request held by a hang, for the phases that end in one.
    fn hang(self) -> Option<(&'static str, &'static str)> {
        match self {
            Phase::Create => Some(("POST", "/v1/buildUploads")),
            Phase::Parts => Some(("PUT", "/_upload/{file}/{part}")),
            Phase::Commit => Some(("PATCH", "/v1/buildUploadFiles/{id}")),
            Phase::Testflight => Some(("POST", "/v1/builds/{id}/relationships/betaGroups")),
            Phase::Feedback => Some(("GET", "/v1/betaFeedbackCrashSubmissions/{id}/crashLog")),
            Phase::WaitPoll | Phase::WaitWebhook => None,
        }
    }

    /// Whether the upload step finished before the signal (its outputs are known).
    fn after_upload(self) -> bool {
        !matches!(self, Phase::Create | Phase::Parts | Phase::Commit)
    }
}

fn pipeline(env: &Env, phase: Phase) -> std::path::PathBuf {
    let ipa = env.ipa("C.ipa", "1.0", "9", 200_000);
    let wait = if phase == Phase::WaitPoll {
        "{ timeout: 45s, poll: { interval: 1s } }".to_string()
    } else {
        "{ timeout: 45s, poll: { interval: 1s }, webhook: { listen: \"127.0.0.1:0\", register: auto } }".to_string()
    };
    let yml = format!(
        "version: 1\napp: {{ bundle-id: {BUNDLE} }}\nsteps:\n  - upload: {{ file: {} }}\n  - wait: {wait}\n  - testflight: {{ groups: [QA, Beta] }}\n  - feedback: {{ out: {} }}\n",
        ipa.display(),
        env.path("fb").display()
    );
    let p = env.path("flightdeck.yml");
    std::fs::write(&p, yml).unwrap();
    p
}

fn spawn(env: &Env, out_file: &std::path::Path) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", out_file)
        .env("FLIGHTDECK_RETRY_DELAY", "50ms")
        .envs(env.vars())
        .current_dir(env.dir.path())
        .arg("run")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd.spawn().unwrap()
}

/// Wait (real time, bounded) until the run is inside `phase`.
async fn reach(env: &Env, phase: Phase) {
    let sim = env.sim().clone();
    match phase {
        Phase::WaitPoll => {
            eventually_long("polling the build upload", || {
                let st = sim.lock();
                st.uploads.values().any(|u| u.state == "PROCESSING")
                    && st
                        .log
                        .iter()
                        .filter(|l| l.method == "GET" && l.path.starts_with("/v1/buildUploads/"))
                        .count()
                        >= 3
            })
            .await
        }
        Phase::WaitWebhook => {
            eventually_long("the temporary webhook", || {
                let st = sim.lock();
                !st.webhooks.is_empty() && st.uploads.values().any(|u| u.state == "PROCESSING")
            })
            .await
        }
        _ => eventually_long("the held request", || sim.faults.targets().is_empty()).await,
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}

async fn eventually_long(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn cancel_in(phase: Phase) {
    let env = start_with(|c| {
        sim_config(c);
        c.processing_delay = Duration::from_secs(4);
    })
    .await;
    env.sim().faults.set(Faults {
        hang_ms: 20_000,
        ..Default::default()
    });
    if let Some((method, route)) = phase.hang() {
        env.sim().faults.target(Target {
            method: method.into(),
            route: route.into(),
            kind: Kind::Hang,
            times: 1,
            skip: 0,
        });
    }
    pipeline(&env, phase);
    let out_file = env.path("gh_out");
    let child = spawn(&env, &out_file);
    reach(&env, phase).await;
    let pid = child.id().unwrap() as libc::pid_t;
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{phase:?}: no exit within 10 s of SIGTERM"))
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{phase:?}: {err}");
    let outputs = std::fs::read_to_string(&out_file).unwrap_or_default();
    if phase.after_upload() {
        assert!(
            outputs.contains("build-upload-id<<"),
            "{phase:?}: outputs known before the signal are written: {outputs}"
        );
    }
    assert!(
        env.sim().lock().webhooks.is_empty(),
        "{phase:?}: temporary webhook deleted on cancellation"
    );
    // The next run resumes.
    assert!(env.sim().faults.targets().is_empty());
    let child = spawn(&env, &out_file);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{phase:?}: the resumed run did not end within 60 s"))
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{phase:?}: resumed run: {err}");
    let st = env.sim().lock();
    assert_eq!(st.uploads.len(), 1, "{phase:?}: one build upload in total");
    assert_eq!(st.builds.len(), 1, "{phase:?}: one build");
    let b = st.builds.values().next().unwrap();
    assert_eq!(b.groups.len(), 2, "{phase:?}: the build is in both groups");
    assert!(st.webhooks.is_empty(), "{phase:?}: no webhook left");
    drop(st);
    env.assert_conformant();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_in_every_phase_exits_130_and_the_next_run_resumes() {
    let runs = PHASES.map(|p| tokio::spawn(cancel_in(p)));
    let mut failed = Vec::new();
    for (p, r) in PHASES.iter().zip(runs) {
        match r.await {
            Ok(()) => println!("cancel in {p:?}: exit 130, resumed to success"),
            Err(e) => failed.push(format!("{p:?}: {e}")),
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
