//! Fault injection, reproducible from a seed: 5xx, 429 with Retry-After and
//! dropped connections on API calls; 5xx, drops, slowness and expired URLs on
//! upload parts. Scripted faults (a queue) make single failures exact in tests;
//! targeted faults hit one route and method (one phase of a pipeline) with
//! one kind of failure, so a fault matrix can walk phases x kinds.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    pub seed: u64,
    /// Fraction of API calls answered 500/503 (before they take effect).
    pub api_5xx: f64,
    /// Fraction of API calls answered 429 with Retry-After.
    pub api_429: f64,
    /// Fraction of API calls whose connection is dropped after they took effect.
    pub api_drop: f64,
    /// Fraction of part uploads answered 500.
    pub part_5xx: f64,
    /// Fraction of part uploads cut off half way.
    pub part_drop: f64,
    /// Delay before each part upload is read, in milliseconds.
    pub part_slow_ms: u64,
    /// Fraction of part URLs issued already expired.
    pub expired_urls: f64,
    /// Retry-After sent with injected 429s, in seconds.
    pub retry_after_secs: u64,
    /// How long a targeted [`Kind::Hang`] holds the request, in milliseconds
    /// (0: 30 s).
    pub hang_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    Api,
    Part,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    ServerError,
    RateLimited,
    Drop,
    /// Answer normally: lets a script place a fault on exactly the Nth request.
    Pass,
    /// Hold a part upload unread until the client gives up on it: a straggler
    /// (scripted only; `part_slow_ms` slows every part alike).
    Stall,
}

/// One kind of failure aimed at one phase (see [`Target`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// 503 (500 on part URLs) before acting.
    ServerError,
    /// 429 with `Retry-After`.
    RateLimited,
    /// 429 without `Retry-After`.
    RateLimitedBare,
    /// The connection breaks before the server acted.
    DropBefore,
    /// The server acted, then the connection breaks.
    DropAfter,
    /// The server waits `hang_ms` before answering (past a short client timeout).
    Hang,
    /// 401 NOT_AUTHORIZED, as Apple answers when a token expired mid-run
    /// (on presigned URLs: 403 "Request has expired").
    ExpiredToken,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::ServerError,
        Kind::RateLimited,
        Kind::RateLimitedBare,
        Kind::DropBefore,
        Kind::DropAfter,
        Kind::Hang,
        Kind::ExpiredToken,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::ServerError => "5xx",
            Kind::RateLimited => "429+Retry-After",
            Kind::RateLimitedBare => "429",
            Kind::DropBefore => "drop-before",
            Kind::DropAfter => "drop-after",
            Kind::Hang => "hang",
            Kind::ExpiredToken => "expired-token",
        }
    }
}

/// A fault for the requests matching `method` and `route` (the route
/// template, e.g. `/v1/buildUploadFiles/{id}`; `/_upload/{file}/{part}` for
/// parts, `/_sim/screenshots/{id}/{n}` for screenshot downloads, `POST
/// webhook-delivery` for the simulator's own deliveries), `times` times
/// after `skip` matching requests passed untouched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub method: String,
    pub route: String,
    pub kind: Kind,
    #[serde(default = "one")]
    pub times: usize,
    #[serde(default)]
    pub skip: usize,
}

fn one() -> usize {
    1
}

/// The rates, the seeded generator, and the scripted faults still to come.
type FaultState = (Faults, StdRng, VecDeque<(Scope, Fault)>);

pub struct FaultInjector {
    inner: Mutex<FaultState>,
    targets: Mutex<Vec<Target>>,
}

impl FaultInjector {
    pub fn new(f: Faults) -> Self {
        let rng = StdRng::seed_from_u64(f.seed);
        Self {
            inner: Mutex::new((f, rng, VecDeque::new())),
            targets: Mutex::new(Vec::new()),
        }
    }

    /// Aim a fault at one route and method.
    pub fn target(&self, t: Target) {
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(t);
    }

    /// Targeted faults not yet used up.
    pub fn targets(&self) -> Vec<Target> {
        self.targets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The targeted fault for this request, if one is aimed at it.
    pub fn targeted(&self, method: &str, route: &str) -> Option<Kind> {
        let mut g = self.targets.lock().unwrap_or_else(|p| p.into_inner());
        let pos = g
            .iter()
            .position(|t| t.method.eq_ignore_ascii_case(method) && t.route == route)?;
        let t = &mut g[pos];
        if t.skip > 0 {
            t.skip -= 1;
            return None;
        }
        let kind = t.kind;
        t.times -= 1;
        if t.times == 0 {
            g.remove(pos);
        }
        Some(kind)
    }

    /// How long a [`Kind::Hang`] holds a request.
    pub fn hang(&self) -> std::time::Duration {
        let ms = self.get().hang_ms;
        std::time::Duration::from_millis(if ms == 0 { 30_000 } else { ms })
    }

    pub fn set(&self, f: Faults) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1 = StdRng::seed_from_u64(f.seed);
        g.0 = f;
    }

    pub fn get(&self) -> Faults {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// Queue exact faults for the next requests of a scope.
    pub fn script(&self, scope: Scope, fault: Fault, times: usize) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        for _ in 0..times {
            g.2.push_back((scope, fault));
        }
    }

    /// Scripted faults not yet used.
    pub fn pending(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).2.len()
    }

    /// The fault for the next request of `scope`, if any.
    pub fn next(&self, scope: Scope) -> Option<Fault> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (f, rng, queue) = &mut *g;
        if let Some(pos) = queue.iter().position(|(s, _)| *s == scope) {
            return queue
                .remove(pos)
                .and_then(|(_, fault)| (fault != Fault::Pass).then_some(fault));
        }
        let roll: f64 = rng.random();
        let (p5, p429, pdrop) = match scope {
            Scope::Api => (f.api_5xx, f.api_429, f.api_drop),
            Scope::Part => (f.part_5xx, 0.0, f.part_drop),
        };
        if roll < p5 {
            Some(Fault::ServerError)
        } else if roll < p5 + p429 {
            Some(Fault::RateLimited)
        } else if roll < p5 + p429 + pdrop {
            Some(Fault::Drop)
        } else {
            None
        }
    }

    /// Whether a newly issued part URL should already be expired.
    pub fn expire_url(&self) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let p = g.0.expired_urls;
        p > 0.0 && g.1.random::<f64>() < p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let f = Faults {
            seed: 42,
            api_5xx: 0.2,
            api_429: 0.2,
            api_drop: 0.1,
            ..Faults::default()
        };
        let a = FaultInjector::new(f.clone());
        let b = FaultInjector::new(f);
        let run = |i: &FaultInjector| (0..200).map(|_| i.next(Scope::Api)).collect::<Vec<_>>();
        let (ra, rb) = (run(&a), run(&b));
        assert_eq!(ra, rb);
        let errors = ra
            .iter()
            .filter(|x| **x == Some(Fault::ServerError))
            .count();
        assert!((20..=60).contains(&errors), "{errors} server errors in 200");
    }

    #[test]
    fn targeted_faults_hit_their_route_after_skip_then_stop() {
        let i = FaultInjector::new(Faults::default());
        i.target(Target {
            method: "POST".into(),
            route: "/v1/buildUploads".into(),
            kind: Kind::DropAfter,
            times: 1,
            skip: 1,
        });
        assert_eq!(i.targeted("GET", "/v1/buildUploads"), None);
        assert_eq!(i.targeted("POST", "/v1/buildUploads"), None, "skipped");
        assert_eq!(
            i.targeted("post", "/v1/buildUploads"),
            Some(Kind::DropAfter)
        );
        assert_eq!(i.targeted("POST", "/v1/buildUploads"), None, "used up");
        assert!(i.targets().is_empty());
    }

    #[test]
    fn scripted_faults_come_first_and_once() {
        let i = FaultInjector::new(Faults::default());
        i.script(Scope::Part, Fault::Pass, 1);
        i.script(Scope::Part, Fault::Drop, 2);
        assert_eq!(i.next(Scope::Api), None);
        assert_eq!(i.next(Scope::Part), None, "a scripted pass");
        assert_eq!(i.pending(), 2);
        assert_eq!(i.next(Scope::Part), Some(Fault::Drop));
        assert_eq!(i.next(Scope::Part), Some(Fault::Drop));
        assert_eq!(i.next(Scope::Part), None);
    }
}
