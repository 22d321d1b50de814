//! Offsets and operator state that are safe to commit.
//!
//! A record's input offset becomes committable only once every message it produced has been
//! acknowledged by the broker (at-least-once delivery). The state changes of the records up to
//! it wait here, one value per key however often the key changed (the write cache), until the
//! commit writes them to the operators' changelogs ([`crate::changelog`]) and then commits the
//! offset with the changelogs' ends in its metadata.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use foldhash::fast::RandomState;

use crate::changelog::{ChangelogEnds, CommittedState};
use crate::state::{StateUpdate, StateValue};

/// Committable positions and state changes, per input partition: partition N of every input
/// topic is one task, with one state (the topics are co-partitioned) and its own offset in
/// each topic.
///
/// A partition taken away in a rebalance is forgotten, and its generation moves on: records
/// of it still in flight then acknowledge into nothing, so this runner never commits a
/// position or state for a partition another runner now owns.
#[derive(Debug, Default)]
pub struct Checkpoint {
    // Every acknowledged record looks its partition up in both and its state changes up in
    // `unwritten`: a fast seeded hash rather than SipHash, as the operators' stores do.
    partitions: HashMap<i32, PartitionCheckpoint, RandomState>,
    generations: HashMap<i32, u64, RandomState>,
}

/// The offset of the next record to read after a restart, per input topic (by its index).
pub type NextOffsets = BTreeMap<usize, i64>;

#[derive(Debug, Default)]
struct PartitionCheckpoint {
    /// The offset of the next record to read after a restart, in each input topic read.
    next_offsets: NextOffsets,
    /// State changes not yet in the changelog: the latest value of each key.
    unwritten: HashMap<(usize, Arc<str>), Option<StateValue>, RandomState>,
    /// Where the changelogs end with every change written so far.
    changelog_ends: ChangelogEnds,
    dirty: bool,
}

/// What to commit for one partition: first its state changes, then its offset.
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionCommit {
    pub partition: i32,
    /// Per input topic (by its index) that moved or was committed before.
    pub next_offsets: NextOffsets,
    pub writes: Vec<StateUpdate>,
}

impl Checkpoint {
    /// Records that the record at `offset` of input topic `topic` (its index) and
    /// everything before it is fully processed. Acknowledgements must arrive in consumption
    /// order.
    pub fn acknowledge(
        &mut self,
        (topic, partition): (usize, i32),
        generation: u64,
        offset: i64,
        updates: impl IntoIterator<Item = StateUpdate>,
    ) {
        if generation != self.generation(partition) {
            return;
        }
        let entry = self.partitions.entry(partition).or_default();
        entry.next_offsets.insert(topic, offset + 1);
        for update in updates {
            entry
                .unwritten
                .insert((update.operator_index, update.key), update.value);
        }
        entry.dirty = true;
    }

    /// Records what a partition's state was restored from: the changelogs' ends, and state
    /// the changelogs do not hold yet (restored from an earlier runner's inline commit).
    pub fn restored(
        &mut self,
        partition: i32,
        ends: ChangelogEnds,
        not_in_changelog: impl IntoIterator<Item = StateUpdate>,
    ) {
        let entry = self.partitions.entry(partition).or_default();
        entry.changelog_ends = ends;
        for update in not_in_changelog {
            entry
                .unwritten
                .entry((update.operator_index, update.key))
                .or_insert(update.value);
        }
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

    /// The partitions that moved since the last call, ready to commit, with their state
    /// changes (taken: give them back with [`Checkpoint::unwritten`] if writing fails).
    pub fn take_dirty(&mut self) -> Vec<PartitionCommit> {
        let mut commits: Vec<PartitionCommit> = self
            .partitions
            .iter_mut()
            .filter(|(_, p)| p.dirty)
            .map(|(&partition, p)| {
                p.dirty = false;
                PartitionCommit {
                    partition,
                    next_offsets: p.next_offsets.clone(),
                    writes: p
                        .unwritten
                        .drain()
                        .map(|((operator_index, key), value)| StateUpdate {
                            operator_index,
                            key,
                            value,
                        })
                        .collect(),
                }
            })
            .collect();
        commits.sort_by_key(|c| c.partition);
        commits
    }

    /// The state changes of `commit` are in the changelogs, which now end at `ends`: the
    /// metadata to commit its offset with.
    pub fn written(&mut self, partition: i32, ends: ChangelogEnds) -> String {
        let entry = self.partitions.entry(partition).or_default();
        entry.changelog_ends.extend(ends);
        CommittedState::marker(&entry.changelog_ends)
    }

    /// The state changes of `commit` could not be written: they wait for the next commit,
    /// behind any newer value of the same key, and the offset is not committed.
    pub fn unwritten(&mut self, commit: PartitionCommit) {
        let Some(entry) = self.partitions.get_mut(&commit.partition) else {
            return;
        };
        for write in commit.writes {
            entry
                .unwritten
                .entry((write.operator_index, write.key))
                .or_insert(write.value);
        }
        entry.dirty = true;
    }

    /// Keys whose change still waits for the changelog, over every partition.
    pub fn unwritten_len(&self) -> usize {
        self.partitions.values().map(|p| p.unwritten.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(key: &str, value: f64) -> StateUpdate {
        StateUpdate {
            operator_index: 3,
            key: key.into(),
            value: Some(StateValue::Number(value)),
        }
    }

    fn write(key: &str, value: f64) -> StateUpdate {
        update(key, value)
    }

    #[test]
    fn commits_follow_acknowledgements_with_one_write_per_key() {
        let mut c = Checkpoint::default();
        assert!(c.take_dirty().is_empty());
        c.acknowledge((0, 0), 0, 41, vec![update("BTC", 1.5)]);
        c.acknowledge((0, 0), 0, 42, vec![update("BTC", 2.5)]);
        c.acknowledge((0, 1), 0, 7, vec![]);
        let commits = c.take_dirty();
        assert_eq!(commits.len(), 2);
        assert_eq!(commits[0].next_offsets, NextOffsets::from([(0, 43)]));
        assert_eq!(
            commits[0].writes,
            vec![write("BTC", 2.5)],
            "the latest value only"
        );
        assert_eq!(commits[1].next_offsets, NextOffsets::from([(0, 8)]));
        assert!(commits[1].writes.is_empty());
        assert!(c.take_dirty().is_empty(), "nothing moved since");
    }

    #[test]
    fn the_metadata_carries_the_changelog_ends_of_every_operator() {
        let mut c = Checkpoint::default();
        c.restored(0, ChangelogEnds::from([(3, 10), (5, 4)]), vec![]);
        c.acknowledge((0, 0), 0, 1, vec![update("k", 1.0)]);
        let commit = c.take_dirty().remove(0);
        let metadata = c.written(commit.partition, ChangelogEnds::from([(3, 11)]));
        assert_eq!(
            CommittedState::read(&metadata),
            CommittedState::Changelog(ChangelogEnds::from([(3, 11), (5, 4)]))
        );
    }

    #[test]
    fn thousands_of_keys_make_a_small_commit() {
        let mut c = Checkpoint::default();
        let many: Vec<_> = (0..5_000)
            .map(|i| update(&format!("key-{i}"), 1.0))
            .collect();
        c.acknowledge((0, 0), 0, 1, many);
        let commit = c.take_dirty().remove(0);
        assert_eq!(commit.writes.len(), 5_000);
        let metadata = c.written(0, ChangelogEnds::from([(3, 5_000)]));
        assert!(metadata.len() < 64, "{metadata}");
    }

    #[test]
    fn writes_that_failed_wait_behind_newer_values() {
        let mut c = Checkpoint::default();
        c.acknowledge((0, 0), 0, 1, vec![update("k", 1.0), update("j", 7.0)]);
        let failed = c.take_dirty().remove(0);
        c.acknowledge((0, 0), 0, 2, vec![update("k", 2.0)]);
        c.unwritten(failed);
        let mut writes = c.take_dirty().remove(0).writes;
        writes.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(writes, vec![write("j", 7.0), write("k", 2.0)]);
    }

    #[test]
    fn inline_state_restored_from_an_earlier_runner_is_written_at_the_next_commit() {
        let mut c = Checkpoint::default();
        c.restored(0, ChangelogEnds::new(), vec![update("k", 4.0)]);
        c.acknowledge((0, 0), 0, 9, vec![]);
        assert_eq!(c.take_dirty()[0].writes, vec![write("k", 4.0)]);
    }

    #[test]
    fn each_input_topic_of_a_partition_commits_its_own_offset_with_the_one_state() {
        let mut c = Checkpoint::default();
        c.acknowledge((0, 3), 0, 10, vec![update("k", 1.0)]);
        c.acknowledge((1, 3), 0, 500, vec![update("k", 2.0)]);
        c.acknowledge((0, 3), 0, 11, vec![]);
        let commit = c.take_dirty().remove(0);
        assert_eq!(commit.next_offsets, NextOffsets::from([(0, 12), (1, 501)]));
        assert_eq!(commit.writes, vec![write("k", 2.0)]);
        c.acknowledge((1, 3), 0, 501, vec![]);
        assert_eq!(
            c.take_dirty()[0].next_offsets,
            NextOffsets::from([(0, 12), (1, 502)]),
            "a topic that did not move keeps its offset in the next commit"
        );
    }

    #[test]
    fn a_forgotten_partition_ignores_acknowledgements_read_before() {
        let mut c = Checkpoint::default();
        let read_before = c.generation(2);
        c.acknowledge((0, 2), read_before, 9, vec![update("", 1.0)]);
        c.forget(2);
        c.acknowledge((0, 2), read_before, 10, vec![update("", 2.0)]);
        assert!(
            c.take_dirty().is_empty(),
            "nothing committed for a partition given away"
        );
        c.acknowledge((0, 2), c.generation(2), 30, vec![]);
        assert_eq!(c.take_dirty()[0].next_offsets, NextOffsets::from([(0, 31)]));
    }
}
