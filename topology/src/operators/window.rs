//! `window`: per-key aggregates over event-time windows, tumbling or hopping.
//!
//! Each input partition keeps its own stream time, the latest event time it has seen. A
//! window `[start, end)` closes once stream time reaches `end + grace`: its result goes down
//! the chain and its state leaves the store (a tombstone in the changelog). A record whose
//! window has already closed is late: it goes to the late topic (or the error topic) with the
//! reason, and is counted; the windows of it still open take it as usual.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use foldhash::fast::RandomState;
use serde_json::Value;

use weir_contracts::number::as_number;

use super::{group_key, number, Flow, Late, Record, RecordError, Store};
use crate::spec::{AggregateSpec, DurationText, WindowEmit, WindowSpec};
use crate::state::{Accumulator, StateUpdate, StateValue, WindowState};

#[derive(Debug)]
pub(super) struct Window {
    size_ms: i64,
    advance_ms: i64,
    grace_ms: i64,
    time: Option<String>,
    key: Option<String>,
    /// The field the result carries the key in (the `key` field's name).
    key_field: Option<Arc<str>>,
    late_topic: Option<Arc<str>>,
    emit_updates: bool,
    aggregates: Vec<(Arc<str>, AggregateSpec)>,
    partitions: HashMap<i32, Windows, RandomState>,
    keys: u64,
    bytes: u64,
}

/// One input partition's open windows.
#[derive(Debug, Default)]
struct Windows {
    /// The latest event time seen in the partition (`None` before its first record).
    stream_ms: Option<i64>,
    open: HashMap<(Arc<str>, i64), WindowState, RandomState>,
    /// The open windows by end, for closing them in order.
    by_end: BTreeSet<(i64, i64, Arc<str>)>,
}

/// The bytes an open window holds: its key's text, its start and end, and its accumulators.
fn window_bytes(key: &str, state: &WindowState) -> u64 {
    (key.len()
        + 3 * std::mem::size_of::<i64>()
        + state.accumulators.len() * std::mem::size_of::<Accumulator>()) as u64
}

/// The changelog key of a key's window: its start, then the key (a start holds no `:`).
fn store_key(start: i64, key: &str) -> Arc<str> {
    format!("{start}:{key}").into()
}

fn parse_store_key(text: &str) -> Option<(i64, Arc<str>)> {
    let (start, key) = text.split_once(':')?;
    Some((start.parse().ok()?, key.into()))
}

impl Window {
    pub(super) fn new(spec: &WindowSpec) -> Self {
        let size_ms = spec.size.millis();
        Self {
            size_ms,
            advance_ms: spec.advance.map_or(size_ms, DurationText::millis),
            grace_ms: spec.grace.millis(),
            time: spec.time.clone(),
            key: spec.key.clone(),
            key_field: spec.key.as_deref().map(Arc::from),
            late_topic: spec.late_topic.as_deref().map(Arc::from),
            emit_updates: spec.emit == WindowEmit::Update,
            aggregates: (spec.aggregate.iter())
                .map(|(name, aggregate)| (name.as_str().into(), aggregate.clone()))
                .collect(),
            partitions: HashMap::default(),
            keys: 0,
            bytes: 0,
        }
    }

    /// Takes a record into its windows; the results of the windows that close (or, when
    /// asked, of those it updated) are pushed to `results`, each to go down the chain.
    pub(super) fn apply(
        &mut self,
        index: usize,
        record: &Record,
        updates: &mut impl Extend<StateUpdate>,
        results: &mut Vec<Record>,
        late: &mut Option<Late>,
    ) -> Result<Flow, RecordError> {
        let event_ms = self.event_time(record)?;
        let group = group_key(record, self.key.as_deref(), "window")?;
        let values = self.values(record)?;
        let windows = self.partitions.entry(record.partition).or_default();
        let stream_ms = windows.stream_ms.map_or(event_ms, |s| s.max(event_ms));
        windows.stream_ms = Some(stream_ms);
        let mut missed = Vec::new();
        let mut start = event_ms.div_euclid(self.advance_ms) * self.advance_ms;
        while start > event_ms - self.size_ms {
            let end = start + self.size_ms;
            if end.saturating_add(self.grace_ms) <= stream_ms {
                missed.push(start);
            } else {
                let slot = (group.clone(), start);
                let state = match windows.open.get_mut(&slot) {
                    Some(state) => state,
                    None => {
                        let state = WindowState {
                            accumulators: self.aggregates.iter().map(|(_, a)| empty(a)).collect(),
                            max_ms: event_ms,
                        };
                        self.keys += 1;
                        self.bytes += window_bytes(&group, &state);
                        windows.by_end.insert((end, start, group.clone()));
                        windows.open.entry(slot).or_insert(state)
                    }
                };
                state.max_ms = state.max_ms.max(event_ms);
                for (accumulator, value) in state.accumulators.iter_mut().zip(&values) {
                    accumulate(accumulator, value, event_ms);
                }
                updates.extend([StateUpdate {
                    operator_index: index,
                    key: store_key(start, &group),
                    value: Some(StateValue::Window(Box::new(state.clone()))),
                }]);
                if self.emit_updates {
                    results.push(Self::result_of(
                        &self.aggregates,
                        self.key_field.as_ref(),
                        self.size_ms,
                        &group,
                        start,
                        state,
                        record.partition,
                    ));
                }
            }
            start -= self.advance_ms;
        }
        if !missed.is_empty() {
            missed.reverse();
            *late = Some(Late {
                topic: self.late_topic.clone(),
                error: RecordError {
                    operator: "window",
                    reason: format!(
                        "late record: event time {event_ms} is past the grace ({} ms) of the \
                         closed window(s) starting at {missed:?} (stream time {stream_ms})",
                        self.grace_ms
                    ),
                },
            });
        }
        self.close(index, record.partition, updates, results);
        Ok(Flow::Stop)
    }

    /// Closes the partition's windows whose end plus grace stream time has reached.
    fn close(
        &mut self,
        index: usize,
        partition: i32,
        updates: &mut impl Extend<StateUpdate>,
        results: &mut Vec<Record>,
    ) {
        let Some(windows) = self.partitions.get_mut(&partition) else {
            return;
        };
        let Some(stream_ms) = windows.stream_ms else {
            return;
        };
        while let Some(first) = windows.by_end.first() {
            if first.0.saturating_add(self.grace_ms) > stream_ms {
                break;
            }
            let (_, start, group) = windows.by_end.pop_first().expect("a first entry");
            let Some(state) = windows.open.remove(&(group.clone(), start)) else {
                continue;
            };
            self.keys -= 1;
            self.bytes -= window_bytes(&group, &state);
            let result = Self::result_of(
                &self.aggregates,
                self.key_field.as_ref(),
                self.size_ms,
                &group,
                start,
                &state,
                partition,
            );
            results.push(result);
            updates.extend([StateUpdate {
                operator_index: index,
                key: store_key(start, &group),
                value: None,
            }]);
        }
    }

    /// A window's result as a record: the key field (when the window groups by one), the
    /// window's bounds and each aggregate; its timestamp is the window's latest event time.
    fn result_of(
        aggregates: &[(Arc<str>, AggregateSpec)],
        key_field: Option<&Arc<str>>,
        size_ms: i64,
        group: &Arc<str>,
        start: i64,
        state: &WindowState,
        partition: i32,
    ) -> Record {
        let mut result = Record::new(Some(group.clone()), state.max_ms).in_partition(partition);
        if let Some(field) = key_field {
            result
                .fields
                .insert(field.clone(), Value::String(group.to_string()));
        }
        result.fields.insert("window_start", Value::from(start));
        result
            .fields
            .insert("window_end", Value::from(start + size_ms));
        for ((name, _), accumulator) in aggregates.iter().zip(&state.accumulators) {
            result.fields.insert(name.clone(), finish(accumulator));
        }
        result
    }

    fn event_time(&self, record: &Record) -> Result<i64, RecordError> {
        let Some(field) = &self.time else {
            return Ok(record.timestamp_ms);
        };
        let value = record.fields.get(field).ok_or_else(|| RecordError {
            operator: "window",
            reason: format!("time field `{field}` is not set on the record"),
        })?;
        match as_number(value) {
            Ok(ms) if ms.is_finite() && ms.abs() < 1e17 => Ok(ms as i64),
            _ => Err(RecordError {
                operator: "window",
                reason: format!(
                    "time field `{field}` holds {value}, not a time in epoch milliseconds"
                ),
            }),
        }
    }

    /// The value each aggregate reads from the record, checked for its type.
    fn values(&self, record: &Record) -> Result<Vec<Value>, RecordError> {
        (self.aggregates.iter())
            .map(|(name, aggregate)| {
                let field = aggregate.field();
                let value = record.fields.get(field).ok_or_else(|| RecordError {
                    operator: "window",
                    reason: format!("field `{field}` (for `{name}`) is not set on the record"),
                })?;
                if aggregate.needs_number() {
                    let n = as_number(value).map_err(|reason| RecordError {
                        operator: "window",
                        reason: format!("field `{field}` (for `{name}`): {reason}"),
                    })?;
                    Ok(number(n))
                } else {
                    Ok(value.clone())
                }
            })
            .collect()
    }
}

impl Store for Window {
    fn restore(&mut self, partition: i32, key: Arc<str>, value: StateValue) {
        let (StateValue::Window(state), Some((start, group))) = (value, parse_store_key(&key))
        else {
            return;
        };
        let windows = self.partitions.entry(partition).or_default();
        let slot = (group.clone(), start);
        if windows.open.contains_key(&slot) {
            return;
        }
        windows.stream_ms = Some(
            windows
                .stream_ms
                .map_or(state.max_ms, |s| s.max(state.max_ms)),
        );
        windows
            .by_end
            .insert((start + self.size_ms, start, group.clone()));
        self.keys += 1;
        self.bytes += window_bytes(&group, &state);
        windows.open.insert(slot, *state);
    }

    fn forget(&mut self, partition: i32) {
        if let Some(windows) = self.partitions.remove(&partition) {
            for ((group, _), state) in &windows.open {
                self.keys -= 1;
                self.bytes -= window_bytes(group, state);
            }
        }
    }

    fn size(&self) -> (u64, u64) {
        (self.keys, self.bytes)
    }
}

fn empty(aggregate: &AggregateSpec) -> Accumulator {
    match aggregate {
        AggregateSpec::Count(_) => Accumulator::Count(0),
        AggregateSpec::Sum(_) => Accumulator::Sum(0.0),
        AggregateSpec::Min(_) => Accumulator::Min(None),
        AggregateSpec::Max(_) => Accumulator::Max(None),
        AggregateSpec::Avg(_) => Accumulator::Avg { sum: 0.0, count: 0 },
        AggregateSpec::First(_) => Accumulator::First(None),
        AggregateSpec::Last(_) => Accumulator::Last(None),
    }
}

/// Adds one value (already checked to be a number where the aggregate needs one).
fn accumulate(accumulator: &mut Accumulator, value: &Value, event_ms: i64) {
    let n = || value.as_f64().unwrap_or(f64::NAN);
    match accumulator {
        Accumulator::Count(count) => *count += 1,
        Accumulator::Sum(sum) => *sum += n(),
        Accumulator::Min(min) => *min = Some(min.map_or(n(), |m| m.min(n()))),
        Accumulator::Max(max) => *max = Some(max.map_or(n(), |m| m.max(n()))),
        Accumulator::Avg { sum, count } => {
            *sum += n();
            *count += 1;
        }
        Accumulator::First(first) => {
            if first.as_ref().is_none_or(|(_, at)| event_ms < *at) {
                *first = Some((value.clone(), event_ms));
            }
        }
        Accumulator::Last(last) => {
            if last.as_ref().is_none_or(|(_, at)| event_ms >= *at) {
                *last = Some((value.clone(), event_ms));
            }
        }
    }
}

/// The aggregate's value in the window's result.
fn finish(accumulator: &Accumulator) -> Value {
    match accumulator {
        Accumulator::Count(count) => Value::from(*count),
        Accumulator::Sum(sum) => number(*sum),
        Accumulator::Min(value) | Accumulator::Max(value) => value.map_or(Value::Null, number),
        Accumulator::Avg { sum, count } if *count > 0 => number(sum / *count as f64),
        Accumulator::Avg { .. } => Value::Null,
        Accumulator::First(value) | Accumulator::Last(value) => {
            value.as_ref().map_or(Value::Null, |(v, _)| v.clone())
        }
    }
}
