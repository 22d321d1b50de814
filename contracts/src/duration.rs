//! Human durations as users write them: `250ms`, `5s`, `2m`, `1h`, `1m30s`; a bare number is
//! seconds (the seed demo's `execution_duration: 120`), and a unit may follow a fraction
//! (`1.5h`). Written here rather than taken from `humantime`, which accepts neither a bare
//! number nor a fraction, both of which shipped workflows use.

use std::borrow::Cow;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text is not a duration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    #[error("empty duration; write e.g. `30s`, `2m` or `500ms`")]
    Empty,
    /// Something other than a number stands where one must.
    #[error("`{0}` is not a duration; write e.g. `30s`, `2m` or `500ms`")]
    NotADuration(String),
    #[error("`{text}` is not a duration; bad number `{number}`")]
    BadNumber { text: String, number: String },
    #[error("`{text}` lacks a unit after {value}; use ms, s, m or h")]
    MissingUnit { text: String, value: f64 },
    #[error("`{text}` has unknown unit `{unit}`; use ms, s, m or h")]
    UnknownUnit { text: String, unit: String },
    /// Longer than a `Duration` holds.
    #[error("`{0}` is too long a duration")]
    TooLong(String),
}

/// A duration as a file writes it: text (`30s`, `1m30s`, `500ms`) or a whole number of
/// seconds, read with [`parse_duration`] so that a bad one is an error of the file, at its
/// place. Workflows and topologies both use it. It writes itself in the largest unit that
/// keeps it exact (`90s`, `2m`, `250ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DurationText(pub Duration);

impl DurationText {
    /// Whole milliseconds (saturating).
    pub fn millis(self) -> i64 {
        i64::try_from(self.0.as_millis()).unwrap_or(i64::MAX)
    }
}

impl From<DurationText> for Duration {
    fn from(text: DurationText) -> Self {
        text.0
    }
}

impl std::fmt::Display for DurationText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        match ms {
            0 => f.write_str("0s"),
            _ if ms.is_multiple_of(3_600_000) => write!(f, "{}h", ms / 3_600_000),
            _ if ms.is_multiple_of(60_000) => write!(f, "{}m", ms / 60_000),
            _ if ms.is_multiple_of(1_000) => write!(f, "{}s", ms / 1_000),
            _ => write!(f, "{ms}ms"),
        }
    }
}

/// A duration: a whole number of seconds, or text such as `500ms`, `30s`, `1m30s`, `2h`.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
enum Written {
    /// Whole seconds.
    Seconds(u64),
    /// `500ms`, `30s`, `1m30s`, `2h`.
    Text(String),
}

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Written::deserialize(d)? {
            Written::Seconds(seconds) => Ok(Self(Duration::from_secs(seconds))),
            Written::Text(text) => parse_duration(&text)
                .map(Self)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for DurationText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl schemars::JsonSchema for DurationText {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        Written::json_schema(generator)
    }
}

/// Parses a duration such as `1m30s`; the error says what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(DurationError::NotADuration(text.to_string()));
        }
        let value: f64 = rest[..digits]
            .parse()
            .map_err(|_| DurationError::BadNumber {
                text: text.to_string(),
                number: rest[..digits].to_string(),
            })?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds_per_unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(DurationError::MissingUnit {
                    text: text.to_string(),
                    value,
                })
            }
            unit => {
                return Err(DurationError::UnknownUnit {
                    text: text.to_string(),
                    unit: unit.to_string(),
                })
            }
        };
        total = Duration::try_from_secs_f64(value * seconds_per_unit)
            .ok()
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| DurationError::TooLong(text.to_string()))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("120"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
    }

    #[test]
    fn a_written_duration_reads_from_seconds_or_text_and_writes_back_exactly() {
        let read = |yaml: &str| serde_saphyr::from_str::<DurationText>(yaml);
        assert_eq!(read("90").unwrap(), DurationText(Duration::from_secs(90)));
        assert_eq!(read("1m30s").unwrap().to_string(), "90s");
        assert_eq!(read("'2m'").unwrap().to_string(), "2m");
        assert_eq!(read("250ms").unwrap().millis(), 250);
        let error = read("10parsecs").unwrap_err().to_string();
        assert!(error.contains("unknown unit `parsecs`"), "{error}");
        assert_eq!(
            serde_json::to_string(&DurationText(Duration::from_millis(1500))).unwrap(),
            "\"1500ms\""
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        assert!(parse_duration("")
            .unwrap_err()
            .to_string()
            .contains("empty"));
        assert!(parse_duration("10 parsecs")
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
        assert!(parse_duration("s")
            .unwrap_err()
            .to_string()
            .contains("not a duration"));
        assert!(parse_duration("99999999999999999999s")
            .unwrap_err()
            .to_string()
            .contains("too long"));
    }

    mod hostile_input {
        use proptest::prelude::*;

        use super::super::parse_duration;

        proptest! {
            #[test]
            fn any_text_is_a_duration_or_a_refusal(text in "\\PC{0,40}") {
                if let Err(reason) = parse_duration(&text) {
                    prop_assert!(!reason.to_string().is_empty());
                }
            }

            #[test]
            fn huge_numbers_and_units_never_overflow(
                text in "[0-9]{0,40}(ns|us|ms|s|m|h|d)?([0-9]{0,30}(ms|s|m|h))?"
            ) {
                let _ = parse_duration(&text);
            }
        }
    }
}
