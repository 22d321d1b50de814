//! The operator chain, compiled from a [`TopologySpec`] and applied to one record at a time.
//!
//! Operators are pure with respect to Kafka: they read and write a [`Record`], push the
//! messages they want written into an [`Outputs`] buffer, and report state changes so that the
//! runner can checkpoint them together with the consumer offsets.

use std::collections::hash_map::{Entry, HashMap};
use std::sync::Arc;

use foldhash::fast::RandomState;
use serde_json::Value;

use weir_contracts::number::as_number;

use crate::pointer::JsonPointer;
use crate::pruned::{Found, Wanted};
use crate::spec::{FieldKind, OperatorSpec, TopologySpec};

mod layout;
mod outputs;
mod record;

use layout::Layout;
pub use outputs::{OutputMessage, Outputs, Processed, StateUpdate, StateUpdates};
pub use record::{Fields, Record};

/// Why a record could not be processed. It goes to the error topic with this reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{operator}: {reason}")]
pub struct RecordError {
    /// Which operator refused the record, e.g. `extract`.
    pub operator: &'static str,
    pub reason: String,
}

/// The compiled operator chain with its state.
#[derive(Debug)]
pub struct Pipeline {
    operators: Vec<Operator>,
    /// What `parse` read of the current record for the `extract`s, reused from record to
    /// record.
    found: Found,
    /// The room of the last record's fields, for the next record's.
    spare_fields: Fields,
}

#[derive(Debug)]
enum Operator {
    /// Parses the payload, reading only the values the chain's `extract`s name.
    Parse(Wanted),
    Extract(Vec<Extraction>),
    Diff {
        field: String,
        output: Arc<str>,
        previous: Arc<str>,
        key: Option<String>,
        /// The last value of each key, per input partition. Every record looks its key up
        /// here: a fast seeded hash rather than SipHash, which cost more than the lookup.
        last: HashMap<(i32, Arc<str>), f64, RandomState>,
        /// The bytes of `last`'s entries (see [`entry_bytes`]), kept as keys come and go so
        /// that `/status` does not walk every key.
        bytes: u64,
    },
    Threshold {
        field: String,
        above: Option<f64>,
        below: Option<f64>,
        absolute: bool,
    },
    Emit {
        topic: Arc<str>,
        layout: Layout,
    },
}

/// One field of an `extract`: the value `parse` found for its pointer.
#[derive(Debug)]
struct Extraction {
    name: Arc<str>,
    /// Where `parse` put the pointer's value in [`Found`].
    slot: usize,
    /// The pointer, for the error when it reached nothing.
    pointer: String,
    kind: FieldKind,
}

/// The pointer of a validated topology (validation refuses anything else).
fn compiled_pointer(text: &str) -> JsonPointer {
    JsonPointer::parse(text).unwrap_or_else(|| {
        unreachable!("topology validation lets only JSON pointers through, not `{text}`")
    })
}

enum Flow {
    Continue,
    Stop,
}

impl Pipeline {
    pub fn new(spec: &TopologySpec) -> Self {
        let mut read = Wanted::nothing();
        let mut operators: Vec<Operator> = spec
            .operators
            .iter()
            .map(|op| match op {
                // Filled in below, once every pointer of the chain is known.
                OperatorSpec::Parse(_) => Operator::Parse(Wanted::nothing()),
                OperatorSpec::Extract(e) => Operator::Extract(
                    e.fields
                        .iter()
                        .map(|(name, src)| Extraction {
                            name: name.as_str().into(),
                            slot: read.add(&compiled_pointer(src.pointer())),
                            pointer: src.pointer().to_string(),
                            kind: src.kind(),
                        })
                        .collect(),
                ),
                OperatorSpec::Diff(d) => Operator::Diff {
                    field: d.field.clone(),
                    output: d.output.as_str().into(),
                    previous: d.previous.as_str().into(),
                    key: d.key.clone(),
                    last: HashMap::default(),
                    bytes: 0,
                },
                OperatorSpec::Threshold(t) => Operator::Threshold {
                    field: t.field.clone(),
                    above: t.above,
                    below: t.below,
                    absolute: t.absolute,
                },
                OperatorSpec::Emit(e) => Operator::Emit {
                    topic: e.topic.as_str().into(),
                    layout: Layout::new(&e.fields, e.timestamp),
                },
            })
            .collect();
        for operator in &mut operators {
            if let Operator::Parse(wanted) = operator {
                *wanted = read.clone();
            }
        }
        Self {
            operators,
            found: Found::new(),
            spare_fields: Fields::default(),
        }
    }

    /// Runs one payload through the chain.
    pub fn process(&mut self, payload: &[u8], record: Record) -> Processed {
        let mut processed = Processed::default();
        self.process_into(payload, record, &mut processed);
        processed
    }

    /// Runs one payload through the chain into `processed`, replacing what it held and
    /// reusing its buffers: the runner keeps one for all its records.
    pub fn process_into(&mut self, payload: &[u8], record: Record, processed: &mut Processed) {
        let mut record = record;
        if record.fields.is_empty() {
            std::mem::swap(&mut record.fields, &mut self.spare_fields);
        }
        processed.clear();
        self.found.clear();
        for (index, operator) in self.operators.iter_mut().enumerate() {
            match operator.apply(index, payload, &mut record, processed, &mut self.found) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => break,
                Err(error) => {
                    processed.error = Some(error);
                    break;
                }
            }
        }
        self.spare_fields = record.fields;
        self.spare_fields.clear();
    }

    /// Restores a partition's diff state from its changelog, keeping values already set by
    /// this process.
    pub fn restore(&mut self, partition: i32, updates: impl IntoIterator<Item = StateUpdate>) {
        for update in updates {
            if let Some(Operator::Diff { last, bytes, .. }) =
                self.operators.get_mut(update.operator_index)
            {
                if let Entry::Vacant(slot) = last.entry((partition, update.key)) {
                    *bytes += entry_bytes(&slot.key().1);
                    slot.insert(update.value);
                }
            }
        }
    }

    /// Each stateful operator's index with the keys it holds and their bytes (key text,
    /// partition and value; the table's own overhead is not counted).
    pub fn state_sizes(&self) -> Vec<(usize, u64, u64)> {
        (self.operators.iter().enumerate())
            .filter_map(|(index, operator)| match operator {
                Operator::Diff { last, bytes, .. } => Some((index, last.len() as u64, *bytes)),
                _ => None,
            })
            .collect()
    }

    /// Drops a partition's state: the partition went to another runner, and when it comes
    /// back its state is restored from what that runner committed.
    pub fn forget(&mut self, partition: i32) {
        for operator in &mut self.operators {
            if let Operator::Diff { last, bytes, .. } = operator {
                last.retain(|(owner, key), _| {
                    let keep = *owner != partition;
                    if !keep {
                        *bytes -= entry_bytes(key);
                    }
                    keep
                });
            }
        }
    }
}

/// The bytes one diff entry holds: its key's text, its partition and its value.
fn entry_bytes(key: &str) -> u64 {
    (key.len() + std::mem::size_of::<i32>() + std::mem::size_of::<f64>()) as u64
}

impl Operator {
    fn apply(
        &mut self,
        index: usize,
        payload: &[u8],
        record: &mut Record,
        processed: &mut Processed,
        found: &mut Found,
    ) -> Result<Flow, RecordError> {
        match self {
            Operator::Parse(wanted) => {
                wanted.parse_into(payload, found).map_err(|e| RecordError {
                    operator: "parse",
                    reason: format!("payload is not valid JSON: {e}"),
                })?;
                Ok(Flow::Continue)
            }
            Operator::Extract(fields) => {
                for field in fields.iter() {
                    let value = found.get(field.slot).and_then(Option::as_ref);
                    let value =
                        typed(value, &field.pointer, field.kind).map_err(|reason| RecordError {
                            operator: "extract",
                            reason: format!("field `{}`: {reason}", field.name),
                        })?;
                    record.fields.insert(field.name.clone(), value);
                }
                Ok(Flow::Continue)
            }
            Operator::Diff {
                field,
                output,
                previous,
                key,
                last,
                bytes,
            } => {
                let value = number_field(record, field, "diff")?;
                let group = group_key(record, key.as_deref())?;
                let partition = record.partition;
                let before = match last.entry((partition, group.clone())) {
                    // No variation spans the seam: the record's series begins again here.
                    // (The update below also replaces the state the checkpoint keeps.)
                    Entry::Occupied(mut slot) if record.restarts_series => {
                        slot.insert(value);
                        None
                    }
                    Entry::Occupied(mut slot) => Some(slot.insert(value)),
                    Entry::Vacant(slot) => {
                        *bytes += entry_bytes(&slot.key().1);
                        slot.insert(value);
                        None
                    }
                };
                processed.updates.push(StateUpdate {
                    operator_index: index,
                    key: group,
                    value,
                });
                match before {
                    // The first value of a key has nothing to compare with.
                    None => Ok(Flow::Stop),
                    Some(before) => {
                        record.fields.insert(previous.clone(), number(before));
                        record
                            .fields
                            .insert(output.clone(), number(round_variation(value - before)));
                        Ok(Flow::Continue)
                    }
                }
            }
            Operator::Threshold {
                field,
                above,
                below,
                absolute,
            } => {
                let value = number_field(record, field, "threshold")?;
                let passes = if *absolute {
                    above.is_some_and(|bound| value.abs() > bound)
                } else {
                    above.is_some_and(|bound| value > bound)
                        || below.is_some_and(|bound| value < bound)
                };
                Ok(if passes { Flow::Continue } else { Flow::Stop })
            }
            Operator::Emit { topic, layout } => {
                (processed.outputs).push_with(topic, record.key.as_ref(), |payload| {
                    layout.write(record, payload)
                })?;
                Ok(Flow::Continue)
            }
        }
    }
}

/// Rounds to 8 decimal places, the precision of Bitcoin amounts, so that `126.24 → 203.74`
/// reads as a variation of `77.5` and not `77.50000000000001`.
fn round_variation(value: f64) -> f64 {
    (value * 1e8).round() / 1e8
}

fn number(value: f64) -> Value {
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn group_key(record: &Record, key_field: Option<&str>) -> Result<Arc<str>, RecordError> {
    match key_field {
        None => Ok(record.key.clone().unwrap_or_else(|| Arc::from(""))),
        Some(name) => match record.fields.get(name) {
            Some(Value::String(s)) => Ok(s.as_str().into()),
            Some(other) => Ok(other.to_string().into()),
            None => Err(RecordError {
                operator: "diff",
                reason: format!("key field `{name}` is not set on the record"),
            }),
        },
    }
}

fn number_field(record: &Record, name: &str, operator: &'static str) -> Result<f64, RecordError> {
    let value = record.fields.get(name).ok_or_else(|| RecordError {
        operator,
        reason: format!("field `{name}` is not set on the record"),
    })?;
    as_number(value).map_err(|reason| RecordError {
        operator,
        reason: format!("field `{name}`: {reason}"),
    })
}

/// Why `extract` found no value of the kind it wants.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExtractError {
    #[error("`{0}` is not a JSON pointer")]
    NotAPointer(String),
    #[error("nothing at JSON pointer `{0}`")]
    Nothing(String),
    #[error(transparent)]
    NotANumber(#[from] weir_contracts::number::NotANumber),
    #[error("expected a string, found {0}")]
    NotAString(Value),
}

/// Reads a value at a JSON pointer and checks its type.
pub fn extract(document: &Value, pointer: &str, kind: FieldKind) -> Result<Value, ExtractError> {
    let pointer = JsonPointer::parse(pointer)
        .ok_or_else(|| ExtractError::NotAPointer(pointer.to_string()))?;
    typed(pointer.lookup(document), pointer.as_str(), kind)
}

/// The value a pointer reached, as the field kind asks for it.
fn typed(value: Option<&Value>, pointer: &str, kind: FieldKind) -> Result<Value, ExtractError> {
    let value = value.ok_or_else(|| ExtractError::Nothing(pointer.to_string()))?;
    match kind {
        FieldKind::Any => Ok(value.clone()),
        FieldKind::Number => Ok(number(as_number(value)?)),
        FieldKind::String => match value {
            Value::String(_) => Ok(value.clone()),
            other => Err(ExtractError::NotAString(other.clone())),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;

    fn pipeline(operators: &str) -> Pipeline {
        let text = format!(
            "name: t\ninput: {{ topic: raw, group: g }}\nerror_topic: errors\noperators:\n{operators}"
        );
        let spec = TopologySpec::parse(Path::new("t.yaml"), &text, &[]).unwrap();
        Pipeline::new(&spec)
    }

    fn run(p: &mut Pipeline, doc: &str) -> Processed {
        p.process(doc.as_bytes(), Record::new(None, 1_000))
    }

    fn payloads(processed: &Processed) -> Vec<(String, Value)> {
        processed
            .outputs
            .iter()
            .map(|o| {
                (
                    o.topic.to_string(),
                    serde_json::from_slice(&o.payload).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn extracts_from_real_api_shapes() {
        // Shapes of public BTC rate APIs: a quoted amount, a nested currency table, keys
        // with spaces, dots and slashes.
        let coinbase = json!({"data": {"amount": "478012.35", "base": "BTC", "currency": "CNY"}});
        let ticker = json!({"CNY": {"15m": 478000.5, "last": 478001.25, "symbol": "¥"}});
        let odd = json!({"rates": {"BTC.CNY": {"last price": "1e3", "a/b": 2, "m~n": 3}}});
        let n = FieldKind::Number;
        assert_eq!(extract(&coinbase, "/data/amount", n), Ok(json!(478012.35)));
        assert_eq!(extract(&ticker, "/CNY/last", n), Ok(json!(478001.25)));
        assert_eq!(
            extract(&odd, "/rates/BTC.CNY/last price", n),
            Ok(json!(1000.0))
        );
        assert_eq!(extract(&odd, "/rates/BTC.CNY/a~1b", n), Ok(json!(2.0)));
        assert_eq!(extract(&odd, "/rates/BTC.CNY/m~0n", n), Ok(json!(3.0)));
        assert_eq!(
            extract(&ticker, "/CNY/symbol", FieldKind::String),
            Ok(json!("¥"))
        );
        assert!(extract(&ticker, "/CNY/symbol", n)
            .unwrap_err()
            .to_string()
            .contains("expected a number"));
        assert_eq!(
            extract(&ticker, "/USD/last", n).unwrap_err().to_string(),
            "nothing at JSON pointer `/USD/last`"
        );
        assert!(as_number(&json!("NaN")).is_err());
        assert!(as_number(&json!(" 12.5 ")).is_ok());
    }

    #[test]
    fn diff_threshold_emit_chain() {
        let mut p = pipeline(
            "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - emit: { topic: rates, fields: [rate] }
  - diff: { field: rate }
  - emit: { topic: variations, fields: [rate, previous, variation], timestamp: false }
  - threshold: { field: variation, above: 50, absolute: true }
  - emit: { topic: notifications, fields: [rate, previous, variation] }
",
        );
        let first = run(&mut p, r#"{"r": "100"}"#);
        assert_eq!(
            payloads(&first),
            vec![("rates".into(), json!({"rate": 100.0, "timestamp": 1000}))]
        );
        let small = run(&mut p, r#"{"r": 120}"#);
        assert_eq!(
            payloads(&small)[1],
            (
                "variations".into(),
                json!({"rate": 120.0, "previous": 100.0, "variation": 20.0})
            )
        );
        assert_eq!(small.outputs.len(), 2, "20 is under the threshold");
        let drop = run(&mut p, r#"{"r": 60}"#);
        assert_eq!(
            payloads(&drop)[2],
            (
                "notifications".into(),
                json!({"rate": 60.0, "previous": 120.0, "variation": -60.0, "timestamp": 1000})
            )
        );
        assert_eq!(drop.updates.len(), 1);
        let decimals = run(&mut p, r#"{"r": 203.74}"#);
        let decimals_again = run(&mut p, r#"{"r": 126.24}"#);
        assert_eq!(payloads(&decimals)[1].1["variation"], json!(143.74));
        assert_eq!(payloads(&decimals_again)[1].1["variation"], json!(-77.5));
    }

    #[test]
    fn signed_thresholds() {
        let mut p = pipeline(
            "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number } } }
  - threshold: { field: v, above: 10, below: -5 }
  - emit: { topic: out, fields: [v], timestamp: false }
",
        );
        let passed: Vec<bool> = ["11", "10", "0", "-5", "-6"]
            .iter()
            .map(|v| !run(&mut p, &format!("{{\"v\": {v}}}")).outputs.is_empty())
            .collect();
        assert_eq!(passed, vec![true, false, false, false, true]);
    }

    #[test]
    fn bad_records_report_operator_and_reason() {
        let mut p = pipeline(
            "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - emit: { topic: rates, fields: [rate] }
",
        );
        let garbage = run(&mut p, "not json");
        assert_eq!(garbage.error.as_ref().unwrap().operator, "parse");
        assert!(garbage.outputs.is_empty());
        let missing = run(&mut p, r#"{"x": 1}"#);
        let error = missing.error.unwrap();
        assert_eq!(error.operator, "extract");
        assert_eq!(error.reason, "field `rate`: nothing at JSON pointer `/r`");
        let text = run(&mut p, r#"{"r": "n/a"}"#).error.unwrap();
        assert_eq!(
            text.reason,
            "field `rate`: expected a number, found \"n/a\""
        );
    }

    #[test]
    fn a_series_restart_begins_only_its_own_key_again() {
        let mut pipeline = pipeline(
            "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - diff: { field: rate }
  - emit: { topic: variations, fields: [variation] }
",
        );
        let mut run = |key: &str, rate: f64, restart: bool| {
            let mut record = Record::new(Some(key.into()), 1);
            if restart {
                record = record.restarting_series();
            }
            let processed = pipeline.process(json!({ "r": rate }).to_string().as_bytes(), record);
            processed.outputs.len()
        };
        assert_eq!(run("a", 1.0, false), 0);
        assert_eq!(run("b", 5.0, false), 0);
        assert_eq!(run("a", 2.0, true), 0, "a begins again");
        assert_eq!(run("b", 6.0, false), 1, "b goes on");
        assert_eq!(
            run("a", 4.0, false),
            1,
            "a's new series has its first value"
        );
    }

    #[test]
    fn no_variation_spans_a_series_restart() {
        let mut pipeline = pipeline(
            "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - diff: { field: rate }
  - emit: { topic: variations, fields: [variation] }
",
        );
        let run = |p: &mut Pipeline, rate: f64, restart: bool| {
            let mut record = Record::new(None, 1);
            if restart {
                record = record.restarting_series();
            }
            p.process(json!({ "r": rate }).to_string().as_bytes(), record)
        };
        assert!(run(&mut pipeline, 100.0, false).outputs.is_empty());
        assert_eq!(run(&mut pipeline, 90_000.0, false).outputs.len(), 1);
        let seam = run(&mut pipeline, 100.0, true);
        assert!(seam.outputs.is_empty(), "no move from 90000 back to 100");
        let after = run(&mut pipeline, 110.0, false);
        assert_eq!(
            serde_json::from_slice::<Value>(&after.outputs[0].payload).unwrap()["variation"],
            10.0
        );
    }

    #[test]
    fn a_reused_processed_holds_only_its_last_records_results() {
        let mut p = pipeline(
            "  - parse: {}
  - extract: { fields: { rate: { pointer: /r, type: number } } }
  - emit: { topic: rates, fields: [rate], timestamp: false }
  - diff: { field: rate }
  - emit: { topic: variations, fields: [variation], timestamp: false }
",
        );
        let mut processed = Processed::default();
        let mut run = |doc: &str, processed: &mut Processed| {
            p.process_into(doc.as_bytes(), Record::new(Some("k".into()), 1), processed)
        };
        run(r#"{"r": 1}"#, &mut processed);
        assert_eq!(
            payloads(&processed),
            [("rates".into(), json!({"rate": 1.0}))]
        );
        assert_eq!(processed.updates.len(), 1);
        run(r#"{"r": 3}"#, &mut processed);
        assert_eq!(
            payloads(&processed),
            [
                ("rates".into(), json!({"rate": 3.0})),
                ("variations".into(), json!({"variation": 2.0}))
            ]
        );
        run("not json", &mut processed);
        assert!(processed.outputs.is_empty() && processed.updates.is_empty());
        assert_eq!(processed.error.as_ref().map(|e| e.operator), Some("parse"));
        run(r#"{"r": 4}"#, &mut processed);
        assert_eq!(processed.error, None);
        assert_eq!(
            payloads(&processed),
            [
                ("rates".into(), json!({"rate": 4.0})),
                ("variations".into(), json!({"variation": 1.0}))
            ]
        );
        assert_eq!(processed.updates[0].value, 4.0);
    }

    #[test]
    fn diff_groups_by_key_and_restores_state() {
        let ops = "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number }, pair: /p } }
  - diff: { field: v, key: pair }
  - emit: { topic: out, fields: [pair, variation], timestamp: false }
";
        let mut p = pipeline(ops);
        assert!(run(&mut p, r#"{"p": "a", "v": 1}"#).outputs.is_empty());
        assert!(run(&mut p, r#"{"p": "b", "v": 10}"#).outputs.is_empty());
        let a = run(&mut p, r#"{"p": "a", "v": 4}"#);
        assert_eq!(payloads(&a)[0].1, json!({"pair": "a", "variation": 3.0}));
        // Keys `a` and `b`, each 1 + 4 + 8 bytes, however often they were seen.
        assert_eq!(p.state_sizes(), [(2, 2, 26)]);

        let mut restarted = pipeline(ops);
        restarted.restore(
            0,
            [StateUpdate {
                operator_index: 2,
                key: "b".into(),
                value: 10.0,
            }],
        );
        let b = run(&mut restarted, r#"{"p": "b", "v": 7}"#);
        assert_eq!(payloads(&b)[0].1, json!({"pair": "b", "variation": -3.0}));
        // One key of one byte, its partition (4 bytes) and its value (8 bytes).
        assert_eq!(restarted.state_sizes(), [(2, 1, 13)]);
        restarted.forget(0);
        assert_eq!(restarted.state_sizes(), [(2, 0, 0)]);
    }

    #[test]
    fn a_key_is_never_diffed_against_another_partitions_value() {
        let ops = "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number } } }
  - diff: { field: v }
  - emit: { topic: out, fields: [variation], timestamp: false }
";
        let mut p = pipeline(ops);
        let in_partition = |p: &mut Pipeline, partition: i32, v: f64| {
            let record = Record::new(Some("k".into()), 1).in_partition(partition);
            let processed = p.process(json!({ "v": v }).to_string().as_bytes(), record);
            payloads(&processed)
                .first()
                .map(|(_, body)| body["variation"].clone())
        };
        assert_eq!(in_partition(&mut p, 0, 1.0), None);
        assert_eq!(
            in_partition(&mut p, 1, 50.0),
            None,
            "a first value in partition 1"
        );
        assert_eq!(in_partition(&mut p, 0, 3.0), Some(json!(2.0)));
        assert_eq!(in_partition(&mut p, 1, 55.0), Some(json!(5.0)));
        // Partition 1 moves away and comes back with what its other runner committed.
        p.forget(1);
        assert_eq!(
            in_partition(&mut p, 0, 4.0),
            Some(json!(1.0)),
            "partition 0 kept"
        );
        p.restore(
            1,
            [StateUpdate {
                operator_index: 2,
                key: "k".into(),
                value: 60.0,
            }],
        );
        assert_eq!(in_partition(&mut p, 1, 61.0), Some(json!(1.0)));
    }

    fn written(layout: &Layout, record: &Record) -> Result<Vec<u8>, RecordError> {
        let mut json = Vec::new();
        layout.write(record, &mut json).map(|()| json)
    }

    #[test]
    fn emit_writes_fields_in_declared_order_then_the_timestamp() {
        let mut record = Record::new(None, 1_700_000_000_123);
        record.fields.insert("rate", Value::from(2.5));
        record.fields.insert("previous", Value::from(2));
        let layout = Layout::new(&["rate".into(), "previous".into(), "rate".into()], true);
        let json = written(&layout, &record).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"rate":2.5,"previous":2,"timestamp":1700000000123}"#
        );
        assert_eq!(written(&Layout::new(&[], false), &record).unwrap(), b"{}");
        let layout = Layout::new(&["timestamp".into(), "q\"uote".into()], true);
        record.fields.insert("timestamp", Value::from("given"));
        record.fields.insert("q\"uote", Value::from(1));
        assert_eq!(
            String::from_utf8(written(&layout, &record).unwrap()).unwrap(),
            r#"{"timestamp":"given","q\"uote":1}"#,
            "a field named timestamp is not written twice; names are escaped"
        );
        let missing = written(&Layout::new(&["variation".into()], false), &record).unwrap_err();
        assert_eq!(missing.operator, "emit");
    }
}
