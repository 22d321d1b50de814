//! Human durations as users write them: `250ms`, `5s`, `2m`, `1h`, `1m30s`; a bare number is
//! seconds (the seed demo's `execution_duration: 120`), and a unit may follow a fraction
//! (`1.5h`). Written here rather than taken from `humantime`, which accepts neither a bare
//! number nor a fraction, both of which shipped workflows use.

use std::time::Duration;

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
