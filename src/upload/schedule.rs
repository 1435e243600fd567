//! The part scheduler's decisions, kept apart from the I/O so they can be
//! tested without a network: how many part bodies to send at once (grow
//! while the aggregate rate grows, shrink when parts fail, never above the
//! cap), and which part to send again in the end game (the one running far
//! slower than the parts that finished).

use crate::config::tuning::UploadTuning;
use std::time::{Duration, Instant};

/// How the scheduler works; every technique can be switched off, so the
/// benchmark can tell which of them made the difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Parts whose bodies are being sent at once, at most.
    pub cap: usize,
    /// Grow from `START` towards the cap while the rate grows (else: the cap from the start).
    pub adaptive: bool,
    /// Start the next part when a body is sent, not when its answer arrives.
    pub overlap: bool,
    /// Send a straggler again on another connection when nothing else is left.
    pub endgame: bool,
}

impl Tuning {
    pub fn with_cap(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            adaptive: true,
            overlap: true,
            endgame: true,
        }
    }

    /// With the techniques `switches` leaves on (`FLIGHTDECK_UPLOAD_TUNING`,
    /// read by `config`).
    pub fn switched(self, switches: UploadTuning) -> Self {
        Self {
            adaptive: self.adaptive && switches.adaptive,
            overlap: self.overlap && switches.overlap,
            endgame: self.endgame && switches.endgame,
            ..self
        }
    }

    /// With the techniques a `FLIGHTDECK_UPLOAD_TUNING` value names switched
    /// off (`no-adaptive`, `no-overlap`, `no-endgame`, comma-separated).
    pub fn adjusted(self, spec: Option<&str>) -> Self {
        self.switched(UploadTuning::parse(spec.unwrap_or_default()))
    }
}

/// Bodies sent at once before the rate says more would help.
pub const START: usize = 4;
/// How often the rate is looked at.
pub const PERIOD: Duration = Duration::from_millis(250);
/// A rate at least this much above the best seen counts as growth.
const GROWTH: f64 = 1.05;

/// Adaptive concurrency: the number of part bodies to send at once.
#[derive(Debug)]
pub struct Concurrency {
    target: usize,
    cap: usize,
    adaptive: bool,
    best_rate: f64,
    last: Option<(Instant, u64)>,
}

impl Concurrency {
    pub fn new(t: &Tuning) -> Self {
        let target = if t.adaptive { START.min(t.cap) } else { t.cap };
        Self {
            target,
            cap: t.cap,
            adaptive: t.adaptive,
            best_rate: 0.0,
            last: None,
        }
    }

    pub fn target(&self) -> usize {
        self.target
    }

    /// Look at the bytes sent so far; grow by one when the rate since the
    /// last look beats the best rate seen (more connections still help).
    pub fn observe(&mut self, now: Instant, sent: u64) {
        if !self.adaptive {
            return;
        }
        let Some((at, before)) = self.last else {
            self.last = Some((now, sent));
            return;
        };
        let secs = now.duration_since(at).as_secs_f64();
        if secs < PERIOD.as_secs_f64() {
            return;
        }
        let rate = sent.saturating_sub(before) as f64 / secs;
        if rate > self.best_rate * GROWTH {
            self.best_rate = rate;
            self.target = (self.target + 1).min(self.cap);
        }
        self.last = Some((now, sent));
    }

    /// A part attempt failed: back off by a quarter (at least one, never below one).
    pub fn failed(&mut self) {
        if self.adaptive {
            self.target = (self.target - (self.target / 4).max(1)).max(1);
            self.best_rate = 0.0;
        }
    }
}

/// A part in flight, as the end game sees it.
#[derive(Debug, Clone, Copy)]
pub struct InFlight {
    pub number: u64,
    pub length: u64,
    pub started: Instant,
    pub copies: usize,
}

/// A finished part: its length and how long it took.
pub type Finished = (u64, Duration);

/// Copies of one part at most (the first attempt and one more).
pub const MAX_COPIES: usize = 2;
/// A part is a straggler once it has run this many times as long as a part
/// of its length takes at the median rate of the finished parts ...
const STRAGGLER: f64 = 2.0;
/// ... and at least this long (a part of a few milliseconds is never one).
const STRAGGLER_MIN: Duration = Duration::from_millis(100);

/// The part to send again: the longest-running one that has run more than
/// twice as long as the finished parts' median rate needs for its length,
/// and has no second copy yet.
pub fn straggler(now: Instant, flights: &[InFlight], finished: &[Finished]) -> Option<u64> {
    let mut rates: Vec<f64> = finished
        .iter()
        .map(|(len, took)| *len as f64 / took.as_secs_f64().max(1e-6))
        .collect();
    rates.sort_by(f64::total_cmp);
    let rate = *rates.get(rates.len() / 2)?;
    flights
        .iter()
        .filter(|f| {
            let expected = Duration::from_secs_f64(f.length as f64 / rate);
            let limit = expected.mul_f64(STRAGGLER).max(STRAGGLER_MIN);
            f.copies < MAX_COPIES && now.duration_since(f.started) > limit
        })
        .min_by_key(|f| f.started)
        .map(|f| f.number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuning(cap: usize) -> Tuning {
        Tuning::with_cap(cap)
    }

    #[test]
    fn grows_while_the_rate_grows_and_stays_within_the_cap() {
        let mut c = Concurrency::new(&tuning(6));
        assert_eq!(c.target(), START);
        let t0 = Instant::now();
        let mut sent = 0;
        c.observe(t0, sent);
        // Each period moves twice the bytes of the one before: growth every time.
        for i in 1..=10u32 {
            sent += 1000 << i;
            c.observe(t0 + PERIOD * i, sent);
            assert!(c.target() <= 6, "above the cap: {}", c.target());
        }
        assert_eq!(c.target(), 6);
    }

    #[test]
    fn a_flat_rate_stops_the_growth() {
        let mut c = Concurrency::new(&tuning(32));
        let t0 = Instant::now();
        c.observe(t0, 0);
        for i in 1..=20u64 {
            c.observe(t0 + PERIOD * i as u32, i * 1_000_000);
        }
        // The first period sets the best rate (one step); the same rate is no growth.
        assert_eq!(c.target(), START + 1);
    }

    #[test]
    fn failures_shrink_it_but_never_below_one() {
        let mut c = Concurrency::new(&tuning(16));
        c.failed();
        assert_eq!(c.target(), START - 1);
        for _ in 0..10 {
            c.failed();
        }
        assert_eq!(c.target(), 1);
    }

    #[test]
    fn without_adaptation_it_starts_and_stays_at_the_cap() {
        let t = tuning(8).adjusted(Some("no-adaptive"));
        let mut c = Concurrency::new(&t);
        assert_eq!(c.target(), 8);
        c.failed();
        c.observe(Instant::now(), 1 << 30);
        assert_eq!(c.target(), 8);
        let small = Concurrency::new(&tuning(2));
        assert_eq!(small.target(), 2, "the cap bounds the start too");
    }

    #[test]
    fn the_tuning_knob_switches_techniques_off() {
        let t = tuning(4).adjusted(Some("no-overlap, no-endgame"));
        assert!(t.adaptive && !t.overlap && !t.endgame);
        assert_eq!(tuning(4).adjusted(None), tuning(4));
    }

    #[test]
    fn the_straggler_is_the_oldest_part_far_slower_than_the_median_rate() {
        let now = Instant::now() + Duration::from_secs(10);
        // Finished parts moved 1 MB/s, whatever their length.
        let finished = [
            (1_000_000, Duration::from_secs(1)),
            (100_000, Duration::from_millis(100)),
            (2_000_000, Duration::from_secs(2)),
        ];
        let f = |number, length, ago: u64, copies| InFlight {
            number,
            length,
            started: now - Duration::from_secs(ago),
            copies,
        };
        // 1 MB parts: 1 s expected, a straggler after 2 s; 5 s is the oldest.
        let flights = [
            f(7, 1_000_000, 3, 1),
            f(8, 1_000_000, 1, 1),
            f(9, 1_000_000, 5, 1),
        ];
        assert_eq!(straggler(now, &flights, &finished), Some(9));
        // A part already sent twice is not sent a third time.
        let flights = [f(7, 1_000_000, 3, 1), f(9, 1_000_000, 5, MAX_COPIES)];
        assert_eq!(straggler(now, &flights, &finished), Some(7));
        // A large part running long at the median rate is no straggler.
        assert_eq!(straggler(now, &[f(8, 4_000_000, 5, 1)], &finished), None);
        // Nothing finished yet: no rate to compare with.
        assert_eq!(straggler(now, &flights, &[]), None);
    }
}
