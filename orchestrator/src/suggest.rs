//! "Did you mean …?" for names a user types: topics, workflow variables, workflows.

/// "; did you mean `rates`?" naming up to three of `names` that differ from `wanted` by case,
/// by an ending, or by a few letters, the closest first; empty when none is close.
pub fn did_you_mean<'a>(wanted: &str, names: impl IntoIterator<Item = &'a str>) -> String {
    let mut close: Vec<(usize, &str)> = (names.into_iter())
        .map(|name| (strsim::levenshtein(name, wanted), name))
        .filter(|(distance, name)| {
            let longer = name.len().max(wanted.len());
            name.eq_ignore_ascii_case(wanted)
                || (wanted.len() >= 3 && name.starts_with(wanted))
                || *distance <= longer / 3
        })
        .collect();
    close.sort();
    close.dedup();
    let named: Vec<String> = (close.iter().take(3))
        .map(|(_, name)| format!("`{name}`"))
        .collect();
    if named.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", named.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_case_and_endings_are_caught_and_strangers_are_not() {
        let names = ["rates", "variations", "notifications", "errors"];
        assert_eq!(did_you_mean("rate", names), "; did you mean `rates`?");
        assert_eq!(did_you_mean("Errors", names), "; did you mean `errors`?");
        assert_eq!(
            did_you_mean("notification", names),
            "; did you mean `notifications`?"
        );
        assert_eq!(did_you_mean("rat", names), "; did you mean `rates`?");
        assert_eq!(did_you_mean("candles", names), "");
        assert_eq!(
            did_you_mean("treshold", ["threshold", "source_kind"]),
            "; did you mean `threshold`?"
        );
    }
}
