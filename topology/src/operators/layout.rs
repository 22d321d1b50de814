//! The JSON an `emit` writes, laid out once when the chain is compiled.

use super::{Record, RecordError};

/// The JSON object an `emit` writes: the named fields in their declared order, then the
/// input's `timestamp` (ms). Compiled once, with each member's name already written out as
/// JSON, and written straight into the payload: this runs for every output of every record.
#[derive(Debug)]
pub(super) struct Layout {
    /// The fields, each once, with its `"name":` as JSON writes it.
    members: Vec<(String, Vec<u8>)>,
    /// `"timestamp":`, when the input's timestamp follows the fields.
    timestamp: Option<Vec<u8>>,
    /// Room for a typical object: the names, the braces and about 24 bytes per value.
    capacity: usize,
}

impl Layout {
    pub(super) fn new(fields: &[String], timestamp: bool) -> Self {
        let mut members: Vec<(String, Vec<u8>)> = Vec::new();
        for name in fields {
            if !members.iter().any(|(seen, _)| seen == name) {
                members.push((name.clone(), member_name(name)));
            }
        }
        let timestamp = (timestamp && !members.iter().any(|(name, _)| name == "timestamp"))
            .then(|| member_name("timestamp"));
        let names: usize = (members.iter().map(|(_, json)| json.len()))
            .chain(timestamp.as_ref().map(Vec::len))
            .sum();
        let capacity = 2 + names + 24 * (members.len() + 1);
        Self {
            members,
            timestamp,
            capacity,
        }
    }

    /// Writes the object into `json`, which is empty.
    pub(super) fn write(&self, record: &Record, json: &mut Vec<u8>) -> Result<(), RecordError> {
        json.reserve(self.capacity);
        for (name, member) in &self.members {
            let value = record.fields.get(name).ok_or_else(|| RecordError {
                operator: "emit",
                reason: format!("field `{name}` is not set on the record"),
            })?;
            write_member(json, member, value);
        }
        if let Some(member) = &self.timestamp {
            write_member(json, member, &record.timestamp_ms);
        }
        if json.is_empty() {
            json.push(b'{');
        }
        json.push(b'}');
        Ok(())
    }
}

/// `"name":`, the name escaped as JSON needs.
fn member_name(name: &str) -> Vec<u8> {
    let mut json = serde_json::to_vec(name).expect("a string is always JSON");
    json.push(b':');
    json
}

/// Appends a member (its `"name":` and `value`) to a JSON object being written, opening the
/// object for the first one.
fn write_member(json: &mut Vec<u8>, member: &[u8], value: &impl serde::Serialize) {
    json.push(if json.is_empty() { b'{' } else { b',' });
    json.extend_from_slice(member);
    // Writing into memory fails only for values JSON cannot hold; `Value`s and integers are
    // not such.
    let _ = serde_json::to_writer(&mut *json, value);
}
