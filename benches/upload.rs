//! Upload benchmark: a 1 GiB artifact sent by the release `flightdeck` binary
//! to the simulator on loopback, against `curl -T` of the same file to the
//! same simulator's raw sink, and against hashing alone.
//!
//! Run: `cargo bench --bench upload` (FLIGHTDECK_BENCH_MIB=4096 for a bigger file).
//! Prints wall time, throughput, peak RSS, the curl ratio and the overlap figure.

use flightdeck::artifact::fixture::{AppSpec, write_ipa};
use flightdeck::simulator::{self, SimConfig, state::DEMO_BUNDLE_ID};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

/// Run a command to completion; (wall time, peak RSS in KiB, success, CPU seconds).
fn measure(cmd: &mut Command) -> (Duration, u64, bool, f64) {
    let start = Instant::now();
    let child = cmd.stdin(Stdio::null()).spawn().expect("spawn");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, and status/usage point to valid locals.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(rc, pid, "wait4 failed");
    std::mem::forget(child);
    let cpu = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = cpu(usage.ru_utime) + cpu(usage.ru_stime);
    (
        wall,
        usage.ru_maxrss as u64,
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        cpu,
    )
}

fn sha256_secs(path: &std::path::Path) -> Duration {
    use sha2::Digest;
    use std::io::Read;
    let start = Instant::now();
    let mut f = std::fs::File::open(path).unwrap();
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    std::hint::black_box(h.finalize());
    start.elapsed()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mib: u64 = std::env::var("FLIGHTDECK_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ipa = dir.path().join("Big.ipa");
    let mut spec = AppSpec::new(DEMO_BUNDLE_ID, "1.0", "1");
    spec.payload_bytes = mib * 1024 * 1024;
    write_ipa(&ipa, &spec).unwrap();
    let size = std::fs::metadata(&ipa).unwrap().len();
    let (private, public) = flightdeck::auth::key::generate();
    let mut cfg = SimConfig::new("BENCH12345", Some("bench-issuer"), &public);
    cfg.processing_delay = Duration::from_secs(3600);
    // Keep received bytes in memory-backed storage where there is some, so disk
    // writeback on this machine does not decide the figures.
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        cfg.spool_dir = Some(shm.to_path_buf());
    }
    let sim = rt
        .block_on(simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let base = sim.base_url.clone();

    let hash = sha256_secs(&ipa); // also warms the page cache
    let hash = hash.min(sha256_secs(&ipa));
    let concurrency = std::env::var("FLIGHTDECK_BENCH_CONCURRENCY").unwrap_or_else(|_| "4".into());
    let upload = |build: &str, checksum: &str| {
        // Another name for the same bytes; the simulator is cleared between runs.
        let file = dir.path().join(format!("Big{build}.ipa"));
        std::fs::hard_link(&ipa, &file).ok();
        let log = dir.path().join(format!("flightdeck{build}.log"));
        let (wall, rss, ok, cpu) = measure(
            Command::new(env!("CARGO_BIN_EXE_flightdeck"))
                .args(["--ci", "none", "upload"])
                .arg(&file)
                .args([
                    "--app-id",
                    simulator::state::DEMO_APP_ID,
                    "--checksum",
                    checksum,
                    "--skip-if-exists",
                ])
                .args(["--concurrency", &concurrency])
                .env_clear()
                .env("ASC_API_BASE_URL", &base)
                .env("ASC_KEY_ID", "BENCH12345")
                .env("ASC_ISSUER_ID", "bench-issuer")
                .env("ASC_PRIVATE_KEY", private.expose())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap()),
        );
        assert!(
            ok,
            "flightdeck upload failed:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        (wall, rss, cpu)
    };
    let curl_run = || {
        let (wall, _, ok, cpu) = measure(
            Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-T"])
                .arg(&ipa)
                .arg(format!("{base}/_sim/sink"))
                .stdout(Stdio::null()),
        );
        assert!(ok, "curl failed");
        (wall, cpu)
    };
    let free = || {
        let mut st = sim.sim.lock();
        for f in st.files.values() {
            let _ = std::fs::remove_file(&f.spool);
        }
        st.files.clear();
        st.uploads.clear();
        let _ = std::fs::remove_file(sim.sim.spool.join("sink.bin"));
    };
    let rounds: usize = std::env::var("FLIGHTDECK_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (mut fds, mut sends, mut curls) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        curls.push(curl_run());
        free();
        fds.push(upload(&format!("a{round}"), "SHA_256"));
        free();
        sends.push(upload(&format!("b{round}"), "NONE"));
        free();
    }
    let median = |mut v: Vec<(Duration, f64)>| {
        v.sort_by_key(|x| x.0);
        v[v.len() / 2]
    };
    let rss_kib = fds.iter().map(|x| x.1).max().unwrap_or(0);
    let (fd, fd_cpu) = median(fds.iter().map(|x| (x.0, x.2)).collect());
    let (fd_send, fd_send_cpu) = median(sends.iter().map(|x| (x.0, x.2)).collect());
    let (curl, curl_cpu) = median(curls);
    let send = curl;
    let parts = size.div_ceil(8 << 20);
    println!(
        "upload benchmark: {:.0} MiB artifact, {parts} parts of 8 MiB, {concurrency} at once, loopback simulator, median of {rounds} interleaved rounds",
        size as f64 / MIB
    );
    println!(
        "  flightdeck upload   wall {:>7.2} s  {:>7.1} MiB/s  CPU {:.2} s  peak RSS {:.1} MiB",
        fd.as_secs_f64(),
        size as f64 / MIB / fd.as_secs_f64(),
        fd_cpu,
        rss_kib as f64 / 1024.0
    );
    println!(
        "  flightdeck, no hash wall {:>6.2} s  {:>7.1} MiB/s  CPU {:.2} s  (--checksum NONE: the send path alone)",
        fd_send.as_secs_f64(),
        size as f64 / MIB / fd_send.as_secs_f64(),
        fd_send_cpu
    );
    println!(
        "  curl -T (raw sink)  wall {:>7.2} s  {:>7.1} MiB/s  CPU {:.2} s",
        curl.as_secs_f64(),
        size as f64 / MIB / curl.as_secs_f64(),
        curl_cpu
    );
    println!(
        "  sha256 alone        wall {:>7.2} s  {:>7.1} MiB/s",
        hash.as_secs_f64(),
        size as f64 / MIB / hash.as_secs_f64()
    );
    println!(
        "  ratio flightdeck / curl                 {:.2}  (target <= 1.00)",
        fd.as_secs_f64() / curl.as_secs_f64()
    );
    println!(
        "  ratio flightdeck (no hash) / curl       {:.2}",
        fd_send.as_secs_f64() / curl.as_secs_f64()
    );
    println!(
        "  ratio flightdeck / max(hash, send)      {:.2}  (target <= 1.10; send = curl's time)",
        fd.as_secs_f64() / hash.max(send).as_secs_f64()
    );
    println!("  (flightdeck's wall time includes start-up, auth, the API calls and the commit)");
    rt.block_on(sim.stop());
}
