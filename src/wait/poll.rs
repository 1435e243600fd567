//! The polling schedule: short at first, growing to the configured interval,
//! stretched when the hourly request budget runs low.

use crate::api::ratelimit::RateLimit;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Schedule {
    next: Duration,
    steady: Duration,
}

impl Schedule {
    pub fn new(steady: Duration) -> Self {
        // A floor, so `interval: 0s` can never become a busy loop.
        let steady = steady.max(Duration::from_millis(10));
        Self {
            next: steady.min(Duration::from_secs(2)),
            steady,
        }
    }

    /// The wait before the next poll.
    pub fn next(&mut self, rate: Option<RateLimit>) -> Duration {
        let planned = self.next;
        self.next = (self.next.mul_f64(1.5)).min(self.steady);
        match rate {
            Some(r) => r.stretch(planned),
            None => planned,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_interval_and_stretches_when_budget_is_low() {
        let mut s = Schedule::new(Duration::from_secs(30));
        let seq: Vec<u64> = (0..9).map(|_| s.next(None).as_millis() as u64).collect();
        assert_eq!(
            seq,
            [2000, 3000, 4500, 6750, 10125, 15187, 22781, 30000, 30000]
        );
        let low = RateLimit {
            limit: 3600,
            remaining: 300,
        };
        assert_eq!(s.next(Some(low)), Duration::from_secs(120));
        let mut fast = Schedule::new(Duration::from_millis(100));
        assert_eq!(fast.next(None), Duration::from_millis(100));
        assert_eq!(
            Schedule::new(Duration::ZERO).next(None),
            Duration::from_millis(10)
        );
    }
}
