//! The connections part bodies travel on.
//!
//! flightdeck dials the part connections itself (a hyper client over its own
//! TCP dialer and rustls), for two reasons a generic HTTP client cannot serve:
//!
//! - **Congestion control.** On Linux each part socket asks the kernel for
//!   BBR (`TCP_CONGESTION`). Loss-based CUBIC halves its window on every
//!   random loss, so on a lossy uplink (0.5% loss, 60 ms) a CUBIC stream
//!   moves a few Mbit/s whatever the link's rate; BBR paces at the measured
//!   bottleneck rate instead. When the kernel has no BBR or does not allow
//!   it to this user, the socket keeps the system default, silently.
//! - **One TCP stream per part.** Parts go over HTTP/1.1 only, so parallel
//!   parts are parallel TCP streams (each with its own window), never
//!   streams multiplexed onto one HTTP/2 connection.
//!
//! With a proxy configured (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`) parts
//! go through the shared reqwest client instead, which honours it.

use super::parts::Part;
use bytes::Bytes;
use futures_util::Stream;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpSocket, TcpStream};

/// A part body: chunks of the file as they are read.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// The congestion control asked for on part sockets.
pub const CONGESTION_CONTROL: &str = "bbr";
/// No byte of the body went out and no answer came for this long: the attempt fails.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// What of an error answer is kept for the message.
const ANSWER_TEXT: usize = 400;

type Direct = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<Dialer>,
    http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>,
>;

/// How parts reach the upload hosts.
#[derive(Clone)]
pub struct Wire {
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    Direct(Box<Direct>),
    /// Through the shared client (a proxy is configured, or tests ask for it).
    Shared(reqwest::Client),
}

/// The upload server's answer to one part attempt.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The start of the body, read only when the status is not a success.
    pub text: String,
}

impl Wire {
    /// Dial part connections directly (BBR when `bbr`), unless the
    /// environment names a proxy: then `shared` carries them.
    pub fn new(shared: reqwest::Client, bbr: bool) -> Self {
        if proxy_configured() {
            return Self::shared(shared);
        }
        match direct(bbr) {
            Ok(client) => Self {
                inner: Inner::Direct(Box::new(client)),
            },
            Err(e) => {
                tracing::debug!("part connections go through the shared client: {e}");
                Self::shared(shared)
            }
        }
    }

    /// Parts through `client` (reqwest), as with a proxy.
    pub fn shared(client: reqwest::Client) -> Self {
        Self {
            inner: Inner::Shared(client),
        }
    }

    /// Send one part as its upload operation says, with `body` (its bytes).
    /// Err is a transport failure (connection, timeout), worded for a user.
    pub async fn send(&self, part: &Part, body: BodyStream) -> Result<Answer, String> {
        match &self.inner {
            Inner::Shared(client) => shared_send(client, part, body).await,
            Inner::Direct(client) => direct_send(client, part, body).await,
        }
    }
}

/// Headers the part request sets itself, whatever the operation lists.
fn own_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization")
        || name.eq_ignore_ascii_case("content-length")
        || name.eq_ignore_ascii_case("host")
}

async fn shared_send(
    client: &reqwest::Client,
    part: &Part,
    body: BodyStream,
) -> Result<Answer, String> {
    let method = reqwest::Method::from_bytes(part.method.as_bytes())
        .map_err(|_| format!("unknown method {}", part.method))?;
    let mut req = client
        .request(method, &part.url)
        .header("content-length", part.length);
    for (k, v) in part.headers.iter().filter(|(k, _)| !own_header(k)) {
        req = req.header(k, v);
    }
    let resp = req
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .map_err(|e| crate::api::error::describe_transport(&e))?;
    let status = resp.status().as_u16();
    let text = if resp.status().is_success() {
        String::new()
    } else {
        let t = resp.text().await.unwrap_or_default();
        t.chars().take(ANSWER_TEXT).collect()
    };
    Ok(Answer { status, text })
}

async fn direct_send(client: &Direct, part: &Part, body: BodyStream) -> Result<Answer, String> {
    use futures_util::TryStreamExt;
    let uri: http::Uri = part
        .url
        .parse()
        .map_err(|e| format!("the part URL is not a URL ({e})"))?;
    let host = uri.host().unwrap_or_default().to_string();
    let method = http::Method::from_bytes(part.method.as_bytes())
        .map_err(|_| format!("unknown method {}", part.method))?;
    // The watchdog: when the body last moved (ms since `start`).
    let start = Instant::now();
    let moved = Arc::new(AtomicU64::new(0));
    let tick = moved.clone();
    let body = body.inspect_ok(move |_| {
        tick.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    });
    let body = http_body_util::StreamBody::new(body.map_ok(hyper::body::Frame::data));
    let mut req = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::CONTENT_LENGTH, part.length)
        .header(http::header::USER_AGENT, crate::api::client::USER_AGENT);
    for (k, v) in part.headers.iter().filter(|(k, _)| !own_header(k)) {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(BodyExt::boxed_unsync(body))
        .map_err(|e| format!("cannot build the part request: {e}"))?;
    let exchange = async {
        let resp = client.request(req).await.map_err(|e| describe(&e, &host))?;
        let status = resp.status();
        let text = if status.is_success() {
            String::new()
        } else {
            let bytes = resp.into_body().collect().await.map(|b| b.to_bytes());
            String::from_utf8_lossy(&bytes.unwrap_or_default())
                .chars()
                .take(ANSWER_TEXT)
                .collect()
        };
        Ok(Answer {
            status: status.as_u16(),
            text,
        })
    };
    let watchdog = async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let idle = start.elapsed().as_millis() as u64 - moved.load(Ordering::Relaxed);
            if Duration::from_millis(idle) > IDLE_TIMEOUT {
                return;
            }
        }
    };
    tokio::select! {
        r = exchange => r,
        () = watchdog => Err(format!(
            "the connection to {host} timed out (nothing moved for {} s)",
            IDLE_TIMEOUT.as_secs()
        )),
    }
}

/// A transport error in a user's words: what failed, and the cause chain.
fn describe(e: &hyper_util::client::legacy::Error, host: &str) -> String {
    use std::error::Error as _;
    let mut causes = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    causes.dedup();
    let what = if e.is_connect() {
        format!("cannot connect to {host}")
    } else {
        format!("the connection to {host} failed")
    };
    if causes.is_empty() {
        format!("{what}: {e}")
    } else {
        format!("{what}: {}", causes.join(": "))
    }
}

fn proxy_configured() -> bool {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()))
}

/// The hyper client over [`Dialer`] and rustls (the platform's roots plus
/// Mozilla's, as the shared client trusts), HTTP/1.1 only.
fn direct(bbr: bool) -> Result<Direct, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned();
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(roots, provider.clone())
            .map_err(|e| format!("TLS roots: {e}"))?;
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(Dialer {
            congestion: bbr.then_some(CONGESTION_CONTROL),
        });
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector),
    )
}

/// Opens part connections: TCP_NODELAY, and the congestion control asked
/// for where the kernel allows it.
#[derive(Clone, Debug)]
pub struct Dialer {
    congestion: Option<&'static str>,
}

impl tower_service::Service<http::Uri> for Dialer {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let congestion = self.congestion;
        Box::pin(async move { dial(&uri, congestion).await.map(TokioIo::new) })
    }
}

async fn dial(uri: &http::Uri, congestion: Option<&str>) -> std::io::Result<TcpStream> {
    use std::io::{Error, ErrorKind};
    let host = uri
        .host()
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "the URL has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    let mut last = Error::new(ErrorKind::NotFound, format!("{host} has no address"));
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.set_nodelay(true)?;
        match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(addr)).await {
            Ok(Ok(stream)) => {
                // After the connect: a route's own congestion control
                // (`ip route ... congctl`) is applied at connect time.
                if let Some(name) = congestion {
                    set_congestion(&stream, name);
                }
                return Ok(stream);
            }
            Ok(Err(e)) => last = e,
            Err(_) => {
                last = Error::new(
                    ErrorKind::TimedOut,
                    format!("connecting to {addr} timed out"),
                )
            }
        }
    }
    Err(last)
}

/// Ask for congestion control `name` on `socket`; the kernel's default stays
/// when it refuses (no such module, or not allowed to this user).
#[cfg(target_os = "linux")]
fn set_congestion(socket: &TcpStream, name: &str) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid socket fd and a pointer/length pair into `name`, which
    // outlives the call; the kernel copies the bytes.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc != 0 {
        static ONCE: std::sync::Once = std::sync::Once::new();
        let why = std::io::Error::last_os_error();
        ONCE.call_once(|| {
            tracing::debug!("part sockets keep the system's congestion control ({name}: {why})")
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_congestion(_: &TcpStream, _: &str) {}

/// The congestion control a connected socket uses (Linux), for tests.
#[cfg(target_os = "linux")]
pub fn congestion_of(stream: &impl std::os::fd::AsRawFd) -> Option<String> {
    let mut buf = [0u8; 16];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: `buf` and `len` are valid for writes of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            buf.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (rc == 0).then(|| {
        let name = &buf[..len as usize];
        let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
        String::from_utf8_lossy(&name[..end]).into_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dialer asks for BBR where the kernel offers it, and a socket
    /// without the ask keeps the default.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_dialer_asks_for_bbr_and_falls_back_silently() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: http::Uri = format!("http://{}/x", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let available =
            std::fs::read_to_string("/proc/sys/net/ipv4/tcp_available_congestion_control")
                .unwrap_or_default();
        let asked = dial(&uri, Some(CONGESTION_CONTROL)).await.unwrap();
        let plain = dial(&uri, None).await.unwrap();
        let default = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
            .unwrap_or_default();
        let allowed = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_allowed_congestion_control")
            .unwrap_or_default();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let may = root || allowed.split_whitespace().any(|c| c == "bbr");
        if may && available.split_whitespace().any(|c| c == "bbr") {
            assert_eq!(congestion_of(&asked).as_deref(), Some("bbr"));
        }
        assert_eq!(congestion_of(&plain).as_deref(), Some(default.trim()));
        // A name the kernel does not know is no error: the default stays.
        let odd = dial(&uri, Some("no-such-cc")).await.unwrap();
        assert_eq!(congestion_of(&odd).as_deref(), Some(default.trim()));
    }

    #[test]
    fn the_request_sets_its_own_length_host_and_no_token() {
        assert!(own_header("Content-Length") && own_header("host"));
        assert!(own_header("Authorization"));
        assert!(!own_header("Content-Type") && !own_header("x-amz-acl"));
    }
}
