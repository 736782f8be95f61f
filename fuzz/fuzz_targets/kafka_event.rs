//! A Kafka message (any key, value, headers, timestamp) → its event.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use wasmless_fuzz::host::{Event, KafkaRecord};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<&'a [u8]>,
    payload: Option<&'a [u8]>,
    headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

fuzz_target!(|input: Input<'_>| {
    let record = KafkaRecord {
        topic: input.topic,
        partition: input.partition,
        offset: input.offset,
        timestamp_ms: input.timestamp_ms,
        key: input.key,
        payload: input.payload,
        headers: input.headers,
    };
    let event = Event::from_kafka(&record, "fuzz");
    assert_eq!(
        event.id,
        format!("{}-{}-{}", input.topic, input.partition, input.offset)
    );
    let time = event.time_rfc3339();
    assert!(time.ends_with('Z'), "{time}");
});
