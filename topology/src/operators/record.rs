//! A record on its way through the chain, with the fields the operators set on it.

use std::sync::Arc;

use serde_json::Value;

/// One input message on its way through the chain.
#[derive(Debug, Clone)]
pub struct Record {
    /// The Kafka message key, if any (shared by the record's outputs without copying).
    pub key: Option<Arc<str>>,
    /// The input partition it came from: per-key state is kept per partition, so that no
    /// key is ever compared with a value from another partition's stream.
    pub partition: i32,
    /// The input topic it came from, as its index among the topology's input topics: the
    /// steps reading the input take only the topics they name.
    pub topic: usize,
    /// The input message's timestamp, milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Named fields produced by the operators.
    pub fields: Fields,
    /// The record starts its series over (a replay's recording begins again): no value
    /// before it is its previous one.
    pub restarts_series: bool,
    /// Where the record was first refused, when it comes back from a retry topic: what its
    /// dead letter says it came from.
    pub retried: Option<Arc<Retried>>,
}

/// A record on its way through a step's retries: where it was read when first refused, and
/// which attempt this is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retried {
    pub attempt: u32,
    pub origin_topic: String,
    pub origin_partition: i32,
    pub origin_offset: i64,
    pub origin_timestamp_ms: i64,
}

impl Record {
    pub fn new(key: Option<Arc<str>>, timestamp_ms: i64) -> Self {
        Self {
            key,
            partition: 0,
            topic: 0,
            timestamp_ms,
            fields: Fields::default(),
            restarts_series: false,
            retried: None,
        }
    }

    /// The record comes back from a retry topic.
    pub fn retried(mut self, retried: Retried) -> Self {
        self.retried = Some(Arc::new(retried));
        self
    }

    /// The record came from input topic `topic` (its index; 0 when not said).
    pub fn from_topic(mut self, topic: usize) -> Self {
        self.topic = topic;
        self
    }

    /// The record came from input partition `partition` (0 when not said).
    pub fn in_partition(mut self, partition: i32) -> Self {
        self.partition = partition;
        self
    }

    /// Marks the record as the first of a series that starts over.
    pub fn restarting_series(mut self) -> Self {
        self.restarts_series = true;
        self
    }
}

/// The named fields of a record. A topology sets a handful, so a list searched in turn
/// beats a map; names are the compiled chain's, shared rather than copied per record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(Arc<str>, Value)>);

impl Fields {
    pub fn get(&self, name: &str) -> Option<&Value> {
        (self.0.iter())
            .find(|(field, _)| field.as_ref() == name)
            .map(|(_, value)| value)
    }

    /// No field is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Empties the list, keeping its room for the next record.
    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Sets `name`, replacing what it held.
    pub fn insert(&mut self, name: impl Into<Arc<str>>, value: Value) {
        let name = name.into();
        match self.0.iter_mut().find(|(field, _)| *field == name) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((name, value)),
        }
    }

    /// Writes the fields as one JSON object: how a re-keyed record travels through its
    /// repartition topic.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        use serde::ser::{SerializeMap, Serializer};
        let mut serializer = serde_json::Serializer::new(out);
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name.as_ref(), value)?;
        }
        map.end()
    }

    /// Sets the fields of a JSON object written by [`Fields::write_json`].
    pub fn read_json(&mut self, payload: &[u8]) -> Result<(), NotFields> {
        match serde_json::from_slice::<Value>(payload) {
            Ok(Value::Object(object)) => {
                for (name, value) in object {
                    self.insert(name, value);
                }
                Ok(())
            }
            Ok(other) => Err(NotFields::NotAnObject(other)),
            Err(error) => Err(NotFields::NotJson(error)),
        }
    }
}

/// Why a payload is not the fields [`Fields::write_json`] writes.
#[derive(Debug, thiserror::Error)]
pub enum NotFields {
    #[error("expected a JSON object of fields, found {0}")]
    NotAnObject(Value),
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
}
