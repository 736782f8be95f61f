//! A CronTrigger's schedule, parsed and asked for its next ticks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(cron) = wasmless_fuzz::crd::parse_schedule(text) {
        let mut from = chrono::DateTime::parse_from_rfc3339("2026-11-25T00:00:00Z")
            .expect("a fixed time")
            .with_timezone(&chrono::Utc);
        for _ in 0..3 {
            match cron.find_next_occurrence(&from, false) {
                Ok(next) => from = next,
                Err(_) => break,
            }
        }
    }
});
