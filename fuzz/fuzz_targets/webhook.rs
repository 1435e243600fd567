//! Fuzz target: `flightdeck::fuzzing::webhook` must end in Ok or a typed error,
//! never a panic, a hang or unbounded memory.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    flightdeck::fuzzing::webhook(data);
});
