//! Runs a topology on records given in a file, without Kafka: how users unit-test their
//! dataflows (`weir topology test`), as Kafka Streams' `TopologyTestDriver` does.
//!
//! The records go through the same [`Pipeline`] the runner uses, and the records taken aside
//! are written by the same code, so what comes out is what the runner writes for the same
//! input, in one partition, record for record.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::operators::{AsideTopics, Origin, Pipeline, Processed, Record};
use crate::spec::TopologySpec;

/// One input record: `{"key", "value", "timestamp"}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRecord {
    #[serde(default)]
    pub key: Option<String>,
    /// The message's payload: a string is taken as the payload's text, any other JSON value
    /// is written as JSON.
    pub value: Value,
    /// The message timestamp, in milliseconds since the epoch.
    pub timestamp: i64,
}

/// One message the topology wrote: `{"topic", "key", "value", "timestamp"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestOutput {
    pub topic: String,
    pub key: Option<String>,
    /// The payload as JSON, or as a string when it is not JSON.
    pub value: Value,
    pub timestamp: i64,
}

impl TestOutput {
    /// The output for a message's parts as Kafka holds them.
    pub fn of(topic: &str, key: Option<&[u8]>, payload: &[u8], timestamp: i64) -> Self {
        Self {
            topic: topic.to_string(),
            key: key.map(|key| String::from_utf8_lossy(key).into_owned()),
            value: serde_json::from_slice(payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned())),
            timestamp,
        }
    }
}

/// What one input record made.
#[derive(Debug, Default)]
pub struct Piped {
    pub outputs: Vec<TestOutput>,
    pub failed: bool,
    pub late: bool,
}

/// A topology fed one record at a time, as partition 0 of its input topic.
#[derive(Debug)]
pub struct TestDriver {
    input_topic: String,
    aside: AsideTopics,
    pipeline: Pipeline,
    processed: Processed,
    next_offset: i64,
}

impl TestDriver {
    pub fn new(spec: &TopologySpec) -> Self {
        Self {
            input_topic: spec.input.topic.clone(),
            aside: spec.aside_topics(),
            pipeline: Pipeline::new(spec),
            processed: Processed::default(),
            next_offset: 0,
        }
    }

    /// Runs one record through the topology.
    pub fn pipe(&mut self, input: &TestRecord) -> Piped {
        let payload = match &input.value {
            Value::String(text) => text.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        };
        let key: Option<Arc<str>> = input.key.as_deref().map(Arc::from);
        let record = Record::new(key.clone(), input.timestamp);
        self.pipeline
            .process_into(&payload, record, &mut self.processed);
        let origin = Origin {
            topic: &self.input_topic,
            partition: 0,
            offset: self.next_offset,
            key: key.as_ref(),
            timestamp_ms: input.timestamp,
        };
        self.next_offset += 1;
        let aside = self.processed.set_aside(&self.aside, &origin, &payload);
        Piped {
            outputs: (self.processed.outputs.iter())
                .map(|message| {
                    TestOutput::of(
                        &message.topic,
                        message.key.as_deref().map(str::as_bytes),
                        &message.payload,
                        message.timestamp_ms,
                    )
                })
                .collect(),
            failed: aside.failed,
            late: aside.late,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    const CANDLES: &str = include_str!("../../workflows/topologies/candles.yaml");

    fn driver(text: &str) -> TestDriver {
        TestDriver::new(&TopologySpec::parse(Path::new("t.yaml"), text, &[]).unwrap())
    }

    fn tick(key: &str, amount: &str, timestamp: i64) -> TestRecord {
        TestRecord {
            key: Some(key.into()),
            value: json!({ "data": { "amount": amount } }),
            timestamp,
        }
    }

    #[test]
    fn candles_close_per_key_when_stream_time_passes_the_minute() {
        let mut driver = driver(CANDLES);
        let minute = 60_000;
        let base = 1_700_000_040_000 - 1_700_000_040_000 % minute;
        let mut outputs = Vec::new();
        for (key, amount, at) in [
            ("BTC-CNY", "10", base + 1_000),
            ("BTC-CNY", "12", base + 2_000),
            ("ETH-CNY", "3", base + 2_500),
            ("BTC-CNY", "9", base + 30_000),
            ("BTC-CNY", "11", base + 59_999),
            // The next minute, past the 2 s grace: stream time passes the first minute's end,
            // closing both keys' candles of it.
            ("BTC-CNY", "20", base + minute + 1_000),
            ("BTC-CNY", "21", base + minute + 2_000),
        ] {
            outputs.extend(driver.pipe(&tick(key, amount, at)).outputs);
        }
        assert_eq!(
            outputs,
            vec![
                TestOutput {
                    topic: "candles".into(),
                    key: Some("BTC-CNY".into()),
                    value: json!({
                        "open": 10.0, "high": 12.0, "low": 9.0, "close": 11.0, "count": 4,
                        "window_start": base, "window_end": base + minute,
                    }),
                    timestamp: base + 59_999,
                },
                TestOutput {
                    topic: "candles".into(),
                    key: Some("ETH-CNY".into()),
                    value: json!({
                        "open": 3.0, "high": 3.0, "low": 3.0, "close": 3.0, "count": 1,
                        "window_start": base, "window_end": base + minute,
                    }),
                    timestamp: base + 2_500,
                },
            ]
        );
        let late = driver.pipe(&tick("ETH-CNY", "4", base + 3_000));
        assert!(late.late, "the first minute has closed");
        assert_eq!(late.outputs.len(), 1);
        assert_eq!(late.outputs[0].topic, "late-rates");
        assert!(late.outputs[0].value["reason"]
            .as_str()
            .unwrap()
            .contains("late record"));
    }

    #[test]
    fn a_refused_record_goes_to_the_error_topic_with_its_origin() {
        let mut driver = driver(CANDLES);
        let piped = driver.pipe(&TestRecord {
            key: None,
            value: json!("not json"),
            timestamp: 5,
        });
        assert!(piped.failed);
        assert_eq!(piped.outputs.len(), 1);
        let error = &piped.outputs[0];
        assert_eq!(error.topic, "errors");
        assert_eq!(error.value["operator"], "parse");
        assert_eq!(error.value["offset"], 0);
        assert_eq!(error.value["payload"], "not json");
    }
}
