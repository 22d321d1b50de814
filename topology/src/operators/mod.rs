//! The operator chain, compiled from a [`TopologySpec`] and applied to one record at a time.
//!
//! Operators are pure with respect to Kafka: they read and write a [`Record`], push the
//! messages they want written into an [`Outputs`] buffer, and report state changes so that the
//! runner can checkpoint them together with the consumer offsets.

use std::sync::Arc;

use serde_json::Value;

use weir_contracts::number::as_number;

use crate::expression::Expression;
use crate::pointer::JsonPointer;
use crate::pruned::{Found, Wanted};
use crate::spec::{FieldKind, OperatorSpec, TopologySpec};

mod diff;
mod layout;
mod outputs;
mod record;
mod window;

pub use crate::state::{StateUpdate, StateValue};
use diff::Diff;
use layout::Layout;
pub use outputs::{AsideTopics, Origin, OutputMessage, Outputs, Processed, SetAside, StateUpdates};
pub use record::{Fields, Record};
use window::Window;

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
    /// Records an operator made (a window's results), each with the operator after it: they
    /// go down the rest of the chain after the input record.
    results: Vec<(usize, Record)>,
}

#[derive(Debug)]
enum Operator {
    /// Parses the payload, reading only the values the chain's `extract`s name.
    Parse(Wanted),
    Extract(Vec<Extraction>),
    Diff(Diff),
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
    Window(Window),
    Filter(Expression),
    Set(Vec<(Arc<str>, Expression)>),
}

/// A stateful operator's keyed store, restored from its changelog.
trait Store {
    /// Sets a key restored from the changelog, unless this process already holds it.
    fn restore(&mut self, partition: i32, key: Arc<str>, value: StateValue);
    /// Drops a partition's keys.
    fn forget(&mut self, partition: i32);
    /// The keys held and their bytes (the table's own overhead is not counted).
    fn size(&self) -> (u64, u64);
}

/// A record taken aside by an operator that went on without it (a window's late record):
/// written to `topic`, or to the error topic when none is declared, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Late {
    pub topic: Option<Arc<str>>,
    pub error: RecordError,
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

impl Operator {
    fn store(&self) -> Option<&dyn Store> {
        match self {
            Operator::Diff(diff) => Some(diff),
            Operator::Window(window) => Some(window),
            _ => None,
        }
    }

    fn store_mut(&mut self) -> Option<&mut dyn Store> {
        match self {
            Operator::Diff(diff) => Some(diff),
            Operator::Window(window) => Some(window),
            _ => None,
        }
    }
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
                OperatorSpec::Diff(d) => Operator::Diff(Diff::new(d)),
                OperatorSpec::Window(w) => Operator::Window(Window::new(w)),
                OperatorSpec::Filter(expression) => Operator::Filter(expression.clone()),
                OperatorSpec::Set(fields) => Operator::Set(
                    (fields.iter())
                        .map(|(name, expression)| (name.as_str().into(), expression.clone()))
                        .collect(),
                ),
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
            results: Vec::new(),
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
        self.run_from(0, payload, &mut record, processed);
        self.spare_fields = record.fields;
        self.spare_fields.clear();
        let mut next = 0;
        while next < self.results.len() && processed.error.is_none() {
            let (start, mut result) =
                std::mem::replace(&mut self.results[next], (usize::MAX, Record::new(None, 0)));
            self.run_from(start, payload, &mut result, processed);
            next += 1;
        }
        self.results.clear();
    }

    /// Runs a record down the chain from operator `start`.
    fn run_from(
        &mut self,
        start: usize,
        payload: &[u8],
        record: &mut Record,
        processed: &mut Processed,
    ) {
        let mut made = Vec::new();
        for (index, operator) in self.operators.iter_mut().enumerate().skip(start) {
            let step = Step {
                index,
                payload,
                found: &mut self.found,
                made: &mut made,
            };
            let flow = operator.apply(step, record, processed);
            if !made.is_empty() {
                (self.results).extend(made.drain(..).map(|result| (index + 1, result)));
            }
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => break,
                Err(error) => {
                    processed.error = Some(error);
                    break;
                }
            }
        }
    }

    /// Restores a partition's operator state from its changelog, keeping values already set
    /// by this process.
    pub fn restore(&mut self, partition: i32, updates: impl IntoIterator<Item = StateUpdate>) {
        for update in updates {
            let store =
                (self.operators.get_mut(update.operator_index)).and_then(Operator::store_mut);
            if let (Some(store), Some(value)) = (store, update.value) {
                store.restore(partition, update.key, value);
            }
        }
    }

    /// Each stateful operator's index with the keys it holds and their bytes (key text,
    /// partition and value; the table's own overhead is not counted).
    pub fn state_sizes(&self) -> Vec<(usize, u64, u64)> {
        (self.operators.iter().enumerate())
            .filter_map(|(index, operator)| {
                let (keys, bytes) = operator.store()?.size();
                Some((index, keys, bytes))
            })
            .collect()
    }

    /// Drops a partition's state: the partition went to another runner, and when it comes
    /// back its state is restored from what that runner committed.
    pub fn forget(&mut self, partition: i32) {
        for store in self.operators.iter_mut().filter_map(Operator::store_mut) {
            store.forget(partition);
        }
    }
}

/// What an operator may reach besides the record: the input payload, what `parse` found, and
/// where to put the records it makes.
struct Step<'a> {
    index: usize,
    payload: &'a [u8],
    found: &'a mut Found,
    made: &'a mut Vec<Record>,
}

impl Operator {
    fn apply(
        &mut self,
        step: Step<'_>,
        record: &mut Record,
        processed: &mut Processed,
    ) -> Result<Flow, RecordError> {
        let Step {
            index,
            payload,
            found,
            made,
        } = step;
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
            Operator::Diff(diff) => diff.apply(index, record, &mut processed.updates),
            Operator::Window(window) => window.apply(
                index,
                record,
                &mut processed.updates,
                made,
                &mut processed.late,
            ),
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
            Operator::Filter(expression) => {
                let passes = expression.passes(record).map_err(|error| RecordError {
                    operator: "filter",
                    reason: error.to_string(),
                })?;
                Ok(if passes { Flow::Continue } else { Flow::Stop })
            }
            Operator::Set(fields) => {
                let values = (fields.iter())
                    .map(|(name, expression)| {
                        let value = expression.evaluate(record).map_err(|error| RecordError {
                            operator: "set",
                            reason: format!("field `{name}`: {error}"),
                        })?;
                        Ok((name.clone(), value))
                    })
                    .collect::<Result<Vec<_>, RecordError>>()?;
                for (name, value) in values {
                    record.fields.insert(name, value);
                }
                Ok(Flow::Continue)
            }
            Operator::Emit { topic, layout } => {
                let (key, timestamp_ms) = (record.key.as_ref(), record.timestamp_ms);
                (processed.outputs).push_with(topic, key, timestamp_ms, |payload| {
                    layout.write(record, payload)
                })?;
                Ok(Flow::Continue)
            }
        }
    }
}

fn number(value: f64) -> Value {
    serde_json::Number::from_f64(value)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The key a stateful operator groups a record by: a field's value, or the message key.
fn group_key(
    record: &Record,
    key_field: Option<&str>,
    operator: &'static str,
) -> Result<Arc<str>, RecordError> {
    match key_field {
        None => Ok(record.key.clone().unwrap_or_else(|| Arc::from(""))),
        Some(name) => match record.fields.get(name) {
            Some(Value::String(s)) => Ok(s.as_str().into()),
            Some(other) => Ok(other.to_string().into()),
            None => Err(RecordError {
                operator,
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
        assert!(
            matches!(processed.updates[0].value, Some(StateValue::Last(last)) if last.value == 4.0)
        );
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
        // Keys `a` and `b`, each 1 + 4 + 16 bytes, however often they were seen.
        assert_eq!(p.state_sizes(), [(2, 2, 42)]);

        let mut restarted = pipeline(ops);
        restarted.restore(
            0,
            [StateUpdate {
                operator_index: 2,
                key: "b".into(),
                value: Some(StateValue::Number(10.0)),
            }],
        );
        let b = run(&mut restarted, r#"{"p": "b", "v": 7}"#);
        assert_eq!(payloads(&b)[0].1, json!({"pair": "b", "variation": -3.0}));
        // One key of one byte, its partition (4 bytes), its value and when it was seen (16).
        assert_eq!(restarted.state_sizes(), [(2, 1, 21)]);
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
                value: Some(StateValue::Number(60.0)),
            }],
        );
        assert_eq!(in_partition(&mut p, 1, 61.0), Some(json!(1.0)));
    }

    fn at(p: &mut Pipeline, key: &str, doc: Value, timestamp_ms: i64) -> Processed {
        let record = Record::new(Some(key.into()), timestamp_ms);
        p.process(doc.to_string().as_bytes(), record)
    }

    #[test]
    fn idle_keys_expire_with_a_tombstone_and_start_a_new_series() {
        let mut p = pipeline(
            "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number } } }
  - diff: { field: v, ttl: 10s }
  - emit: { topic: out, fields: [variation], timestamp: false }
",
        );
        assert!(at(&mut p, "idle", json!({"v": 1}), 0).outputs.is_empty());
        for second in 1..=12 {
            at(&mut p, "busy", json!({ "v": second }), second * 1_000);
        }
        assert_eq!(p.state_sizes()[0].1, 1, "only `busy` is left");
        let expired = at(&mut p, "busy", json!({"v": 13}), 13_000);
        let tombstones: Vec<_> = (expired.updates.iter())
            .filter(|u| u.value.is_none())
            .collect();
        assert!(tombstones.is_empty(), "`idle` went at an earlier sweep");
        let again = at(&mut p, "idle", json!({"v": 5}), 14_000);
        assert!(
            again.outputs.is_empty(),
            "a new series: no variation from 1"
        );
    }

    #[test]
    fn an_expired_key_leaves_the_changelog_as_a_tombstone() {
        let mut p = pipeline(
            "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number } } }
  - diff: { field: v, ttl: 8s }
",
        );
        at(&mut p, "idle", json!({"v": 1}), 0);
        let sweep = at(&mut p, "busy", json!({"v": 1}), 9_000);
        let tombstone = StateUpdate {
            operator_index: 2,
            key: "idle".into(),
            value: None,
        };
        assert!(sweep.updates.contains(&tombstone), "{:?}", sweep.updates);
    }

    const TUMBLING: &str = "  - parse: {}
  - extract: { fields: { v: { pointer: /v, type: number }, t: /t } }
  - window:
      size: 10s
      time: t
      aggregate: { n: { count: v }, total: { sum: v }, mean: { avg: v } }
  - emit: { topic: out, fields: [n, total, mean, window_start], timestamp: false }
";

    fn windowed(p: &mut Pipeline, key: &str, v: f64, t: i64) -> (Vec<Value>, StateUpdates) {
        let processed = at(p, key, json!({ "v": v, "t": t }), 0);
        assert_eq!(processed.error, None);
        let bodies = payloads(&processed).into_iter().map(|(_, b)| b).collect();
        (bodies, processed.updates)
    }

    #[test]
    fn a_window_restored_from_its_changelog_closes_as_if_never_stopped() {
        let input = [("a", 1.0, 1_000), ("b", 2.0, 2_000), ("a", 3.0, 9_999)];
        let mut unstopped = pipeline(TUMBLING);
        let mut changelog: std::collections::HashMap<Arc<str>, Option<StateValue>> =
            Default::default();
        for (key, v, t) in input {
            for update in windowed(&mut unstopped, key, v, t).1 {
                changelog.insert(update.key, update.value);
            }
        }
        let mut restored = pipeline(TUMBLING);
        restored.restore(
            0,
            changelog.into_iter().map(|(key, value)| StateUpdate {
                operator_index: 2,
                key,
                value,
            }),
        );
        assert_eq!(
            restored.state_sizes()[0].1,
            2,
            "the open windows of a and b"
        );
        let (closed, updates) = windowed(&mut restored, "a", 7.0, 10_000);
        assert_eq!(closed, windowed(&mut unstopped, "a", 7.0, 10_000).0);
        assert_eq!(
            closed,
            [
                json!({"n": 2, "total": 4.0, "mean": 2.0, "window_start": 0}),
                json!({"n": 1, "total": 2.0, "mean": 2.0, "window_start": 0}),
            ]
        );
        let removed: Vec<_> = (updates.iter())
            .filter(|u| u.value.is_none())
            .map(|u| u.key.to_string())
            .collect();
        assert_eq!(removed, ["0:a", "0:b"], "closed windows leave the store");
    }

    #[test]
    fn hopping_windows_take_a_record_in_each_window_it_falls_in() {
        let mut p = pipeline(&TUMBLING.replace("size: 10s", "size: 10s\n      advance: 5s"));
        windowed(&mut p, "k", 1.0, 7_000);
        windowed(&mut p, "k", 2.0, 12_000);
        let (closed, _) = windowed(&mut p, "k", 4.0, 15_000);
        assert_eq!(
            closed,
            [json!({"n": 2, "total": 3.0, "mean": 1.5, "window_start": 5_000})],
            "[0, 10 s) closed at 10 s with 1.0 alone; [5 s, 15 s) now"
        );
    }

    #[test]
    fn filter_and_set_read_fields_with_cel() {
        let mut p = pipeline(
            "  - parse: {}
  - extract: { fields: { bid: { pointer: /bid, type: number }, ask: { pointer: /ask, type: number } } }
  - set: { mid: \"(bid + ask) / 2.0\", wide: \"ask - bid > 1.0\" }
  - filter: \"wide && key == 'BTC'\"
  - emit: { topic: out, fields: [mid], timestamp: false }
",
        );
        let wide = at(&mut p, "BTC", json!({"bid": 10, "ask": 12}), 0);
        assert_eq!(payloads(&wide), [("out".into(), json!({"mid": 11.0}))]);
        assert!(at(&mut p, "BTC", json!({"bid": 10, "ask": 10.5}), 0)
            .outputs
            .is_empty());
        assert!(at(&mut p, "ETH", json!({"bid": 1, "ask": 9}), 0)
            .outputs
            .is_empty());
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
