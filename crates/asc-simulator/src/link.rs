//! The network between clients and the upload parts' storage: one link of a
//! given bandwidth shared by every part upload (and the benchmark's sink), so
//! the simulator can stand for a real uplink instead of loopback. Each body
//! chunk reserves its transmission time on the link and the receiver waits
//! for it; the sender feels it as TCP backpressure, as it would on a wire.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How far behind the link may fall (a receiver woken late by the timer)
/// and catch up in a burst; more idle time than this is lost, as on a wire.
const SLACK: Duration = Duration::from_millis(20);

pub struct Link {
    bytes_per_sec: Option<f64>,
    /// When the link is next free.
    next: Mutex<Option<Instant>>,
}

impl Link {
    pub fn new(bytes_per_sec: Option<u64>) -> Self {
        Self {
            bytes_per_sec: bytes_per_sec.filter(|r| *r > 0).map(|r| r as f64),
            next: Mutex::new(None),
        }
    }

    /// Wait until `n` more bytes have crossed the link.
    pub async fn pass(&self, n: usize) {
        let Some(rate) = self.bytes_per_sec else {
            return;
        };
        let due = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            // An idle link banks no more than SLACK for a later burst.
            let start = next.map_or(now, |t| t.max(now.checked_sub(SLACK).unwrap_or(now)));
            let due = start + Duration::from_secs_f64(n as f64 / rate);
            *next = Some(due);
            due
        };
        tokio::time::sleep_until(due).await;
    }
}

/// A bandwidth such as `512MiB/s`, `2.5Gbit/s`, `800Mbps` or `1000000`
/// (bytes per second), in bytes per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("/s")
        .or_else(|| t.strip_suffix("ps"))
        .unwrap_or(t);
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a bandwidth like 512MiB/s or 2Gbit/s"))?;
    let scale = match unit.trim() {
        "" | "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "kbit" | "Kbit" | "kb" => 1e3 / 8.0,
        "Mbit" | "Mb" => 1e6 / 8.0,
        "Gbit" | "Gb" => 1e9 / 8.0,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use B, KiB, MiB, GiB, kB, MB, GB, kbit, Mbit or Gbit, per second)"
            ));
        }
    };
    let rate = number * scale;
    if !(1.0..1e13).contains(&rate) {
        return Err(format!("{text:?} is out of range (1 B/s up to 10 TB/s)"));
    }
    Ok(rate as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_in_bytes_and_bits() {
        assert_eq!(parse_rate("512MiB/s"), Ok(512 << 20));
        assert_eq!(parse_rate("2Gbit/s"), Ok(250_000_000));
        assert_eq!(parse_rate("800Mbps"), Ok(100_000_000));
        assert_eq!(parse_rate("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_rate("1000000"), Ok(1_000_000));
        assert!(parse_rate("fast").unwrap_err().contains("not a bandwidth"));
        assert!(
            parse_rate("5 furlongs/s")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(parse_rate("0").unwrap_err().contains("out of range"));
    }

    #[tokio::test(start_paused = true)]
    async fn the_link_paces_bytes_from_every_sender() {
        let link = std::sync::Arc::new(Link::new(Some(1 << 20)));
        let start = Instant::now();
        // Two senders share 1 MiB/s: 3 MiB in all take 3 s, whoever sends.
        let a = tokio::spawn({
            let link = link.clone();
            async move {
                for _ in 0..4 {
                    link.pass(256 << 10).await;
                }
            }
        });
        for _ in 0..4 {
            link.pass(512 << 10).await;
        }
        a.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        // An idle second earns only the slack: the next MiB takes a second less that.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = Instant::now();
        link.pass(1 << 20).await;
        assert_eq!(t.elapsed(), Duration::from_secs(1) - SLACK);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unlimited_link_never_waits() {
        let link = Link::new(None);
        let start = Instant::now();
        link.pass(1 << 30).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
