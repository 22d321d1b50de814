//! Human durations as users write them: `250ms`, `5s`, `2m`, `1h`, `1m30s`; a bare number is
//! seconds (the seed demo's `execution_duration: 120`).

use std::time::Duration;

/// Parses a duration such as `1m30s`; the error says what was expected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; write e.g. `30s`, `2m` or `500ms`".into());
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
            return Err(format!(
                "`{text}` is not a duration; write e.g. `30s`, `2m` or `500ms`"
            ));
        }
        let value: f64 = rest[..digits].parse().map_err(|_| {
            format!(
                "`{text}` is not a duration; bad number `{}`",
                &rest[..digits]
            )
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
                return Err(format!(
                    "`{text}` lacks a unit after {value}; use ms, s, m or h"
                ))
            }
            unit => {
                return Err(format!(
                    "`{text}` has unknown unit `{unit}`; use ms, s, m or h"
                ))
            }
        };
        total = Duration::try_from_secs_f64(value * seconds_per_unit)
            .ok()
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
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
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("10 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert!(parse_duration("s").unwrap_err().contains("not a duration"));
        assert!(parse_duration("99999999999999999999s")
            .unwrap_err()
            .contains("too long"));
    }

    mod hostile_input {
        use proptest::prelude::*;

        use super::super::parse_duration;

        proptest! {
            #[test]
            fn any_text_is_a_duration_or_a_refusal(text in "\\PC{0,40}") {
                if let Err(reason) = parse_duration(&text) {
                    prop_assert!(!reason.is_empty());
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
