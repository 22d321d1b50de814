//! Runs a topology on records given in a file, without Kafka: how users unit-test their
//! dataflows (`weir topology test`), as Kafka Streams' `TopologyTestDriver` does.
//!
//! The records go through the same [`Pipeline`] the runner uses, and the records taken aside
//! are written by the same code, so what comes out is what the runner writes for the same
//! input, in one partition, record for record.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::operators::{headers, AsideTopics, Origin, Pipeline, Processed, Record, Retried};
use crate::spec::TopologySpec;

/// One input record: `{"key", "value", "timestamp"}`, and `"topic"` when the topology reads
/// several input topics.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRecord {
    /// The input topic the record comes from; without it, the first input topic.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    /// The message's payload: a string is taken as the payload's text, any other JSON value
    /// is written as JSON.
    pub value: Value,
    /// The message timestamp, in milliseconds since the epoch.
    pub timestamp: i64,
}

/// One message the topology wrote: `{"topic", "key", "value", "timestamp"}`; a tombstone (an
/// `upsert`'s delete) has the value `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestOutput {
    pub topic: String,
    pub key: Option<String>,
    /// The payload as JSON, or as a string when it is not JSON.
    pub value: Value,
    pub timestamp: i64,
    /// The message's headers: a dead letter's provenance (none on other outputs).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
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
            headers: Default::default(),
        }
    }

    /// The same output with these headers.
    pub fn with_headers<'a>(
        mut self,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        self.headers = (headers.into_iter())
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect();
        self
    }
}

/// What one input record made.
#[derive(Debug, Default)]
pub struct Piped {
    pub outputs: Vec<TestOutput>,
    pub failed: bool,
    pub late: bool,
}

/// A record names a topic the topology does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the record comes from topic `{topic}`, which is not an input topic of the topology (input: {input})")]
pub struct NotAnInputTopic {
    pub topic: String,
    pub input: String,
}

/// A topology fed one record at a time, as partition 0 of its input topics. What a `rekey`
/// writes to its repartition topic is fed back at once, as the runner would read it, and not
/// shown among the outputs (Kafka Streams' test driver hides its internal topics too).
#[derive(Debug)]
pub struct TestDriver {
    input: crate::spec::Input,
    /// Every topic the topology consumes, inputs then repartition topics.
    consumed: Vec<String>,
    aside: AsideTopics,
    pipeline: Pipeline,
    processed: Processed,
    /// The next offset of each consumed topic.
    next_offsets: Vec<i64>,
    /// The attempt each consumed topic's records are at, for the retry topics.
    attempts: Vec<Option<u32>>,
}

/// A message waiting to be consumed: the index of its topic, key, payload, timestamp and, from
/// a retry topic, where it was first refused.
type Consumed = (usize, Option<Arc<str>>, Vec<u8>, i64, Option<Retried>);

impl TestDriver {
    pub fn new(spec: &TopologySpec) -> Self {
        let consumed = spec.consumed_topics();
        Self {
            attempts: (0..consumed.len())
                .map(|index| spec.retry_of(index).map(|(_, attempt)| attempt))
                .collect(),
            input: spec.input.clone(),
            next_offsets: vec![0; consumed.len()],
            consumed,
            aside: spec.aside_topics(),
            pipeline: Pipeline::new(spec),
            processed: Processed::default(),
        }
    }

    /// Runs one record through the topology.
    pub fn pipe(&mut self, input: &TestRecord) -> Result<Piped, NotAnInputTopic> {
        let topic = match &input.topic {
            None => 0,
            Some(topic) => {
                (self.input.topics.iter().position(|t| t == topic)).ok_or_else(|| {
                    NotAnInputTopic {
                        topic: topic.clone(),
                        input: self.input.topics_text(),
                    }
                })?
            }
        };
        let payload = match &input.value {
            Value::String(text) => text.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        };
        let key: Option<Arc<str>> = input.key.as_deref().map(Arc::from);
        let mut piped = Piped::default();
        let mut waiting =
            std::collections::VecDeque::from([(topic, key, payload, input.timestamp, None)]);
        while let Some(message) = waiting.pop_front() {
            self.consume(message, &mut piped, &mut waiting);
        }
        Ok(piped)
    }

    /// Runs one consumed message through the pipeline: its outputs to `piped`, what it wrote
    /// to a repartition topic to `waiting`.
    fn consume(
        &mut self,
        (topic, key, payload, timestamp_ms, retried): Consumed,
        piped: &mut Piped,
        waiting: &mut std::collections::VecDeque<Consumed>,
    ) {
        let mut record = Record::new(key.clone(), timestamp_ms).from_topic(topic);
        if let Some(retried) = retried {
            record = record.retried(retried);
        }
        self.pipeline
            .process_into(&payload, record, &mut self.processed);
        let origin = Origin {
            topic: &self.consumed[topic],
            partition: 0,
            offset: self.next_offsets[topic],
            key: key.as_ref(),
            timestamp_ms,
        };
        self.next_offsets[topic] += 1;
        let aside = self.processed.set_aside(&self.aside, &origin, &payload);
        piped.failed |= aside.failed;
        piped.late |= aside.late;
        for message in self.processed.outputs.iter() {
            match self.consumed.iter().position(|t| **t == *message.topic) {
                // What goes to a repartition or retry topic comes back at once (a retry's
                // delay is not waited for).
                Some(internal) if internal >= self.input.topics.len() => waiting.push_back((
                    internal,
                    message.key.clone(),
                    message.payload.clone(),
                    message.timestamp_ms,
                    self.attempts[internal].map(|attempt| retried_from(attempt, &message.headers)),
                )),
                _ if message.tombstone => piped.outputs.push(TestOutput {
                    topic: message.topic.to_string(),
                    key: message.key.as_deref().map(str::to_string),
                    value: Value::Null,
                    timestamp: message.timestamp_ms,
                    headers: Default::default(),
                }),
                _ => piped.outputs.push(
                    TestOutput::of(
                        &message.topic,
                        message.key.as_deref().map(str::as_bytes),
                        &message.payload,
                        message.timestamp_ms,
                    )
                    .with_headers(
                        (message.headers.iter()).map(|(key, value)| (*key, value.as_str())),
                    ),
                ),
            }
        }
    }
}

/// Where a retried record was first refused, from the headers of its retry message.
fn retried_from(attempt: u32, written: &[(&'static str, String)]) -> Retried {
    let header = |name: &str| {
        (written.iter())
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_default()
    };
    Retried {
        attempt,
        origin_topic: header(headers::ORIGIN_TOPIC),
        origin_partition: header(headers::ORIGIN_PARTITION).parse().unwrap_or(0),
        origin_offset: header(headers::ORIGIN_OFFSET).parse().unwrap_or(-1),
        origin_timestamp_ms: header(headers::ORIGIN_TIMESTAMP).parse().unwrap_or(-1),
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
            topic: None,
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
            outputs.extend(driver.pipe(&tick(key, amount, at)).unwrap().outputs);
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
                    headers: Default::default(),
                },
                TestOutput {
                    topic: "candles".into(),
                    key: Some("ETH-CNY".into()),
                    value: json!({
                        "open": 3.0, "high": 3.0, "low": 3.0, "close": 3.0, "count": 1,
                        "window_start": base, "window_end": base + minute,
                    }),
                    timestamp: base + 2_500,
                    headers: Default::default(),
                },
            ]
        );
        let late = driver.pipe(&tick("ETH-CNY", "4", base + 3_000)).unwrap();
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
        let piped = driver
            .pipe(&TestRecord {
                topic: None,
                key: None,
                value: json!("not json"),
                timestamp: 5,
            })
            .unwrap();
        assert!(piped.failed);
        assert_eq!(piped.outputs.len(), 1);
        let error = &piped.outputs[0];
        assert_eq!(error.topic, "errors");
        assert_eq!(error.value["operator"], "parse");
        assert_eq!(error.value["offset"], 0);
        assert_eq!(error.value["payload"], "not json");
    }

    const TWO_TOPICS: &str = r#"
name: two
input: { topics: [orders, refunds], group: g }
error_topic: errors
steps:
  - name: orders
    topics: orders
    operators:
      - parse: {}
      - extract: { fields: { amount: { pointer: /total, type: number } } }
  - name: refunds
    topics: [refunds]
    operators:
      - parse: {}
      - extract: { fields: { amount: { pointer: /refund/amount, type: number } } }
      - set: { amount: "-amount" }
  - name: ledger
    from: [orders, refunds]
    operators:
      - emit: { topic: ledger, fields: [amount], timestamp: false }
"#;

    #[test]
    fn each_input_topic_goes_to_the_steps_that_read_it() {
        let mut driver = driver(TWO_TOPICS);
        let record = |topic: &str, value| TestRecord {
            topic: Some(topic.into()),
            key: Some("c-1".into()),
            value,
            timestamp: 7,
        };
        let order = driver
            .pipe(&record("orders", json!({"total": 12.5})))
            .unwrap();
        let refund = (driver.pipe(&record("refunds", json!({"refund": {"amount": 2}})))).unwrap();
        assert_eq!(order.outputs.len(), 1);
        assert_eq!(order.outputs[0].value, json!({"amount": 12.5}));
        assert_eq!(refund.outputs[0].value, json!({"amount": -2.0}));
        let first = driver
            .pipe(&TestRecord {
                topic: None,
                ..record("", json!({"total": 1}))
            })
            .unwrap();
        assert_eq!(
            first.outputs[0].value,
            json!({"amount": 1.0}),
            "no topic: the first input topic"
        );
        let stranger = driver.pipe(&record("payments", json!({}))).unwrap_err();
        assert_eq!(
            stranger.to_string(),
            "the record comes from topic `payments`, which is not an input topic of the \
             topology (input: orders, refunds)"
        );
    }

    const REKEYED: &str = r#"
name: t
input: { topic: claims, group: g }
error_topic: errors
steps:
  - name: by-member
    operators:
      - parse: {}
      - extract: { fields: { member: /member, amount: { pointer: /amount, type: number } } }
      - rekey: "member"
  - name: totals
    from: by-member
    operators:
      - diff: { field: amount, output: change, previous: before }
      - emit: { topic: changes, fields: [member, change], timestamp: false }
"#;

    #[test]
    fn a_rekeyed_record_reaches_the_next_step_under_its_new_key_and_only_its_outputs_show() {
        let mut driver = driver(REKEYED);
        let claim = |key: &str, member: &str, amount: f64| TestRecord {
            topic: None,
            key: Some(key.into()),
            value: json!({ "member": member, "amount": amount }),
            timestamp: 1,
        };
        // Three claims under their own keys, two of them for one member: the diff sees
        // them as one series only because the records were re-keyed by member.
        let first = driver.pipe(&claim("c-1", "m-7", 10.0)).unwrap();
        assert!(first.outputs.is_empty(), "{:?}", first.outputs);
        assert!(driver
            .pipe(&claim("c-2", "m-8", 1.0))
            .unwrap()
            .outputs
            .is_empty());
        let second = driver.pipe(&claim("c-3", "m-7", 14.5)).unwrap();
        assert_eq!(second.outputs.len(), 1, "{:?}", second.outputs);
        assert_eq!(second.outputs[0].topic, "changes");
        assert_eq!(second.outputs[0].key.as_deref(), Some("m-7"));
        assert_eq!(
            second.outputs[0].value,
            json!({ "member": "m-7", "change": 4.5 })
        );
        // A key expression that gives null refuses the record, at the rekey.
        let no_member = TestRecord {
            value: json!({ "member": null, "amount": 1 }),
            ..claim("c-4", "", 0.0)
        };
        let refused = driver.pipe(&no_member).unwrap();
        assert!(refused.failed);
        assert_eq!(refused.outputs[0].topic, "errors");
        assert_eq!(refused.outputs[0].value["operator"], "rekey");
    }

    const JOINED: &str = r#"
name: t
input: { topics: [members, claims], group: g }
error_topic: errors
steps:
  - name: members
    topics: members
    operators:
      - parse: {}
      - extract: { fields: { op: /op, after: /after } }
      - table: { name: members, row: after, delete: "op == 'd'" }
      - upsert: { topic: members-latest, row: after, delete: "op == 'd'" }
  - name: claims
    topics: claims
    operators:
      - parse: {}
      - extract: { fields: { amount: /amount } }
      - join: { table: members, into: member }
      - set: { plan: "member.plan" }
      - emit: { topic: enriched, fields: [amount, plan], timestamp: false }
"#;

    #[test]
    fn a_join_reads_the_latest_row_and_a_delete_leaves_a_tombstone_and_a_miss() {
        let mut driver = driver(JOINED);
        let event = |topic: &str, value: Value| TestRecord {
            topic: Some(topic.into()),
            key: Some("m-1".into()),
            value,
            timestamp: 5,
        };
        let member = |op: &str, plan: Option<&str>| {
            let after = plan.map_or(Value::Null, |plan| json!({ "id": "m-1", "plan": plan }));
            event("members", json!({ "op": op, "after": after }))
        };
        let created = driver.pipe(&member("c", Some("basic"))).unwrap();
        assert_eq!(created.outputs[0].topic, "members-latest");
        assert_eq!(created.outputs[0].value["plan"], "basic");
        driver.pipe(&member("u", Some("gold"))).unwrap();
        let claim = driver
            .pipe(&event("claims", json!({ "amount": 3 })))
            .unwrap();
        assert_eq!(claim.outputs[0].topic, "enriched");
        assert_eq!(
            claim.outputs[0].value,
            json!({ "amount": 3, "plan": "gold" })
        );
        let deleted = driver.pipe(&member("d", None)).unwrap();
        assert_eq!(deleted.outputs[0].key.as_deref(), Some("m-1"));
        assert_eq!(deleted.outputs[0].value, Value::Null, "a tombstone");
        let missed = driver
            .pipe(&event("claims", json!({ "amount": 4 })))
            .unwrap();
        assert!(missed.failed);
        assert_eq!(missed.outputs[0].topic, "errors");
        assert_eq!(missed.outputs[0].value["operator"], "join");
        assert_eq!(
            missed.outputs[0].value["reason"],
            "the table holds no row of key `m-1`"
        );
    }

    #[test]
    fn a_step_retries_a_refused_record_then_dead_letters_it_with_its_provenance() {
        let text = JOINED.replace(
            "  - name: claims\n    topics: claims\n    operators:\n      - parse: {}\n      - extract: { fields: { amount: /amount } }\n",
            "  - name: claims\n    topics: claims\n    operators:\n      - parse: {}\n      - extract: { fields: { amount: /amount } }\n  - name: checked\n    from: claims\n    retry: { attempts: 2, backoff: 1s, dead_letter_topic: dead }\n    operators:\n",
        );
        let mut driver = driver(&text);
        let claim = TestRecord {
            topic: Some("claims".into()),
            key: Some("m-9".into()),
            value: json!({ "amount": 3 }),
            timestamp: 5,
        };
        let piped = driver.pipe(&claim).unwrap();
        assert!(piped.failed, "{:?}", piped.outputs);
        assert_eq!(piped.outputs.len(), 1, "{:?}", piped.outputs);
        let dead = &piped.outputs[0];
        assert_eq!(dead.topic, "dead");
        assert_eq!(dead.key.as_deref(), Some("m-9"));
        assert_eq!(
            dead.value,
            json!({ "amount": 3 }),
            "the fields the step took"
        );
        let header = |name: &str| dead.headers.get(name).map(String::as_str);
        assert_eq!(
            header(headers::ATTEMPT),
            Some("3"),
            "the first try and two retries"
        );
        assert_eq!(header(headers::STEP), Some("checked"));
        assert_eq!(header(headers::ORIGIN_TOPIC), Some("claims"));
        assert_eq!(header(headers::ORIGIN_OFFSET), Some("0"));
        assert_eq!(header(headers::RETRY_TOPIC), Some("g-checked-retry-1"));
        assert_eq!(
            header(headers::REASON),
            Some("join: the table holds no row of key `m-9`")
        );
        assert_eq!(header(headers::DUE), None);
    }
}
