//! The version of the last row an `upsert` wrote for each key, so that an older row that
//! arrives later (out of order after a retry) does not overwrite a newer one.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use super::{Record, RecordError, Store};
use crate::expression::Expression;
use crate::state::{LastValue, StateUpdate, StateValue};
use weir_contracts::number::as_number;

#[derive(Debug)]
pub(super) struct Versions {
    version: Expression,
    /// The last version written per key, per input partition (a tombstone's too).
    last: HashMap<(i32, Arc<str>), f64, RandomState>,
}

impl Versions {
    pub(super) fn new(version: Expression) -> Self {
        Self {
            version,
            last: HashMap::default(),
        }
    }

    /// Whether the record's row is the newest of its key so far (as new as the last one
    /// counts: a record read again after a restart writes its row again); if so, its version
    /// becomes the key's.
    pub(super) fn newest(
        &mut self,
        index: usize,
        record: &Record,
        key: &Arc<str>,
        updates: &mut impl Extend<StateUpdate>,
    ) -> Result<bool, RecordError> {
        let refused = |reason: String| RecordError {
            operator: "upsert",
            reason,
        };
        let value = (self.version.evaluate(record))
            .map_err(|error| refused(format!("version: {error}")))?;
        let version = as_number(&value).map_err(|error| {
            refused(format!(
                "version `{}` is no number: {error}",
                self.version.text()
            ))
        })?;
        let slot = (record.partition, key.clone());
        if self.last.get(&slot).is_some_and(|last| version < *last) {
            return Ok(false);
        }
        self.last.insert(slot, version);
        updates.extend([StateUpdate {
            operator_index: index,
            key: key.clone(),
            value: Some(StateValue::Last(LastValue {
                value: version,
                seen_ms: record.timestamp_ms,
            })),
        }]);
        Ok(true)
    }
}

impl Store for Versions {
    fn restore(&mut self, partition: i32, key: Arc<str>, value: StateValue) {
        if let StateValue::Last(last) = value {
            self.last.entry((partition, key)).or_insert(last.value);
        }
    }

    fn forget(&mut self, partition: i32) {
        self.last.retain(|(held, _), _| *held != partition);
    }

    fn size(&self) -> (u64, u64) {
        let bytes = (self.last.keys())
            .map(|(_, key)| (key.len() + std::mem::size_of::<(i32, f64)>()) as u64)
            .sum();
        (self.last.len() as u64, bytes)
    }
}
