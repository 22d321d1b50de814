//! Debezium change events: the envelope (`op`, `before`, `after`, `source.table`,
//! `source.ts_ms`), keyed by each table's primary key, and the final state of the tables a
//! stream of them leaves behind.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::Value;

/// What a change event does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `c`: a row inserted.
    Create,
    /// `u`: a row updated.
    Update,
    /// `d`: a row deleted (`after` is null, `before` holds the row).
    Delete,
    /// `r`: a row read by a snapshot.
    Read,
}

/// One change event, read from its envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    pub operation: Operation,
    pub table: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// When the change happened in the source database (`source.ts_ms`), if said.
    pub ts_ms: Option<i64>,
}

/// Why a document is not a change event this module can key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoPrimaryKey {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a change event: {0}")]
    NotAnEvent(String),
    #[error("no primary key is declared for table `{table}` (declared: {declared})")]
    UnknownTable { table: String, declared: String },
    #[error("the {side} row of table `{table}` has no primary key column `{column}`")]
    MissingColumn {
        table: String,
        side: &'static str,
        column: String,
    },
}

impl ChangeEvent {
    /// Reads an envelope, bare or inside `payload` (Kafka Connect's JSON with schemas).
    pub fn parse(document: &[u8]) -> Result<Self, NoPrimaryKey> {
        let value: Value = serde_json::from_slice(document)
            .map_err(|error| NoPrimaryKey::NotJson(error.to_string()))?;
        Self::of(&value)
    }

    /// Reads an envelope from its JSON.
    pub fn of(value: &Value) -> Result<Self, NoPrimaryKey> {
        let envelope = match value.get("payload") {
            Some(payload) if payload.is_object() => payload,
            _ => value,
        };
        let bad = |why: &str| NoPrimaryKey::NotAnEvent(why.to_string());
        let operation = match envelope.get("op").and_then(Value::as_str) {
            Some("c") => Operation::Create,
            Some("u") => Operation::Update,
            Some("d") => Operation::Delete,
            Some("r") => Operation::Read,
            Some(other) => return Err(bad(&format!("unknown `op` {other:?} (c, u, d or r)"))),
            None => return Err(bad("no `op`")),
        };
        let table = (envelope.pointer("/source/table").and_then(Value::as_str))
            .ok_or_else(|| bad("no `source.table`"))?
            .to_string();
        let row = |side: &str| match envelope.get(side) {
            Some(Value::Null) | None => None,
            Some(row) => Some(row.clone()),
        };
        let (before, after) = (row("before"), row("after"));
        let event = Self {
            operation,
            table,
            before,
            after,
            ts_ms: envelope.pointer("/source/ts_ms").and_then(Value::as_i64),
        };
        match (operation, &event.before, &event.after) {
            (Operation::Delete, None, _) => Err(bad("a delete without `before`")),
            (Operation::Delete, _, _) => Ok(event),
            (_, _, Some(Value::Object(_))) => Ok(event),
            _ => Err(bad("an insert, update or read without an `after` row")),
        }
    }

    /// The row the key is read from: `after`, or `before` for a delete.
    fn keyed_row(&self) -> (&'static str, Option<&Value>) {
        match self.operation {
            Operation::Delete => ("before", self.before.as_ref()),
            _ => ("after", self.after.as_ref()),
        }
    }
}

/// The primary key columns of each table: `TABLE=COLUMN` pairs separated by commas, a
/// composite key's columns joined by `+`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrimaryKeys(BTreeMap<String, Vec<String>>);

/// A `--change-events` text that does not declare primary keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` does not declare primary keys: write `TABLE=COLUMN` pairs separated by commas, a composite key's columns joined by `+`, e.g. `members=member_id,lines=claim_id+line`")]
pub struct BadPrimaryKeys(pub String);

impl FromStr for PrimaryKeys {
    type Err = BadPrimaryKeys;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadPrimaryKeys(text.to_string());
        let mut keys = BTreeMap::new();
        for pair in text.split(',').filter(|pair| !pair.trim().is_empty()) {
            let (table, columns) = pair.split_once('=').ok_or_else(bad)?;
            let columns: Vec<String> = columns.split('+').map(|c| c.trim().to_string()).collect();
            if table.trim().is_empty() || columns.iter().any(String::is_empty) {
                return Err(bad());
            }
            if keys.insert(table.trim().to_string(), columns).is_some() {
                return Err(bad());
            }
        }
        if keys.is_empty() {
            return Err(bad());
        }
        Ok(Self(keys))
    }
}

impl PrimaryKeys {
    /// The key of a change event's row: its primary key's values (a string as it is, any
    /// other value as JSON), joined by `|` for a composite key.
    pub fn key_of(&self, document: &[u8]) -> Result<String, NoPrimaryKey> {
        self.key_of_event(&ChangeEvent::parse(document)?)
    }

    /// The key of a parsed change event's row.
    pub fn key_of_event(&self, event: &ChangeEvent) -> Result<String, NoPrimaryKey> {
        let columns = self
            .0
            .get(&event.table)
            .ok_or_else(|| NoPrimaryKey::UnknownTable {
                table: event.table.clone(),
                declared: self.0.keys().cloned().collect::<Vec<_>>().join(", "),
            })?;
        let (side, row) = event.keyed_row();
        let values = columns
            .iter()
            .map(|column| match row.and_then(|row| row.get(column)) {
                Some(Value::String(text)) => Ok(text.clone()),
                Some(Value::Null) | None => Err(NoPrimaryKey::MissingColumn {
                    table: event.table.clone(),
                    side,
                    column: column.clone(),
                }),
                Some(other) => Ok(other.to_string()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(values.join("|"))
    }
}

/// The rows of one table a stream of change events leaves, by primary key: each insert,
/// update or read sets its key's row, each delete removes it. Documents that are not change
/// events of the table (or carry no key) change nothing and are counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FinalState {
    pub rows: BTreeMap<String, Value>,
    /// Change events of the table applied.
    pub applied: u64,
    /// Documents that are no change event a key could be read from (poison records), with
    /// their line (from 1) and why.
    pub unkeyed: Vec<(usize, String)>,
}

impl FinalState {
    /// Applies `documents` (one per line, in order) for `table`.
    pub fn of<'a>(
        documents: impl IntoIterator<Item = &'a str>,
        table: &str,
        keys: &PrimaryKeys,
    ) -> Self {
        let mut state = Self::default();
        for (index, document) in documents.into_iter().enumerate() {
            let event = ChangeEvent::parse(document.as_bytes())
                .and_then(|event| keys.key_of_event(&event).map(|key| (event, key)));
            match event {
                Ok((event, key)) if event.table == table => {
                    state.applied += 1;
                    match event.operation {
                        Operation::Delete => {
                            state.rows.remove(&key);
                        }
                        _ => {
                            let row = event.after.unwrap_or(Value::Null);
                            state.rows.insert(key, row);
                        }
                    }
                }
                Ok(_) => {}
                Err(reason) => state.unkeyed.push((index + 1, reason.to_string())),
            }
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(op: &str, table: &str, before: Value, after: Value) -> String {
        json!({ "op": op, "before": before, "after": after, "source": { "table": table, "ts_ms": 7 } })
            .to_string()
    }

    #[test]
    fn change_events_are_keyed_by_their_tables_primary_key_a_delete_by_its_before_row() {
        let keys: PrimaryKeys = "members=member_id, lines=claim_id+line".parse().unwrap();
        let insert = event(
            "c",
            "members",
            Value::Null,
            json!({ "member_id": 42, "plan": "gold" }),
        );
        assert_eq!(keys.key_of(insert.as_bytes()), Ok("42".into()));
        let delete = event(
            "d",
            "lines",
            json!({ "claim_id": "c-9", "line": 2 }),
            Value::Null,
        );
        assert_eq!(keys.key_of(delete.as_bytes()), Ok("c-9|2".into()));
        let wrapped =
            json!({ "schema": {}, "payload": serde_json::from_str::<Value>(&insert).unwrap() });
        assert_eq!(keys.key_of(wrapped.to_string().as_bytes()), Ok("42".into()));
        let stranger = event("c", "claims", Value::Null, json!({ "claim_id": 1 }));
        assert_eq!(
            keys.key_of(stranger.as_bytes()).unwrap_err().to_string(),
            "no primary key is declared for table `claims` (declared: lines, members)"
        );
        let poison = event("x", "members", Value::Null, json!({}));
        assert!(keys
            .key_of(poison.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("unknown `op`"));
        let no_column = event("u", "members", Value::Null, json!({ "id": 1 }));
        assert!(keys
            .key_of(no_column.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("no primary key column `member_id`"));
        assert!("members".parse::<PrimaryKeys>().is_err());
        assert!("members=a,members=b".parse::<PrimaryKeys>().is_err());
        assert!("=a".parse::<PrimaryKeys>().is_err());
    }

    #[test]
    fn the_final_state_applies_inserts_updates_and_deletes_in_order_and_counts_poison() {
        let keys: PrimaryKeys = "members=id".parse().unwrap();
        let lines = [
            event(
                "c",
                "members",
                Value::Null,
                json!({ "id": 1, "plan": "basic" }),
            ),
            event(
                "c",
                "members",
                Value::Null,
                json!({ "id": 2, "plan": "basic" }),
            ),
            event(
                "u",
                "members",
                json!({ "id": 1 }),
                json!({ "id": 1, "plan": "gold" }),
            ),
            event("d", "members", json!({ "id": 2 }), Value::Null),
            event("c", "claims", Value::Null, json!({ "claim_id": 5 })),
            "{\"op\": \"c\"}".to_string(),
        ];
        let state = FinalState::of(lines.iter().map(String::as_str), "members", &keys);
        assert_eq!(state.rows.len(), 1);
        assert_eq!(state.rows["1"], json!({ "id": 1, "plan": "gold" }));
        assert_eq!(state.applied, 4);
        assert_eq!(state.unkeyed.len(), 2, "{:?}", state.unkeyed);
        assert_eq!(state.unkeyed[1].0, 6);
    }
}
