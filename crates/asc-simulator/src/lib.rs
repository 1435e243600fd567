//! The embedded App Store Connect simulator: a real HTTP server (axum) that
//! follows Apple's OpenAPI spec, for the tests, the demo, the benchmarks, and
//! users rehearsing a release pipeline offline.
//!
//! It is written from the spec, not from flightdeck's client: it has its own
//! JSON rendering, validates every request body against Apple's schemas
//! (`openapi`), checks every response it sends against them too (violations
//! are recorded and tests assert there are none), verifies ES256 tokens,
//! keeps a per-key hourly request budget, serves presigned-style upload part
//! URLs, processes uploads for real (opening the .ipa/.pkg), delivers signed
//! webhooks, and injects faults chosen by a seed.
//!
//! It imports nothing from flightdeck (the compiler enforces it: this crate
//! does not depend on it): its own archive reader, JSON:API encoding and JWT
//! checks, so a bug on one side cannot hide behind the same code on the other.

mod archive;
pub mod faults;
pub mod feedback_seed;
pub mod fixture;
mod ids;
pub mod jsonapi;
pub mod link;
mod middleware;
pub mod openapi;
mod processing;
mod routes;
pub mod state;
mod webhooks;

use axum::Router;
use faults::{FaultInjector, Faults};
use serde::{Deserialize, Serialize};
use state::State;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How the simulator behaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimConfig {
    /// The API key it accepts: key id, issuer (None = individual key), public key PEM.
    pub key_id: String,
    pub issuer_id: Option<String>,
    pub public_key_pem: String,
    /// Bytes per upload operation (part).
    pub part_size: u64,
    /// Time an upload spends in PROCESSING after the commit.
    #[serde(with = "millis")]
    pub processing_delay: Duration,
    /// Time the build spends in PROCESSING after the upload completes.
    #[serde(with = "millis")]
    pub build_processing_delay: Duration,
    /// Validity of upload part URLs.
    #[serde(with = "millis")]
    pub url_ttl: Duration,
    /// Requests per key per rolling hour.
    pub rate_limit_per_hour: u64,
    /// Create one crash and one screenshot submission for each build that becomes VALID.
    pub seed_feedback: bool,
    /// Approve beta review submissions after this long (None: they stay WAITING_FOR_REVIEW).
    #[serde(with = "opt_millis")]
    pub auto_approve_review: Option<Duration>,
    pub faults: Faults,
    /// Where uploaded bytes are kept (default: the system temp directory).
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Leave `relationships.build` out of build uploads (allowed by the spec;
    /// clients must then find the build themselves).
    #[serde(default)]
    pub omit_build_links: bool,
    /// Bandwidth of the link that all part uploads share, in bytes per
    /// second (None: as fast as loopback goes).
    #[serde(default)]
    pub link_bytes_per_sec: Option<u64>,
    /// More API keys it accepts besides the main one (which has every role),
    /// each with its own roles: a key without ADMIN or APP_MANAGER gets 403 on
    /// TestFlight resources, as App Store Connect answers.
    #[serde(default)]
    pub keys: Vec<SimKey>,
}

/// An API key the simulator accepts, with the App Store Connect roles it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimKey {
    pub key_id: String,
    /// None: an individual key (`sub: "user"`).
    pub issuer_id: Option<String>,
    pub public_key_pem: String,
    /// ADMIN, APP_MANAGER, DEVELOPER, MARKETING, SALES, FINANCE, ...
    pub roles: Vec<String>,
}

impl SimKey {
    /// Roles that may read and manage TestFlight (beta groups, testers, review).
    pub const TESTFLIGHT_ROLES: [&str; 2] = ["ADMIN", "APP_MANAGER"];

    pub fn may_use_testflight(&self) -> bool {
        self.roles
            .iter()
            .any(|r| Self::TESTFLIGHT_ROLES.contains(&r.as_str()))
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

impl SimConfig {
    pub fn new(key_id: &str, issuer_id: Option<&str>, public_key_pem: &str) -> Self {
        Self {
            key_id: key_id.into(),
            issuer_id: issuer_id.map(str::to_string),
            public_key_pem: public_key_pem.into(),
            part_size: 8 * 1024 * 1024,
            processing_delay: Duration::from_millis(500),
            build_processing_delay: Duration::ZERO,
            url_ttl: Duration::from_secs(7 * 24 * 3600),
            rate_limit_per_hour: 3600,
            seed_feedback: false,
            auto_approve_review: None,
            faults: Faults::default(),
            spool_dir: None,
            omit_build_links: false,
            link_bytes_per_sec: None,
            keys: Vec::new(),
        }
    }

    /// Accept one more API key, holding only `roles`.
    pub fn add_key(
        &mut self,
        key_id: &str,
        issuer_id: Option<&str>,
        public_key_pem: &str,
        roles: &[&str],
    ) {
        self.keys.push(SimKey {
            key_id: key_id.into(),
            issuer_id: issuer_id.map(str::to_string),
            public_key_pem: public_key_pem.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        });
    }

    /// The key with this id: the main key (every role) or one of `keys`.
    pub fn key(&self, key_id: &str) -> Option<SimKey> {
        if key_id == self.key_id {
            return Some(SimKey {
                key_id: self.key_id.clone(),
                issuer_id: self.issuer_id.clone(),
                public_key_pem: self.public_key_pem.clone(),
                roles: vec!["ADMIN".into()],
            });
        }
        self.keys.iter().find(|k| k.key_id == key_id).cloned()
    }
}

/// The simulator's shared state.
pub struct Sim {
    pub config: Mutex<SimConfig>,
    pub state: Mutex<State>,
    pub faults: FaultInjector,
    pub base_url: String,
    pub spool: PathBuf,
    /// Signs upload part URLs.
    pub url_secret: String,
    /// The network in front of the part uploads.
    pub link: link::Link,
    clock_offset: AtomicI64,
    http: reqwest::Client,
    _spool_guard: Option<tempfile::TempDir>,
}

impl Sim {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn cfg(&self) -> SimConfig {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The simulator's "now" (tests move it forward to age tokens and URLs).
    pub fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
            + jiff::SignedDuration::from_secs(self.clock_offset.load(Ordering::SeqCst))
    }

    pub fn advance_clock(&self, secs: i64) {
        self.clock_offset.fetch_add(secs, Ordering::SeqCst);
    }

    /// Schema violations seen in requests and responses so far.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }
}

/// A running simulator.
pub struct Handle {
    pub addr: SocketAddr,
    pub base_url: String,
    pub sim: Arc<Sim>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Handle {
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Bind and serve in the background. `listen` may use port 0.
pub async fn spawn(config: SimConfig, listen: SocketAddr) -> std::io::Result<Handle> {
    let omit_build_links = config.omit_build_links;
    let link = link::Link::new(config.link_bytes_per_sec);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let mut spool = tempfile::Builder::new();
    spool.prefix("flightdeck-sim-");
    let guard = match &config.spool_dir {
        Some(dir) => spool.tempdir_in(dir)?,
        None => spool.tempdir()?,
    };
    let sim = Arc::new(Sim {
        faults: FaultInjector::new(config.faults.clone()),
        config: Mutex::new(config),
        state: Mutex::new({
            let mut st = State::seeded();
            st.omit_build_links = omit_build_links;
            st
        }),
        base_url: base_url.clone(),
        spool: guard.path().to_path_buf(),
        url_secret: ids::random_hex(16),
        link,
        clock_offset: AtomicI64::new(0),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(std::io::Error::other)?,
        _spool_guard: Some(guard),
    });
    let app = router(sim.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app.into_make_service())
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(Handle {
        addr,
        base_url,
        sim,
        shutdown: Some(tx),
        task: Some(task),
    })
}

pub fn router(sim: Arc<Sim>) -> Router {
    routes::router(sim)
}
