//! Retrying transient failures: exponential backoff with jitter, Retry-After
//! honoured up to a cap, a bounded number of attempts and an overall budget.
//!
//! Built on `backon`, whose closure-per-attempt model rebuilds each request, so
//! streamed bodies (upload parts) are retryable too. Sleeps use tokio time, so
//! tests run with paused time and no real waiting.

use crate::api::error::ApiError;
use backon::{ExponentialBuilder, Retryable};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Upper bound for a server-requested `Retry-After`.
    pub retry_after_cap: Duration,
    /// Total time spent sleeping across all retries of one call.
    pub budget: Duration,
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 6,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            retry_after_cap: Duration::from_secs(120),
            budget: Duration::from_secs(300),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// The policy for a host not reached yet in this run. A refused
    /// connection or a DNS failure on first contact is almost always a wrong
    /// URL or a missing network, which waiting does not heal: two quick
    /// retries within about two seconds, then fail.
    pub fn first_contact(&self) -> Self {
        Self {
            max_retries: self.max_retries.min(2),
            min_delay: self.min_delay.min(Duration::from_millis(250)),
            max_delay: self.max_delay.min(Duration::from_secs(1)),
            budget: self.budget.min(Duration::from_secs(2)),
            ..*self
        }
    }

    /// The delay to use given backoff's proposal and the server's Retry-After:
    /// never shorter than Retry-After (capped), never past the budget.
    pub fn next_delay(
        &self,
        proposed: Option<Duration>,
        retry_after: Option<Duration>,
        spent: Duration,
    ) -> Option<Duration> {
        let mut d = proposed?;
        if let Some(ra) = retry_after {
            d = d.max(ra.min(self.retry_after_cap));
        }
        if spent + d > self.budget {
            return None;
        }
        Some(d)
    }

    /// Run `op` until it succeeds, fails with a non-retryable error, or the
    /// policy is exhausted. `retryable` decides per error (callers narrow it for
    /// non-idempotent requests).
    pub async fn run<T, F, Fut>(
        &self,
        what: &str,
        op: F,
        retryable: impl Fn(&ApiError) -> bool,
    ) -> Result<T, ApiError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ApiError>>,
    {
        let mut builder = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_retries);
        if self.jitter {
            builder = builder.with_jitter();
        }
        let spent = Arc::new(AtomicU64::new(0));
        let spent_adjust = spent.clone();
        let policy = *self;
        op.retry(builder)
            .sleep(tokio::time::sleep)
            .when(|e| retryable(e))
            .adjust(move |e, proposed| {
                let so_far = Duration::from_millis(spent_adjust.load(Ordering::SeqCst));
                let d = policy.next_delay(proposed, e.retry_after, so_far)?;
                spent_adjust.fetch_add(d.as_millis() as u64, Ordering::SeqCst);
                Some(d)
            })
            .notify(|e, d| {
                tracing::warn!("{what}: {e}; retrying in {:.1}s", d.as_secs_f64());
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::ApiErrorKind;
    use std::sync::atomic::AtomicUsize;

    fn err(status: u16, retry_after: Option<u64>) -> ApiError {
        ApiError::from_status(
            status,
            "GET",
            "/v1/x",
            b"",
            retry_after.map(Duration::from_secs),
        )
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_then_succeeds_with_backoff() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let start = tokio::time::Instant::now();
        let out = policy()
            .run(
                "t",
                || {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    async move { if n < 3 { Err(err(503, None)) } else { Ok(n) } }
                },
                ApiError::is_transient,
            )
            .await
            .unwrap();
        assert_eq!(out, 3);
        // 0.5 + 1 + 2 seconds of (virtual) backoff.
        assert_eq!(start.elapsed(), Duration::from_millis(3500));
    }

    #[tokio::test(start_paused = true)]
    async fn fatal_errors_are_not_retried() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let e = policy()
            .run(
                "t",
                || {
                    c.fetch_add(1, Ordering::SeqCst);
                    async { Err::<(), _>(err(404, None)) }
                },
                ApiError::is_transient,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ApiErrorKind::NotFound);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_and_capped() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let start = tokio::time::Instant::now();
        policy()
            .run(
                "t",
                || {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    async move {
                        match n {
                            0 => Err(err(429, Some(7))),
                            1 => Err(err(429, Some(10_000))),
                            _ => Ok(()),
                        }
                    }
                },
                ApiError::is_transient,
            )
            .await
            .unwrap();
        // 7 s (Retry-After beats the 0.5 s backoff), then the 120 s cap.
        assert_eq!(start.elapsed(), Duration::from_secs(127));
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_retries_and_within_budget() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let p = RetryPolicy {
            max_retries: 3,
            ..policy()
        };
        let e = p
            .run(
                "t",
                || {
                    c.fetch_add(1, Ordering::SeqCst);
                    async { Err::<(), _>(err(500, None)) }
                },
                ApiError::is_transient,
            )
            .await
            .unwrap_err();
        assert_eq!(e.status, Some(500));
        assert_eq!(calls.load(Ordering::SeqCst), 4);

        let c2 = Arc::new(AtomicUsize::new(0));
        let c = c2.clone();
        let start = tokio::time::Instant::now();
        let p = RetryPolicy {
            max_retries: 100,
            budget: Duration::from_secs(20),
            ..policy()
        };
        p.run(
            "t",
            || {
                c.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(err(500, None)) }
            },
            ApiError::is_transient,
        )
        .await
        .unwrap_err();
        assert!(
            start.elapsed() <= Duration::from_secs(20),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(
            c2.load(Ordering::SeqCst),
            6,
            "1 call + 5 retries: 0.5+1+2+4+8=15.5s fits, +16 would not"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn first_contact_policy_gives_up_within_two_seconds() {
        let p = RetryPolicy::default().first_contact();
        assert_eq!(p.max_retries, 2);
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let start = tokio::time::Instant::now();
        p.run(
            "t",
            || {
                c.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(err(503, None)) }
            },
            ApiError::is_transient,
        )
        .await
        .unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert!(
            start.elapsed() <= Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn backoff_delays_are_capped() {
        let p = policy();
        assert_eq!(
            p.next_delay(
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(999)),
                Duration::ZERO
            ),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            p.next_delay(None, Some(Duration::from_secs(1)), Duration::ZERO),
            None
        );
        assert_eq!(
            p.next_delay(
                Some(Duration::from_secs(10)),
                None,
                Duration::from_secs(295)
            ),
            None
        );
    }
}
