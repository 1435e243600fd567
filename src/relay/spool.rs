//! The embedded durable store: an append-only journal of JSON lines in the
//! spool directory, made durable by group commit.
//!
//! Request handlers update the in-memory state and queue the journal record
//! under one lock, so the journal's order is the state's order; a single
//! writer thread drains every record queued so far, writes them in one go,
//! calls `fsync` once, and only then answers each waiting handler. So Apple
//! gets its 2xx after the delivery is on disk, and one disk flush serves
//! every delivery that arrived meanwhile (the throughput the relay needs;
//! one flush per request would cap it at the disk's flush rate).
//!
//! On open the journal is replayed (a torn last line from a crash is cut
//! off) and rewritten compactly; the writer compacts again whenever it has
//! appended `COMPACT_AFTER` bytes. A forward whose ack did not reach the
//! journal before a crash is sent again after the restart (at least once).

use super::now_ms;
use super::sse::Hub;
use super::store::{Accepted, Incoming, Job, Settle, Store, StoreError};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

const JOURNAL: &str = "journal.jsonl";
const COMPACT_AFTER: u64 = 64 * 1024 * 1024;
/// Event ids are remembered (for dedupe) this long after their last forward.
const REMEMBER_MS: u64 = 7 * 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending { attempts: u32 },
    InFlight { attempts: u32 },
    Done,
    Failed,
}

impl Status {
    fn open(self) -> bool {
        matches!(self, Status::Pending { .. } | Status::InFlight { .. })
    }
}

#[derive(Debug)]
struct Entry {
    received_ms: u64,
    signature: String,
    /// Kept only while some target still needs it.
    body: Option<Bytes>,
    targets: Vec<Status>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "k")]
enum Record {
    #[serde(rename = "d")]
    Delivery {
        id: String,
        at: u64,
        sig: String,
        body: String,
        #[serde(default)]
        queue: Vec<String>,
        #[serde(default)]
        done: Vec<String>,
        #[serde(default)]
        failed: Vec<String>,
    },
    #[serde(rename = "a")]
    Ack { id: String, t: String },
    #[serde(rename = "f")]
    Fail { id: String, t: String },
}

type Reply = oneshot::Sender<Result<(), String>>;

enum Msg {
    Write(Vec<u8>, Option<Reply>),
    Barrier(Reply),
    Close(Reply),
}

#[derive(Debug, Default)]
struct State {
    events: HashMap<String, Entry>,
    /// Per target: (due at ms, event id).
    due: Vec<BTreeSet<(u64, String)>>,
    pending: u64,
}

struct Shared {
    state: Mutex<State>,
    keys: Vec<String>,
    healthy: AtomicBool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub struct Spool {
    dir: PathBuf,
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Msg>,
    wake: Vec<Notify>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Held (locked) for the spool's life: one relay per spool directory.
    _lock: File,
}

fn line(r: &Record) -> Vec<u8> {
    let mut v = serde_json::to_vec(r).unwrap_or_default();
    v.push(b'\n');
    v
}

impl Spool {
    /// Open (or create) the spool in `dir` for these forward targets.
    pub async fn open(dir: &Path, keys: &[String]) -> Result<Self, StoreError> {
        let dir = dir.to_path_buf();
        let keys = keys.to_vec();
        let d = dir.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(d, keys))
            .await
            .map_err(|e| StoreError::Spool {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?
    }

    fn open_blocking(dir: PathBuf, keys: Vec<String>) -> Result<Self, StoreError> {
        let err = |e: std::io::Error| StoreError::Spool {
            path: dir.display().to_string(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(err)?;
        let lock = File::create(dir.join("lock")).map_err(err)?;
        lock.try_lock().map_err(|_| StoreError::Spool {
            path: dir.display().to_string(),
            message: "another relay is using this spool".into(),
        })?;
        let path = dir.join(JOURNAL);
        let mut state = State {
            due: vec![BTreeSet::new(); keys.len()],
            ..State::default()
        };
        if path.exists() {
            replay(&path, &keys, &mut state).map_err(err)?;
        }
        let file = compact(&dir, &keys, &state).map_err(err)?;
        if state.pending > 0 {
            tracing::info!(
                "relay: resuming {} pending forward(s) from {}",
                state.pending,
                dir.display()
            );
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            keys: keys.clone(),
            healthy: AtomicBool::new(true),
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let s = shared.clone();
        let d = dir.clone();
        let writer = std::thread::Builder::new()
            .name("relay-spool".into())
            .spawn(move || writer_loop(file, d, rx, s))
            .map_err(err)?;
        Ok(Self {
            dir,
            shared,
            tx,
            wake: keys.iter().map(|_| Notify::new()).collect(),
            writer: Mutex::new(Some(writer)),
            _lock: lock,
        })
    }

    fn error(&self, message: impl Into<String>) -> StoreError {
        StoreError::Spool {
            path: self.dir.display().to_string(),
            message: message.into(),
        }
    }

    async fn durable(&self, rx: oneshot::Receiver<Result<(), String>>) -> Result<(), StoreError> {
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.error(e)),
            Err(_) => Err(self.error("the spool writer stopped")),
        }
    }

    /// Decide under the lock and queue the journal record in the same
    /// critical section (see the module doc).
    fn record_delivery(&self, d: &Incoming) -> (Accepted, oneshot::Receiver<Result<(), String>>) {
        let (reply, rx) = oneshot::channel();
        let mut st = self.shared.lock();
        let keys = &self.shared.keys;
        let now = now_ms();
        let (fresh, queue) = match st.events.get_mut(&d.id) {
            None => {
                st.events.insert(
                    d.id.clone(),
                    Entry {
                        received_ms: d.received_ms,
                        signature: d.signature.clone(),
                        body: (!keys.is_empty()).then(|| d.body.clone()),
                        targets: vec![Status::Pending { attempts: 0 }; keys.len()],
                    },
                );
                (true, (0..keys.len()).collect::<Vec<_>>())
            }
            Some(e) => {
                let again: Vec<usize> = (0..keys.len())
                    .filter(|&i| e.targets[i] == Status::Failed)
                    .collect();
                for &i in &again {
                    e.targets[i] = Status::Pending { attempts: 0 };
                }
                if !again.is_empty() {
                    e.body = Some(d.body.clone());
                    e.signature = d.signature.clone();
                }
                (false, again)
            }
        };
        for &i in &queue {
            st.due[i].insert((now, d.id.clone()));
        }
        st.pending += queue.len() as u64;
        let msg = if fresh || !queue.is_empty() {
            Msg::Write(
                line(&Record::Delivery {
                    id: d.id.clone(),
                    at: d.received_ms,
                    sig: d.signature.clone(),
                    body: String::from_utf8_lossy(&d.body).into_owned(),
                    queue: queue.iter().map(|&i| keys[i].clone()).collect(),
                    done: Vec::new(),
                    failed: Vec::new(),
                }),
                Some(reply),
            )
        } else {
            Msg::Barrier(reply)
        };
        let _ = self.tx.send(msg);
        drop(st);
        (
            Accepted {
                fresh,
                queued: queue.len(),
            },
            rx,
        )
    }

    fn take_due(&self, target: usize, max: usize) -> (Vec<Job>, Duration) {
        let mut st = self.shared.lock();
        let now = now_ms();
        let mut jobs = Vec::new();
        while jobs.len() < max {
            let Some((at, id)) = st.due[target].first().cloned() else {
                break;
            };
            if at > now {
                break;
            }
            st.due[target].pop_first();
            let Some(e) = st.events.get_mut(&id) else {
                continue;
            };
            let Status::Pending { attempts } = e.targets[target] else {
                continue;
            };
            e.targets[target] = Status::InFlight { attempts };
            jobs.push(Job {
                target,
                id,
                body: e.body.clone().unwrap_or_default(),
                signature: e.signature.clone(),
                received_ms: e.received_ms,
                attempts,
                handle: String::new(),
            });
        }
        let wait = st.due[target]
            .first()
            .map(|(at, _)| Duration::from_millis(at.saturating_sub(now)))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        (jobs, wait)
    }

    fn record_settle(
        &self,
        job: &Job,
        outcome: Settle,
    ) -> Option<oneshot::Receiver<Result<(), String>>> {
        let mut st = self.shared.lock();
        let key = self.shared.keys[job.target].clone();
        let e = st.events.get_mut(&job.id)?;
        let (status, record) = match outcome {
            Settle::Done => (
                Status::Done,
                Some(Record::Ack {
                    id: job.id.clone(),
                    t: key,
                }),
            ),
            Settle::Failed => (
                Status::Failed,
                Some(Record::Fail {
                    id: job.id.clone(),
                    t: key,
                }),
            ),
            Settle::Retry { .. } => (
                Status::Pending {
                    attempts: job.attempts + 1,
                },
                None,
            ),
        };
        e.targets[job.target] = status;
        if !e.targets.iter().any(|s| s.open()) {
            e.body = None;
        }
        if let Settle::Retry { at_ms } = outcome {
            st.due[job.target].insert((at_ms, job.id.clone()));
        } else {
            st.pending = st.pending.saturating_sub(1);
        }
        let record = record?;
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Write(line(&record), Some(reply)));
        Some(rx)
    }
}

impl Store for Spool {
    fn accept<'a>(&'a self, d: &'a Incoming) -> BoxFuture<'a, Result<Accepted, StoreError>> {
        Box::pin(async move {
            let (accepted, rx) = self.record_delivery(d);
            self.durable(rx).await?;
            for w in &self.wake {
                w.notify_one();
            }
            Ok(accepted)
        })
    }

    fn next_jobs(&self, target: usize, max: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(async move {
            let notified = self.wake[target].notified();
            let (jobs, wait) = self.take_due(target, max);
            if jobs.is_empty() {
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Ok(jobs)
        })
    }

    fn settle(&self, job: Job, outcome: Settle) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            match self.record_settle(&job, outcome) {
                Some(rx) => self.durable(rx).await,
                None => Ok(()),
            }
        })
    }

    fn pending(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move { Ok(self.shared.lock().pending) })
    }

    fn healthy(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move { self.shared.healthy.load(Ordering::Relaxed) && !self.tx.is_closed() })
    }

    fn fan_out(
        &self,
        _hub: Arc<Hub>,
        _cancel: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        None
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (reply, rx) = oneshot::channel();
            if self.tx.send(Msg::Close(reply)).is_ok() {
                let _ = rx.await;
            }
            let handle = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(h) = handle {
                let _ = tokio::task::spawn_blocking(move || h.join()).await;
            }
        })
    }
}

/// Apply the journal at `path` to `state`, cutting off a torn last line.
fn replay(path: &Path, keys: &[String], state: &mut State) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)?;
    let mut reader = BufReader::new(&mut file);
    let mut good = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        let parsed = buf
            .ends_with(b"\n")
            .then(|| serde_json::from_slice::<Record>(&buf).ok())
            .flatten();
        let Some(record) = parsed else {
            tracing::warn!(
                "relay: the spool journal ends in a torn record at byte {good}; cutting it off"
            );
            break;
        };
        apply(record, keys, state);
        good += n as u64;
    }
    drop(reader);
    file.set_len(good)?;
    file.seek(std::io::SeekFrom::End(0))?;
    let now = now_ms();
    for (id, e) in &state.events {
        for (i, s) in e.targets.iter().enumerate() {
            if s.open() {
                state.due[i].insert((now, id.clone()));
                state.pending += 1;
            }
        }
    }
    Ok(())
}

fn apply(record: Record, keys: &[String], state: &mut State) {
    let index = |k: &str| keys.iter().position(|x| x == k);
    match record {
        Record::Delivery {
            id,
            at,
            sig,
            body,
            queue,
            done,
            failed,
        } => {
            let e = state.events.entry(id).or_insert_with(|| Entry {
                received_ms: at,
                signature: sig.clone(),
                body: None,
                // A target the event was never queued for has nothing to do.
                targets: vec![Status::Done; keys.len()],
            });
            if !body.is_empty() {
                e.body = Some(Bytes::from(body));
                e.signature = sig;
            }
            for (list, status) in [
                (queue, Status::Pending { attempts: 0 }),
                (done, Status::Done),
                (failed, Status::Failed),
            ] {
                for i in list.iter().filter_map(|k| index(k)) {
                    e.targets[i] = status;
                }
            }
        }
        Record::Ack { id, t } | Record::Fail { id, t }
            if index(&t).is_none() || !state.events.contains_key(&id) => {}
        Record::Ack { id, t } => set(state, &id, index(&t), Status::Done),
        Record::Fail { id, t } => set(state, &id, index(&t), Status::Failed),
    }
}

fn set(state: &mut State, id: &str, i: Option<usize>, s: Status) {
    if let (Some(e), Some(i)) = (state.events.get_mut(id), i) {
        e.targets[i] = s;
    }
}

/// Rewrite the journal as one record per remembered event, atomically
/// (temp file, fsync, rename, fsync the directory); returns it for appending.
fn compact(dir: &Path, keys: &[String], state: &State) -> std::io::Result<File> {
    let tmp = dir.join(format!("{JOURNAL}.tmp"));
    let mut out = std::io::BufWriter::new(File::create(&tmp)?);
    let oldest = now_ms().saturating_sub(REMEMBER_MS);
    for (id, e) in &state.events {
        let open = e.targets.iter().any(|s| s.open());
        if !open && e.received_ms < oldest {
            continue;
        }
        let pick = |f: fn(&Status) -> bool| -> Vec<String> {
            e.targets
                .iter()
                .zip(keys)
                .filter(|(s, _)| f(s))
                .map(|(_, k)| k.clone())
                .collect()
        };
        let body = match (&e.body, open) {
            (Some(b), true) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        out.write_all(&line(&Record::Delivery {
            id: id.clone(),
            at: e.received_ms,
            sig: e.signature.clone(),
            body,
            queue: pick(|s| s.open()),
            done: pick(|s| *s == Status::Done),
            failed: pick(|s| *s == Status::Failed),
        }))?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    let path = dir.join(JOURNAL);
    std::fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()?;
    std::fs::OpenOptions::new().append(true).open(&path)
}

/// The group-commit writer (a thread of its own: it blocks on the disk).
fn writer_loop(
    mut file: File,
    dir: PathBuf,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    shared: Arc<Shared>,
) {
    let mut since_compaction = 0u64;
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < 8192 {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut buf = Vec::new();
        let mut waiters = Vec::with_capacity(batch.len());
        let mut close = false;
        for m in batch {
            match m {
                Msg::Write(bytes, reply) => {
                    buf.extend_from_slice(&bytes);
                    waiters.extend(reply);
                }
                Msg::Barrier(reply) => waiters.push(reply),
                Msg::Close(reply) => {
                    close = true;
                    waiters.push(reply);
                }
            }
        }
        // Every earlier batch was flushed before it was answered, so a
        // batch of barriers alone needs no flush of its own.
        let result = if buf.is_empty() {
            Ok(())
        } else {
            file.write_all(&buf).and_then(|_| file.sync_data())
        };
        shared.healthy.store(result.is_ok(), Ordering::Relaxed);
        if let Err(e) = &result {
            tracing::error!(
                "relay: cannot write the spool journal in {}: {e}",
                dir.display()
            );
        }
        for w in waiters {
            let _ = w.send(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        }
        since_compaction += buf.len() as u64;
        if since_compaction > COMPACT_AFTER {
            since_compaction = 0;
            close |= compact_live(&mut file, &dir, &mut rx, &shared);
        }
        if close {
            break;
        }
    }
}

/// Compact while running: hold the state lock (no new records), answer the
/// records already queued once the snapshot, which includes them, is durable.
/// Returns true when a close request was among them.
fn compact_live(
    file: &mut File,
    dir: &Path,
    rx: &mut mpsc::UnboundedReceiver<Msg>,
    shared: &Shared,
) -> bool {
    let st = shared.lock();
    let mut waiters = Vec::new();
    let mut drained = Vec::new();
    let mut close = false;
    while let Ok(m) = rx.try_recv() {
        match m {
            Msg::Write(bytes, reply) => {
                drained.extend_from_slice(&bytes);
                waiters.extend(reply);
            }
            Msg::Barrier(reply) => waiters.push(reply),
            Msg::Close(reply) => {
                close = true;
                waiters.push(reply);
            }
        }
    }
    let result = match compact(dir, &shared.keys, &st) {
        Ok(f) => {
            *file = f;
            Ok(())
        }
        Err(e) => {
            tracing::error!(
                "relay: cannot compact the spool journal in {}: {e}",
                dir.display()
            );
            // The old journal is intact; it still needs the drained records.
            file.write_all(&drained).and_then(|_| file.sync_data())
        }
    };
    drop(st);
    let result = result.map_err(|e| e.to_string());
    shared.healthy.store(result.is_ok(), Ordering::Relaxed);
    for w in waiters {
        let _ = w.send(result.clone());
    }
    close
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incoming(id: &str) -> Incoming {
        Incoming {
            id: id.into(),
            body: Bytes::from(format!(
                r#"{{"data":{{"type":"webhookPingCreated","id":"{id}"}}}}"#
            )),
            signature: "hmacsha256=00".into(),
            received_ms: now_ms(),
        }
    }

    #[tokio::test]
    async fn dedupes_persists_and_resumes_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let keys = vec!["https://a".to_string(), "https://b".to_string()];
        let s = Spool::open(dir.path(), &keys).await.unwrap();
        assert_eq!(
            s.accept(&incoming("e1")).await.unwrap(),
            Accepted {
                fresh: true,
                queued: 2
            }
        );
        assert!(s.accept(&incoming("e1")).await.unwrap().duplicate());
        s.accept(&incoming("e2")).await.unwrap();
        assert_eq!(s.pending().await.unwrap(), 4);
        let jobs = s.next_jobs(0, 10).await.unwrap();
        assert_eq!(jobs.len(), 2);
        for j in jobs {
            let outcome = if j.id == "e1" {
                Settle::Done
            } else {
                Settle::Failed
            };
            s.settle(j, outcome).await.unwrap();
        }
        assert_eq!(s.pending().await.unwrap(), 2);
        // No close: the process "dies" here; only what was flushed counts.
        drop(s);
        let s = Spool::open(dir.path(), &keys).await.unwrap();
        assert_eq!(
            s.pending().await.unwrap(),
            2,
            "target b still owes e1 and e2"
        );
        // Done for a: a duplicate. Failed for a: queued again.
        assert!(s.accept(&incoming("e1")).await.unwrap().duplicate());
        assert_eq!(
            s.accept(&incoming("e2")).await.unwrap(),
            Accepted {
                fresh: false,
                queued: 1
            }
        );
        let ids: Vec<String> = s
            .next_jobs(0, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|j| j.id)
            .collect();
        assert_eq!(ids, ["e2"]);
        s.close().await;
    }

    #[tokio::test]
    async fn a_torn_last_record_is_cut_off() {
        let dir = tempfile::tempdir().unwrap();
        let keys = vec!["https://a".to_string()];
        let s = Spool::open(dir.path(), &keys).await.unwrap();
        s.accept(&incoming("e1")).await.unwrap();
        s.close().await;
        drop(s);
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL))
            .unwrap();
        f.write_all(br#"{"k":"d","id":"e2","at":1,"sig":"","bo"#)
            .unwrap();
        drop(f);
        let s = Spool::open(dir.path(), &keys).await.unwrap();
        assert_eq!(s.pending().await.unwrap(), 1);
        assert!(s.accept(&incoming("e1")).await.unwrap().duplicate());
        let again = Spool::open(dir.path(), &keys).await;
        assert!(again.is_err(), "a second relay on one spool is refused");
    }
}
