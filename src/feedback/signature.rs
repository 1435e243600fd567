//! Crash signatures: the top frames of the crashing thread, normalised so the
//! same crash on two devices (different addresses, slides, offsets, UUIDs,
//! line numbers) is one key. Reads Apple's text crash reports and the JSON
//! `.ips` form (a header line, then a body with `threads` and `faultingThread`).

use serde::Serialize;
use sha2::Digest;

/// How many frames of the crashing thread make the signature.
pub const TOP_FRAMES: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// 16 hex digits of the SHA-256 of the normalised frames; the issue marker key.
    pub key: String,
    /// The exception type, when the log says (`EXC_CRASH (SIGABRT)`).
    pub exception: Option<String>,
    /// The normalised frames, `image: symbol`.
    pub frames: Vec<String>,
}

impl Signature {
    fn from_frames(exception: Option<String>, frames: Vec<String>) -> Option<Self> {
        if frames.is_empty() {
            return None;
        }
        let digest = sha2::Sha256::digest(frames.join("\n").as_bytes());
        Some(Self {
            key: hex::encode(&digest[..8]),
            exception,
            frames,
        })
    }

    /// A one-line title: the first frame in the app's own code if any, else the first.
    pub fn title(&self) -> String {
        let system = |f: &&String| {
            f.starts_with("lib") || f.starts_with("UIKitCore") || f.starts_with("CoreFoundation")
        };
        let frame = self
            .frames
            .iter()
            .find(|f| !system(f))
            .or(self.frames.first())
            .cloned()
            .unwrap_or_default();
        match &self.exception {
            Some(e) => format!("{e} in {frame}"),
            None => frame,
        }
    }
}

/// The signature of a crash log, or None when no crashing thread is found.
pub fn of(log: &str) -> Option<Signature> {
    ips(log).or_else(|| text(log))
}

/// Apple's text format: frames after `Thread N Crashed:` up to the blank line.
fn text(log: &str) -> Option<Signature> {
    let exception = log
        .lines()
        .find_map(|l| l.strip_prefix("Exception Type:"))
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    let mut lines = log.lines().skip_while(|l| !is_crashed_header(l));
    lines.next()?;
    let frames: Vec<String> = lines
        .take_while(|l| !l.trim().is_empty())
        .filter_map(text_frame)
        .take(TOP_FRAMES)
        .collect();
    Signature::from_frames(exception, frames)
}

fn is_crashed_header(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("Thread ") && l.contains(" Crashed")
}

/// `3   Example   0x0000000102a4f3b8 CheckoutViewController.pay(_:) + 212 (File.swift:88)`
fn text_frame(line: &str) -> Option<String> {
    let mut parts = line.split_whitespace();
    parts.next()?.parse::<u32>().ok()?;
    let image = parts.next()?.to_string();
    let rest: Vec<&str> = parts.collect();
    let after_addr = match rest.first() {
        Some(a) if a.starts_with("0x") => &rest[1..],
        _ => &rest[..],
    };
    Some(format!("{image}: {}", symbol(&after_addr.join(" "))))
}

/// Strip offsets, file:line, addresses and UUIDs from a symbol.
pub fn symbol(raw: &str) -> String {
    let mut s = raw.trim();
    if let Some(i) = s.rfind(" (")
        && s.ends_with(')')
        && s[i..].contains(':')
    {
        s = &s[..i];
    }
    if let Some(i) = s.rfind(" + ")
        && s[i + 3..].trim().chars().all(|c| c.is_ascii_digit())
    {
        s = &s[..i];
    }
    let words: Vec<String> = s
        .split(' ')
        .map(|w| {
            if w.starts_with("0x") && w.len() > 2 {
                "?".to_string()
            } else if is_uuid(w) {
                "<uuid>".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    let out = words.join(" ");
    if out.is_empty() || out == "?" {
        "???".into()
    } else {
        out
    }
}

fn is_uuid(w: &str) -> bool {
    let hex = w.trim_matches(|c| c == '<' || c == '>');
    let digits = hex.chars().filter(char::is_ascii_hexdigit).count();
    (hex.len() == 36 && digits == 32 && hex.matches('-').count() == 4)
        || (hex.len() == 32 && digits == 32)
}

/// The `.ips` JSON form: `faultingThread` indexes `threads`, frames name images by index.
fn ips(log: &str) -> Option<Signature> {
    let body = log.split_once('\n').map(|(_, b)| b).unwrap_or(log);
    let doc: serde_json::Value = serde_json::from_str(body.trim()).ok()?;
    let threads = doc.get("threads")?.as_array()?;
    let faulting = doc
        .get("faultingThread")
        .and_then(|t| t.as_u64())
        .unwrap_or(0) as usize;
    let images = doc.get("usedImages").and_then(|i| i.as_array());
    let image_name = |i: Option<u64>| {
        i.and_then(|i| images?.get(i as usize)?.get("name")?.as_str())
            .unwrap_or("???")
            .to_string()
    };
    let frames = threads
        .get(faulting)?
        .get("frames")?
        .as_array()?
        .iter()
        .take(TOP_FRAMES)
        .map(|f| {
            let sym = f.get("symbol").and_then(|s| s.as_str()).unwrap_or("???");
            format!(
                "{}: {}",
                image_name(f.get("imageIndex").and_then(|i| i.as_u64())),
                symbol(sym)
            )
        })
        .collect();
    let exception = doc.get("exception").and_then(|e| {
        Some(format!(
            "{} ({})",
            e.get("type")?.as_str()?,
            e.get("signal")?.as_str()?
        ))
    });
    Signature::from_frames(exception, frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "Incident Identifier: 6F0C6C55-2A4B-4E0B-9C53-0C1D2E3F4A5B\nHardware Model: iPhone16,1\n\
        Exception Type:  EXC_CRASH (SIGABRT)\n\nThread 0 name:   Dispatch queue: com.apple.main-thread\nThread 0 Crashed:\n\
        0   libsystem_kernel.dylib        \t0x00000001e8f4a42c __pthread_kill + 8\n\
        1   Example                       \t0x0000000102a4f3b8 CheckoutViewController.pay(_:) + 212 (CheckoutViewController.swift:88)\n\n\
        Thread 1:\n0   libsystem_kernel.dylib 0x00000001e8f41ad8 mach_msg2_trap + 8\n";

    #[test]
    fn the_same_stack_on_another_device_is_the_same_key() {
        let b = A
            .replace("0x00000001e8f4a42c", "0x00000001d0004a42c")
            .replace("+ 212", "+ 216")
            .replace("swift:88", "swift:91")
            .replace(
                "6F0C6C55-2A4B-4E0B-9C53-0C1D2E3F4A5B",
                "11111111-2222-3333-4444-555555555555",
            )
            .replace("iPhone16,1", "iPad14,1");
        let (sa, sb) = (of(A).unwrap(), of(&b).unwrap());
        assert_eq!(sa, sb);
        assert_eq!(
            sa.frames,
            vec![
                "libsystem_kernel.dylib: __pthread_kill",
                "Example: CheckoutViewController.pay(_:)"
            ]
        );
        assert_eq!(
            sa.title(),
            "EXC_CRASH (SIGABRT) in Example: CheckoutViewController.pay(_:)"
        );
    }

    #[test]
    fn a_different_stack_is_a_different_key() {
        let b = A.replace("CheckoutViewController.pay(_:)", "CartModel.total.getter");
        assert_ne!(of(A).unwrap().key, of(&b).unwrap().key);
    }

    #[test]
    fn unsymbolicated_frames_and_uuids_are_normalised() {
        assert_eq!(symbol("0x102a40000 + 62392"), "???");
        assert_eq!(
            symbol("closure in 3F2504E0-4F89-11D3-9A0C-0305E82C3301 + 4"),
            "closure in <uuid>"
        );
    }

    #[test]
    fn ips_json_logs_are_read() {
        let ips = r#"{"app_name":"Example","bug_type":"309"}
{"faultingThread":1,"exception":{"type":"EXC_BAD_ACCESS","signal":"SIGSEGV"},
 "usedImages":[{"name":"Example"},{"name":"libdispatch.dylib"}],
 "threads":[{"frames":[{"imageIndex":1,"symbol":"idle"}]},
            {"frames":[{"imageIndex":0,"symbol":"ImageCache.decode(_:)","imageOffset":1234},{"imageIndex":1,"symbol":"_dispatch_client_callout"}]}]}"#;
        let s = of(ips).unwrap();
        assert_eq!(
            s.frames,
            vec![
                "Example: ImageCache.decode(_:)",
                "libdispatch.dylib: _dispatch_client_callout"
            ]
        );
        assert_eq!(s.exception.as_deref(), Some("EXC_BAD_ACCESS (SIGSEGV)"));
    }

    #[test]
    fn no_crashed_thread_is_none() {
        assert!(of("just some text\n").is_none());
        assert!(of("").is_none());
    }
}
