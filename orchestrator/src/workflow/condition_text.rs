//! `when:` conditions: `true`, `false`, `!true` or `!false` once variables are substituted.

use serde::{Deserialize, Deserializer, Serializer};

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
        Some(Text::Text(text)) => crate::workflow::parse_condition(&text)
            .map(Some)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "`when: {text}` must be true, false, !true or !false after interpolation"
                ))
            }),
    }
}

pub fn serialize<S: Serializer>(value: &Option<bool>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(value) => s.serialize_bool(*value),
        None => s.serialize_none(),
    }
}
