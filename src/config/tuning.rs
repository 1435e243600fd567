//! `FLIGHTDECK_UPLOAD_TUNING`, a benchmark knob: which of the part
//! scheduler's techniques to switch off, so a benchmark can tell which of
//! them made the difference. Read here because `config` is the only code
//! that reads the environment; the upload scheduler gets the typed switches.

use super::env::Env;

pub const UPLOAD_TUNING: &[&str] = &["FLIGHTDECK_UPLOAD_TUNING"];

/// The part scheduler's techniques, each on unless switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadTuning {
    /// Grow the number of bodies on the wire while the rate grows.
    pub adaptive: bool,
    /// Start the next part when a body is sent, not when its answer arrives.
    pub overlap: bool,
    /// Send a straggler again on another connection at the end.
    pub endgame: bool,
    /// Ask the kernel for BBR congestion control on part sockets.
    pub bbr: bool,
}

impl Default for UploadTuning {
    fn default() -> Self {
        Self {
            adaptive: true,
            overlap: true,
            endgame: true,
            bbr: true,
        }
    }
}

impl UploadTuning {
    /// A comma-separated list of techniques to switch off (`no-adaptive`,
    /// `no-overlap`, `no-endgame`, `no-bbr`); other words are ignored.
    pub fn parse(spec: &str) -> Self {
        let mut t = Self::default();
        for word in spec.split(',').map(str::trim) {
            match word {
                "no-adaptive" => t.adaptive = false,
                "no-overlap" => t.overlap = false,
                "no-endgame" => t.endgame = false,
                "no-bbr" => t.bbr = false,
                _ => {}
            }
        }
        t
    }

    /// The switches set in the environment (all on when unset).
    pub fn from_env(env: &Env) -> Self {
        UPLOAD_TUNING
            .iter()
            .find_map(|name| env.get(name))
            .map(Self::parse)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_come_from_the_environment() {
        let env = Env::from_pairs([("FLIGHTDECK_UPLOAD_TUNING", "no-overlap, no-endgame")]);
        let t = UploadTuning::from_env(&env);
        assert!(t.adaptive && !t.overlap && !t.endgame);
        assert_eq!(
            UploadTuning::from_env(&Env::default()),
            UploadTuning::default()
        );
        assert!(!UploadTuning::parse("no-adaptive,bogus").adaptive);
        assert!(!UploadTuning::parse("no-bbr").bbr && UploadTuning::parse("no-adaptive").bbr);
    }
}
