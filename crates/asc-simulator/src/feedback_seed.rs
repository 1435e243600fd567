//! A realistic feedback catalogue for tests and demos: processed builds of an
//! app and many crash and screenshot submissions spread over builds,
//! platforms, devices and OS versions (enough for several pages), crash logs
//! in Apple's text format whose crashing stacks repeat across devices with
//! different addresses and UUIDs, and screenshots with distinct bytes.

use super::ids::uuid;
use super::state::{BuildRec, Feedback, State};

/// What `catalogue` created, newest submission first within each kind.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub builds: Vec<String>,
    pub crashes: Vec<String>,
    pub screenshots: Vec<String>,
}

/// (deviceModel, osVersion, platform, Apple's OS name in crash logs)
pub const DEVICES: &[(&str, &str, &str, &str)] = &[
    ("iPhone16,1", "18.1", "IOS", "iPhone OS 18.1"),
    ("iPhone15,2", "17.6", "IOS", "iPhone OS 17.6"),
    ("iPad14,1", "18.0", "IOS", "iPadOS 18.0"),
    ("Mac14,2", "15.1", "MAC_OS", "macOS 15.1"),
];

/// The crashing stacks: (exception, frames as (image, symbol)). Crash `n` uses `n % 3`.
pub const STACKS: &[(&str, &[(&str, &str)])] = &[
    (
        "EXC_CRASH (SIGABRT)",
        &[
            ("libsystem_kernel.dylib", "__pthread_kill"),
            ("libsystem_pthread.dylib", "pthread_kill"),
            ("libsystem_c.dylib", "abort"),
            ("Example", "CheckoutViewController.pay(_:)"),
            ("UIKitCore", "-[UIApplication sendAction:to:from:forEvent:]"),
            ("UIKitCore", "-[UIControl sendAction:to:forEvent:]"),
        ],
    ),
    (
        "EXC_BAD_ACCESS (SIGSEGV)",
        &[
            ("Example", "ImageCache.decode(_:)"),
            ("Example", "closure #1 in ImageCache.load(url:)"),
            ("libdispatch.dylib", "_dispatch_call_block_and_release"),
            ("libdispatch.dylib", "_dispatch_client_callout"),
            ("libdispatch.dylib", "_dispatch_lane_serial_drain"),
        ],
    ),
    (
        "EXC_BREAKPOINT (SIGTRAP)",
        &[
            (
                "libswiftCore.dylib",
                "_assertionFailure(_:_:file:line:flags:)",
            ),
            ("Example", "CartModel.total.getter"),
            ("Example", "CartView.body.getter"),
            ("SwiftUI", "ViewGraph.updateOutputs(at:)"),
        ],
    ),
];

/// Deterministic bytes (a PNG signature, then noise) for screenshot `n`.
pub fn image_bytes(n: usize) -> Vec<u8> {
    let mut out = vec![0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1);
    for _ in 0..(3000 + n * 131) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 24) as u8);
    }
    out
}

/// A crash log in Apple's text format: crash `n` on `device`, with stack `n % 3`.
pub fn crash_log(n: usize, device: (&str, &str, &str, &str)) -> String {
    let (exception, frames) = STACKS[n % STACKS.len()];
    let slide = 0x1_0000_0000u64 + (n as u64 * 0x3a_5000);
    let mut log = format!(
        "Incident Identifier: {}\nCrashReporter Key:   {}\nHardware Model:      {}\nProcess:             Example [{}]\n\
         Version:             1.0 ({})\nOS Version:          {}\nDate/Time:           2026-11-30 10:{:02}:12.{:03} +0100\n\n\
         Exception Type:  {exception}\nTriggered by Thread:  0\n\n\
         Thread 0 name:   Dispatch queue: com.apple.main-thread\nThread 0 Crashed:\n",
        uuid().to_uppercase(),
        uuid().replace('-', ""),
        device.0,
        1200 + n,
        1 + n % 3,
        device.3,
        n % 60,
        n % 1000,
    );
    for (i, (image, symbol)) in frames.iter().enumerate() {
        let addr = slide + 0x1000 * (i as u64 + 1) + (n as u64 % 97) * 4;
        log.push_str(&format!(
            "{i:<3} {image:<30}\t0x{addr:016x} {symbol} + {}\n",
            8 + 4 * ((n + i) % 50)
        ));
    }
    log.push_str(
        "\nThread 1:\n0   libsystem_kernel.dylib        \t0x00000001e8f41ad8 mach_msg2_trap + 8\n",
    );
    log.push_str(&format!(
        "\nBinary Images:\n0x{slide:x} - 0x{:x} Example arm64  <{}> /private/var/containers/Bundle/Application/{}/Example.app/Example\n",
        slide + 0xfffff,
        uuid().replace('-', ""),
        uuid().to_uppercase()
    ));
    log
}

fn add_build(st: &mut State, app_id: &str, number: usize, now: jiff::Timestamp) -> String {
    let seq = st.next_seq();
    let id = uuid();
    st.builds.insert(
        id.clone(),
        BuildRec {
            id: id.clone(),
            seq,
            app_id: app_id.into(),
            upload_id: uuid(),
            version: number.to_string(),
            short_version: "1.0".into(),
            platform: "IOS".into(),
            processing_state: "VALID".into(),
            uses_non_exempt_encryption: Some(false),
            uploaded: now - jiff::SignedDuration::from_hours(48 - number as i64),
            groups: Default::default(),
            internal_state: "READY_FOR_BETA_TESTING".into(),
            external_state: "READY_FOR_BETA_SUBMISSION".into(),
            auto_notify: true,
        },
    );
    id
}

/// A submission of either kind; `n` picks its build, device, stack and bytes.
pub fn add_submission(
    st: &mut State,
    app_id: &str,
    build_id: &str,
    n: usize,
    crash: bool,
    created: jiff::Timestamp,
) -> String {
    let seq = st.next_seq();
    let id: String = uuid().replace('-', "")[..23].to_string();
    let device = DEVICES[n % DEVICES.len()];
    let comment = if crash {
        format!("It crashed again ({n}) when I tapped Pay | twice")
    } else {
        format!("Screenshot {n}: the total is cut off\non this screen")
    };
    st.feedback.push(Feedback {
        id: id.clone(),
        seq,
        app_id: app_id.into(),
        build_id: build_id.into(),
        crash,
        comment,
        created,
        crash_log: crash.then(|| crash_log(n, device)),
        screenshots: if crash { 0 } else { 1 + n % 2 },
        device_model: device.0.into(),
        os_version: device.1.into(),
        platform: device.2.into(),
        image: (!crash).then(|| image_bytes(n)),
        stale_list_urls: false,
    });
    id
}

/// Three processed builds of `app_id` and `crashes` + `screenshots`
/// submissions, one every 7 minutes back from `now`, round-robin over the
/// builds and devices.
pub fn catalogue(
    st: &mut State,
    app_id: &str,
    now: jiff::Timestamp,
    crashes: usize,
    screenshots: usize,
) -> Catalogue {
    let mut c = Catalogue::default();
    for number in 1..=3 {
        c.builds.push(add_build(st, app_id, number, now));
    }
    for (crash, count) in [(true, crashes), (false, screenshots)] {
        for n in 0..count {
            let created = now - jiff::SignedDuration::from_mins(7 * (n as i64 + 1));
            let build = c.builds[n % c.builds.len()].clone();
            let id = add_submission(st, app_id, &build, n, crash, created);
            if crash {
                c.crashes.push(id);
            } else {
                c.screenshots.push(id);
            }
        }
    }
    c
}
