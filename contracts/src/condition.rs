//! `when:` conditions of tasks and chart windows: `true`, `false`, `!true` or `!false` once
//! variables are substituted (`when: "!${automatic_kill}"`). Used with
//! `#[serde(with = "weir_contracts::condition")]` on an `Option<bool>`.

use serde::{Deserialize, Deserializer, Serializer};

/// The value of a condition as written, or `None` when it is not one.
pub fn parse(text: &str) -> Option<bool> {
    let text = text.trim();
    let (negate, rest) = match text.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, text),
    };
    let value = match rest {
        "true" => true,
        "false" => false,
        _ => return None,
    };
    Some(value != negate)
}

/// Why a condition was refused, for error messages.
fn refusal(text: &str) -> String {
    format!("`when: {text}` must be true, false, !true or !false after interpolation")
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Text {
    Bool(bool),
    Text(String),
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<Text>::deserialize(d)? {
        None => Ok(None),
        Some(Text::Bool(value)) => Ok(Some(value)),
        Some(Text::Text(text)) => parse(&text)
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom(refusal(&text))),
    }
}

pub fn serialize<S: Serializer>(value: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => s.serialize_bool(*value),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn conditions_read_negations_and_refuse_anything_else() {
        assert_eq!(super::parse(" !true "), Some(false));
        assert_eq!(super::parse("! false"), Some(true));
        assert_eq!(super::parse("true"), Some(true));
        assert_eq!(super::parse("yes"), None);
        assert_eq!(super::parse("${candles}"), None);
    }
}
