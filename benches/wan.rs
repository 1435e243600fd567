//! WAN upload benchmark: the release `flightdeck upload` against the
//! simulator through an emulated uplink (`wan-link`: a real rate, RTT,
//! bottleneck queue and loss, with the kernel's TCP end to end), next to
//! `curl -T` of the same bytes through the same link, so the figures say what
//! a CI runner far from Apple's upload hosts gets, which loopback cannot.
//!
//! Run (as root, needs /dev/net/tun): `cargo bench --bench wan`. Prints per
//! profile every run, the median wall time, MiB/s, the ratio to the ideal
//! time (bytes x 8 / rate) and the bound 1.10 x (ideal + 10 RTT), and the part
//! timings (slowest part vs median), then a summary table.
//! Finds the tool in `WAN_LINK`, else `../shared/tools/wan-link` beside the
//! repository, else PATH; skips with a message when it cannot run.
//! Also: FLIGHTDECK_WAN_RUNS (default 3), FLIGHTDECK_WAN_PROFILES (names to
//! keep, comma-separated, e.g. `400/60,1000/100`), FLIGHTDECK_WAN_PARTS (part
//! sizes in MiB, default `8,5,32`), FLIGHTDECK_BENCH_CONCURRENCY (default 4),
//! FLIGHTDECK_WAN_LIMIT_SECS (a run's time limit, default 90; a run stopped
//! there shows as `>90`), FLIGHTDECK_BENCH_BIN (another flightdeck binary),
//! FLIGHTDECK_UPLOAD_TUNING (passed on: techniques to switch off),
//! FLIGHTDECK_WAN_LOGS (a directory that keeps every run's stderr log).

use asc_simulator::fixture::{AppSpec, write_ipa};
use asc_simulator::{self as simulator, SimConfig, state::DEMO_BUNDLE_ID};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;
/// No run may take longer than this by default (the slowest ideal is about
/// 5.4 s; curl's single stream under loss can take minutes).
const RUN_LIMIT_SECS: u64 = 90;

/// One emulated uplink.
struct Profile {
    name: &'static str,
    mbit: f64,
    rtt_ms: f64,
    loss_pct: f64,
    mib: u64,
}

const PROFILES: &[Profile] = &[
    Profile {
        name: "100/20",
        mbit: 100.0,
        rtt_ms: 20.0,
        loss_pct: 0.0,
        mib: 64,
    },
    Profile {
        name: "400/60",
        mbit: 400.0,
        rtt_ms: 60.0,
        loss_pct: 0.0,
        mib: 256,
    },
    Profile {
        name: "1000/100",
        mbit: 1000.0,
        rtt_ms: 100.0,
        loss_pct: 0.0,
        mib: 256,
    },
    Profile {
        name: "400/60+loss",
        mbit: 400.0,
        rtt_ms: 60.0,
        loss_pct: 0.5,
        mib: 256,
    },
];

impl Profile {
    fn describe(&self) -> String {
        let loss = if self.loss_pct > 0.0 {
            format!(", {}% loss", self.loss_pct)
        } else {
            String::new()
        };
        format!("{} Mbit/s, RTT {} ms{loss}", self.mbit, self.rtt_ms)
    }

    fn ideal(&self, bytes: u64) -> f64 {
        bytes as f64 * 8.0 / (self.mbit * 1e6)
    }

    /// The target: 1.10 x (ideal + 10 round trips).
    fn bound(&self, bytes: u64) -> f64 {
        1.10 * (self.ideal(bytes) + 10.0 * self.rtt_ms / 1000.0)
    }
}

/// One command's run through the link.
#[derive(Clone)]
struct Run {
    wall: f64,
    /// The emulator said it ran late: the timing is inflated.
    late: bool,
    /// Stopped at the time limit: `wall` is a lower bound.
    timed_out: bool,
    /// flightdeck's per-part send times (seconds), from its debug log.
    parts: Vec<f64>,
    load: f64,
}

/// Why the benchmark cannot run here, if it cannot.
fn find_wan_link() -> Result<PathBuf, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root (wan-link creates a network namespace and TUN devices)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Err("no /dev/net/tun".into());
    }
    if Command::new("curl").arg("--version").output().is_err() {
        return Err("curl not found (the comparison runs curl -T)".into());
    }
    if let Some(p) = std::env::var_os("WAN_LINK") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("WAN_LINK={} is not a file", p.display()))
        };
    }
    // ../shared beside the repository (or beside a parent: git worktrees).
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(beside) = repo
        .ancestors()
        .skip(1)
        .take(3)
        .map(|d| d.join("shared/tools/wan-link"))
        .find(|p| p.is_file())
    {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("wan-link"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            "wan-link not found (set WAN_LINK, or keep shared/tools beside the repository)".into()
        })
}

fn load_avg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

struct Bench {
    wan_link: PathBuf,
    dir: PathBuf,
    key: (flightdeck::secret::Secret, String),
    concurrency: String,
    sim: simulator::Handle,
    count: usize,
    /// Seconds a run may take.
    limit: u64,
}

impl Bench {
    /// `COMMAND` behind the profile's link; its wall time from wan-link's stats.
    fn through_link(&mut self, p: &Profile, cmd: &[&std::ffi::OsStr], log: &Path) -> Run {
        self.count += 1;
        let stats = self.dir.join(format!("stats{}.json", self.count));
        let load = load_avg();
        let started = Instant::now();
        let status = Command::new(&self.wan_link)
            .args([
                "--mbit",
                &p.mbit.to_string(),
                "--rtt-ms",
                &p.rtt_ms.to_string(),
            ])
            .args(["--loss", &p.loss_pct.to_string()])
            .args(["--seed", &self.count.to_string()])
            .arg("--stats")
            .arg(&stats)
            .arg("--")
            // The limit acts inside the link, so wan-link ends as usual.
            .args(["timeout", "-s", "TERM", &self.limit.to_string()])
            .args(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .status()
            .expect("run wan-link");
        let outer = started.elapsed().as_secs_f64();
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(keep) = std::env::var_os("FLIGHTDECK_WAN_LOGS") {
            let name = format!("run{}-{}.log", self.count, p.name.replace('/', "-"));
            let _ = std::fs::create_dir_all(&keep);
            let _ = std::fs::write(Path::new(&keep).join(name), &text);
        }
        let timed_out = status.code() == Some(124);
        assert!(
            status.success() || timed_out,
            "{:?} through wan-link failed ({status}):\n{text}",
            cmd
        );
        let json: serde_json::Value = std::fs::read_to_string(&stats)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        if timed_out {
            println!("  (a run stopped at the {} s limit)", self.limit);
        }
        Run {
            wall: if timed_out {
                self.limit as f64
            } else {
                json["wall_s"].as_f64().unwrap_or(outer)
            },
            late: json["emulator_ran_late"].as_bool().unwrap_or(false),
            timed_out,
            parts: part_times(&text),
            load,
        }
    }

    fn curl(&mut self, p: &Profile, ipa: &Path) -> Run {
        let url = format!("{}/_sim/sink", self.sim.base_url);
        let log = self.dir.join("curl.log");
        let args: Vec<&std::ffi::OsStr> = vec![
            "curl".as_ref(),
            "-sS".as_ref(),
            "-o".as_ref(),
            "/dev/null".as_ref(),
            "-T".as_ref(),
            ipa.as_os_str(),
            url.as_ref(),
        ];
        let run = self.through_link(p, &args, &log);
        self.free();
        run
    }

    fn flightdeck(&mut self, p: &Profile, ipa: &Path, part_mib: u64) -> Run {
        self.sim.sim.config.lock().unwrap().part_size = part_mib << 20;
        // Another name for the same bytes; the simulator is cleared between runs.
        let file = self.dir.join(format!("Big{}.ipa", self.count));
        std::fs::hard_link(ipa, &file).unwrap();
        let bin = std::env::var_os("FLIGHTDECK_BENCH_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_flightdeck").into());
        let log = self.dir.join("flightdeck.log");
        let (private, _) = &self.key;
        let tuning = std::env::var("FLIGHTDECK_UPLOAD_TUNING").unwrap_or_default();
        let env = [
            ("FLIGHTDECK_UPLOAD_TUNING", tuning.as_str()),
            ("ASC_API_BASE_URL", self.sim.base_url.as_str()),
            ("ASC_KEY_ID", "BENCH12345"),
            ("ASC_ISSUER_ID", "bench-issuer"),
            ("ASC_PRIVATE_KEY", private.expose()),
            ("FLIGHTDECK_LOG", "info,flightdeck::upload::parts=debug"),
        ];
        // `env -i` so nothing of the caller's environment changes the run.
        let mut args: Vec<std::ffi::OsString> = vec!["env".into(), "-i".into()];
        args.extend(env.iter().map(|(k, v)| format!("{k}={v}").into()));
        args.push(bin);
        for a in ["--ci", "none", "upload"] {
            args.push(a.into());
        }
        args.push(file.clone().into());
        for a in [
            "--app-id",
            simulator::state::DEMO_APP_ID,
            "--skip-if-exists",
            "--concurrency",
            &self.concurrency,
        ] {
            args.push(a.into());
        }
        let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        let run = self.through_link(p, &refs, &log);
        let _ = std::fs::remove_file(&file);
        self.free();
        run
    }

    fn free(&self) {
        let mut st = self.sim.sim.lock();
        for f in st.files.values() {
            let _ = std::fs::remove_file(&f.spool);
        }
        st.files.clear();
        st.uploads.clear();
        let _ = std::fs::remove_file(self.sim.sim.spool.join("sink.bin"));
    }
}

/// `part N sent in S s` lines of flightdeck's debug log.
fn part_times(log: &str) -> Vec<f64> {
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find("sent in ")? + 8..];
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

/// The figures of one tool on one profile.
struct Row {
    label: String,
    runs: Vec<Run>,
}

impl Row {
    fn median_wall(&self) -> f64 {
        median(&mut self.runs.iter().map(|r| r.wall).collect::<Vec<_>>())
    }
}

fn print_profile(p: &Profile, bytes: u64, rows: &[Row]) {
    let (ideal, bound) = (p.ideal(bytes), p.bound(bytes));
    println!(
        "\n{}: {:.0} MiB, ideal {ideal:.2} s, bound 1.10 x (ideal + 10 RTT) = {bound:.2} s",
        p.describe(),
        bytes as f64 / MIB
    );
    println!(
        "  {:<18} {:<30} {:>7} {:>7} {:>7} {:>6}  parts: median / slowest (s)",
        "", "runs (s; * = emulator late)", "median", "MiB/s", "x ideal", "bound"
    );
    for row in rows {
        let runs: Vec<String> = row
            .runs
            .iter()
            .map(|r| {
                let over = if r.timed_out { ">" } else { "" };
                let late = if r.late { "*" } else { "" };
                format!("{over}{:.2}{late}", r.wall)
            })
            .collect();
        let m = row.median_wall();
        let parts: Vec<String> = row
            .runs
            .iter()
            .filter(|r| !r.parts.is_empty())
            .map(|r| {
                let mut t = r.parts.clone();
                let slowest = t.iter().copied().fold(0.0, f64::max);
                format!("{:.2}/{:.2}", median(&mut t), slowest)
            })
            .collect();
        println!(
            "  {:<18} {:<30} {m:>7.2} {:>7.1} {:>7.2} {:>6}  {}",
            row.label,
            runs.join(" "),
            bytes as f64 / MIB / m,
            m / ideal,
            if m <= bound { "ok" } else { "OVER" },
            parts.join("  ")
        );
    }
    let loads: Vec<String> = rows
        .iter()
        .flat_map(|r| r.runs.iter())
        .map(|r| format!("{:.1}", r.load))
        .collect();
    println!("  load average at each run: {}", loads.join(" "));
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let wan_link = match find_wan_link() {
        Ok(p) => p,
        Err(why) => {
            println!("wan benchmark skipped: {why}");
            return;
        }
    };
    let var = |name: &str| std::env::var(name).ok();
    let runs: usize = var("FLIGHTDECK_WAN_RUNS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let keep: Option<Vec<String>> =
        var("FLIGHTDECK_WAN_PROFILES").map(|v| v.split(',').map(str::to_string).collect());
    let part_sizes: Vec<u64> = var("FLIGHTDECK_WAN_PARTS")
        .unwrap_or_else(|| "8,5,32".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = flightdeck::auth::key::generate();
    let mut cfg = SimConfig::new("BENCH12345", Some("bench-issuer"), &key.1);
    cfg.processing_delay = Duration::from_secs(3600);
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        cfg.spool_dir = Some(shm.to_path_buf());
    }
    let sim = rt
        .block_on(simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let _guard = rt.enter();
    let mut bench = Bench {
        wan_link,
        dir: dir.path().to_path_buf(),
        key,
        concurrency: var("FLIGHTDECK_BENCH_CONCURRENCY").unwrap_or_else(|| "4".into()),
        sim,
        count: 0,
        limit: var("FLIGHTDECK_WAN_LIMIT_SECS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(RUN_LIMIT_SECS),
    };
    println!(
        "wan upload benchmark: flightdeck upload (--concurrency {}) and curl -T through {}, {runs} interleaved rounds",
        bench.concurrency,
        bench.wan_link.display()
    );
    let mut summary = Vec::new();
    for p in PROFILES {
        if keep
            .as_ref()
            .is_some_and(|k| !k.iter().any(|n| n == p.name))
        {
            continue;
        }
        let ipa = dir.path().join(format!("Wan{}.ipa", p.mib));
        if !ipa.exists() {
            let mut spec = AppSpec::new(DEMO_BUNDLE_ID, "1.0", "1");
            spec.payload_bytes = p.mib << 20;
            write_ipa(&ipa, &spec).unwrap();
        }
        let bytes = std::fs::metadata(&ipa).unwrap().len();
        let mut rows = vec![Row {
            label: "curl -T".into(),
            runs: vec![],
        }];
        rows.extend(part_sizes.iter().map(|s| Row {
            label: format!("flightdeck {s} MiB"),
            runs: vec![],
        }));
        for _ in 0..runs {
            rows[0].runs.push(bench.curl(p, &ipa));
            for (i, s) in part_sizes.iter().enumerate() {
                let run = bench.flightdeck(p, &ipa, *s);
                rows[i + 1].runs.push(run);
            }
        }
        print_profile(p, bytes, &rows);
        summary.push((p, bytes, rows));
    }
    print_summary(&summary);
    rt.block_on(bench.sim.stop());
}

/// The README's table: median ratio to the ideal time per profile and tool.
fn print_summary(summary: &[(&Profile, u64, Vec<Row>)]) {
    let Some((_, _, first)) = summary.first() else {
        return;
    };
    let labels: Vec<&str> = first.iter().map(|r| r.label.as_str()).collect();
    println!("\nmedian wall time / ideal (bound = 1.10 x (ideal + 10 RTT) / ideal)\n");
    println!("| link | size | {} | bound |", labels.join(" | "));
    println!("|---|---|{}---|", "---|".repeat(labels.len()));
    for (p, bytes, rows) in summary {
        let ideal = p.ideal(*bytes);
        let cells: Vec<String> = rows
            .iter()
            .map(|r| format!("{:.2}", r.median_wall() / ideal))
            .collect();
        println!(
            "| {} | {:.0} MiB | {} | {:.2} |",
            p.describe(),
            *bytes as f64 / MIB,
            cells.join(" | "),
            p.bound(*bytes) / ideal
        );
    }
}
