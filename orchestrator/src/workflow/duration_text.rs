//! Durations written as text (`30s`, `1m30s`) or a number of seconds, parsed at load so that
//! a bad one is a located error of the file.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};
use weir_contracts::duration::DurationText;

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Ok(Option::<DurationText>::deserialize(d)?.map(Duration::from))
}

pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(duration) => s.serialize_str(&format!("{}ms", duration.as_millis())),
        None => s.serialize_none(),
    }
}

/// The same, for a duration that is always present once defaults apply.
pub mod required {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::deserialize(d)?.ok_or_else(|| serde::de::Error::custom("a duration is needed"))
    }

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        super::serialize(&Some(*value), s)
    }
}
