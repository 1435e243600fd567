//! Sending the file's parts exactly as the upload operations say.
//!
//! One reader thread reads the file once, in order: every chunk feeds the
//! whole-file digests and, when its part still needs sending, that part's
//! bounded channel, which is the streamed body of the part's first attempt.
//! Parts are sent several at once (parts start in file order, so the reader
//! never waits on a part that cannot start). Memory is bounded by the
//! channels, whatever the file size. A failed part is retried on its own,
//! re-read from disk; an expired URL is renewed for the parts still missing.

use crate::api::models::UploadOperation;
use crate::error::Error;
use bytes::Bytes;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

pub const CHUNK: usize = 1 << 20;
/// Bytes of file data read ahead of the network, across all parts: the
/// reader takes one permit per chunk, the chunk's body stream gives it back.
pub const WINDOW: usize = 24 << 20;

/// A chunk of the file and its share of the read-ahead window.
type Chunk = (Bytes, tokio::sync::OwnedSemaphorePermit);
const PART_ATTEMPTS: usize = 8;

/// One part to send.
#[derive(Debug, Clone)]
pub struct Part {
    pub number: u64,
    pub offset: u64,
    pub length: u64,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expiration: Option<jiff::Timestamp>,
    /// Already received by the server (resumed uploads).
    pub done: bool,
}

impl Part {
    pub fn from_operation(op: &UploadOperation, index: usize) -> Result<Self, Error> {
        let bad = |what: &str| {
            Error::transient(format!(
                "App Store Connect returned an upload operation without {what} (part {})",
                index + 1
            ))
        };
        Ok(Self {
            number: op.part_number.unwrap_or(index as u64 + 1),
            offset: op.offset.ok_or_else(|| bad("an offset"))?,
            length: op
                .length
                .filter(|l| *l > 0)
                .ok_or_else(|| bad("a length"))?,
            method: op.method.clone().unwrap_or_else(|| "PUT".into()),
            url: op.url.clone().ok_or_else(|| bad("a URL"))?,
            headers: op
                .request_headers
                .iter()
                .flatten()
                .filter_map(|h| Some((h.name.clone()?, h.value.clone().unwrap_or_default())))
                .collect(),
            expiration: op.expiration.as_deref().and_then(|e| e.parse().ok()),
            done: op.entity_tag.as_deref().is_some_and(|t| !t.is_empty()),
        })
    }
}

/// Whether the parts tile the file exactly: in order, no gap, no overlap.
pub fn covers(parts: &[Part], size: u64) -> bool {
    let mut sorted: Vec<&Part> = parts.iter().collect();
    sorted.sort_by_key(|p| p.offset);
    let mut next = 0;
    for p in sorted {
        if p.offset != next {
            return false;
        }
        next += p.length;
    }
    next == size
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub sha256: Option<String>,
    pub md5: Option<String>,
}

/// Which whole-file digests to compute while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hashing {
    pub sha256: bool,
    pub md5: bool,
}

/// Renews part URLs (by re-reading the reservation); part number -> fresh part.
pub type Renew = Arc<
    dyn Fn() -> futures_util::future::BoxFuture<'static, Result<HashMap<u64, Part>, Error>>
        + Send
        + Sync,
>;

/// Progress counters shared with the progress reporter.
#[derive(Debug, Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub total: AtomicU64,
}

pub struct Sender {
    pub http: reqwest::Client,
    pub file: PathBuf,
    pub concurrency: usize,
    pub hashing: Hashing,
    pub renew: Renew,
    pub progress: Arc<Progress>,
    pub cancel: tokio_util::sync::CancellationToken,
}

impl Sender {
    /// Send every part not yet done and return the whole-file digests.
    pub async fn run(&self, mut parts: Vec<Part>, size: u64) -> Result<Digests, Error> {
        parts.sort_by_key(|p| p.offset);
        let single_pass = covers(&parts, size);
        let concurrency = self.concurrency.max(1);
        let window = Arc::new(tokio::sync::Semaphore::new(WINDOW / CHUNK));
        // The window bounds memory; a part's channel only needs to hold its share of it.
        let capacity = WINDOW / CHUNK;
        let todo: Vec<Part> = parts.iter().filter(|p| !p.done).cloned().collect();
        self.progress
            .total
            .store(todo.iter().map(|p| p.length).sum(), Ordering::SeqCst);

        let mut feeds: HashMap<u64, mpsc::Sender<Chunk>> = HashMap::new();
        let mut bodies: HashMap<u64, mpsc::Receiver<Chunk>> = HashMap::new();
        if single_pass {
            for p in &todo {
                let (tx, rx) = mpsc::channel(capacity);
                feeds.insert(p.number, tx);
                bodies.insert(p.number, rx);
            }
        }
        let reader = {
            let (file, hashing) = (self.file.clone(), self.hashing);
            let layout: Vec<(u64, u64, u64)> = parts
                .iter()
                .map(|p| (p.number, p.offset, p.length))
                .collect();
            let handle = tokio::runtime::Handle::current();
            let window = window.clone();
            tokio::task::spawn_blocking(move || {
                read_once(
                    &file,
                    &layout,
                    feeds,
                    hashing,
                    single_pass,
                    &window,
                    &handle,
                )
            })
        };
        let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let renewed = Arc::new(tokio::sync::Mutex::new(
            None::<(tokio::time::Instant, HashMap<u64, Part>)>,
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for p in todo {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| Error::cancelled())?;
            let job = PartJob {
                http: self.http.clone(),
                file: self.file.clone(),
                renew: self.renew.clone(),
                renewed: renewed.clone(),
                progress: self.progress.clone(),
                body: bodies.remove(&p.number),
                part: p,
            };
            let cancel = self.cancel.clone();
            tasks.spawn(async move {
                let _permit = permit;
                tokio::select! {
                    r = job.send() => r,
                    _ = cancel.cancelled() => Err(Error::cancelled()),
                }
            });
            // Fail fast: a part that gave up stops the rest.
            while let Some(done) = tasks.try_join_next() {
                done.map_err(|e| Error::transient(format!("part task failed: {e}")))??;
            }
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done
                .map_err(|e| Error::transient(format!("part task failed: {e}")))
                .and_then(|r| r)
            {
                tasks.abort_all();
                return Err(e);
            }
        }
        reader
            .await
            .map_err(|e| Error::transient(format!("reader failed: {e}")))?
            .map_err(|e| Error::input(format!("{}: {e}", self.file.display())))
    }
}

/// Read the file once, in order: hash every byte, feed each pending part.
fn read_once(
    file: &Path,
    layout: &[(u64, u64, u64)],
    mut feeds: HashMap<u64, mpsc::Sender<Chunk>>,
    hashing: Hashing,
    single_pass: bool,
    window: &Arc<tokio::sync::Semaphore>,
    rt: &tokio::runtime::Handle,
) -> std::io::Result<Digests> {
    use std::io::Read;
    let mut f = std::fs::File::open(file)?;
    // Hashing inline on this thread measured faster than a separate hashing
    // thread on a 2-core runner (less contention); sending runs on the runtime.
    let mut digests = Hasher::new(hashing);
    let mut hash = |b: &[u8]| digests.update(b);
    if !single_pass {
        // Operations that do not tile the file: parts read their own ranges; hash in one sequential pass.
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hash(&buf[..n]);
        }
    } else {
        let pool = Pool::default();
        for (number, _offset, length) in layout {
            let mut left = *length;
            let mut feed = feeds.remove(number);
            while left > 0 {
                // Wait for room in the window only when the chunk goes to the network.
                let permit = match &feed {
                    Some(_) => Some(
                        rt.block_on(window.clone().acquire_owned())
                            .map_err(std::io::Error::other)?,
                    ),
                    None => None,
                };
                let n = CHUNK.min(left as usize);
                let mut chunk = pool.take();
                f.read_exact(&mut chunk.buf[..n])?;
                chunk.len = n;
                let buf = Bytes::from_owner(chunk);
                hash(&buf);
                left -= n as u64;
                if let (Some(tx), Some(permit)) = (&feed, permit)
                    && tx.blocking_send((buf, permit)).is_err()
                {
                    // That part's first attempt ended; it re-reads from disk.
                    feed = None;
                }
            }
        }
    }
    Ok(digests.finish())
}

/// Chunk buffers handed back when the network is done with them, so the
/// reader neither allocates nor clears memory per chunk. The window bounds
/// how many exist at once.
#[derive(Default, Clone)]
struct Pool(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);

impl Pool {
    fn take(&self) -> Pooled {
        let buf = self
            .0
            .lock()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_else(|| vec![0; CHUNK]);
        Pooled {
            buf,
            len: 0,
            pool: self.clone(),
        }
    }
}

/// A chunk of file data in a pooled buffer; `len` bytes of it are valid.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    pool: Pool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Ok(mut free) = self.pool.0.lock() {
            free.push(std::mem::take(&mut self.buf));
        }
    }
}

/// The whole-file digests being computed.
struct Hasher {
    sha: Option<sha2::Sha256>,
    md5: Option<md5::Md5>,
}

impl Hasher {
    fn new(h: Hashing) -> Self {
        use md5::Digest as _;
        Self {
            sha: h.sha256.then(sha2::Sha256::new),
            md5: h.md5.then(md5::Md5::new),
        }
    }

    fn update(&mut self, b: &[u8]) {
        use md5::Digest as _;
        if let Some(h) = self.sha.as_mut() {
            h.update(b);
        }
        if let Some(m) = self.md5.as_mut() {
            m.update(b);
        }
    }

    fn finish(self) -> Digests {
        use md5::Digest as _;
        Digests {
            sha256: self.sha.map(|h| hex::encode(h.finalize())),
            md5: self.md5.map(|m| hex::encode(m.finalize())),
        }
    }
}

/// The most recent renewal of part URLs, shared so parallel parts renew once.
type Renewed = Arc<tokio::sync::Mutex<Option<(tokio::time::Instant, HashMap<u64, Part>)>>>;

struct PartJob {
    http: reqwest::Client,
    file: PathBuf,
    renew: Renew,
    renewed: Renewed,
    progress: Arc<Progress>,
    body: Option<mpsc::Receiver<Chunk>>,
    part: Part,
}

enum Failure {
    Retry(String),
    Expired,
    Fatal(String),
}

impl PartJob {
    async fn send(mut self) -> Result<(), Error> {
        let mut delay = Duration::from_millis(500);
        let mut last = String::new();
        for attempt in 1..=PART_ATTEMPTS {
            if self
                .part
                .expiration
                .is_some_and(|e| e <= jiff::Timestamp::now() + jiff::SignedDuration::from_secs(30))
            {
                self.refresh().await?;
            }
            let counted = Arc::new(AtomicU64::new(0));
            let started = std::time::Instant::now();
            let result = self.attempt(counted.clone()).await;
            match result {
                Ok(()) => {
                    // The WAN benchmark reads these lines for its part timings.
                    tracing::debug!(
                        "part {} sent in {:.3} s (attempt {attempt})",
                        self.part.number,
                        started.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
                Err(f) => {
                    self.progress
                        .sent
                        .fetch_sub(counted.load(Ordering::SeqCst), Ordering::SeqCst);
                    match f {
                        Failure::Fatal(m) => {
                            return Err(Error::rejected(format!(
                                "part {} was refused by the upload server: {m}",
                                self.part.number
                            )));
                        }
                        Failure::Expired => {
                            tracing::warn!(
                                "part {}: upload URL expired; renewing it",
                                self.part.number
                            );
                            self.refresh().await?;
                            last = "URL expired".into();
                        }
                        Failure::Retry(m) => {
                            tracing::warn!(
                                "part {} attempt {attempt}/{PART_ATTEMPTS} failed: {m}; retrying in {:.1}s",
                                self.part.number,
                                delay.as_secs_f64()
                            );
                            last = m;
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(20));
                        }
                    }
                }
            }
        }
        Err(Error::transient(format!(
            "part {} (bytes {}..{}) failed {PART_ATTEMPTS} times; last error: {last}",
            self.part.number,
            self.part.offset,
            self.part.offset + self.part.length
        )))
    }

    async fn refresh(&mut self) -> Result<(), Error> {
        let mut cache = self.renewed.lock().await;
        let fresh = match cache.as_ref() {
            Some((at, map))
                if at.elapsed() < Duration::from_secs(5) && map.contains_key(&self.part.number) =>
            {
                map.clone()
            }
            _ => {
                let map = (self.renew)().await?;
                *cache = Some((tokio::time::Instant::now(), map.clone()));
                map
            }
        };
        match fresh.get(&self.part.number) {
            Some(p) if p.expiration.is_none_or(|e| e > jiff::Timestamp::now()) => {
                self.part.url = p.url.clone();
                self.part.headers = p.headers.clone();
                self.part.expiration = p.expiration;
                Ok(())
            }
            _ => Err(Error::transient(format!(
                "the upload URL of part {} expired and App Store Connect offered no fresh one",
                self.part.number
            ))
            .with_hint("run the same command again: the upload resumes with a new reservation")),
        }
    }

    async fn attempt(&mut self, counted: Arc<AtomicU64>) -> Result<(), Failure> {
        use futures_util::StreamExt;
        let progress = self.progress.clone();
        let count = move |b: &Bytes| {
            progress.sent.fetch_add(b.len() as u64, Ordering::SeqCst);
            counted.fetch_add(b.len() as u64, Ordering::SeqCst);
        };
        let body = match self.body.take() {
            Some(rx) => {
                // A chunk's window permit is returned when the next chunk is
                // asked for: by then the previous one is with the connection.
                let s = futures_util::stream::unfold((rx, None), |(mut rx, _held)| async move {
                    rx.recv()
                        .await
                        .map(|(b, permit)| (Ok::<_, std::io::Error>(b), (rx, Some(permit))))
                });
                reqwest::Body::wrap_stream(s.inspect(move |r| {
                    if let Ok(b) = r {
                        count(b)
                    }
                }))
            }
            None => {
                let s = disk_range(&self.file, self.part.offset, self.part.length)
                    .await
                    .map_err(|e| Failure::Fatal(format!("cannot read the file: {e}")))?;
                reqwest::Body::wrap_stream(s.inspect(move |r| {
                    if let Ok(b) = r {
                        count(b)
                    }
                }))
            }
        };
        let method = reqwest::Method::from_bytes(self.part.method.as_bytes())
            .map_err(|_| Failure::Fatal(format!("unknown method {}", self.part.method)))?;
        let mut req = self
            .http
            .request(method, &self.part.url)
            .header("content-length", self.part.length);
        for (k, v) in &self.part.headers {
            if !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("content-length")
            {
                req = req.header(k, v);
            }
        }
        let resp = req
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Retry(crate::api::client::describe_transport(&e)))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let text: String = resp
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(400)
            .collect();
        let expired = status.as_u16() == 403
            && (text.contains("expired")
                || self
                    .part
                    .expiration
                    .is_some_and(|e| e <= jiff::Timestamp::now()));
        Err(if expired {
            Failure::Expired
        } else if status.is_server_error()
            || status.as_u16() == 408
            || status.as_u16() == 429
            || text.contains("<Code>IncompleteBody</Code>")
            || text.contains("<Code>RequestTimeout</Code>")
        {
            // Object stores answer 400 IncompleteBody / RequestTimeout to a body cut short in transit.
            Failure::Retry(format!("{status}: {text}"))
        } else {
            Failure::Fatal(format!("{status}: {text}"))
        })
    }
}

/// `[offset, offset+length)` of the file as a stream of chunks.
async fn disk_range(
    file: &Path,
    offset: u64,
    length: u64,
) -> std::io::Result<impl futures_util::Stream<Item = std::io::Result<Bytes>> + use<>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::open(file).await?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    Ok(tokio_util::io::ReaderStream::with_capacity(
        f.take(length),
        256 * 1024,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(n: u64, offset: u64, length: u64) -> Part {
        Part {
            number: n,
            offset,
            length,
            method: "PUT".into(),
            url: String::new(),
            headers: vec![],
            expiration: None,
            done: false,
        }
    }

    #[test]
    fn coverage_detects_gaps_and_overlaps() {
        assert!(covers(&[part(2, 10, 5), part(1, 0, 10)], 15));
        assert!(!covers(&[part(1, 0, 10), part(2, 11, 4)], 15));
        assert!(!covers(&[part(1, 0, 10), part(2, 9, 6)], 15));
        assert!(!covers(&[part(1, 0, 10)], 15));
    }

    #[test]
    fn every_read_path_hashes_the_whole_file_and_feeds_the_parts() {
        use sha2::Digest;
        let rt = tokio::runtime::Runtime::new().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let data: Vec<u8> = (0..2 * CHUNK + 12_345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let want = hex::encode(sha2::Sha256::digest(&data));
        let window = Arc::new(tokio::sync::Semaphore::new(WINDOW / CHUNK));
        let sha = Hashing {
            sha256: true,
            md5: false,
        };
        // Operations that do not tile the file: hashed in a pass of its own.
        let d = read_once(&path, &[], HashMap::new(), sha, false, &window, rt.handle()).unwrap();
        assert_eq!(d.sha256.as_deref(), Some(want.as_str()));
        // Tiling: part 1 is fed chunk by chunk; part 2's first attempt has ended
        // (its receiver is gone), so it is only hashed.
        let first = CHUNK as u64 + 7;
        let layout = [(1, 0, first), (2, first, data.len() as u64 - first)];
        let (tx1, mut rx1) = mpsc::channel(WINDOW / CHUNK);
        let (tx2, rx2) = mpsc::channel(1);
        drop(rx2);
        let feeds = HashMap::from([(1, tx1), (2, tx2)]);
        let d = read_once(&path, &layout, feeds, sha, true, &window, rt.handle()).unwrap();
        assert_eq!(d.sha256.as_deref(), Some(want.as_str()));
        let mut fed = Vec::new();
        while let Ok((chunk, _permit)) = rx1.try_recv() {
            fed.extend_from_slice(&chunk);
        }
        assert_eq!(fed, &data[..first as usize]);
    }

    proptest::proptest! {
        #[test]
        fn any_split_of_a_file_is_covered(size in 1u64..10_000_000, part_size in 1u64..5_000_000) {
            let mut parts = Vec::new();
            let (mut off, mut n) = (0, 1);
            while off < size {
                let len = part_size.min(size - off);
                parts.push(part(n, off, len));
                off += len;
                n += 1;
            }
            proptest::prop_assert!(covers(&parts, size));
        }
    }
}
