//! `diff`: the variation of a field against the previous value of the same key.

use std::collections::hash_map::{Entry, HashMap};
use std::sync::Arc;

use foldhash::fast::RandomState;

use super::{group_key, number, number_field, Flow, Record, RecordError, Store};
use crate::spec::DiffSpec;
use crate::state::{LastValue, StateUpdate, StateValue};

/// A value restored without the time it was seen (written before keys expired): its idle
/// time counts from the first expiry sweep that meets it.
const SEEN_UNKNOWN: i64 = i64::MAX;

#[derive(Debug)]
pub(super) struct Diff {
    field: String,
    output: Arc<str>,
    previous: Arc<str>,
    key: Option<String>,
    ttl_ms: Option<i64>,
    /// The last value of each key, per input partition. Every record looks its key up here:
    /// a fast seeded hash rather than SipHash, which cost more than the lookup.
    last: HashMap<(i32, Arc<str>), LastValue, RandomState>,
    /// The bytes of `last`'s entries (see [`entry_bytes`]), kept as keys come and go so that
    /// `/status` does not walk every key.
    bytes: u64,
    /// Per partition, the latest event time seen and the one of the last expiry sweep.
    clocks: HashMap<i32, Clock, RandomState>,
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    stream_ms: i64,
    swept_ms: i64,
}

/// The bytes one entry holds: its key's text, its partition, its value and when it was seen.
fn entry_bytes(key: &str) -> u64 {
    (key.len() + std::mem::size_of::<i32>() + std::mem::size_of::<LastValue>()) as u64
}

impl Diff {
    pub(super) fn new(spec: &DiffSpec) -> Self {
        Self {
            field: spec.field.clone(),
            output: spec.output.as_str().into(),
            previous: spec.previous.as_str().into(),
            key: spec.key.clone(),
            ttl_ms: spec.ttl.map(|ttl| ttl.millis()),
            last: HashMap::default(),
            bytes: 0,
            clocks: HashMap::default(),
        }
    }

    pub(super) fn apply(
        &mut self,
        index: usize,
        record: &mut Record,
        updates: &mut impl Extend<StateUpdate>,
    ) -> Result<Flow, RecordError> {
        let value = number_field(record, &self.field, "diff")?;
        let group = group_key(record, self.key.as_deref(), "diff")?;
        let partition = record.partition;
        let seen_ms = record.timestamp_ms;
        let now = LastValue { value, seen_ms };
        let before = match self.last.entry((partition, group.clone())) {
            // No variation spans the seam: the record's series begins again here.
            // (The update below also replaces the state the checkpoint keeps.)
            Entry::Occupied(mut slot) if record.restarts_series => {
                slot.insert(now);
                None
            }
            Entry::Occupied(mut slot) => Some(slot.insert(now).value),
            Entry::Vacant(slot) => {
                self.bytes += entry_bytes(&slot.key().1);
                slot.insert(now);
                None
            }
        };
        updates.extend([StateUpdate {
            operator_index: index,
            key: group,
            value: Some(StateValue::Last(now)),
        }]);
        if let Some(ttl_ms) = self.ttl_ms {
            self.expire(index, partition, seen_ms, ttl_ms, updates);
        }
        match before {
            // The first value of a key has nothing to compare with.
            None => Ok(Flow::Stop),
            Some(before) => {
                record.fields.insert(self.previous.clone(), number(before));
                record
                    .fields
                    .insert(self.output.clone(), number(round_variation(value - before)));
                Ok(Flow::Continue)
            }
        }
    }

    /// Forgets the partition's keys idle for longer than the TTL, with a tombstone each for
    /// the changelog. The keys are swept when stream time has moved an eighth of the TTL
    /// since the last sweep, so a key lives at most 9/8 of its TTL.
    fn expire(
        &mut self,
        index: usize,
        partition: i32,
        event_ms: i64,
        ttl_ms: i64,
        updates: &mut impl Extend<StateUpdate>,
    ) {
        let clock = self.clocks.entry(partition).or_insert(Clock {
            stream_ms: event_ms,
            swept_ms: event_ms,
        });
        clock.stream_ms = clock.stream_ms.max(event_ms);
        if clock.stream_ms.saturating_sub(clock.swept_ms) < (ttl_ms / 8).max(1) {
            return;
        }
        clock.swept_ms = clock.stream_ms;
        let stream_ms = clock.stream_ms;
        let mut expired = Vec::new();
        let bytes = &mut self.bytes;
        self.last.retain(|(owner, key), last| {
            if *owner != partition {
                return true;
            }
            if last.seen_ms == SEEN_UNKNOWN {
                last.seen_ms = stream_ms;
            }
            let keep = stream_ms.saturating_sub(last.seen_ms) < ttl_ms;
            if !keep {
                *bytes -= entry_bytes(key);
                expired.push(key.clone());
            }
            keep
        });
        updates.extend(expired.into_iter().map(|key| StateUpdate {
            operator_index: index,
            key,
            value: None,
        }));
    }
}

impl Store for Diff {
    fn restore(&mut self, partition: i32, key: Arc<str>, value: StateValue) {
        let last = match value {
            StateValue::Last(last) => last,
            StateValue::Number(value) => LastValue {
                value,
                seen_ms: SEEN_UNKNOWN,
            },
            StateValue::Window(_) | StateValue::Row(_) => return,
        };
        if let Entry::Vacant(slot) = self.last.entry((partition, key)) {
            self.bytes += entry_bytes(&slot.key().1);
            slot.insert(last);
        }
    }

    fn forget(&mut self, partition: i32) {
        let bytes = &mut self.bytes;
        self.last.retain(|(owner, key), _| {
            let keep = *owner != partition;
            if !keep {
                *bytes -= entry_bytes(key);
            }
            keep
        });
        self.clocks.remove(&partition);
    }

    fn size(&self) -> (u64, u64) {
        (self.last.len() as u64, self.bytes)
    }
}

/// Rounds to 8 decimal places, the precision of Bitcoin amounts, so that `126.24 → 203.74`
/// reads as a variation of `77.5` and not `77.50000000000001`.
fn round_variation(value: f64) -> f64 {
    (value * 1e8).round() / 1e8
}
