//! The relay's counters, rendered as Prometheus text on `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    pub verified: AtomicU64,
    pub rejected: AtomicU64,
    pub duplicate: AtomicU64,
    pub forward_ok: AtomicU64,
    pub forward_retry: AtomicU64,
    pub forward_failed: AtomicU64,
}

pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    /// The exposition text; `pending` is `None` when the store is unreachable.
    pub fn render(&self, pending: Option<u64>) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut out = String::new();
        out.push_str(
            "# HELP flightdeck_webhook_deliveries_total Deliveries received, by result.\n",
        );
        out.push_str("# TYPE flightdeck_webhook_deliveries_total counter\n");
        for (k, c) in [
            ("verified", &self.verified),
            ("rejected", &self.rejected),
            ("duplicate", &self.duplicate),
        ] {
            let _ = writeln!(
                out,
                "flightdeck_webhook_deliveries_total{{result=\"{k}\"}} {}",
                g(c)
            );
        }
        out.push_str("# HELP flightdeck_webhook_forwards_total Forward attempts, by result.\n");
        out.push_str("# TYPE flightdeck_webhook_forwards_total counter\n");
        for (k, c) in [
            ("ok", &self.forward_ok),
            ("retry", &self.forward_retry),
            ("failed", &self.forward_failed),
        ] {
            let _ = writeln!(
                out,
                "flightdeck_webhook_forwards_total{{result=\"{k}\"}} {}",
                g(c)
            );
        }
        out.push_str(
            "# HELP flightdeck_webhook_pending Forwards not yet acknowledged by their target.\n",
        );
        out.push_str("# TYPE flightdeck_webhook_pending gauge\n");
        match pending {
            Some(p) => {
                let _ = writeln!(out, "flightdeck_webhook_pending {p}");
            }
            None => out.push_str("flightdeck_webhook_pending NaN\n"),
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series() {
        let m = Metrics::default();
        bump(&m.verified);
        bump(&m.verified);
        bump(&m.forward_failed);
        let text = m.render(Some(3));
        assert!(text.contains("flightdeck_webhook_deliveries_total{result=\"verified\"} 2\n"));
        assert!(text.contains("flightdeck_webhook_deliveries_total{result=\"rejected\"} 0\n"));
        assert!(text.contains("flightdeck_webhook_forwards_total{result=\"failed\"} 1\n"));
        assert!(text.contains("flightdeck_webhook_pending 3\n"));
        assert!(m.render(None).contains("flightdeck_webhook_pending NaN\n"));
    }
}
