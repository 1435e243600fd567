//! Soak: consecutive full pipeline runs of the binary (upload + wait with a
//! temporary webhook + testflight + feedback) against one simulator that
//! answers with random faults at a fixed seed. Every run is accounted for
//! (success, or a documented exit code), no temporary webhook and no
//! temporary file is left behind, no build is uploaded twice, and the peak
//! RSS of the last run stays close to the first one's (from `wait4`).
//!
//! CI runs 8; `FLIGHTDECK_SOAK_RUNS=50 cargo test --test all soak` runs the full count.

use crate::fault_matrix::sim_config;
use crate::support::*;
use asc_simulator::faults::Faults;
use std::time::Duration;

/// Exit codes a faulted run may end with.
const DOCUMENTED: [i32; 5] = [0, 1, 3, 4, 5];

fn runs() -> usize {
    std::env::var("FLIGHTDECK_SOAK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
        .clamp(1, 200)
}

fn pipeline(env: &Env, n: usize) -> std::path::PathBuf {
    let ipa = env.ipa(&format!("S{n}.ipa"), "1.0", &n.to_string(), 120_000);
    let yml = format!(
        "version: 1\napp: {{ bundle-id: {BUNDLE} }}\nsteps:\n  - upload: {{ file: {} }}\n  - wait: {{ timeout: 45s, poll: {{ interval: 1s }}, webhook: {{ listen: \"127.0.0.1:0\", register: auto }} }}\n  - testflight: {{ groups: [QA, Beta], whats-new: \"soak {n}\" }}\n  - feedback: {{ out: {} }}\n",
        ipa.display(),
        env.path(&format!("fb{n}")).display()
    );
    let p = env.path(&format!("soak-{n}.yml"));
    std::fs::write(&p, yml).unwrap();
    p
}

/// Run the binary to its end (killed past 90 s): (exit code, peak RSS in KiB, stderr).
fn run_once(env: &Env, pipeline: &std::path::Path, tmp: &std::path::Path) -> (i32, i64, String) {
    use std::os::unix::process::ExitStatusExt;
    let err_path = pipeline.with_extension("stderr");
    // Reaped by wait4 below, which also gives the peak RSS that `wait` hides.
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_flightdeck"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("TMPDIR", tmp)
        .env("FLIGHTDECK_HTTP_TIMEOUT", "2s")
        .env("FLIGHTDECK_RETRY_DELAY", "50ms")
        .envs(env.vars())
        .current_dir(env.dir.path())
        .args(["run", "--pipeline", pipeline.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(90));
        // SAFETY: a signal to our own child; harmless if it already ended
        // (the pid is not reaped until wait4 below returns).
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let mut status = 0;
    // SAFETY: rusage is plain data, written by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4");
    drop(killer);
    let status = std::process::ExitStatus::from_raw(status);
    let code = status.code().unwrap_or(-1);
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    (code, usage.ru_maxrss, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_pipeline_runs_with_random_faults_leave_nothing_behind() {
    let spool = tempfile::tempdir().unwrap();
    let spool_path = spool.path().to_path_buf();
    let env = start_with(move |c| {
        sim_config(c);
        c.spool_dir = Some(spool_path);
    })
    .await;
    env.sim().faults.set(Faults {
        seed: 12,
        api_5xx: 0.05,
        api_429: 0.03,
        api_drop: 0.03,
        part_5xx: 0.05,
        part_drop: 0.05,
        retry_after_secs: 1,
        ..Faults::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let n = runs();
    let mut table = Vec::new();
    for i in 1..=n {
        let p = pipeline(&env, i);
        let (env_ref, tmp_path) = (&env, tmp.path().to_path_buf());
        let (code, rss, err) = tokio::task::block_in_place(|| run_once(env_ref, &p, &tmp_path));
        let last = err
            .lines()
            .rev()
            .find(|l| l.starts_with("error:"))
            .unwrap_or("");
        assert!(DOCUMENTED.contains(&code), "run {i}: exit {code}: {err}");
        assert!(!err.contains("panicked"), "run {i} panicked: {err}");
        let st = env.sim().lock();
        assert!(st.webhooks.is_empty(), "run {i} left a temporary webhook");
        let same: usize = st
            .uploads
            .values()
            .filter(|u| u.build_number == i.to_string())
            .count();
        assert!(same <= 1, "run {i}: build {i} uploaded {same} times");
        drop(st);
        let leaked: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().collect();
        assert!(
            leaked.is_empty(),
            "run {i} left temporary files: {leaked:?}"
        );
        table.push((i, code, rss, last.to_string()));
    }
    println!("\nsoak: {n} pipeline runs, faults at seed 12");
    for (i, code, rss, last) in &table {
        println!("run {i:>3}: exit {code}, peak RSS {:>6} KiB {last}", rss);
    }
    let ok = table.iter().filter(|r| r.1 == 0).count();
    println!("succeeded: {ok} of {n}");
    assert!(ok * 2 >= n, "fewer than half the runs succeeded");
    let (first, last) = (table[0].2, table[n - 1].2);
    assert!(
        last <= first + first / 2 + 20 * 1024,
        "peak RSS grew from {first} KiB to {last} KiB"
    );
    assert!(
        env.violations().is_empty(),
        "schema violations: {:?}",
        env.violations()
    );
}
