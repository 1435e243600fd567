//! The fault matrix: every phase of a pipeline (upload + wait + testflight +
//! feedback) crossed with every kind of fault, generated from two enums. Each
//! cell is a full `flightdeck run` (in process, through `commands::main`)
//! against a fresh simulator with one targeted fault. A cell passes when the
//! run succeeds with exactly one build upload, one build, and the build in all
//! its groups, or ends in a documented exit code with a message naming the
//! phase; never a panic, a run past its deadline, a duplicate upload or a
//! half-distributed build. The table of cells and outcomes is printed.
//! The relay row (`relay forward`) drives a relay instead of a pipeline: see
//! `forward_faults.rs`.

use crate::support::*;
use asc_simulator::faults::{Kind, Target};
use std::time::{Duration, Instant};

/// One phase of a pipeline: the request (method, route template) a fault
/// is aimed at, and a word an error message about it must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    AppLookup,
    Create,
    Reserve,
    Part,
    Commit,
    Poll,
    WebhookCreate,
    WebhookDelivery,
    WebhookDelete,
    TestflightGroups,
    TestflightWhatsNew,
    FeedbackCrashLog,
    FeedbackScreenshot,
    RelayForward,
}

impl Phase {
    pub const ALL: [Phase; 14] = [
        Phase::AppLookup,
        Phase::Create,
        Phase::Reserve,
        Phase::Part,
        Phase::Commit,
        Phase::Poll,
        Phase::WebhookCreate,
        Phase::WebhookDelivery,
        Phase::WebhookDelete,
        Phase::TestflightGroups,
        Phase::TestflightWhatsNew,
        Phase::FeedbackCrashLog,
        Phase::FeedbackScreenshot,
        Phase::RelayForward,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::AppLookup => "app lookup",
            Phase::Create => "create",
            Phase::Reserve => "reserve",
            Phase::Part => "part",
            Phase::Commit => "commit",
            Phase::Poll => "poll",
            Phase::WebhookCreate => "webhook create",
            Phase::WebhookDelivery => "webhook delivery",
            Phase::WebhookDelete => "webhook delete",
            Phase::TestflightGroups => "testflight groups",
            Phase::TestflightWhatsNew => "testflight whats-new",
            Phase::FeedbackCrashLog => "feedback crash log",
            Phase::FeedbackScreenshot => "feedback screenshot",
            Phase::RelayForward => "relay forward",
        }
    }

    /// (method, route template) the fault is aimed at.
    pub fn route(self) -> (&'static str, &'static str) {
        match self {
            Phase::AppLookup => ("GET", "/v1/apps"),
            Phase::Create => ("POST", "/v1/buildUploads"),
            Phase::Reserve => ("POST", "/v1/buildUploadFiles"),
            Phase::Part => ("PUT", "/_upload/{file}/{part}"),
            Phase::Commit => ("PATCH", "/v1/buildUploadFiles/{id}"),
            Phase::Poll => ("GET", "/v1/buildUploads/{id}"),
            Phase::WebhookCreate => ("POST", "/v1/webhooks"),
            Phase::WebhookDelivery => ("POST", "webhook-delivery"),
            Phase::WebhookDelete => ("DELETE", "/v1/webhooks/{id}"),
            Phase::TestflightGroups => ("POST", "/v1/builds/{id}/relationships/betaGroups"),
            Phase::TestflightWhatsNew => ("POST", "/v1/betaBuildLocalizations"),
            Phase::FeedbackCrashLog => ("GET", "/v1/betaFeedbackCrashSubmissions/{id}/crashLog"),
            Phase::FeedbackScreenshot => ("GET", "/_sim/screenshots/{id}/{n}"),
            Phase::RelayForward => ("POST", "a relay's forward target"),
        }
    }

    /// Words of which an error message about this phase names at least one.
    fn needles(self) -> &'static [&'static str] {
        match self {
            Phase::AppLookup => &["/v1/apps", "app"],
            Phase::Create | Phase::Poll => &["buildUploads", "upload"],
            Phase::Reserve | Phase::Commit => &["buildUploadFiles", "upload"],
            Phase::Part => &["part"],
            Phase::WebhookCreate | Phase::WebhookDelete | Phase::WebhookDelivery => &["webhook"],
            Phase::TestflightGroups => &["betaGroups", "group"],
            Phase::TestflightWhatsNew => &["betaBuildLocalizations", "whats-new", "What to Test"],
            Phase::FeedbackCrashLog | Phase::FeedbackScreenshot => {
                &["feedback", "crash", "screenshot"]
            }
            Phase::RelayForward => &["forward"],
        }
    }
}

/// The documented exit codes a faulted run may end with (not 2: bad input).
const FAULT_EXITS: [u8; 4] = [1, 3, 4, 5];

/// How long a hang lasts on the simulator, and the client's timeout under it.
pub const HANG: Duration = Duration::from_millis(2500);
pub const CLIENT_TIMEOUT: &str = "1s";
/// A cell that takes longer than this fails.
const DEADLINE: Duration = Duration::from_secs(60);

/// The environment of a run: the simulator, fast retries, short timeouts.
pub fn run_vars(env: &Env) -> Vec<(String, String)> {
    let mut v = env.vars();
    v.push(("FLIGHTDECK_HTTP_TIMEOUT".into(), CLIENT_TIMEOUT.into()));
    v.push(("FLIGHTDECK_RETRY_DELAY".into(), "50ms".into()));
    v.push(("PATH".into(), std::env::var("PATH").unwrap_or_default()));
    v
}

/// A pipeline of every step, for one small artifact; returns its path.
pub fn write_pipeline(env: &Env, build: &str) -> std::path::PathBuf {
    let ipa = env.ipa(&format!("M{build}.ipa"), "1.0", build, 150_000);
    let yml = format!(
        "version: 1\napp: {{ bundle-id: {BUNDLE} }}\nsteps:\n  - upload: {{ file: {} }}\n  - wait: {{ timeout: 45s, poll: {{ interval: 1s }}, webhook: {{ listen: \"127.0.0.1:0\", register: auto }} }}\n  - testflight: {{ groups: [QA, Beta], whats-new: \"Fault matrix\" }}\n  - feedback: {{ out: {} }}\n",
        ipa.display(),
        env.path(&format!("fb{build}")).display(),
    );
    let p = env.path(&format!("flightdeck-{build}.yml"));
    std::fs::write(&p, yml).unwrap();
    p
}

pub fn sim_config(c: &mut asc_simulator::SimConfig) {
    c.seed_feedback = true;
    c.part_size = 64 * 1024;
    c.processing_delay = Duration::from_millis(100);
}

/// Run `flightdeck run` in process: (exit code, what it wrote to stderr),
/// or None when it panicked.
pub async fn run_in_process(
    vars: Vec<(String, String)>,
    pipeline: &std::path::Path,
) -> Option<(u8, String)> {
    let p = pipeline.to_str().unwrap();
    command_in_process(vars, &["run", "--pipeline", p]).await
}

/// Any command in process: (exit code, stderr), or None when it panicked.
pub async fn command_in_process(
    vars: Vec<(String, String)>,
    args: &[&str],
) -> Option<(u8, String)> {
    use clap::Parser;
    let cli = flightdeck::cli::Cli::try_parse_from(
        std::iter::once("flightdeck").chain(args.iter().copied()),
    )
    .unwrap();
    let env = flightdeck::config::env::Env::from_pairs(vars);
    let err = Buf::default();
    let err2 = err.clone();
    // Run on this task (the command's future is not `Send` for every
    // lifetime, so it cannot be spawned); a panic is caught, not propagated.
    use futures_util::FutureExt;
    let run = async move {
        let mut out = Vec::new();
        flightdeck::commands::main(
            cli,
            env,
            &mut out,
            Box::new(err2),
            tokio_util::sync::CancellationToken::new(),
        )
        .await
    };
    match std::panic::AssertUnwindSafe(run).catch_unwind().await {
        Ok(code) => Some((code, err.text())),
        Err(_) => None,
    }
}

/// What a cell ended in.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Ok,
    /// A documented exit code with a message naming the phase.
    Failed(u8),
    Bad(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Ok => write!(f, "ok"),
            Outcome::Failed(c) => write!(f, "exit {c}"),
            Outcome::Bad(why) => write!(f, "BAD: {why}"),
        }
    }
}

/// The simulator's view after a run: (build uploads, builds, groups of the build).
fn counts(env: &Env) -> (usize, usize, usize) {
    let st = env.sim().lock();
    let groups = st
        .builds
        .values()
        .map(|b| b.groups.len())
        .max()
        .unwrap_or(0);
    (st.uploads.len(), st.builds.len(), groups)
}

/// Crash logs and screenshots written under `dir` (the feedback step's output).
pub fn feedback_files(dir: &std::path::Path) -> (usize, usize) {
    let (mut logs, mut shots) = (0, 0);
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            let (l, s) = feedback_files(&p);
            (logs, shots) = (logs + l, shots + s);
        } else {
            let name = e.file_name().to_string_lossy().into_owned();
            logs += usize::from(name == "crash.log");
            shots += usize::from(name.starts_with("screenshot-"));
        }
    }
    (logs, shots)
}

/// Judge a finished run against the promises.
pub fn judge(env: &Env, phase: Option<Phase>, result: Option<(u8, String)>) -> Outcome {
    let Some((code, err)) = result else {
        return Outcome::Bad("panic".into());
    };
    let (uploads, builds, groups) = counts(env);
    if uploads > 1 || builds > 1 {
        return Outcome::Bad(format!("{uploads} uploads, {builds} builds"));
    }
    if groups != 0 && groups != 2 {
        return Outcome::Bad(format!("half-distributed: in {groups} of 2 groups"));
    }
    let v = env.violations();
    if !v.is_empty() {
        return Outcome::Bad(format!("spec violations: {v:?}"));
    }
    if code == 0 {
        let (logs, shots) = feedback_files(env.dir.path());
        return if (uploads, builds, groups) == (1, 1, 2) && logs >= 1 && shots >= 1 {
            Outcome::Ok
        } else {
            Outcome::Bad(format!(
                "exit 0 with {uploads} uploads, {builds} builds, {groups} groups"
            ))
        };
    }
    let last = err
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string();
    if !FAULT_EXITS.contains(&code) {
        return Outcome::Bad(format!("exit {code}: {last}"));
    }
    match phase {
        Some(p) if p.needles().iter().any(|n| err.contains(n)) => Outcome::Failed(code),
        Some(_) => Outcome::Bad(format!("exit {code} without naming the phase: {last}")),
        None => Outcome::Failed(code),
    }
}

async fn cell(phase: Phase, kind: Kind, n: usize) -> (Phase, Kind, Outcome, Duration) {
    if phase == Phase::RelayForward {
        let t = Instant::now();
        let outcome = crate::forward_faults::cell(kind, DEADLINE).await;
        return (phase, kind, outcome, t.elapsed());
    }
    let env = start_with(sim_config).await;
    env.sim().faults.set(asc_simulator::faults::Faults {
        retry_after_secs: 1,
        hang_ms: HANG.as_millis() as u64,
        ..Default::default()
    });
    let (method, route) = phase.route();
    env.sim().faults.target(Target {
        method: method.into(),
        route: route.into(),
        kind,
        times: 1,
        skip: 0,
    });
    let pipeline = write_pipeline(&env, &format!("{}", 100 + n));
    let t = Instant::now();
    let outcome =
        match tokio::time::timeout(DEADLINE, run_in_process(run_vars(&env), &pipeline)).await {
            Ok(r) => judge(&env, Some(phase), r),
            Err(_) => Outcome::Bad(format!("still running after {DEADLINE:?}")),
        };
    let outcome = match outcome {
        Outcome::Ok | Outcome::Failed(_) if !env.sim().lock().webhooks.is_empty() => {
            Outcome::Bad("temporary webhook left behind".into())
        }
        o => o,
    };
    (phase, kind, outcome, t.elapsed())
}

fn print_table(rows: &[(Phase, Kind, Outcome, Duration)]) {
    let mut out = format!("\nfault matrix: {} cells (phase x fault)\n", rows.len());
    out += &format!("{:<22}", "phase");
    for k in Kind::ALL {
        out += &format!(" | {:<16}", k.name());
    }
    out += "\n";
    for p in Phase::ALL {
        out += &format!("{:<22}", p.name());
        for k in Kind::ALL {
            let cell = rows
                .iter()
                .find(|r| r.0 == p && r.1 == k)
                .map(|r| match &r.2 {
                    Outcome::Bad(_) => "BAD".to_string(),
                    o => format!("{o} {:.1}s", r.3.as_secs_f64()),
                })
                .unwrap_or_default();
            out += &format!(" | {cell:<16}");
        }
        out += "\n";
    }
    let ok = rows.iter().filter(|r| r.2 == Outcome::Ok).count();
    let failed = rows
        .iter()
        .filter(|r| matches!(r.2, Outcome::Failed(_)))
        .count();
    out += &format!(
        "survived (ok): {ok}, ended in a documented code naming the phase: {failed}, bad: {}\n",
        rows.len() - ok - failed
    );
    println!("{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phase_survives_every_fault() {
    let cells: Vec<(Phase, Kind)> = Phase::ALL
        .iter()
        .flat_map(|p| Kind::ALL.iter().map(move |k| (*p, *k)))
        .collect();
    let width: usize = std::env::var("FLIGHTDECK_MATRIX_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    // The cells run concurrently on this task (a command's future is not
    // `Send` for every lifetime, so it cannot be spawned), `width` at a time.
    use futures_util::StreamExt;
    let rows: Vec<_> = futures_util::stream::iter(cells.into_iter().enumerate())
        .map(|(n, (p, k))| cell(p, k, n))
        .buffered(width)
        .collect()
        .await;
    print_table(&rows);
    let bad: Vec<String> = rows
        .iter()
        .filter_map(|(p, k, o, _)| match o {
            Outcome::Bad(why) => Some(format!("{} x {}: {why}", p.name(), k.name())),
            _ => None,
        })
        .collect();
    assert!(
        bad.is_empty(),
        "cells that broke a promise:\n{}",
        bad.join("\n")
    );
    let ok = rows.iter().filter(|r| r.2 == Outcome::Ok).count();
    assert!(
        ok * 10 >= rows.len() * 8,
        "only {ok} of {} cells succeeded",
        rows.len()
    );
}

/// `webhooks create`, `ping` and `delete` each with the answer lost after
/// the server acted: one webhook, one ping delivery, then none, all exit 0.
#[tokio::test]
async fn webhook_commands_write_once_when_the_answer_is_lost() {
    let env = start_with(sim_config).await;
    let mut vars = run_vars(&env);
    vars.push(("WH".into(), "webhook-secret-0123456789".into()));
    let aim = |method: &str, route: &str| {
        env.sim().faults.target(Target {
            method: method.into(),
            route: route.into(),
            kind: Kind::DropAfter,
            times: 1,
            skip: 0,
        })
    };
    aim("POST", "/v1/webhooks");
    let create = [
        "webhooks",
        "create",
        "--app-id",
        APP_ID,
        "--name",
        "ci",
        "--url",
        "http://127.0.0.1:9/hook",
        "--event",
        "BUILD_UPLOAD_STATE_UPDATED",
        "--secret-env",
        "WH",
    ];
    let (code, err) = command_in_process(vars.clone(), &create).await.unwrap();
    assert_eq!(code, 0, "{err}");
    let id = {
        let st = env.sim().lock();
        assert_eq!(st.webhooks.len(), 1, "created once");
        st.webhooks.keys().next().unwrap().clone()
    };
    aim("POST", "/v1/webhookPings");
    let (code, err) = command_in_process(vars.clone(), &["webhooks", "ping", &id])
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.sim().lock().deliveries.len(), 1, "pinged once");
    aim("DELETE", "/v1/webhooks/{id}");
    let (code, err) = command_in_process(vars.clone(), &["webhooks", "delete", &id])
        .await
        .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(env.sim().lock().webhooks.is_empty());
    let (code, _) = command_in_process(vars, &["webhooks", "delete", &id])
        .await
        .unwrap();
    assert_eq!(code, 2, "a webhook that does not exist is still an error");
    assert!(env.sim().faults.targets().is_empty(), "every fault was hit");
    env.assert_conformant();
}
