//! Test harness: a simulator with a fresh key, a client with fast retries, a
//! reporter whose output can be read back, and artifact fixtures.

use asc_simulator::fixture::{AppSpec, write_ipa};
use asc_simulator::{self as simulator, Handle, SimConfig};
use flightdeck::api::Client;
use flightdeck::api::retry::RetryPolicy;
use flightdeck::auth::{Clock, Issuer, SystemClock, TokenSource, key};
use flightdeck::ci::{Paths, Platform, Reporter};
use flightdeck::context::Ctx;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const KEY_ID: &str = "TEST123456";
pub const ISSUER: &str = "57246542-96fe-1a63-e053-0824d011072a";
pub const APP_ID: &str = asc_simulator::state::DEMO_APP_ID;
pub const BUNDLE: &str = asc_simulator::state::DEMO_BUNDLE_ID;

#[derive(Clone, Default)]
pub struct Buf(pub Arc<Mutex<Vec<u8>>>);
impl Write for Buf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
impl Buf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

pub struct Env {
    pub sim: Handle,
    pub private_pem: String,
    pub dir: tempfile::TempDir,
    pub log: Buf,
}

impl Env {
    pub fn sim(&self) -> &Arc<simulator::Sim> {
        &self.sim.sim
    }

    pub fn ctx(&self) -> Ctx {
        self.ctx_with_clock(Arc::new(SystemClock))
    }

    pub fn ctx_with_clock(&self, clock: Arc<dyn Clock>) -> Ctx {
        let k = key::parse(&self.private_pem).unwrap();
        let tokens = TokenSource::new(KEY_ID, Issuer::Team(ISSUER.into()), &k, clock);
        let api = Client::new(&self.sim.base_url, Arc::new(tokens), fast_retry()).unwrap();
        let reporter = Reporter::new(
            Platform::Local,
            Paths::default(),
            Box::new(self.log.clone()),
        );
        Ctx::new(
            Arc::new(api),
            Arc::new(reporter),
            tokio_util::sync::CancellationToken::new(),
        )
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// An .ipa for the seeded app.
    pub fn ipa(&self, name: &str, version: &str, build: &str, payload: u64) -> PathBuf {
        let p = self.path(name);
        let mut spec = AppSpec::new(BUNDLE, version, build);
        spec.payload_bytes = payload;
        write_ipa(&p, &spec).unwrap();
        p
    }

    /// The environment the binary needs to talk to this simulator.
    pub fn vars(&self) -> Vec<(String, String)> {
        vec![
            ("ASC_API_BASE_URL".into(), self.sim.base_url.clone()),
            ("ASC_KEY_ID".into(), KEY_ID.into()),
            ("ASC_ISSUER_ID".into(), ISSUER.into()),
            ("ASC_PRIVATE_KEY".into(), self.private_pem.clone()),
        ]
    }

    pub fn violations(&self) -> Vec<String> {
        self.sim().violations()
    }

    /// Fail the test if the simulator saw anything off-spec.
    pub fn assert_conformant(&self) {
        let v = self.violations();
        assert!(v.is_empty(), "schema violations: {v:#?}");
    }

    pub fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.sim()
            .lock()
            .log
            .iter()
            .filter(|l| l.method == method && l.path.starts_with(path_prefix))
            .count()
    }
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 8,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        retry_after_cap: Duration::from_millis(200),
        budget: Duration::from_secs(10),
        jitter: false,
    }
}

pub fn config(public: &str) -> SimConfig {
    let mut c = SimConfig::new(KEY_ID, Some(ISSUER), public);
    c.part_size = 64 * 1024;
    c.processing_delay = Duration::from_millis(100);
    c
}

pub async fn start() -> Env {
    start_with(|_| {}).await
}

pub async fn start_with(f: impl FnOnce(&mut SimConfig)) -> Env {
    flightdeck::auth::install_crypto_provider();
    let (private, public) = key::generate();
    let mut cfg = config(&public);
    f(&mut cfg);
    let sim = simulator::spawn(cfg, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    Env {
        sim,
        private_pem: private.expose().to_string(),
        dir: tempfile::tempdir().unwrap(),
        log: Buf::default(),
    }
}

pub fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// Wait (real time, bounded) until `f` is true.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The outputs an `upload --wait` sets, by their contract names.
pub const UPLOAD_AND_WAIT_OUTPUTS: &[&str] = &[
    "build-upload-id",
    "build-id",
    "app-id",
    "version",
    "build-number",
    "platform",
    "upload-state",
    "processing-state",
    "bytes-uploaded",
    "upload-seconds",
    "processing-seconds",
];

/// A stand-in `envman` that records each call's arguments: (its directory, the record file).
pub fn fake_envman(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let record = dir.join("envman.log");
    std::fs::write(
        bin.join("envman"),
        format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\n", record.display()),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("envman"), std::fs::Permissions::from_mode(0o755)).unwrap();
    (bin, record)
}

/// A real `redis-server` on a free loopback port, in a temp dir, with no
/// persistence; killed when dropped. `.ci/run` installs the Debian package.
pub struct RedisServer {
    child: std::process::Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is needed (Debian package redis-server; .ci/run installs it)");
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
            _dir: dir,
        };
        for _ in 0..250 {
            if redis_answers(port).await {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("redis-server did not come up on port {port}");
    }
}

async fn redis_answers(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").await.is_ok()
        && s.read_exact(&mut buf).await.is_ok()
        && &buf == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
