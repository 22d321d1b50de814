//! The operators of a topology's steps, compiled from a [`TopologySpec`] and applied to one
//! record at a time, each record going from step to step along the graph.
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
use crate::spec::{FieldKind, OperatorSpec, Reads, TopologySpec};

mod diff;
mod layout;
mod outputs;
mod record;
mod table;
mod versions;
mod window;

pub use crate::state::{StateUpdate, StateValue};
use diff::Diff;
use layout::Layout;
pub use outputs::{
    headers, AsideTopics, Origin, OutputMessage, Outputs, Processed, RetryRequest, SetAside,
    StateUpdates,
};
pub use record::{Fields, Record, Retried};
use table::Table;
use versions::Versions;
use window::Window;

/// Why a record could not be processed. It goes to the error topic with this reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{operator}: {reason}")]
pub struct RecordError {
    /// Which operator refused the record, e.g. `extract`.
    pub operator: &'static str,
    pub reason: String,
}

/// A step whose refused records are tried again.
#[derive(Debug)]
struct RetryingStep {
    /// Its first operator, where a record's fields are kept for a retry.
    first: usize,
    name: String,
    retry: crate::spec::Retry,
}

/// A step reading input topics.
#[derive(Debug)]
struct Entry {
    /// The step's first operator.
    operator: usize,
    /// The input topics it reads (their indices).
    topics: Vec<usize>,
}

/// The compiled operators with their state, and where a record goes after each.
#[derive(Debug)]
pub struct Pipeline {
    /// Every step's operators, step after step (as [`TopologySpec::operators`]).
    operators: Vec<Operator>,
    /// Where a record goes after each operator: the next one of its step, or, after a step's
    /// last, the first operator of every step reading that step (none: its way ends there).
    next: Vec<Vec<usize>>,
    /// Every step reading input topics: where input records enter the graph.
    entries: Vec<Entry>,
    /// What `parse` read of the current record for the `extract`s, reused from record to
    /// record.
    found: Found,
    /// The room of the last record's fields, for the next record's.
    spare_fields: Fields,
    /// How many input topics the topology has: a record of a topic after them comes from a
    /// repartition or retry topic, its payload the fields a `rekey` or a retry wrote.
    inputs: usize,
    /// Per operator, the retrying step it belongs to, if any.
    retrying: Vec<Option<Arc<RetryingStep>>>,
    /// Records waiting for the operator they go to next: a window's results, and the copies
    /// of a record a step sends to each step reading it. They go on after the record before
    /// them, in the order they were made.
    pending: Vec<(usize, Record)>,
    /// Per operator, what it took and passed on since the runner started.
    counts: Vec<OperatorCount>,
}

/// The records one operator took and those it passed on (to the next operator, the steps
/// reading its step, or out: a window's results count, a record it filtered out or refused
/// does not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperatorCount {
    pub took: u64,
    pub passed: u64,
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
    Table(Table),
    /// Looks the record's key up in the table at `table` (an operator index).
    Join {
        table: usize,
        into: Arc<str>,
        optional: bool,
    },
    Upsert {
        topic: Arc<str>,
        row: String,
        delete: Option<Expression>,
        versions: Option<Versions>,
    },
    /// Writes the record, keyed anew, to its step's repartition topic.
    Rekey {
        key: Expression,
        topic: Arc<str>,
    },
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
            Operator::Table(table) => Some(table),
            Operator::Upsert {
                versions: Some(versions),
                ..
            } => Some(versions),
            _ => None,
        }
    }

    fn store_mut(&mut self) -> Option<&mut dyn Store> {
        match self {
            Operator::Diff(diff) => Some(diff),
            Operator::Window(window) => Some(window),
            Operator::Table(table) => Some(table),
            Operator::Upsert {
                versions: Some(versions),
                ..
            } => Some(versions),
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
                OperatorSpec::Table(t) => Operator::Table(Table::new(t)),
                OperatorSpec::Join(j) => Operator::Join {
                    table: spec.table_index(&j.table).unwrap_or_else(|| {
                        unreachable!("topology validation refuses a join of no table")
                    }),
                    into: j.into.as_str().into(),
                    optional: j.optional,
                },
                OperatorSpec::Upsert(u) => Operator::Upsert {
                    topic: u.topic.as_str().into(),
                    row: u.row.clone(),
                    delete: u.delete.clone(),
                    versions: u.version.clone().map(Versions::new),
                },
                // The topic is filled in below, from the step's repartition.
                OperatorSpec::Rekey(key) => Operator::Rekey {
                    key: key.clone(),
                    topic: Arc::from(""),
                },
            })
            .collect();
        let inputs = spec.input.topics.len();
        // The consumed topic index of each step that re-keys.
        let mut repartition_of = vec![None; spec.steps.len()];
        for (index, repartition) in spec.repartitions.iter().enumerate() {
            repartition_of[repartition.step] = Some(inputs + index);
            let last = spec.steps[repartition.step].last_operator();
            if let Some(Operator::Rekey { topic, .. }) = last.map(|last| &mut operators[last]) {
                *topic = repartition.topic.as_str().into();
            }
        }
        for operator in &mut operators {
            if let Operator::Parse(wanted) = operator {
                *wanted = read.clone();
            }
        }
        let mut retrying = vec![None; operators.len()];
        for step in &spec.steps {
            if let Some(retry) = &step.retry {
                let shared = Arc::new(RetryingStep {
                    first: step.operators.start,
                    name: step.name.clone(),
                    retry: retry.clone(),
                });
                for index in step.operators.clone() {
                    retrying[index] = Some(shared.clone());
                }
            }
        }
        // Each retry topic goes back into its step.
        let first_retry = inputs + spec.repartitions.len();
        let retry_entries: Vec<Entry> = (spec.retry_topics().enumerate())
            .map(|(offset, (step, _, _))| Entry {
                operator: spec.steps[step].operators.start,
                topics: vec![first_retry + offset],
            })
            .collect();
        let mut next: Vec<Vec<usize>> = (1..=operators.len()).map(|after| vec![after]).collect();
        let mut entries = Vec::new();
        for step in &spec.steps {
            if let Some(last) = step.last_operator() {
                next[last].clear();
            }
            match &step.reads {
                Reads::Input(topics) => entries.push(Entry {
                    operator: step.operators.start,
                    topics: topics.clone(),
                }),
                Reads::Steps(sources) => {
                    for &source in sources {
                        if let Some(topic) = repartition_of[source] {
                            entries.push(Entry {
                                operator: step.operators.start,
                                topics: vec![topic],
                            });
                        } else if let Some(last) = spec.steps[source].last_operator() {
                            next[last].push(step.operators.start);
                        }
                    }
                }
            }
        }
        entries.extend(retry_entries);
        let counts = vec![OperatorCount::default(); operators.len()];
        Self {
            operators,
            next,
            retrying,
            entries,
            found: Found::new(),
            spare_fields: Fields::default(),
            inputs,
            pending: Vec::new(),
            counts,
        }
    }

    /// Per operator (as [`TopologySpec::operators`]), what it took and passed on.
    pub fn operator_counts(&self) -> &[OperatorCount] {
        &self.counts
    }

    /// Runs one payload through the chain.
    pub fn process(&mut self, payload: &[u8], record: Record) -> Processed {
        let mut processed = Processed::default();
        self.process_into(payload, record, &mut processed);
        processed
    }

    /// Runs one payload through the graph into `processed`, replacing what it held and
    /// reusing its buffers: the runner keeps one for all its records. The first error ends
    /// the record's way through every step.
    pub fn process_into(&mut self, payload: &[u8], record: Record, processed: &mut Processed) {
        let mut record = record;
        if record.fields.is_empty() {
            std::mem::swap(&mut record.fields, &mut self.spare_fields);
        }
        processed.clear();
        self.found.clear();
        if record.topic >= self.inputs {
            if let Err(reason) = record.fields.read_json(payload) {
                processed.error = Some(RecordError {
                    operator: "rekey",
                    reason: format!("the repartition topic's message: {reason}"),
                });
            }
        }
        let mut first = None;
        for entry in &self.entries {
            if !entry.topics.contains(&record.topic) {
                continue;
            }
            match first {
                None => first = Some(entry.operator),
                Some(_) => self.pending.push((entry.operator, record.clone())),
            }
        }
        if let (Some(first), None) = (first, &processed.error) {
            self.run_from(first, payload, &mut record, processed);
        }
        self.spare_fields = record.fields;
        self.spare_fields.clear();
        let mut next = 0;
        while next < self.pending.len() && processed.error.is_none() && processed.retry.is_none() {
            let (start, mut waiting) =
                std::mem::replace(&mut self.pending[next], (usize::MAX, Record::new(None, 0)));
            self.run_from(start, payload, &mut waiting, processed);
            next += 1;
        }
        self.pending.clear();
    }

    /// Runs a record from operator `start` along the graph: on through its step, then into
    /// the step reading it, or, when several do, a copy into each of them (later).
    fn run_from(
        &mut self,
        start: usize,
        payload: &[u8],
        record: &mut Record,
        processed: &mut Processed,
    ) {
        let mut made = Vec::new();
        let mut index = start;
        // The fields the record entered a retrying step with: what a retry takes again.
        let mut entered: Option<Fields> = None;
        loop {
            if self.retrying[index]
                .as_ref()
                .is_some_and(|step| step.first == index)
            {
                entered = Some(record.fields.clone());
            }
            let step = Step {
                index,
                payload,
                found: &mut self.found,
                made: &mut made,
            };
            let flow = match &self.operators[index] {
                // A join reads another operator's table: it is applied here, where both are
                // in reach.
                Operator::Join {
                    table,
                    into,
                    optional,
                } => join(&self.operators[*table], into, *optional, record),
                _ => self.operators[index].apply(step, record, processed),
            };
            let count = &mut self.counts[index];
            count.took += 1;
            count.passed += made.len() as u64 + u64::from(matches!(flow, Ok(Flow::Continue)));
            for result in made.drain(..) {
                queue_after(&self.next[index], &mut self.pending, result);
            }
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop) => return,
                Err(error) => {
                    match &self.retrying[index] {
                        Some(step) => {
                            processed.retry = Some(RetryRequest {
                                error,
                                retry: step.retry.clone(),
                                step: step.name.clone(),
                                fields: entered.take().unwrap_or_default(),
                                key: record.key.clone(),
                                timestamp_ms: record.timestamp_ms,
                                retried: record.retried.clone(),
                            });
                            // The record's way ends here, as a refused one's does.
                            processed.error = None;
                        }
                        None => processed.error = Some(error),
                    }
                    return;
                }
            }
            match self.next[index].as_slice() {
                [] => return,
                [only] => index = *only,
                several => {
                    for &then in several {
                        self.pending.push((then, record.clone()));
                    }
                    return;
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

/// Queues `record` for every operator in `next`: the record itself for the last, copies for
/// the others.
fn queue_after(next: &[usize], pending: &mut Vec<(usize, Record)>, record: Record) {
    if let Some((&last, others)) = next.split_last() {
        for &then in others {
            pending.push((then, record.clone()));
        }
        pending.push((last, record));
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
            Operator::Table(table) => table.apply(index, record, &mut processed.updates),
            Operator::Join { .. } => unreachable!("joins are applied where their table is"),
            Operator::Upsert {
                topic,
                row,
                delete,
                versions,
            } => {
                let refused = |reason: String| RecordError {
                    operator: "upsert",
                    reason,
                };
                let key = record.key.as_ref().ok_or_else(|| {
                    refused(
                        "the record has no key: a compacted topic keeps rows by key (rekey it \
                         first)"
                            .into(),
                    )
                })?;
                let deleted = match delete {
                    Some(delete) => delete
                        .passes(record)
                        .map_err(|error| refused(format!("delete: {error}")))?,
                    None => false,
                };
                if let Some(versions) = versions {
                    if !versions.newest(index, record, key, &mut processed.updates)? {
                        tracing::info!(
                            key = %key,
                            topic = %topic,
                            "upsert: a newer row of the key was written already; this one is superseded"
                        );
                        return Ok(Flow::Continue);
                    }
                }
                if deleted {
                    (processed.outputs).push_tombstone(topic, key, record.timestamp_ms);
                } else {
                    let value = record.fields.get(row).ok_or_else(|| {
                        refused(format!("field `{row}` is not set on the record"))
                    })?;
                    (processed.outputs).push_with(
                        topic,
                        Some(key),
                        record.timestamp_ms,
                        |out| {
                            serde_json::to_writer(out, value)
                                .map_err(|error| refused(format!("cannot write the row: {error}")))
                        },
                    )?;
                }
                Ok(Flow::Continue)
            }
            Operator::Rekey { key, topic } => {
                let key = rekeyed(key, record)?;
                (processed.outputs).push_with(
                    topic,
                    Some(&key),
                    record.timestamp_ms,
                    |payload| {
                        record
                            .fields
                            .write_json(payload)
                            .map_err(|error| RecordError {
                                operator: "rekey",
                                reason: format!("cannot write the record's fields: {error}"),
                            })
                    },
                )?;
                Ok(Flow::Stop)
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

/// Sets `into` to the row of the record's key in `table` (a [`Operator::Table`]).
fn join(
    table: &Operator,
    into: &Arc<str>,
    optional: bool,
    record: &mut Record,
) -> Result<Flow, RecordError> {
    let Operator::Table(table) = table else {
        unreachable!("a join's operator index names a table");
    };
    let key = record.key.clone().unwrap_or_else(|| Arc::from(""));
    match table.lookup(record.partition, &key) {
        Some(row) => record.fields.insert(into.clone(), row.clone()),
        None if optional => record.fields.insert(into.clone(), Value::Null),
        None => {
            return Err(RecordError {
                operator: "join",
                reason: format!("the table holds no row of key `{key}`"),
            })
        }
    }
    Ok(Flow::Continue)
}

/// The new key `rekey`'s expression gives a record: a string as it is, a number or a boolean
/// as written in JSON; nothing (null) is an error, not an empty key.
fn rekeyed(expression: &Expression, record: &Record) -> Result<Arc<str>, RecordError> {
    let refused = |reason: String| RecordError {
        operator: "rekey",
        reason,
    };
    match expression.evaluate(record) {
        Ok(Value::String(text)) => Ok(text.into()),
        Ok(Value::Null) => Err(refused(format!(
            "the key expression `{}` gave null",
            expression.text()
        ))),
        Ok(other) => Ok(other.to_string().into()),
        Err(error) => Err(refused(error.to_string())),
    }
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
mod tests;
