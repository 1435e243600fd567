//! Apple's `X-Rate-Limit` header: `user-hour-lim:3500;user-hour-rem:500;`.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u64,
    pub remaining: u64,
}

impl RateLimit {
    /// Parse leniently: any order, spaces, a trailing `;`, unknown keys ignored.
    pub fn parse(header: &str) -> Option<Self> {
        let (mut limit, mut remaining) = (None, None);
        for pair in header.split(';') {
            let Some((k, v)) = pair.split_once(':') else {
                continue;
            };
            let v = v.trim().parse::<u64>().ok();
            match k.trim().to_ascii_lowercase().as_str() {
                "user-hour-lim" => limit = v,
                "user-hour-rem" => remaining = v,
                _ => {}
            }
        }
        Some(Self {
            limit: limit?,
            remaining: remaining?,
        })
    }

    /// Fraction of the hourly budget left, 0.0 to 1.0.
    pub fn fraction_left(&self) -> f64 {
        if self.limit == 0 {
            return 0.0;
        }
        (self.remaining as f64 / self.limit as f64).clamp(0.0, 1.0)
    }

    /// How much longer a poller should wait than it planned, given the budget left.
    pub fn stretch(&self, planned: Duration) -> Duration {
        let f = self.fraction_left();
        let factor = if f < 0.05 {
            8
        } else if f < 0.10 {
            4
        } else if f < 0.25 {
            2
        } else {
            1
        };
        planned * factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_apple_format_and_variants() {
        let want = Some(RateLimit {
            limit: 3500,
            remaining: 500,
        });
        assert_eq!(
            RateLimit::parse("user-hour-lim:3500;user-hour-rem:500;"),
            want
        );
        assert_eq!(
            RateLimit::parse("user-hour-rem:500;user-hour-lim:3500"),
            want
        );
        assert_eq!(
            RateLimit::parse(" user-hour-lim: 3500 ; user-hour-rem: 500 ; other:1;"),
            want
        );
        assert_eq!(RateLimit::parse("user-hour-lim:3500;"), None);
        assert_eq!(RateLimit::parse("garbage"), None);
        assert_eq!(RateLimit::parse(""), None);
    }

    #[test]
    fn stretches_as_budget_runs_low() {
        let d = Duration::from_secs(10);
        assert_eq!(
            RateLimit {
                limit: 100,
                remaining: 80
            }
            .stretch(d),
            d
        );
        assert_eq!(
            RateLimit {
                limit: 100,
                remaining: 20
            }
            .stretch(d),
            d * 2
        );
        assert_eq!(
            RateLimit {
                limit: 100,
                remaining: 8
            }
            .stretch(d),
            d * 4
        );
        assert_eq!(
            RateLimit {
                limit: 100,
                remaining: 1
            }
            .stretch(d),
            d * 8
        );
        assert_eq!(
            RateLimit {
                limit: 0,
                remaining: 0
            }
            .stretch(d),
            d * 8
        );
    }
}
