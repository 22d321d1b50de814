//! A compacted topic read as a table — the latest value of each key, a tombstone removing it —
//! and compared with the final state a stream of change events leaves (`weir cdc verify`, a
//! workflow's `verify-table` task).

use std::collections::BTreeMap;

use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use weir_topology::source::change_event::FinalState;

use super::{partitions_of, read_ranges, reader, TopicsError, ANSWER_TIMEOUT};

/// The latest row of each key of a topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableRows {
    /// The topic exists (a target not created yet holds nothing, and is not an error).
    pub exists: bool,
    pub rows: BTreeMap<String, Value>,
    /// Messages read (tombstones and superseded rows included).
    pub messages: u64,
    /// Messages without a key, which no table holds: counted, never taken as rows.
    pub unkeyed: u64,
}

/// Reads every partition of `topic` from its first message to its end as it was when the
/// read began: later messages overwrite earlier ones of the same key, a message without a
/// value (a tombstone) removes its key, a value that is not JSON is kept as text.
pub fn latest_rows(brokers: &str, topic: &str) -> Result<TableRows, TopicsError> {
    let consumer = reader(brokers)?;
    let kafka = |what: &'static str, source: KafkaError| TopicsError::Kafka {
        what,
        topic: topic.to_string(),
        source,
    };
    let partitions = match partitions_of(&consumer, brokers, topic) {
        Ok(partitions) => partitions,
        Err(TopicsError::NoTopic { .. }) => return Ok(TableRows::default()),
        Err(other) => return Err(other),
    };
    let mut ranges = BTreeMap::new();
    for partition in partitions {
        let range = (consumer.fetch_watermarks(topic, partition, ANSWER_TIMEOUT))
            .map_err(|source| kafka("the offsets", source))?;
        ranges.insert(partition, range);
    }
    let mut table = TableRows {
        exists: true,
        ..TableRows::default()
    };
    table.messages = read_ranges(&consumer, topic, &ranges, |message| {
        match (message.key(), message.payload()) {
            (None, _) => table.unkeyed += 1,
            (Some(key), None) => {
                table.rows.remove(&*String::from_utf8_lossy(key));
            }
            (Some(key), Some(value)) => {
                let row = serde_json::from_slice(value)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(value).into_owned()));
                (table.rows).insert(String::from_utf8_lossy(key).into_owned(), row);
            }
        }
        true
    })?;
    Ok(table)
}

/// Why a comparison could not be made.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    PrimaryKeys(#[from] weir_topology::source::change_event::BadPrimaryKeys),
    #[error(transparent)]
    Events(Box<weir_topology::source::SourceError>),
    #[error(transparent)]
    Topic(Box<TopicsError>),
}

impl VerifyError {
    /// Kafka did not answer as asked (a broker down, a partition between leaders): the same
    /// comparison may succeed a moment later, unlike one on events or keys that are wrong.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Topic(_))
    }
}

/// Compares `topic` with the final state of `table` the change events of `events` leave.
pub fn verify(
    brokers: &str,
    topic: &str,
    events: &std::path::Path,
    table: &str,
    primary_keys: &str,
) -> Result<TableComparison, VerifyError> {
    let keys: weir_topology::source::change_event::PrimaryKeys = primary_keys.parse()?;
    let documents = weir_topology::source::replay::load_recording(events)
        .map_err(|error| VerifyError::Events(Box::new(error)))?;
    let expected = FinalState::of(documents.iter().map(String::as_str), table, &keys);
    let target =
        latest_rows(brokers, topic).map_err(|error| VerifyError::Topic(Box::new(error)))?;
    Ok(TableComparison::of(topic, table, &expected, &target))
}

/// How a topic's rows compare with the final state of a table: every key of both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableComparison {
    pub topic: String,
    pub table: String,
    /// Rows the change events leave.
    pub expected_rows: usize,
    /// Rows the topic holds.
    pub target_rows: usize,
    /// The topic exists.
    pub target_exists: bool,
    /// Change events of the table applied to compute the expected rows.
    pub events_applied: u64,
    /// Keys the change events leave a row for that the topic does not hold.
    pub missing: Vec<String>,
    /// Keys the topic holds that the change events leave none for (deleted, or never there).
    pub unexpected: Vec<String>,
    /// Keys whose row differs.
    pub different: Vec<String>,
    /// Documents of the events file that are no change event a key could be read from, with
    /// their line (from 1) and why: they change no table.
    pub poison: Vec<PoisonLine>,
    /// Entries of each list above left out of a bounded report (a Job's report must fit in
    /// its termination log); none in a comparison made here.
    #[serde(default, skip_serializing_if = "LeftOut::is_none")]
    pub left_out: LeftOut,
}

/// How many entries of each list a bounded comparison leaves out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub missing: usize,
    pub unexpected: usize,
    pub different: usize,
    pub poison: usize,
}

impl LeftOut {
    fn is_none(&self) -> bool {
        *self == Self::default()
    }
}

/// A line of an events file that is no keyed change event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoisonLine {
    pub line: usize,
    pub reason: String,
}

impl TableComparison {
    /// Compares every key of `expected` with `target`.
    pub fn of(topic: &str, table: &str, expected: &FinalState, target: &TableRows) -> Self {
        let missing = (expected.rows.keys())
            .filter(|key| !target.rows.contains_key(*key))
            .cloned()
            .collect();
        let unexpected = (target.rows.keys())
            .filter(|key| !expected.rows.contains_key(*key))
            .cloned()
            .collect();
        let different = (expected.rows.iter())
            .filter(|(key, row)| target.rows.get(*key).is_some_and(|held| held != *row))
            .map(|(key, _)| key.clone())
            .collect();
        Self {
            topic: topic.to_string(),
            table: table.to_string(),
            expected_rows: expected.rows.len(),
            target_rows: target.rows.len(),
            target_exists: target.exists,
            events_applied: expected.applied,
            missing,
            unexpected,
            different,
            poison: (expected.unkeyed.iter())
                .map(|(line, reason)| PoisonLine {
                    line: *line,
                    reason: reason.clone(),
                })
                .collect(),
            left_out: LeftOut::default(),
        }
    }

    /// The same comparison keeping at most `entries` of each list (the first ones), and how
    /// many it left out: its verdict and its counts stay those of the whole comparison.
    pub fn bounded(&self, entries: usize) -> Self {
        fn first<T: Clone>(list: &[T], entries: usize, left_out: &mut usize) -> Vec<T> {
            *left_out += list.len().saturating_sub(entries);
            list.iter().take(entries).cloned().collect()
        }
        let mut left_out = self.left_out;
        Self {
            missing: first(&self.missing, entries, &mut left_out.missing),
            unexpected: first(&self.unexpected, entries, &mut left_out.unexpected),
            different: first(&self.different, entries, &mut left_out.different),
            poison: first(&self.poison, entries, &mut left_out.poison),
            left_out,
            ..self.clone()
        }
    }

    /// Lines of the events file that are no change event, those left out included.
    pub fn poison_count(&self) -> usize {
        self.poison.len() + self.left_out.poison
    }

    /// Every key compared equal.
    pub fn matches(&self) -> bool {
        self.target_exists
            && self.missing.is_empty()
            && self.unexpected.is_empty()
            && self.different.is_empty()
    }

    /// One line: the verdict with the counts, and the first keys of each kind that differ.
    pub fn summary(&self) -> String {
        let held = match self.target_exists {
            true => format!("{} held", self.target_rows),
            false => "the topic does not exist".to_string(),
        };
        let head = format!(
            "`{}` against table `{}`: {} rows expected (from {} change events), {held}",
            self.topic, self.table, self.expected_rows, self.events_applied
        );
        if self.matches() {
            return format!("{head}: every key matches");
        }
        let keys = |what: &str, keys: &[String], left_out: usize| -> Option<String> {
            (!keys.is_empty()).then(|| {
                let total = keys.len() + left_out;
                let shown: Vec<&str> = keys.iter().take(10).map(String::as_str).collect();
                let more = total.saturating_sub(shown.len());
                let more = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("{total} {what} ({}{more})", shown.join(", "))
            })
        };
        let parts: Vec<String> = [
            keys("missing", &self.missing, self.left_out.missing),
            keys("unexpected", &self.unexpected, self.left_out.unexpected),
            keys("different", &self.different, self.left_out.different),
        ]
        .into_iter()
        .flatten()
        .collect();
        format!("{head}: {}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_comparison_names_missing_unexpected_and_different_keys() {
        let expected = FinalState {
            rows: [
                ("1", json!({"a": 1})),
                ("2", json!({"a": 2})),
                ("3", json!({"a": 3})),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            applied: 5,
            unkeyed: vec![(4, "not a change event: no `op`".into())],
        };
        let target = TableRows {
            rows: [
                ("1", json!({"a": 1})),
                ("3", json!({"a": 30})),
                ("9", json!({})),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            messages: 4,
            unkeyed: 0,
            exists: true,
        };
        let comparison = TableComparison::of("target", "claims", &expected, &target);
        assert!(!comparison.matches());
        assert_eq!(comparison.missing, vec!["2"]);
        assert_eq!(comparison.unexpected, vec!["9"]);
        assert_eq!(comparison.different, vec!["3"]);
        assert_eq!(comparison.poison[0].line, 4);
        assert_eq!(
            comparison.summary(),
            "`target` against table `claims`: 3 rows expected (from 5 change events), 3 held: \
             1 missing (2); 1 unexpected (9); 1 different (3)"
        );
        let same = TableComparison::of(
            "target",
            "claims",
            &expected,
            &TableRows {
                rows: expected.rows.clone(),
                exists: true,
                ..TableRows::default()
            },
        );
        assert!(same.matches());
        assert!(same.summary().ends_with("every key matches"));
        let absent = TableComparison::of("target", "claims", &expected, &TableRows::default());
        assert!(!absent.matches());
        assert!(
            absent.summary().contains("the topic does not exist"),
            "{}",
            absent.summary()
        );
        // A report bounded to fit a Job's termination log keeps its verdict and its counts.
        let bounded = absent.bounded(1);
        assert_eq!(bounded.missing.len(), 1);
        assert_eq!(bounded.left_out.missing, 2);
        assert!(!bounded.matches());
        assert!(
            bounded.summary().ends_with("3 missing (1 and 2 more)"),
            "{}",
            bounded.summary()
        );
        let read: TableComparison =
            serde_json::from_str(&serde_json::to_string(&bounded).unwrap()).unwrap();
        assert_eq!(read, bounded);
    }
}
