//! Sending the file's parts exactly as the upload operations say, at the
//! rate of the link between the runner and the upload hosts.
//!
//! Each part's bytes are read on their own (`source`), while one sequential
//! pass computes the whole-file digests. The scheduler keeps a number of part
//! bodies on the wire (`schedule`: it grows while the aggregate rate grows,
//! shrinks when parts fail, within the `--concurrency` cap), starts the next
//! part as soon as a body is sent rather than when its answer comes back (so
//! no connection idles for a round trip between parts), sends the largest
//! parts first, and in the end game sends a part that runs far slower than
//! the others again on another connection: the first success is kept and the
//! other copy cancelled (part URLs accept a repeated PUT until the commit).
//! A failed part is retried on its own; an expired URL is renewed for the
//! parts still missing.

use super::schedule::{self, Concurrency, InFlight, Tuning};
use super::source::{self, Chunk};
use crate::api::models::UploadOperation;
use crate::error::Error;
use bytes::Bytes;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub use source::{Digests, Hashing};

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
    /// How the parts reach the upload hosts.
    pub wire: super::wire::Wire,
    pub file: PathBuf,
    /// The most part bodies on the wire at once.
    pub concurrency: usize,
    pub hashing: Hashing,
    pub renew: Renew,
    pub progress: Arc<Progress>,
    pub cancel: tokio_util::sync::CancellationToken,
}

impl Sender {
    /// Send every part not yet done, every technique on, and return the
    /// whole-file digests.
    pub async fn run(&self, parts: Vec<Part>, _size: u64) -> Result<Digests, Error> {
        self.run_with(parts, Tuning::with_cap(self.concurrency))
            .await
    }

    /// `run`, with the scheduler's techniques as `tuning` says.
    pub async fn run_with(&self, parts: Vec<Part>, tuning: Tuning) -> Result<Digests, Error> {
        let todo = send_order(parts.into_iter().filter(|p| !p.done).collect());
        self.progress
            .total
            .store(todo.iter().map(|p| p.length).sum(), Ordering::SeqCst);
        let digests = {
            let (file, hashing) = (self.file.clone(), self.hashing);
            tokio::task::spawn_blocking(move || source::hash_file(&file, hashing))
        };
        let mut flock = Flock::new(self, tuning);
        let sent = tokio::select! {
            r = flock.send(todo) => r,
            _ = self.cancel.cancelled() => Err(Error::cancelled()),
        };
        flock.tasks.abort_all();
        sent?;
        digests
            .await
            .map_err(|e| Error::transient(format!("reader failed: {e}")))?
            .map_err(|e| Error::read("the artifact", self.file.display(), &e))
    }
}

/// Largest parts first, in file order among equals: the last part to go is
/// never the one that takes longest.
fn send_order(mut parts: Vec<Part>) -> VecDeque<Part> {
    parts.sort_by_key(|p| (std::cmp::Reverse(p.length), p.offset));
    parts.into()
}

/// What a part's copy tells the scheduler while it runs.
#[derive(Debug)]
enum Event {
    /// The copy's body has been handed to the connection.
    BodySent(u64),
    /// An attempt failed (it is being retried).
    AttemptFailed,
}

/// A part in flight and its copies (copy id, to cancel it).
struct Flight {
    part: Part,
    started: Instant,
    copies: Vec<(u64, tokio::task::AbortHandle)>,
}

/// The parts in flight: their copies' tasks, which copies are still sending
/// their bodies, and the concurrency they are held to.
struct Flock<'a> {
    sender: &'a Sender,
    tuning: Tuning,
    concurrency: Concurrency,
    tasks: tokio::task::JoinSet<(u64, u64, Result<(), Error>)>,
    flights: HashMap<u64, Flight>,
    /// Copies whose bodies are still being sent.
    sending: HashSet<u64>,
    /// The finished parts' lengths and how long they took.
    finished: Vec<schedule::Finished>,
    next_copy: u64,
    events: (mpsc::UnboundedSender<Event>, mpsc::UnboundedReceiver<Event>),
    window: Arc<tokio::sync::Semaphore>,
    pool: source::Pool,
    renewed: Renewed,
}

impl<'a> Flock<'a> {
    fn new(sender: &'a Sender, tuning: Tuning) -> Self {
        Self {
            sender,
            tuning,
            concurrency: Concurrency::new(&tuning),
            tasks: tokio::task::JoinSet::new(),
            flights: HashMap::new(),
            sending: HashSet::new(),
            finished: Vec::new(),
            next_copy: 0,
            events: mpsc::unbounded_channel(),
            window: Arc::new(tokio::sync::Semaphore::new(source::WINDOW / source::CHUNK)),
            pool: source::Pool::default(),
            renewed: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// Send the parts: keep the target number of bodies on the wire, feed
    /// the end game, and stop at the first part that gave up.
    async fn send(&mut self, mut todo: VecDeque<Part>) -> Result<(), Error> {
        let mut tick = tokio::time::interval(schedule::PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.fill(&mut todo);
            if self.flights.is_empty() && todo.is_empty() {
                return Ok(());
            }
            tokio::select! {
                Some(event) = self.events.1.recv() => match event {
                    Event::BodySent(copy) if self.tuning.overlap => {
                        self.sending.remove(&copy);
                    }
                    Event::BodySent(_) => {}
                    Event::AttemptFailed => self.concurrency.failed(),
                },
                Some(joined) = self.tasks.join_next() => match joined {
                    Ok((number, copy, result)) => self.finish(number, copy, result)?,
                    Err(e) if e.is_cancelled() => {}
                    Err(e) => return Err(Error::transient(format!("part task failed: {e}"))),
                },
                _ = tick.tick() => {
                    let sent = self.sender.progress.sent.load(Ordering::SeqCst);
                    self.concurrency.observe(Instant::now(), sent);
                }
            }
        }
    }

    /// Start parts (then, in the end game, second copies of stragglers)
    /// while fewer bodies than the target are being sent.
    fn fill(&mut self, todo: &mut VecDeque<Part>) {
        while self.sending.len() < self.concurrency.target() {
            if let Some(part) = todo.pop_front() {
                let number = part.number;
                self.flights.insert(
                    number,
                    Flight {
                        part,
                        started: Instant::now(),
                        copies: Vec::new(),
                    },
                );
                self.spawn_copy(number);
            } else if let Some(number) = self.straggler() {
                tracing::debug!(
                    "part {number} is running far slower than the others; sending it again"
                );
                self.spawn_copy(number);
            } else {
                return;
            }
        }
    }

    fn straggler(&self) -> Option<u64> {
        if !self.tuning.endgame {
            return None;
        }
        let flights: Vec<InFlight> = self
            .flights
            .iter()
            .map(|(number, f)| InFlight {
                number: *number,
                length: f.part.length,
                started: f.started,
                copies: f.copies.len(),
            })
            .collect();
        schedule::straggler(Instant::now(), &flights, &self.finished)
    }

    /// One copy of a part: its body read from disk on a blocking thread.
    fn spawn_copy(&mut self, number: u64) {
        let Some(flight) = self.flights.get_mut(&number) else {
            return;
        };
        let part = flight.part.clone();
        let copy = self.next_copy;
        self.next_copy += 1;
        let (tx, rx) = mpsc::channel(source::PART_AHEAD);
        {
            let (file, window, pool) = (
                self.sender.file.clone(),
                self.window.clone(),
                self.pool.clone(),
            );
            let rt = tokio::runtime::Handle::current();
            let (offset, length) = (part.offset, part.length);
            tokio::task::spawn_blocking(move || {
                if let Err(e) = source::feed_range(&file, offset, length, tx, &window, &pool, &rt) {
                    // The attempt sees a short body and retries from disk.
                    tracing::warn!("reading bytes {offset}.. of the file: {e}");
                }
            });
        }
        let job = PartJob {
            wire: self.sender.wire.clone(),
            file: self.sender.file.clone(),
            renew: self.sender.renew.clone(),
            renewed: self.renewed.clone(),
            progress: self.sender.progress.clone(),
            body: Some(rx),
            events: Some((self.events.0.clone(), copy)),
            part,
        };
        let handle = self
            .tasks
            .spawn(async move { (number, copy, job.send().await) });
        flight.copies.push((copy, handle));
        self.sending.insert(copy);
    }

    /// A copy ended: the first success wins and cancels the other copy; a
    /// part that gave up fails the upload unless another copy still runs.
    fn finish(&mut self, number: u64, copy: u64, result: Result<(), Error>) -> Result<(), Error> {
        self.sending.remove(&copy);
        let Some(flight) = self.flights.get_mut(&number) else {
            return Ok(());
        };
        flight.copies.retain(|(c, _)| *c != copy);
        match result {
            Ok(()) => {
                let flight = self.flights.remove(&number).expect("present");
                for (other, handle) in flight.copies {
                    tracing::debug!("part {number}: another copy won; cancelling this one");
                    handle.abort();
                    self.sending.remove(&other);
                }
                self.finished
                    .push((flight.part.length, flight.started.elapsed()));
                Ok(())
            }
            Err(_) if !flight.copies.is_empty() => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The most recent renewal of part URLs, shared so parallel parts renew once.
type Renewed = Arc<tokio::sync::Mutex<Option<(tokio::time::Instant, HashMap<u64, Part>)>>>;

struct PartJob {
    wire: super::wire::Wire,
    file: PathBuf,
    renew: Renew,
    renewed: Renewed,
    progress: Arc<Progress>,
    body: Option<mpsc::Receiver<Chunk>>,
    /// Where to say the body was sent or an attempt failed, and this copy's id.
    events: Option<(mpsc::UnboundedSender<Event>, u64)>,
    part: Part,
}

/// Takes a copy's bytes back out of the progress unless it succeeded (also
/// when the copy is cancelled because the other one won).
struct Uncount {
    counted: Arc<AtomicU64>,
    progress: Arc<Progress>,
}

impl Drop for Uncount {
    fn drop(&mut self) {
        self.progress
            .sent
            .fetch_sub(self.counted.swap(0, Ordering::SeqCst), Ordering::SeqCst);
    }
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
            let uncount = Uncount {
                counted: counted.clone(),
                progress: self.progress.clone(),
            };
            let started = std::time::Instant::now();
            let result = self.attempt(counted.clone()).await;
            match result {
                Ok(()) => {
                    counted.store(0, Ordering::SeqCst);
                    drop(uncount);
                    // The WAN benchmark reads these lines for its part timings.
                    tracing::debug!(
                        "part {} sent in {:.3} s (attempt {attempt})",
                        self.part.number,
                        started.elapsed().as_secs_f64()
                    );
                    return Ok(());
                }
                Err(f) => {
                    drop(uncount);
                    if let Some((events, _)) = &self.events {
                        let _ = events.send(Event::AttemptFailed);
                    }
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
                let sent = self.events.clone();
                let s = futures_util::stream::unfold((rx, None), move |(mut rx, _held)| {
                    let sent = sent.clone();
                    async move {
                        let next = rx.recv().await;
                        if next.is_none()
                            && let Some((events, copy)) = sent
                        {
                            let _ = events.send(Event::BodySent(copy));
                        }
                        next.map(|(b, permit)| (Ok::<_, std::io::Error>(b), (rx, Some(permit))))
                    }
                });
                let s: super::wire::BodyStream = Box::pin(s.inspect(move |r| {
                    if let Ok(b) = r {
                        count(b)
                    }
                }));
                s
            }
            None => {
                let s = source::disk_range(&self.file, self.part.offset, self.part.length)
                    .await
                    .map_err(|e| Failure::Fatal(format!("cannot read the file: {e}")))?;
                Box::pin(s.inspect(move |r| {
                    if let Ok(b) = r {
                        count(b)
                    }
                }))
            }
        };
        if http::Method::from_bytes(self.part.method.as_bytes()).is_err() {
            return Err(Failure::Fatal(format!(
                "unknown method {}",
                self.part.method
            )));
        }
        let answer = self
            .wire
            .send(&self.part, body)
            .await
            .map_err(Failure::Retry)?;
        let (status, text) = (answer.status, answer.text);
        if (200..300).contains(&status) {
            return Ok(());
        }
        let expired = status == 403
            && (text.contains("expired")
                || self
                    .part
                    .expiration
                    .is_some_and(|e| e <= jiff::Timestamp::now()));
        Err(if expired {
            Failure::Expired
        } else if status >= 500
            || status == 408
            || status == 429
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
    fn the_largest_parts_go_first_and_equals_in_file_order() {
        let order: Vec<u64> = send_order(vec![
            part(1, 0, 5),
            part(2, 5, 5),
            part(3, 10, 9),
            part(4, 19, 2),
        ])
        .iter()
        .map(|p| p.number)
        .collect();
        assert_eq!(order, [3, 1, 2, 4]);
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
