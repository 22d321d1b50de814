//! Operator state as it travels from a record to the write cache ([`crate::checkpoint`]), the
//! changelog topic ([`crate::changelog`]) and back into an operator on restore.
//!
//! A stateful operator's store maps a text key to a [`StateValue`]. The value's JSON form is
//! the changelog message's payload; a key removed (expired, or a window closed) is a
//! tombstone, so compaction drops it from the changelog as well.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A change to an operator's state made by one record, replayed into the checkpoint once the
/// record's outputs are acknowledged.
#[derive(Debug, Clone, PartialEq)]
pub struct StateUpdate {
    pub operator_index: usize,
    pub key: Arc<str>,
    /// The key's new value; `None` removes the key (a tombstone in the changelog).
    pub value: Option<StateValue>,
}

impl StateUpdate {
    /// The payload of the changelog message: the value's JSON, or none for a tombstone.
    pub fn payload(&self) -> Option<String> {
        self.value.as_ref().map(StateValue::to_json)
    }
}

/// What a stateful operator keeps for one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StateValue {
    /// A diff's last value as runners before idle-key expiry wrote it: a bare number, with
    /// no time it was seen.
    Number(f64),
    /// A diff's last value and the event time it was seen at.
    Last(LastValue),
    /// An open window's aggregates.
    Window(Box<WindowState>),
    /// A table's row of a key. Last: the forms above are tried first, and a row is wrapped
    /// (`{"row": ...}`) so that no row reads as one of them.
    Row(RowState),
}

/// A table's row of one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowState {
    pub row: Value,
}

/// A diff's last value of a key.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LastValue {
    pub value: f64,
    /// The event time (ms since the epoch) of the record that set it; idle-key expiry counts
    /// from here.
    pub seen_ms: i64,
}

/// An open window of one key: one accumulator per aggregate the window computes, in the
/// order the topology declares them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    pub accumulators: Vec<Accumulator>,
    /// The latest event time in the window: the output's timestamp, and the partition's
    /// stream time when the window is restored.
    pub max_ms: i64,
}

/// The running value of one aggregate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Accumulator {
    Count(u64),
    Sum(f64),
    Min(Option<f64>),
    Max(Option<f64>),
    Avg {
        sum: f64,
        count: u64,
    },
    /// The value with the earliest event time (the first to arrive among equals), and that
    /// time.
    First(Option<(Value, i64)>),
    /// The value with the latest event time (the last to arrive among equals), and that time.
    Last(Option<(Value, i64)>),
}

impl StateValue {
    /// Reads a changelog payload; `None` when it is none of the forms above.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("state values serialize")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_form_reads_back_from_its_payload() {
        let window = StateValue::Window(Box::new(WindowState {
            accumulators: vec![
                Accumulator::Count(3),
                Accumulator::Sum(4.5),
                Accumulator::Min(Some(1.0)),
                Accumulator::Max(None),
                Accumulator::Avg { sum: 3.0, count: 2 },
                Accumulator::First(Some((json!("a"), 7))),
                Accumulator::Last(None),
            ],
            max_ms: 9,
        }));
        let last = StateValue::Last(LastValue {
            value: 2.5,
            seen_ms: 1_700_000_000_000,
        });
        let row = StateValue::Row(RowState {
            row: json!({ "value": 1, "seen_ms": 2, "accumulators": [] }),
        });
        for value in [StateValue::Number(1.5), last, window, row] {
            assert_eq!(StateValue::from_json(&value.to_json()), Some(value));
        }
        assert_eq!(StateValue::from_json("3"), Some(StateValue::Number(3.0)));
        assert_eq!(StateValue::from_json("not state"), None);
    }
}
