//! Offsets and operator state that are safe to commit.
//!
//! A record's input offset becomes committable only once every message it produced has been
//! acknowledged by the broker (at-least-once delivery). The diff operators' state as of that
//! offset travels with the commit, in the offset's metadata, so that a restarted runner
//! resumes with the same "previous value" it would have had and loses no variation.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::operators::StateUpdate;

/// Kafka's default `offset.metadata.max.bytes`; larger state is not checkpointed.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Committable positions and state, per input partition.
///
/// A partition taken away in a rebalance is forgotten, and its generation moves on: records
/// of it still in flight then acknowledge into nothing, so this runner never commits a
/// position or state for a partition another runner now owns.
#[derive(Debug, Default)]
pub struct Checkpoint {
    partitions: HashMap<i32, PartitionCheckpoint>,
    generations: HashMap<i32, u64>,
}

#[derive(Debug, Default)]
struct PartitionCheckpoint {
    /// The offset of the next record to read after a restart.
    next_offset: i64,
    state: BTreeMap<(usize, Arc<str>), f64>,
    dirty: bool,
}

/// What to commit for one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionCommit {
    pub partition: i32,
    pub next_offset: i64,
    /// Encoded operator state, or `None` when it is too large to fit the offset metadata.
    pub metadata: Option<String>,
}

impl Checkpoint {
    /// Records that the record at `offset` and everything before it is fully processed.
    /// Acknowledgements must arrive in consumption order.
    pub fn acknowledge(
        &mut self,
        partition: i32,
        generation: u64,
        offset: i64,
        updates: impl IntoIterator<Item = StateUpdate>,
    ) {
        if generation != self.generation(partition) {
            return;
        }
        let entry = self.partitions.entry(partition).or_default();
        entry.next_offset = offset + 1;
        for update in updates {
            entry
                .state
                .insert((update.operator_index, update.key), update.value);
        }
        entry.dirty = true;
    }

    /// The partition's current generation: records read now carry it.
    pub fn generation(&self, partition: i32) -> u64 {
        self.generations.get(&partition).copied().unwrap_or(0)
    }

    /// Forgets a partition that went to another runner (commit what moved first).
    pub fn forget(&mut self, partition: i32) {
        self.partitions.remove(&partition);
        *self.generations.entry(partition).or_default() += 1;
    }

    /// The partitions that moved since the last call, ready to commit.
    pub fn take_dirty(&mut self) -> Vec<PartitionCommit> {
        let mut commits: Vec<PartitionCommit> = self
            .partitions
            .iter_mut()
            .filter(|(_, p)| p.dirty)
            .map(|(&partition, p)| {
                p.dirty = false;
                let encoded = encode_state(&p.state);
                PartitionCommit {
                    partition,
                    next_offset: p.next_offset,
                    metadata: (encoded.len() <= MAX_METADATA_BYTES).then_some(encoded),
                }
            })
            .collect();
        commits.sort_by_key(|c| c.partition);
        commits
    }
}

/// Encodes state as a compact JSON list of `[operator, key, value]`.
pub fn encode_state(state: &BTreeMap<(usize, Arc<str>), f64>) -> String {
    let entries: Vec<serde_json::Value> = state
        .iter()
        .map(|((op, key), value)| serde_json::json!([op, key.as_ref(), value]))
        .collect();
    serde_json::Value::Array(entries).to_string()
}

/// Decodes what [`encode_state`] wrote. Metadata written by anything else yields no state.
pub fn decode_state(metadata: &str) -> Vec<StateUpdate> {
    let Ok(serde_json::Value::Array(entries)) = serde_json::from_str(metadata) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let op = entry.get(0)?.as_u64()?;
            let key = entry.get(1)?.as_str()?;
            let value = entry.get(2)?.as_f64()?;
            Some(StateUpdate {
                operator_index: usize::try_from(op).ok()?,
                key: key.into(),
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(key: &str, value: f64) -> StateUpdate {
        StateUpdate {
            operator_index: 3,
            key: key.into(),
            value,
        }
    }

    #[test]
    fn commits_follow_acknowledgements_and_carry_state() {
        let mut c = Checkpoint::default();
        assert!(c.take_dirty().is_empty());
        c.acknowledge(0, 0, 41, vec![update("", 1.5)]);
        c.acknowledge(0, 0, 42, vec![update("", 2.5)]);
        c.acknowledge(1, 0, 7, vec![]);
        let commits = c.take_dirty();
        assert_eq!(commits.len(), 2);
        assert_eq!(commits[0].next_offset, 43);
        assert_eq!(
            decode_state(commits[0].metadata.as_deref().unwrap()),
            vec![update("", 2.5)]
        );
        assert_eq!(commits[1].next_offset, 8);
        assert!(c.take_dirty().is_empty(), "nothing moved since");
    }

    #[test]
    fn oversized_state_is_not_put_in_metadata() {
        let mut c = Checkpoint::default();
        let many: Vec<_> = (0..500).map(|i| update(&format!("key-{i}"), 1.0)).collect();
        c.acknowledge(0, 0, 1, many);
        assert_eq!(c.take_dirty()[0].metadata, None);
    }

    #[test]
    fn a_forgotten_partition_ignores_acknowledgements_read_before() {
        let mut c = Checkpoint::default();
        let read_before = c.generation(2);
        c.acknowledge(2, read_before, 9, vec![update("", 1.0)]);
        c.forget(2);
        c.acknowledge(2, read_before, 10, vec![update("", 2.0)]);
        assert!(
            c.take_dirty().is_empty(),
            "nothing committed for a partition given away"
        );
        c.acknowledge(2, c.generation(2), 30, vec![]);
        assert_eq!(c.take_dirty()[0].next_offset, 31);
    }

    #[test]
    fn foreign_metadata_decodes_to_nothing() {
        assert!(decode_state("").is_empty());
        assert!(decode_state("committed by someone else").is_empty());
    }
}
