//! Humane durations: `30s`, `45m`, `1h30m`, `500ms`, `2d`; a bare number is seconds.

use std::time::Duration;

/// The longest duration accepted anywhere (waits, intervals, `since`).
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

pub fn parse(text: &str) -> Result<Duration, String> {
    let d = parse_unbounded(text)?;
    if d > MAX {
        return Err(format!(
            "duration {text:?} is longer than the 365 days allowed"
        ));
    }
    Ok(d)
}

fn parse_unbounded(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs.min(MAX.as_secs() + 1)));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!(
                "invalid duration {text:?}: expected a number before {rest:?} (examples: 30s, 45m, 1h30m)"
            ));
        }
        let n: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("invalid number in duration {text:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" | "sec" | "secs" => n,
            "m" | "min" | "mins" => n * 60.0,
            "h" | "hr" | "hrs" => n * 3600.0,
            "d" => n * 86400.0,
            "" => {
                return Err(format!(
                    "invalid duration {text:?}: a unit is missing after {n} (s, m, h)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m, h or d)"
                ));
            }
        };
        if !secs.is_finite() || secs > MAX.as_secs_f64() {
            return Err(format!(
                "duration {text:?} is longer than the 365 days allowed"
            ));
        }
        total += Duration::from_secs_f64(secs);
    }
    Ok(total)
}

/// `1h30m`, `45s`, `250ms`.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    let (h, m, s) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humane_forms() {
        let cases = [
            ("30s", 30_000),
            ("45m", 2_700_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("90", 90_000),
            ("1.5h", 5_400_000),
            ("2d", 172_800_000),
        ];
        for (text, ms) in cases {
            assert_eq!(parse(text).unwrap(), Duration::from_millis(ms), "{text}");
        }
    }

    #[test]
    fn rejects_with_reasons() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("10x").unwrap_err().contains("unknown unit \"x\""));
        assert!(parse("m").unwrap_err().contains("expected a number"));
        assert!(parse("1h30").unwrap_err().contains("unit is missing"));
        assert!(
            parse("99999999999999999999999h")
                .unwrap_err()
                .contains("365 days")
        );
        assert!(parse("99999999999999999999").is_err());
        assert!(parse("366d").unwrap_err().contains("365 days"));
        assert!(parse("200d200d").unwrap_err().contains("365 days"));
    }

    #[test]
    fn formats_round_trip() {
        for text in ["1h30m", "45s", "250ms", "2h", "1m5s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
