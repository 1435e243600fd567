//! Upload progress a person can follow: a bar on a terminal, a line every few
//! seconds in CI logs (percent, MiB/s, ETA).

use super::parts::Progress;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const MIB: f64 = 1024.0 * 1024.0;

pub fn line(sent: u64, total: u64, elapsed: Duration) -> String {
    let pct = if total == 0 {
        100.0
    } else {
        sent as f64 * 100.0 / total as f64
    };
    let rate = sent as f64 / elapsed.as_secs_f64().max(0.001);
    let eta = if rate > 0.0 {
        (total.saturating_sub(sent)) as f64 / rate
    } else {
        0.0
    };
    format!(
        "uploaded {pct:.0}% ({:.1} of {:.1} MiB) at {:.1} MiB/s, ETA {}",
        sent as f64 / MIB,
        total as f64 / MIB,
        rate / MIB,
        crate::config::duration::format(Duration::from_secs_f64(eta.min(1e7)))
    )
}

/// Report until the returned handle is aborted.
pub fn spawn(progress: Arc<Progress>, interactive: bool) -> tokio::task::JoinHandle<()> {
    let start = Instant::now();
    let tty = interactive && std::io::stderr().is_terminal();
    tokio::spawn(async move {
        if tty {
            let bar = indicatif::ProgressBar::new(progress.total.load(Ordering::SeqCst));
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            loop {
                let total = progress.total.load(Ordering::SeqCst);
                bar.set_length(total);
                // A part's second copy (the end game) counts while it runs.
                bar.set_position(progress.sent.load(Ordering::SeqCst).min(total));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        } else {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                tracing::info!(
                    "{}",
                    line(
                        progress
                            .sent
                            .load(Ordering::SeqCst)
                            .min(progress.total.load(Ordering::SeqCst)),
                        progress.total.load(Ordering::SeqCst),
                        start.elapsed()
                    )
                );
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_line() {
        let l = super::line(
            50 * 1024 * 1024,
            100 * 1024 * 1024,
            std::time::Duration::from_secs(5),
        );
        assert_eq!(l, "uploaded 50% (50.0 of 100.0 MiB) at 10.0 MiB/s, ETA 5s");
    }
}
