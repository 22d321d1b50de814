//! Where a YAML file went wrong, as every file Weir reads reports it: line, column, message.

/// Line and column (1-based; 0 when the parser gave none) and the parser's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlProblem {
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl YamlProblem {
    /// The problem a serde-saphyr error describes; the message loses its own
    /// "error: line N column M:" prefix, since callers print the location themselves.
    pub fn of(error: &serde_saphyr::Error) -> YamlProblem {
        let (line, column) = error
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((0, 0));
        let text = error.to_string();
        let first = text.lines().next().unwrap_or(&text).trim();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        let message = match first
            .strip_prefix("line ")
            .and_then(|rest| rest.split_once(": "))
        {
            Some((location, message)) if location.contains("column") => message.to_string(),
            _ => first.to_string(),
        };
        YamlProblem {
            line,
            column,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_location_prefix_is_left_to_the_caller() {
        let error =
            serde_saphyr::from_str::<std::collections::BTreeMap<String, u32>>("a: 1\nb: [\n")
                .unwrap_err();
        let problem = YamlProblem::of(&error);
        assert!(problem.line >= 2, "{problem:?}");
        assert!(!problem.message.starts_with("line "), "{problem:?}");
        assert!(!problem.message.starts_with("error: "), "{problem:?}");
    }
}
