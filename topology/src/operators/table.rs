//! `table`: the latest row of each key, kept as keyed state for the `join`s of other steps.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use serde_json::Value;

use super::{Flow, Record, RecordError, Store};
use crate::expression::Expression;
use crate::spec::TableSpec;
use crate::state::{RowState, StateUpdate, StateValue};

#[derive(Debug)]
pub(super) struct Table {
    row: String,
    delete: Option<Expression>,
    /// The row of each key, per input partition: a join looks up the partition its record
    /// came from, which holds the key if the table's topic is partitioned as the records are.
    rows: HashMap<(i32, Arc<str>), Value, RandomState>,
    /// The bytes of the keys and rows held (rows counted as their JSON text).
    bytes: u64,
}

fn entry_bytes(key: &str, row: &Value) -> u64 {
    (key.len() + std::mem::size_of::<i32>() + row.to_string().len()) as u64
}

impl Table {
    pub(super) fn new(spec: &TableSpec) -> Self {
        Self {
            row: spec.row.clone(),
            delete: spec.delete.clone(),
            rows: HashMap::default(),
            bytes: 0,
        }
    }

    /// The row of `key` in `partition`.
    pub(super) fn lookup(&self, partition: i32, key: &Arc<str>) -> Option<&Value> {
        self.rows.get(&(partition, key.clone()))
    }

    pub(super) fn apply(
        &mut self,
        index: usize,
        record: &Record,
        updates: &mut impl Extend<StateUpdate>,
    ) -> Result<Flow, RecordError> {
        let refused = |reason: String| RecordError {
            operator: "table",
            reason,
        };
        let key = record.key.clone().ok_or_else(|| {
            refused("the record has no key: a table keeps rows by key (rekey it first)".into())
        })?;
        let deleted = match &self.delete {
            Some(delete) => delete
                .passes(record)
                .map_err(|error| refused(format!("delete: {error}")))?,
            None => false,
        };
        let slot = (record.partition, key.clone());
        if deleted {
            if let Some(old) = self.rows.remove(&slot) {
                self.bytes -= entry_bytes(&key, &old);
            }
            updates.extend([StateUpdate {
                operator_index: index,
                key,
                value: None,
            }]);
            return Ok(Flow::Continue);
        }
        let row = (record.fields.get(&self.row).cloned())
            .ok_or_else(|| refused(format!("field `{}` is not set on the record", self.row)))?;
        self.bytes += entry_bytes(&key, &row);
        if let Some(old) = self.rows.insert(slot, row.clone()) {
            self.bytes -= entry_bytes(&key, &old);
        }
        updates.extend([StateUpdate {
            operator_index: index,
            key,
            value: Some(StateValue::Row(RowState { row })),
        }]);
        Ok(Flow::Continue)
    }
}

impl Store for Table {
    fn restore(&mut self, partition: i32, key: Arc<str>, value: StateValue) {
        if let StateValue::Row(RowState { row }) = value {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                self.rows.entry((partition, key.clone()))
            {
                self.bytes += entry_bytes(&key, &row);
                slot.insert(row);
            }
        }
    }

    fn forget(&mut self, partition: i32) {
        let bytes = &mut self.bytes;
        self.rows.retain(|(held, key), row| {
            let keep = *held != partition;
            if !keep {
                *bytes -= entry_bytes(key, row);
            }
            keep
        });
    }

    fn size(&self) -> (u64, u64) {
        (self.rows.len() as u64, self.bytes)
    }
}
