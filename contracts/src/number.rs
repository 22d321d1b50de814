//! Numbers in JSON documents as sources publish them: a JSON number or a numeric string.

use serde_json::Value;

/// A value that holds no finite number (its JSON text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a number, found {0}")]
pub struct NotANumber(pub String);

/// A finite number from a JSON number or a numeric string such as `"478012.35"`.
pub fn as_number(value: &Value) -> Result<f64, NotANumber> {
    let parsed = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match parsed {
        Some(n) if n.is_finite() => Ok(n),
        _ => Err(NotANumber(value.to_string())),
    }
}
