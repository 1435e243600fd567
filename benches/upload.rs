//! Upload benchmark: a 1 GiB artifact sent by the release `flightdeck` binary
//! to the simulator on loopback, against `curl -T` of the same file to the
//! same simulator's raw sink, and against hashing alone.
//!
//! Run: `cargo bench --bench upload`. Prints wall time, throughput, CPU, peak
//! RSS, the curl ratio and the overlap figure, twice: on raw loopback, where
//! client and simulator share this machine's cores and everything is
//! CPU-bound, and through a simulated uplink (`FLIGHTDECK_BENCH_LINK`,
//! default 512MiB/s, `none` to skip), where the network is the bottleneck as
//! in CI. Also: FLIGHTDECK_BENCH_MIB (file size, default 1024),
//! FLIGHTDECK_BENCH_ROUNDS (default 5), FLIGHTDECK_BENCH_CONCURRENCY
//! (default 4), FLIGHTDECK_BENCH_BIN (another flightdeck binary).

use asc_simulator::fixture::{AppSpec, write_ipa};
use asc_simulator::{self as simulator, SimConfig, state::DEMO_BUNDLE_ID};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

/// CPU seconds (user + system) used so far by this process: the in-process
/// simulator, since the benchmark's own thread only waits meanwhile.
fn own_cpu() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: usage points to a valid local.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    cpu_secs(usage.ru_utime) + cpu_secs(usage.ru_stime)
}

fn cpu_secs(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// Run a command to completion: its figures, and whether it succeeded.
fn measure(cmd: &mut Command) -> (Run, bool) {
    let server_before = own_cpu();
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
    let cpu = cpu_secs(usage.ru_utime) + cpu_secs(usage.ru_stime);
    let run = Run {
        wall,
        rss: usage.ru_maxrss as u64,
        cpu,
        server: own_cpu() - server_before,
    };
    (
        run,
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
    )
}

/// One measured command: wall time, peak RSS in KiB, its CPU seconds, and
/// the simulator's CPU seconds meanwhile.
#[derive(Clone, Copy)]
struct Run {
    wall: Duration,
    rss: u64,
    cpu: f64,
    server: f64,
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
    let var = |name: &str| std::env::var(name).ok();
    let mib: u64 = var("FLIGHTDECK_BENCH_MIB")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let rounds: usize = var("FLIGHTDECK_BENCH_ROUNDS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let link = var("FLIGHTDECK_BENCH_LINK").unwrap_or_else(|| "512MiB/s".into());
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
    let bench = Bench {
        size: std::fs::metadata(&ipa).unwrap().len(),
        ipa,
        dir: dir.path().to_path_buf(),
        key: flightdeck::auth::key::generate(),
        hash: sha256_secs(&dir.path().join("Big.ipa")) // also warms the page cache
            .min(sha256_secs(&dir.path().join("Big.ipa"))),
        rounds,
        concurrency: var("FLIGHTDECK_BENCH_CONCURRENCY").unwrap_or_else(|| "4".into()),
    };
    bench.scenario(&rt, None);
    if link != "none" {
        let rate = simulator::link::parse_rate(&link).expect("FLIGHTDECK_BENCH_LINK");
        bench.scenario(&rt, Some((rate, link.as_str())));
    }
}

struct Bench {
    ipa: std::path::PathBuf,
    dir: std::path::PathBuf,
    size: u64,
    key: (flightdeck::secret::Secret, String),
    hash: Duration,
    rounds: usize,
    concurrency: String,
}

impl Bench {
    /// Interleaved rounds of curl, flightdeck and flightdeck without hashing
    /// against a fresh simulator; prints the medians.
    fn scenario(&self, rt: &tokio::runtime::Runtime, link: Option<(u64, &str)>) {
        let (private, public) = &self.key;
        let mut cfg = SimConfig::new("BENCH12345", Some("bench-issuer"), public);
        cfg.processing_delay = Duration::from_secs(3600);
        cfg.link_bytes_per_sec = link.map(|l| l.0);
        // Keep received bytes in memory-backed storage where there is some, so
        // disk writeback on this machine does not decide the figures.
        let shm = std::path::Path::new("/dev/shm");
        if shm.is_dir() {
            cfg.spool_dir = Some(shm.to_path_buf());
        }
        let sim = rt
            .block_on(simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap()))
            .unwrap();
        let base = sim.base_url.clone();
        let tag = if link.is_some() { "l" } else { "u" };
        let upload = |build: &str, checksum: &str| {
            // Another name for the same bytes; the simulator is cleared between runs.
            let file = self.dir.join(format!("Big{tag}{build}.ipa"));
            std::fs::hard_link(&self.ipa, &file).ok();
            let log = self.dir.join(format!("flightdeck{tag}{build}.log"));
            let (run, ok) = measure(
                Command::new(
                    std::env::var_os("FLIGHTDECK_BENCH_BIN")
                        .unwrap_or_else(|| env!("CARGO_BIN_EXE_flightdeck").into()),
                )
                .args(["--ci", "none", "upload"])
                .arg(&file)
                .args([
                    "--app-id",
                    simulator::state::DEMO_APP_ID,
                    "--checksum",
                    checksum,
                    "--skip-if-exists",
                ])
                .args(["--concurrency", &self.concurrency])
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
            run
        };
        let curl_run = || {
            let (run, ok) = measure(
                Command::new("curl")
                    .args(["-sS", "-o", "/dev/null", "-T"])
                    .arg(&self.ipa)
                    .arg(format!("{base}/_sim/sink"))
                    .stdout(Stdio::null()),
            );
            assert!(ok, "curl failed");
            run
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
        let (mut fds, mut sends, mut curls) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..self.rounds {
            curls.push(curl_run());
            free();
            fds.push(upload(&format!("a{round}"), "SHA_256"));
            free();
            sends.push(upload(&format!("b{round}"), "NONE"));
            free();
        }
        rt.block_on(sim.stop());
        self.report(link.map(|l| l.1), fds, sends, curls);
    }

    fn report(&self, link: Option<&str>, fds: Vec<Run>, sends: Vec<Run>, curls: Vec<Run>) {
        let median = |mut v: Vec<Run>| {
            v.sort_by_key(|x| x.wall);
            v[v.len() / 2]
        };
        let rss_kib = fds.iter().map(|x| x.rss).max().unwrap_or(0);
        let (fd, fd_send, curl) = (median(fds), median(sends), median(curls));
        let (size, hash) = (self.size, self.hash);
        let parts = size.div_ceil(8 << 20);
        let mib_s = |d: Duration| size as f64 / MIB / d.as_secs_f64();
        println!(
            "upload benchmark, {}: {:.0} MiB artifact, {parts} parts of 8 MiB, {} at once, median of {} interleaved rounds",
            match link {
                Some(l) => format!("loopback through a simulated {l} uplink"),
                None => "raw loopback (client and simulator share the cores)".to_string(),
            },
            size as f64 / MIB,
            self.concurrency,
            self.rounds
        );
        let line = |label: &str, r: &Run| {
            println!(
                "  {label:<26} wall {:>6.2} s  {:>7.1} MiB/s  CPU {:.2} s (simulator {:.2} s)",
                r.wall.as_secs_f64(),
                mib_s(r.wall),
                r.cpu,
                r.server
            )
        };
        line("flightdeck upload", &fd);
        line("flightdeck --checksum NONE", &fd_send);
        line("curl -T (raw sink)", &curl);
        println!(
            "  {:<26} wall {:>6.2} s  {:>7.1} MiB/s",
            "sha256 alone",
            hash.as_secs_f64(),
            mib_s(hash)
        );
        println!(
            "  flightdeck peak RSS {:.1} MiB (target <= 64)",
            rss_kib as f64 / 1024.0
        );
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "  ratio flightdeck / curl                      {:.2}  (target <= 1.00)",
            ratio(fd.wall, curl.wall)
        );
        println!(
            "  ratio flightdeck --checksum NONE / curl      {:.2}  (the send path alone)",
            ratio(fd_send.wall, curl.wall)
        );
        println!(
            "  ratio flightdeck / max(hash, curl)           {:.2}  (target <= 1.10)",
            ratio(fd.wall, hash.max(curl.wall))
        );
        println!(
            "  ratio flightdeck / max(hash, own send)       {:.2}  (own send = --checksum NONE)",
            ratio(fd.wall, hash.max(fd_send.wall))
        );
        println!(
            "  (flightdeck's wall time includes start-up, auth, the API calls and the commit)"
        );
    }
}
