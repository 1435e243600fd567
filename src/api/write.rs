//! Writes that must land exactly once. The client already retries what surely
//! did not reach the server (429, refused connections); what is left are the
//! ambiguous failures (5xx, a connection dropped after the request went out)
//! and a 409 on a write a lost earlier attempt already made. For both, the
//! caller's read-back decides: the effect is there (done, nothing resent), or
//! it is not (send again, within the retry policy).
//!
//! The upload's create and reservation follow the same rule (`upload`); every
//! TestFlight write goes through [`exactly_once`].

use crate::api::error::{ApiError, ApiErrorKind};
use crate::api::retry::RetryPolicy;
use std::future::Future;
use std::time::Duration;

/// How a write ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Landed<T> {
    /// This call's request made the change.
    Written(T),
    /// The read-back found the change already made (by a lost attempt or an earlier run).
    Found(T),
}

impl<T> Landed<T> {
    pub fn into_inner(self) -> T {
        match self {
            Landed::Written(t) | Landed::Found(t) => t,
        }
    }
}

/// Send `write`; after an ambiguous failure or a 409, ask `landed` whether the
/// effect is already there before sending again. `landed` returning `None`
/// after a 409 means the conflict is real: that error is returned.
pub async fn exactly_once<T, W, WF, L, LF>(
    policy: &RetryPolicy,
    what: &str,
    mut write: W,
    mut landed: L,
) -> Result<Landed<T>, ApiError>
where
    W: FnMut() -> WF,
    WF: Future<Output = Result<T, ApiError>>,
    L: FnMut() -> LF,
    LF: Future<Output = Result<Option<T>, ApiError>>,
{
    let mut delay = policy.min_delay;
    let mut attempt = 0;
    loop {
        let e = match write().await {
            Ok(v) => return Ok(Landed::Written(v)),
            Err(e) => e,
        };
        let conflict = e.kind == ApiErrorKind::Conflict;
        let maybe_landed = e.is_transient() && e.ambiguous;
        if !(conflict || maybe_landed) {
            return Err(e);
        }
        tracing::warn!("{what}: {e}; reading back whether it landed");
        if let Some(v) = landed().await? {
            return Ok(Landed::Found(v));
        }
        if conflict || attempt >= policy.max_retries {
            return Err(e);
        }
        attempt += 1;
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(policy.max_delay.max(Duration::from_millis(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn err(status: u16) -> ApiError {
        ApiError::from_status(status, "POST", "/v1/x", b"", None)
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            jitter: false,
            max_retries: 3,
            ..RetryPolicy::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_ambiguous_failure_that_landed_is_not_resent() {
        let sent = Arc::new(AtomicUsize::new(0));
        let s = sent.clone();
        let out = exactly_once(
            &policy(),
            "t",
            || {
                s.fetch_add(1, Ordering::SeqCst);
                async { Err::<u8, _>(err(500)) }
            },
            || async { Ok(Some(7)) },
        )
        .await
        .unwrap();
        assert_eq!(out, Landed::Found(7));
        assert_eq!(sent.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ambiguous_failure_that_did_not_land_is_resent() {
        let sent = Arc::new(AtomicUsize::new(0));
        let s = sent.clone();
        let out = exactly_once(
            &policy(),
            "t",
            || {
                let n = s.fetch_add(1, Ordering::SeqCst);
                async move { if n == 0 { Err(err(503)) } else { Ok(1u8) } }
            },
            || async { Ok(None) },
        )
        .await
        .unwrap();
        assert_eq!(out, Landed::Written(1));
        assert_eq!(sent.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_real_conflict_and_a_refusal_are_errors() {
        let e = exactly_once(
            &policy(),
            "t",
            || async { Err::<u8, _>(err(409)) },
            || async { Ok(None) },
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ApiErrorKind::Conflict);
        let asked = Arc::new(AtomicUsize::new(0));
        let a = asked.clone();
        let e = exactly_once(
            &policy(),
            "t",
            || async { Err::<u8, _>(err(422)) },
            || {
                a.fetch_add(1, Ordering::SeqCst);
                async { Ok(Some(1)) }
            },
        )
        .await
        .unwrap_err();
        assert_eq!(e.kind, ApiErrorKind::Invalid);
        assert_eq!(
            asked.load(Ordering::SeqCst),
            0,
            "a refusal is not read back"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_the_policy_s_retries() {
        let sent = Arc::new(AtomicUsize::new(0));
        let s = sent.clone();
        exactly_once(
            &policy(),
            "t",
            || {
                s.fetch_add(1, Ordering::SeqCst);
                async { Err::<u8, _>(err(500)) }
            },
            || async { Ok(None) },
        )
        .await
        .unwrap_err();
        assert_eq!(sent.load(Ordering::SeqCst), 4);
    }
}
