//! The shared store: any number of relays behind one load balancer, one Redis.
//!
//! - Dedupe: per event and target a key `mark:{target}:{event}` taken with
//!   `SET NX EX` in the same Lua script that queues the event, so two relays
//!   receiving one delivery queue it once, and a crash cannot separate the
//!   two. A forward that succeeded leaves the mark (a duplicate); one given up
//!   as failed deletes it, so a redelivery is queued again.
//! - Pending forwards: a stream per target read through one consumer group
//!   (`XREADGROUP`); an entry is acknowledged (`XACK` + `XDEL`) once the
//!   target answered 2xx. An entry held by a relay that died stays in the
//!   group's pending list and is taken over by another relay with
//!   `XAUTOCLAIM` once idle for the claim time. A retry moves the entry to a
//!   per-target sorted set scored by its due time, promoted back into the
//!   stream when due; every move is one atomic script.
//! - Fan-out: an `events` stream (trimmed to the replay window) that every
//!   relay tails, so a subscriber on any relay sees events any relay received.
//!
//! Apple gets its 2xx once the script ran: durability is Redis's own
//! (`appendonly yes` in the deployment examples).

use super::sse::{Hub, Published};
use super::store::{Accepted, Incoming, Job, Settle, Store, StoreError};
use super::{Tuning, now_ms};
use ::redis::Script;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const PREFIX: &str = "flightdeck:";
const GROUP: &str = "forwarders";
/// Event ids are remembered (for dedupe) this long.
const REMEMBER_SECS: u64 = 7 * 24 * 3600;
const BLOCK_MS: u64 = 1000;

const ACCEPT: &str = r"
local fresh = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[5])
if fresh then
  redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[6], '*', 'id', ARGV[1], 'body', ARGV[2], 'at', ARGV[4])
end
local queued = 0
for i = 3, #KEYS, 2 do
  if redis.call('SET', KEYS[i], 'q', 'NX', 'EX', ARGV[5]) then
    redis.call('XADD', KEYS[i + 1], '*', 'id', ARGV[1], 'body', ARGV[2], 'sig', ARGV[3], 'at', ARGV[4], 'n', '0')
    queued = queued + 1
  end
end
return {fresh and 1 or 0, queued}
";

/// KEYS: queue, mark. ARGV: group, entry, ttl.
const DONE: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[2], 'd', 'EX', ARGV[3])
end
return 1
";

/// KEYS: queue, mark. ARGV: group, entry.
const FAILED: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('DEL', KEYS[2])
end
return 1
";

/// KEYS: queue, delay. ARGV: group, entry, due ms, member.
const RETRY: &str = r"
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('XDEL', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
end
return 1
";

/// KEYS: delay, queue. ARGV: now ms.
const PROMOTE: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local j = cjson.decode(m)
  redis.call('XADD', KEYS[2], '*', 'id', j.id, 'body', j.body, 'sig', j.sig, 'at', j.at, 'n', j.n)
end
return #due
";

struct Keys {
    queue: String,
    delay: String,
    mark: String,
}

fn target_keys(key: &str) -> Keys {
    use sha2::Digest;
    let h = &hex::encode(sha2::Sha256::digest(key.as_bytes()))[..16];
    Keys {
        queue: format!("{PREFIX}queue:{h}"),
        delay: format!("{PREFIX}delay:{h}"),
        mark: format!("{PREFIX}mark:{h}:"),
    }
}

pub struct RedisStore {
    client: ::redis::Client,
    con: ConnectionManager,
    /// One connection per target for its blocking reads.
    blocking: Vec<ConnectionManager>,
    targets: Vec<Keys>,
    consumer: String,
    claim_idle: Duration,
    window: Duration,
    last_claim: Vec<AtomicU64>,
    scripts: Scripts,
}

struct Scripts {
    accept: Script,
    done: Script,
    failed: Script,
    retry: Script,
    promote: Script,
}

fn err(e: ::redis::RedisError) -> StoreError {
    StoreError::Redis(e.to_string())
}

fn config(timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(timeout))
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_max_delay(Duration::from_secs(2))
}

impl RedisStore {
    pub async fn connect(
        url: &str,
        keys: &[String],
        tuning: &Tuning,
        node: &str,
    ) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url)
            .map_err(|e| StoreError::Redis(format!("{}: {e}", redact(url))))?;
        let con = client
            .get_connection_manager_with_config(config(Duration::from_secs(5)))
            .await
            .map_err(|e| StoreError::Redis(format!("cannot reach {}: {e}", redact(url))))?;
        let mut blocking = Vec::new();
        for _ in keys {
            blocking.push(
                client
                    .get_connection_manager_with_config(config(Duration::from_millis(
                        BLOCK_MS + 4000,
                    )))
                    .await
                    .map_err(err)?,
            );
        }
        let targets: Vec<Keys> = keys.iter().map(|k| target_keys(k)).collect();
        let mut c = con.clone();
        for t in &targets {
            let made: Result<(), _> = ::redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&t.queue)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut c)
                .await;
            if let Err(e) = made
                && e.code() != Some("BUSYGROUP")
            {
                return Err(err(e));
            }
        }
        Ok(Self {
            client,
            con,
            blocking,
            last_claim: targets.iter().map(|_| AtomicU64::new(0)).collect(),
            targets,
            consumer: format!(
                "{node}-{}-{}",
                std::process::id(),
                crate::secret::random_hex(4).expose()
            ),
            claim_idle: tuning.claim_idle,
            window: tuning.replay_window,
            scripts: Scripts {
                accept: Script::new(ACCEPT),
                done: Script::new(DONE),
                failed: Script::new(FAILED),
                retry: Script::new(RETRY),
                promote: Script::new(PROMOTE),
            },
        })
    }

    fn job(&self, target: usize, e: &StreamId) -> Option<Job> {
        let text = |k: &str| e.get::<String>(k);
        Some(Job {
            target,
            id: text("id")?,
            body: Bytes::from(e.get::<Vec<u8>>("body")?),
            signature: text("sig").unwrap_or_default(),
            received_ms: text("at").and_then(|v| v.parse().ok()).unwrap_or(0),
            attempts: text("n").and_then(|v| v.parse().ok()).unwrap_or(0),
            handle: e.id.clone(),
        })
    }

    /// Entries held too long by another (presumably dead) relay.
    async fn take_over(&self, target: usize, max: usize) -> Result<Vec<Job>, StoreError> {
        let now = now_ms();
        let every = (self.claim_idle.as_millis() as u64 / 4).max(200);
        if now.saturating_sub(self.last_claim[target].load(Ordering::Relaxed)) < every {
            return Ok(Vec::new());
        }
        self.last_claim[target].store(now, Ordering::Relaxed);
        let t = &self.targets[target];
        let reply: StreamAutoClaimReply = ::redis::cmd("XAUTOCLAIM")
            .arg(&t.queue)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(self.claim_idle.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(max)
            .query_async(&mut self.con.clone())
            .await
            .map_err(err)?;
        let jobs: Vec<Job> = reply
            .claimed
            .iter()
            .filter_map(|e| self.job(target, e))
            .collect();
        if !jobs.is_empty() {
            tracing::warn!(
                "relay: took over {} forward(s) held by a relay that stopped answering",
                jobs.len()
            );
        }
        Ok(jobs)
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

impl Store for RedisStore {
    fn accept<'a>(&'a self, d: &'a Incoming) -> BoxFuture<'a, Result<Accepted, StoreError>> {
        Box::pin(async move {
            let mut inv = self.scripts.accept.prepare_invoke();
            inv.key(format!("{PREFIX}seen:{}", d.id))
                .key(format!("{PREFIX}events"));
            for t in &self.targets {
                inv.key(format!("{}{}", t.mark, d.id)).key(&t.queue);
            }
            let oldest = d.received_ms.saturating_sub(self.window.as_millis() as u64);
            inv.arg(&d.id)
                .arg(d.body.as_ref())
                .arg(&d.signature)
                .arg(d.received_ms.to_string())
                .arg(REMEMBER_SECS)
                .arg(format!("{oldest}-0"));
            let (fresh, queued): (i64, i64) =
                inv.invoke_async(&mut self.con.clone()).await.map_err(err)?;
            Ok(Accepted {
                fresh: fresh == 1,
                queued: queued as usize,
            })
        })
    }

    fn next_jobs(&self, target: usize, max: usize) -> BoxFuture<'_, Result<Vec<Job>, StoreError>> {
        Box::pin(async move {
            let t = &self.targets[target];
            let _: i64 = self
                .scripts
                .promote
                .key(&t.delay)
                .key(&t.queue)
                .arg(now_ms())
                .invoke_async(&mut self.con.clone())
                .await
                .map_err(err)?;
            let claimed = self.take_over(target, max).await?;
            if !claimed.is_empty() {
                return Ok(claimed);
            }
            let reply: Option<StreamReadReply> = ::redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(GROUP)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(max)
                .arg("BLOCK")
                .arg(BLOCK_MS)
                .arg("STREAMS")
                .arg(&t.queue)
                .arg(">")
                .query_async(&mut self.blocking[target].clone())
                .await
                .map_err(err)?;
            Ok(reply
                .map(|r| {
                    r.keys
                        .iter()
                        .flat_map(|k| k.ids.iter())
                        .filter_map(|e| self.job(target, e))
                        .collect()
                })
                .unwrap_or_default())
        })
    }

    fn settle(&self, job: Job, outcome: Settle) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let t = &self.targets[job.target];
            let mark = format!("{}{}", t.mark, job.id);
            let mut con = self.con.clone();
            let done: Result<i64, _> = match outcome {
                Settle::Done => {
                    self.scripts
                        .done
                        .key(&t.queue)
                        .key(&mark)
                        .arg(GROUP)
                        .arg(&job.handle)
                        .arg(REMEMBER_SECS)
                        .invoke_async(&mut con)
                        .await
                }
                Settle::Failed => {
                    self.scripts
                        .failed
                        .key(&t.queue)
                        .key(&mark)
                        .arg(GROUP)
                        .arg(&job.handle)
                        .invoke_async(&mut con)
                        .await
                }
                Settle::Retry { at_ms } => {
                    let member = serde_json::json!({
                        "id": job.id,
                        "body": String::from_utf8_lossy(&job.body),
                        "sig": job.signature,
                        "at": job.received_ms.to_string(),
                        "n": (job.attempts + 1).to_string(),
                    })
                    .to_string();
                    self.scripts
                        .retry
                        .key(&t.queue)
                        .key(&t.delay)
                        .arg(GROUP)
                        .arg(&job.handle)
                        .arg(at_ms)
                        .arg(member)
                        .invoke_async(&mut con)
                        .await
                }
            };
            done.map(|_| ()).map_err(err)
        })
    }

    fn pending(&self) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let mut pipe = ::redis::pipe();
            for t in &self.targets {
                pipe.cmd("XLEN").arg(&t.queue).cmd("ZCARD").arg(&t.delay);
            }
            let counts: Vec<u64> = pipe.query_async(&mut self.con.clone()).await.map_err(err)?;
            Ok(counts.iter().sum())
        })
    }

    fn healthy(&self) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let pong: Result<String, _> = ::redis::cmd("PING")
                .query_async(&mut self.con.clone())
                .await;
            pong.is_ok()
        })
    }

    fn fan_out(
        &self,
        hub: Arc<Hub>,
        cancel: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let client = self.client.clone();
        let window = self.window;
        Some(tokio::spawn(async move {
            let con = client
                .get_connection_manager_with_config(config(Duration::from_millis(BLOCK_MS + 4000)))
                .await;
            let Ok(mut con) = con else {
                tracing::error!("relay: cannot open the Redis connection for subscribers");
                return;
            };
            let mut last = format!("{}-0", now_ms().saturating_sub(window.as_millis() as u64));
            while !cancel.is_cancelled() {
                let read: Result<Option<StreamReadReply>, _> = ::redis::cmd("XREAD")
                    .arg("COUNT")
                    .arg(500)
                    .arg("BLOCK")
                    .arg(BLOCK_MS)
                    .arg("STREAMS")
                    .arg(format!("{PREFIX}events"))
                    .arg(&last)
                    .query_async(&mut con)
                    .await;
                match read {
                    Ok(reply) => {
                        for e in reply
                            .iter()
                            .flat_map(|r| r.keys.iter())
                            .flat_map(|k| k.ids.iter())
                        {
                            last = e.id.clone();
                            if let Some(p) = published(e) {
                                hub.publish(p);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!("relay: reading events from Redis: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

fn published(e: &StreamId) -> Option<Published> {
    let id = e.get::<String>("id")?;
    let at = e
        .get::<String>("at")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(now_ms);
    let body = e.get::<Vec<u8>>("body")?;
    Published::new(id, at, Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_passwords_are_hidden() {
        let a = target_keys("github:acme/app");
        assert_eq!(a.queue, target_keys("github:acme/app").queue);
        assert_ne!(a.queue, target_keys("https://x").queue);
        assert!(a.mark.starts_with("flightdeck:mark:"));
        assert_eq!(
            redact("redis://:hunter2@db:6379/0"),
            "redis://***@db:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
