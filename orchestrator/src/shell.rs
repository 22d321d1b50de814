//! Command lines Weir prints for a person to copy: each value one shell word.

/// `value` as one POSIX shell word: as it is when it holds only characters no shell reads
/// specially, otherwise in single quotes.
pub fn word(value: &str) -> String {
    let plain = (value.chars()).all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    match plain && !value.is_empty() {
        true => value.to_string(),
        false => format!("'{}'", value.replace('\'', r"'\''")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_stay_and_others_are_quoted_whole() {
        assert_eq!(word("/Close"), "/Close");
        assert_eq!(word("https://a.example/x?y=1"), "'https://a.example/x?y=1'");
        assert_eq!(
            word("monthly close (replayed)"),
            "'monthly close (replayed)'"
        );
        assert_eq!(word("it's"), r"'it'\''s'");
        assert_eq!(word(""), "''");
    }
}
