//! A message's bytes as a person reads them: JSON when they are JSON, text when they are
//! UTF-8, hexadecimal otherwise. The format is said alongside, so that the text `123` and
//! the JSON number 123 are never confused, and nothing is interpreted as markup.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Bytes of a key, a header or a value, in the most readable form that holds them exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", content = "data", rename_all = "kebab-case")]
pub enum Content {
    Json(Value),
    Text(String),
    Hex(String),
}

impl Content {
    /// A value: JSON if it parses as JSON, else text or hex.
    pub fn of_value(bytes: &[u8]) -> Self {
        match serde_json::from_slice(bytes) {
            Ok(value) => Content::Json(value),
            Err(_) => Self::of_text(bytes),
        }
    }

    /// A key or header: text if UTF-8, else hex (keys are compared as text, never as JSON).
    pub fn of_text(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Content::Text(text.to_string()),
            Err(_) => Content::Hex(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        }
    }

    /// The content as one line of text, for tables and text search.
    pub fn display(&self) -> String {
        match self {
            Content::Json(value) => value.to_string(),
            Content::Text(text) | Content::Hex(text) => text.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_and_binary_are_told_apart() {
        assert_eq!(
            Content::of_value(br#"{"rate": 7.5}"#),
            Content::Json(serde_json::json!({"rate": 7.5}))
        );
        assert_eq!(
            Content::of_value(b"not json"),
            Content::Text("not json".into())
        );
        assert_eq!(
            Content::of_value(&[0xff, 0x00]),
            Content::Hex("ff00".into())
        );
        // A key is text even when it looks like a number.
        assert_eq!(Content::of_text(b"123"), Content::Text("123".into()));
        assert_eq!(
            serde_json::to_value(Content::of_text(b"BTC")).unwrap(),
            serde_json::json!({"format": "text", "data": "BTC"})
        );
    }
}
